"""`triton-pooling serve`: run a real tritonserver on a model repository and block.

Every exit path cleans up: SIGINT/SIGTERM/SIGHUP/SIGQUIT handlers are in place before the first process
starts and only ask the main loop to stop; one `finally` stops the gateway and tritonserver (its whole
process group) and removes the stubs' shared memory, whether the stop came during start-up, a heal or
steady state. The gateway child is kept listening (gateway_keeper.py), or `serve` exits 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from ..gateway.command import add_limit_arguments, limit_argv
from ..gateway.settings import API_KEY_ENV, SettingsError, api_key_from, check_api_key, is_loopback
from .errors import ServerError
from .gateway_keeper import GatewayKeeper
from .gateway_process import GatewayProcess
from .ports import check_ports_free
from .supervisor import Supervisor
from .triton import API_KEY_HEADER, DEFAULT_HOST, ServerOptions, TritonProcess

# SIGHUP (the terminal went away) and SIGQUIT stop as SIGTERM does: tritonserver and the gateway run in
# their own sessions, so a signal left to its default would kill `serve` alone and orphan them.
GATEWAY_PREFIX = "gateway-"  # serve's --gateway-<setting> flags are the gateway's --<setting>
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

MODEL_CONTROL_HELP = (
    "let clients load / unload models over Triton's repository API. This GRANTS CODE EXECUTION on this host to "
    "whoever reaches the HTTP/gRPC ports: Triton's load API accepts file overrides (a model.py sent in the "
    f"request). Refused with a non-loopback --host unless --api-key is set; with a key, the repository API "
    f"needs the header '{API_KEY_HEADER}: <key>' (over gRPC: 'triton-grpc-protocol-{API_KEY_HEADER}'). "
    "Off by default")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a model repository on a real Triton")
    p.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--gateway-port", type=int, default=None,
                   help="also serve the OpenAI / vLLM / Cohere HTTP API on this port (docs/http-api.md)")
    p.add_argument("--api-key", default=None,
                   help=f"the gateway requires 'Authorization: Bearer <key>' (default: ${API_KEY_ENV}); passed to it "
                        "through its environment. Prefer the variable: a command line is visible to local users")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: loopback only)")
    add_limit_arguments(p.add_argument_group("gateway bounds (with --gateway-port; passed to the gateway)"),
                        GATEWAY_PREFIX)
    p.add_argument("--model-control", action="store_true", help=MODEL_CONTROL_HELP)
    p.add_argument("--response-cache-bytes", type=int, default=0, help="enable Triton's response cache")
    p.add_argument("--log-file", type=Path, default=None,
                   help="write tritonserver's output here (default: pass it through to stderr)")
    p.add_argument("--startup-timeout", type=float, default=600.0)
    p.set_defaults(run=run)


class _StopRequest:
    """Set by a signal handler; the launcher's loops poll it (no exception thrown into a Popen)."""

    def __init__(self):
        self.event = threading.Event()
        self.signal_number: int | None = None

    def __call__(self, signum, _frame) -> None:
        self.signal_number = signum
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


def check_exposure(host: str, model_control: bool, api_key: str | None) -> None:
    if model_control and api_key is None and not is_loopback(host):
        raise ServerError(
            f"--model-control with --host {host} would let anyone who reaches this host's ports run code on it "
            "(Triton's load API accepts file overrides); set --api-key (or "
            f"{API_KEY_ENV}), which the repository API then requires, or bind to loopback")


def run(args: argparse.Namespace) -> int:
    stop = _StopRequest()
    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    server: TritonProcess | None = None
    supervisor: Supervisor | None = None
    gateway: GatewayProcess | None = None
    try:
        api_key = api_key_from(args.api_key, os.environ)
        try:
            check_api_key(api_key, "--api-key")
        except SettingsError as e:
            raise ServerError(str(e)) from e
        check_exposure(args.host, args.model_control, api_key)
        options = ServerOptions(
            model_repository=args.model_repository, http_port=args.http_port, grpc_port=args.grpc_port,
            metrics_port=args.metrics_port, host=args.host, model_control=args.model_control,
            response_cache_bytes=args.response_cache_bytes, api_key=api_key,
        )
        ports = {"--http-port": args.http_port, "--grpc-port": args.grpc_port, "--metrics-port": args.metrics_port}
        if args.gateway_port is not None:
            ports["--gateway-port"] = args.gateway_port
        check_ports_free(args.host, ports)
        if not Path(args.model_repository).is_dir():
            raise ServerError(f"--model-repository {str(args.model_repository)!r} is not a directory")
        server = TritonProcess(options, log_path=args.log_file)
        supervisor = Supervisor(server, should_stop=stop.is_set, startup_timeout=args.startup_timeout)
        server.start()
        supervisor.wait_ready()
        keeper = None
        if args.gateway_port is not None and not stop.is_set():
            gateway = GatewayProcess(options.grpc_url, args.host, args.gateway_port, api_key,
                                     model_repository=args.model_repository,
                                     limits=limit_argv(args, GATEWAY_PREFIX)).start()
            gateway.wait_ready(should_stop=stop.is_set)
            keeper = GatewayKeeper(gateway, log=lambda m: print(m, file=sys.stderr, flush=True))
        if stop.is_set():
            return 0
        lines = [f"  HTTP:    http://{options.http_url}", f"  gRPC:    {options.grpc_url}",
                 f"  metrics: {options.metrics_url}"]
        if gateway is not None:
            auth = "API key required" if api_key else "no API key"
            lines.append(f"  gateway: {gateway.url}  (OpenAI / vLLM / Cohere HTTP API; {auth})")
        print("triton-pooling is ready\n" + "\n".join(lines), flush=True)
        return supervisor.watch(also=keeper.check if keeper is not None else lambda: None)
    except ServerError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        if gateway is not None:
            gateway.stop()
        if supervisor is not None:
            supervisor.stop()
        elif server is not None:
            server.stop()
        _kill_leftover_children()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _kill_leftover_children() -> None:
    """Anything still below this process (a server started just as a signal came) goes with it."""
    from .stubs import descendants

    for pid in descendants(os.getpid()):
        try:
            os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
