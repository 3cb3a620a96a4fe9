"""The HTTP gateway (triton_pooling_server.gateway) as a child of `serve`, next to tritonserver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from ..gateway.settings import API_KEY_ENV
from .errors import ServerError
from .processes import stop_group
from .triton import _url_host

GATEWAY_MODULE = "triton_pooling_server.gateway"


class GatewayProcess:
    def __init__(self, triton_grpc_url: str, host: str, port: int, api_key: str | None = None,
                 model_repository: str | os.PathLike | None = None, limits: list[str] = ()):
        """`limits`: the gateway's own flags for its bounds (serve's --gateway-<setting>, command.limit_argv)."""
        self.command = [sys.executable, "-m", GATEWAY_MODULE, "--triton-url", triton_grpc_url,
                        "--host", host, "--port", str(port), *limits]
        if model_repository is not None:  # the tokenization routes read each model's tokenizer.json there
            self.command += ["--model-repository", os.path.abspath(model_repository)]
        self.url = f"http://{_url_host(host)}:{port}"
        # The key travels in the child's environment, never its command line (which any local user can read).
        self.env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
        if api_key is not None:
            self.env[API_KEY_ENV] = api_key
        self.process: subprocess.Popen | None = None

    def start(self) -> "GatewayProcess":
        # Its own session, like tritonserver: a terminal's Ctrl-C reaches only `serve`, which stops it.
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, start_new_session=True, env=self.env)
        return self

    def wait_ready(self, timeout: float = 60.0, should_stop=lambda: False) -> None:
        deadline = time.monotonic() + timeout
        while not should_stop():
            if self.process.poll() is not None:
                raise ServerError(f"the gateway exited with code {self.process.returncode} before it was ready")
            try:
                # Listening is enough here: serve starts it once Triton is ready, and its /health also
                # wants at least one pooling model, which an empty repository does not have.
                with urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"the gateway did not answer at {self.url} after {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            stop_group(self.process, signal.SIGTERM, timeout)
