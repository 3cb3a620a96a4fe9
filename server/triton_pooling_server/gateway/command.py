"""`triton-pooling gateway` and `python -m triton_pooling_server.gateway`: serve the HTTP API in front of
a running Triton until SIGTERM / SIGINT, then stop cleanly (in-flight requests answered, exit 0)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .settings import DEFAULT_HOST, DEFAULT_PORT, GatewaySettings, SettingsError

DESCRIPTION = ("serve the OpenAI / vLLM / Jina / Cohere HTTP API (embeddings, pooling, classify, score, rerank) "
               "over the Triton models")


def add_arguments(p: argparse.ArgumentParser) -> None:
    defaults = GatewaySettings("127.0.0.1:8001")
    p.add_argument("--triton-url", required=True, metavar="HOST:GRPC_PORT", help="Triton's gRPC endpoint")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--timeout", type=float, default=defaults.timeout,
                   help="seconds a Triton call may take before the request is answered 504")
    p.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes, help="larger bodies get 413")
    p.add_argument("--max-inputs", type=int, default=defaults.max_inputs, help="inputs per request")
    p.add_argument("--pool-size", type=int, default=defaults.pool_size, help="gRPC connections to Triton")
    p.add_argument("--health-ttl", type=float, default=defaults.health_ttl,
                   help="seconds a /health verdict (probe inferences included) is reused")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(run=run)


def add_parser(subparsers) -> None:
    add_arguments(subparsers.add_parser("gateway", help=DESCRIPTION, description=DESCRIPTION))


def settings_from(args: argparse.Namespace) -> GatewaySettings:
    return GatewaySettings(args.triton_url, args.host, args.port, args.timeout, args.max_body_bytes,
                           args.max_inputs, args.pool_size, args.health_ttl, access_log=args.access_log)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from(args)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except OSError as e:  # the port is taken, the address is not ours
        print(f"error: cannot listen on {settings.host}:{settings.port}: {e}", file=sys.stderr)
        return 1
    return 0


async def serve(settings: GatewaySettings) -> None:
    from aiohttp import web

    from .app import create_app

    runner = web.AppRunner(create_app(settings), access_log=logging.getLogger("aiohttp.access")
                           if settings.access_log else None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
        await site.start()
        print(f"triton-pooling gateway is listening\n  HTTP: http://{_url_host(settings.host)}:{settings.port}\n"
              f"  Triton gRPC: {settings.triton_url}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()  # stops accepting, lets in-flight requests finish, closes the Triton clients


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triton_pooling_server.gateway", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return args.run(args)
