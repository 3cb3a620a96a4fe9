"""`triton-pooling gateway` and `python -m triton_pooling_server.gateway`: serve the HTTP API in front of
a running Triton until SIGTERM / SIGINT / SIGHUP / SIGQUIT, then stop cleanly (in-flight requests
answered, exit 0)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .settings import API_KEY_ENV, DEFAULT_HOST, DEFAULT_PORT, GatewaySettings, SettingsError, api_key_from

DESCRIPTION = ("serve the OpenAI / vLLM / TEI / Jina / Cohere HTTP API (embeddings, pooling, classify, score, rerank, "
               "tokenize) "
               "over the Triton models")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
log = logging.getLogger(__name__)


# The gateway's bounds and timeouts: (setting, type, help). `triton-pooling gateway` takes them as --<setting>,
# `triton-pooling serve` as --gateway-<setting> and hands the ones given to its gateway child.
LIMITS = (
    ("timeout", float, "seconds a Triton call may take before the request is answered 504"),
    ("max_body_bytes", int, "larger bodies get 413"),
    ("max_inputs", int, "inputs per request"),
    ("max_concurrent_requests", int, "requests in flight; past it, 429 with Retry-After before the body is read"),
    ("max_body_bytes_in_flight", int, "bytes of request bodies held at once; past it, 429 with Retry-After"),
    ("max_output_bytes", int, "float32 bytes of model output one request may hold (inputs x rows x values x 4); "
                              "larger requests get 413, refused before Triton computes them when the size can be told"),
    ("max_calls_per_request", int, "Triton requests one HTTP request keeps in flight (token ids go one request per "
                                   "length)"),
    ("body_timeout", float, "seconds a request body may take to arrive; then 408 and the connection closes"),
    ("keepalive_timeout", float, "seconds an idle connection stays open (also bounds a client that never ends its "
                                 "headers)"),
    ("pool_size", int, "gRPC connections to Triton"),
    ("health_ttl", float, "seconds a /health verdict (probe inferences included) is reused"),
    ("probe_timeout", float, "seconds /health waits for each model's probe; no answer by then counts as busy"),
)


def add_limit_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The LIMITS as --<prefix><setting>; with a prefix they default to None (the gateway's own default)."""
    d = GatewaySettings("127.0.0.1:8001")
    for name, kind, text in LIMITS:
        default = None if prefix else getattr(d, name)
        p.add_argument(f"--{prefix}{name.replace('_', '-')}", dest=f"{prefix.replace('-', '_')}{name}", type=kind,
                       default=default, help=f"{text} (default {getattr(d, name)})")


def limit_argv(args: argparse.Namespace, prefix: str) -> list[str]:
    """The gateway flags for the --<prefix><setting> values given (serve -> its gateway child)."""
    argv = []
    for name, _, _ in LIMITS:
        value = getattr(args, f"{prefix.replace('-', '_')}{name}", None)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--triton-url", required=True, metavar="HOST:GRPC_PORT", help="Triton's gRPC endpoint")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer <key>' on every route but /health and /metrics (default: "
                        f"${API_KEY_ENV}, else none). Prefer the variable: a command line is visible to local users")
    add_limit_arguments(p)
    p.add_argument("--model-repository", default=None, metavar="DIR",
                   help="the repository Triton serves; the tokenization routes (/tokenize, /detokenize, /decode) read "
                        "each model's <DIR>/<model>/<version>/tokenizer.json from it (without it they answer 501)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(run=run)


def add_parser(subparsers) -> None:
    add_arguments(subparsers.add_parser("gateway", help=DESCRIPTION, description=DESCRIPTION))


def settings_from(args: argparse.Namespace, environ=os.environ) -> GatewaySettings:
    return GatewaySettings(
        args.triton_url, args.host, args.port, args.timeout, args.max_body_bytes, args.max_inputs, args.pool_size,
        args.health_ttl, probe_timeout=args.probe_timeout, access_log=args.access_log,
        api_key=api_key_from(args.api_key, environ), max_concurrent_requests=args.max_concurrent_requests,
        max_body_bytes_in_flight=args.max_body_bytes_in_flight, max_output_bytes=args.max_output_bytes,
        max_calls_per_request=args.max_calls_per_request, body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout, model_repository=args.model_repository,
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from(args)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not settings.loopback and settings.api_key is None:
        log.warning("listening on %s without an API key: anyone who reaches port %d can use the models "
                    "(set --api-key or %s)", settings.host, settings.port, API_KEY_ENV)
    try:
        asyncio.run(serve(settings))
    except OSError as e:  # the port is taken, the address is not ours
        print(f"error: cannot listen on {settings.host}:{settings.port}: {e}", file=sys.stderr)
        return 1
    return 0


async def serve(settings: GatewaySettings) -> None:
    from aiohttp import web

    from .app import create_app, runner_options

    runner = web.AppRunner(create_app(settings), access_log=logging.getLogger("aiohttp.access")
                           if settings.access_log else None, handle_signals=False, **runner_options(settings))
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
        await site.start()
        auth = "API key required" if settings.api_key else "no API key"
        print(f"triton-pooling gateway is listening\n  HTTP: http://{_url_host(settings.host)}:{settings.port}  "
              f"({auth})\n  Triton gRPC: {settings.triton_url}", flush=True)
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
