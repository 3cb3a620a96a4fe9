"""Who gets in: requests in flight and bytes of bodies held are bounded, and a request past either bound
is answered 429 with Retry-After at once, before its body is read — shed early and cheaply rather than
queued until a client times out (TEI's `--max-concurrent-requests`). The probes' routes are never shed."""

from __future__ import annotations

import contextlib
from typing import Iterator

from aiohttp import web

from .auth import OPEN_PATHS
from .errors import ErrorKind, GatewayError
from .settings import GatewaySettings


class Admission:
    def __init__(self, settings: GatewaySettings):
        self.max_requests = settings.max_concurrent_requests
        self.max_body_bytes = settings.max_body_bytes
        self.body_budget = settings.max_body_bytes_in_flight
        self.requests = 0
        self.body_bytes = 0

    @contextlib.contextmanager
    def admit(self, request: web.Request) -> Iterator[None]:
        if request.path in OPEN_PATHS:
            yield
            return
        size = self.body_size(request)
        if self.requests >= self.max_requests:
            raise GatewayError(ErrorKind.OVERLOADED, f"this gateway is answering {self.requests} requests, its limit "
                               f"(--max-concurrent-requests {self.max_requests}): retry later")
        if self.body_bytes + size > self.body_budget:
            raise GatewayError(ErrorKind.OVERLOADED, f"this gateway holds {self.body_bytes} bytes of request bodies; "
                               f"{size} more would pass its limit (--max-body-bytes-in-flight {self.body_budget}): "
                               "retry later")
        self.requests += 1
        self.body_bytes += size
        try:
            yield
        finally:
            self.requests -= 1
            self.body_bytes -= size

    def body_size(self, request: web.Request) -> int:
        """What the body will hold: its Content-Length, or the most a body may be when it is not given
        (chunked); a Content-Length over --max-body-bytes is answered 413 when read, so it counts as the max."""
        if not request.body_exists:
            return 0
        length = request.content_length
        return self.max_body_bytes if length is None else min(length, self.max_body_bytes)
