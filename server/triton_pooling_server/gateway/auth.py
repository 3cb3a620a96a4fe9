"""The API key: `Authorization: Bearer <key>` on every route but the probes' (/health, /metrics), as
vLLM's `--api-key`. Compared in constant time over digests of both sides, so neither the key's
characters nor its length leak through timing."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from .errors import ErrorKind, GatewayError

# Open without a key: Kubernetes probes and Prometheus scrapers carry no credentials, and neither route
# runs a user's input (/health runs its own probe; /metrics reads counters).
OPEN_PATHS = frozenset({"/health", "/metrics"})


class ApiKey:
    def __init__(self, key: str | None):
        self._digest = None if key is None else _digest(key.encode())

    @property
    def required(self) -> bool:
        return self._digest is not None

    def check(self, request: web.Request) -> None:
        """Raises 401 unless the request carries the key (or needs none)."""
        if self._digest is None or request.path in OPEN_PATHS:
            return
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if not token:
            raise _unauthorized("no API key: send the header 'Authorization: Bearer <key>' (the gateway was started "
                                "with --api-key or TRITON_POOLING_API_KEY)")
        # surrogateescape: a header byte that is not UTF-8 still compares (and fails), never raises.
        given = _digest(token.strip().encode("utf-8", "surrogateescape"))
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._digest):
            raise _unauthorized("invalid API key: the 'Authorization: Bearer <key>' header does not carry this "
                                "gateway's key")


def _digest(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(ErrorKind.UNAUTHORIZED, message)
