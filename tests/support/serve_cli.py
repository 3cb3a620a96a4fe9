"""Run the real `triton-pooling serve` command (launcher + supervisor + tritonserver) for tests."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from triton_pooling_server.launch.triton import is_ready
from triton_pooling_server.launch.stubs import command_line, descendants, remove_shm_regions, stubs

from .triton import free_ports


class ServeCommand:
    """`triton-pooling serve` on fixed free loopback ports, so it can be stopped and started again."""

    def __init__(self, repository: Path, log_path: Path, *args: str, log_file: bool = True):
        """`serve`'s own output goes to `<log_path>.serve.txt`; with `log_file`, tritonserver's to `log_path`
        (`--log-file`), else it passes through serve's output, as for a user who gives no flag."""
        self.repository = Path(repository)
        self.log_path = Path(log_path)
        self.args = args
        self.log_file = log_file
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        self.process: subprocess.Popen | None = None
        self._output = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> "ServeCommand":
        cli = Path(sys.executable).parent / "triton-pooling"
        self._output = open(self.log_path.with_suffix(".serve.txt"), "ab")
        self.process = subprocess.Popen(
            [str(cli), "serve", "--model-repository", str(self.repository), "--http-port", str(self.http_port),
             "--grpc-port", str(self.grpc_port), "--metrics-port", str(self.metrics_port),
             *(["--log-file", str(self.log_path)] if self.log_file else []), *self.args],
            stdout=self._output, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Seconds until ready; fails if the command exits or the time runs out."""
        started = time.monotonic()
        # Ready when Triton says so and serve has said so too (its supervisor then watches the stubs).
        while not (is_ready(self.http_url) and self.said("triton-pooling is ready")):
            assert self.process.poll() is None, f"serve exited with {self.process.returncode}: {self.output()}"
            assert time.monotonic() - started < timeout, f"serve not ready after {timeout} s: {self.output()}"
            time.sleep(0.2)
        return time.monotonic() - started

    def said(self, text: str) -> bool:
        path = self.log_path.with_suffix(".serve.txt")
        return path.exists() and text in path.read_text(errors="replace")

    def wait_exit(self, timeout: float = 300.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            if self._output is not None:
                self._output.close()
                self._output = None

    def tritonserver_pid(self) -> int:
        pids = [p for p in descendants(self.process.pid) if command_line(p)[:1]
                and command_line(p)[0].endswith("/tritonserver")]
        assert pids, "no tritonserver under serve"
        return pids[0]

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (serve stops tritonserver gracefully); after `timeout` s, kill them all."""
        if self.process is not None and self.process.poll() is None:
            servers = descendants(self.process.pid)
            regions = [s.shm_region for pid in servers for s in stubs(pid)]
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in [self.process.pid, *servers]:
                    _kill_group(pid)
                self.process.wait()
                remove_shm_regions(regions)
        if self._output is not None:
            self._output.close()
            self._output = None

    def output(self) -> str:
        path = self.log_path.with_suffix(".serve.txt")
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def serve_flags(argv: list[str]) -> list[str]:
    """The tritonserver command line `triton-pooling serve` builds for `argv` (its own parser and server_command)."""
    from triton_pooling_server.launch import serve_command
    from triton_pooling_server.launch.triton import ServerOptions, TritonInstall, server_command

    assert argv[:2] == ["triton-pooling", "serve"], argv
    parser = argparse.ArgumentParser()
    serve_command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv[1:])
    options = ServerOptions(model_repository=args.model_repository, http_port=args.http_port, grpc_port=args.grpc_port,
                            metrics_port=args.metrics_port, host=args.host, model_control=args.model_control,
                            response_cache_bytes=args.response_cache_bytes)
    return server_command(TritonInstall(Path("tritonserver"), (), None, None), options)
