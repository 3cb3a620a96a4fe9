"""The servers under test as context managers: our tritonserver and an Infinity server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
INFINITY_VENV = ROOT / ".bench" / "infinity-venv"
INFINITY_MODEL_NAME = "all-MiniLM-L6-v2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def triton(repository: Path, log_path: Path, response_cache_bytes: int = 0):
    from triton_pooling_server.launch.triton import ServerOptions, TritonProcess

    options = ServerOptions(repository, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                            response_cache_bytes=response_cache_bytes)
    with TritonProcess(options, log_path=log_path) as server:
        yield server


@contextlib.contextmanager
def infinity(model_path: Path, log_path: Path, batch_size: int = 32, venv: Path = INFINITY_VENV) -> Iterator[str]:
    """Infinity's torch engine on CPU serving `model_path`; yields its base URL."""
    binary = venv / "bin" / "infinity_emb"
    if not binary.is_file():
        raise RuntimeError(f"Infinity is not installed at {venv}: run `python -m bench.install`")
    port = free_port()
    command = [str(binary), "v2", "--model-id", str(model_path), "--served-model-name", INFINITY_MODEL_NAME,
               "--engine", "torch", "--device", "cpu", "--batch-size", str(batch_size), "--port", str(port),
               "--host", "127.0.0.1", "--no-bettertransformer"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_http(f"{url}/health", process, 300, log_path)
            yield url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_http(url: str, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = Path(log_path).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before it was ready:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
