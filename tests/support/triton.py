"""Start a real tritonserver for tests: free loopback ports, readiness polled, fail fast with its log."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from support.models import write_model  # noqa: F401  (tests import it from here)
from triton_pooling_server.launch.ports import free_ports  # noqa: F401  (tests import it from here)
from triton_pooling_server.launch.triton import ServerOptions, TritonProcess


@contextlib.contextmanager
def running_triton(repository: Path, log_path: Path, timeout: float = 600.0, **options) -> Iterator[TritonProcess]:
    """A real tritonserver on `repository`; `.options.http_url` / `.options.grpc_url` to talk to it."""
    http, grpc, metrics = free_ports(3)
    server = TritonProcess(
        ServerOptions(Path(repository), http_port=http, grpc_port=grpc, metrics_port=metrics, **options),
        log_path=log_path,
    )
    server.start()
    try:
        server.wait_ready(timeout)
        yield server
    finally:
        server.stop()
