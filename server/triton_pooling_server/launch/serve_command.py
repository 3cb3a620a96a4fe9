"""`triton-pooling serve`: run a real tritonserver on a model repository and block."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .triton import DEFAULT_HOST, ServerError, ServerOptions, TritonProcess
from .supervisor import Supervisor


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a model repository on a real Triton")
    p.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: loopback only)")
    p.add_argument("--model-control", action="store_true", help="allow load/unload over the API")
    p.add_argument("--response-cache-bytes", type=int, default=0, help="enable Triton's response cache")
    p.add_argument("--log-file", type=Path, default=None)
    p.add_argument("--startup-timeout", type=float, default=600.0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    options = ServerOptions(
        model_repository=args.model_repository, http_port=args.http_port, grpc_port=args.grpc_port,
        metrics_port=args.metrics_port, host=args.host, model_control=args.model_control,
        response_cache_bytes=args.response_cache_bytes,
    )
    server = TritonProcess(options, log_path=args.log_file)
    supervisor = Supervisor(server, startup_timeout=args.startup_timeout)  # restarts it if a model's stub dies
    try:
        server.start()
        supervisor.wait_ready(args.startup_timeout)
    except ServerError as e:
        server.stop()
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"triton-pooling is ready\n  HTTP:    http://{options.http_url}\n  gRPC:    {options.grpc_url}\n"
          f"  metrics: {options.metrics_url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
    try:
        return supervisor.watch()
    except KeyboardInterrupt:
        supervisor.stop()
        return 0
