"""Run a real `tritonserver`: the one bundled in the `nvidia-pytriton` wheel, or one on PATH.

The wheel's binary needs its libraries on LD_LIBRARY_PATH, a Python-version-matched
`triton_python_backend_stub` beside the Python backend, this interpreter's bin first on PATH
(the stub runs models with the `python3` it finds) and this interpreter's libpython first on
LD_LIBRARY_PATH (else the stub picks the system's and `import torch` fails).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise


class ServerError(RuntimeError):
    """tritonserver could not be found, started, or did not become ready."""


@dataclasses.dataclass(frozen=True)
class TritonInstall:
    binary: Path
    library_dirs: tuple[Path, ...]
    backend_dir: Path | None  # None: the binary's built-in default
    cache_dir: Path | None


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    model_repository: Path
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    host: str = DEFAULT_HOST
    model_control: bool = False  # load/unload over the API only when asked for
    response_cache_bytes: int = 0  # 0: no response cache
    log_verbose: int = 0
    extra_args: tuple[str, ...] = ()

    @property
    def http_url(self) -> str:
        return f"{_url_host(self.host)}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{_url_host(self.host)}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.metrics_port}/metrics"


def find_triton(work_dir: Path | None = None) -> TritonInstall:
    """Locate tritonserver: the nvidia-pytriton wheel first, then PATH."""
    try:
        import pytriton  # noqa: F401  (nvidia-pytriton)
    except ImportError:
        on_path = shutil.which("tritonserver")
        if on_path is None:
            raise ServerError(
                "no tritonserver found: install the server extra (pip install 'triton-pooling[server]', "
                "which brings nvidia-pytriton) or put tritonserver on PATH"
            ) from None
        return TritonInstall(Path(on_path), (), None, None)
    root = Path(pytriton.__file__).parent / "tritonserver"
    libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    backends = _backend_dir_with_stub(root, work_dir or _default_work_dir())
    return TritonInstall(root / "bin" / "tritonserver", (libs,), backends, root / "caches")


def _default_work_dir() -> Path:
    return Path.home() / ".cache" / "triton-pooling"


def _backend_dir_with_stub(root: Path, work_dir: Path) -> Path:
    """A backend directory whose python/ holds the wheel's backend plus the stub for this Python."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(f"nvidia-pytriton has no Python backend stub for Python {version}")
    target = work_dir / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    for source in [*(root / "backends" / "python").iterdir(), stub]:
        if source.is_file():
            dest = target / source.name
            if not dest.exists() or dest.stat().st_size != source.stat().st_size:
                shutil.copy2(source, dest)
    return target.parent


def server_command(install: TritonInstall, options: ServerOptions) -> list[str]:
    cmd = [
        str(install.binary),
        f"--model-repository={Path(options.model_repository).resolve()}",
        f"--http-port={options.http_port}", f"--grpc-port={options.grpc_port}",
        f"--metrics-port={options.metrics_port}",
        f"--http-address={options.host}", f"--grpc-address={options.host}",
        f"--metrics-address={options.host}",
        f"--model-control-mode={'explicit' if options.model_control else 'none'}",
        "--strict-readiness=true",
        f"--log-verbose={options.log_verbose}",
    ]
    if options.model_control:
        cmd.append("--load-model=*")
    if install.backend_dir is not None:
        cmd.append(f"--backend-directory={install.backend_dir}")
    if options.response_cache_bytes:
        if install.cache_dir is not None:
            cmd.append(f"--cache-directory={install.cache_dir}")
        cmd.append(f"--cache-config=local,size={options.response_cache_bytes}")
    return cmd + list(options.extra_args)


def server_env(install: TritonInstall, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    libpython = sysconfig.get_config_var("LIBDIR")
    lib_dirs = [libpython] + [str(p) for p in install.library_dirs]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([d for d in lib_dirs if d] + [env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
    return env


class TritonProcess:
    """A tritonserver child process: start, wait until ready (or fail fast with its log), stop."""

    def __init__(self, options: ServerOptions, log_path: Path | None = None, install: TritonInstall | None = None):
        self.options = options
        self.install = install or find_triton()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_file = None

    def start(self) -> "TritonProcess":
        out = subprocess.DEVNULL
        if self.log_path is not None:
            self._log_file = open(self.log_path, "ab")
            out = self._log_file
        self.process = subprocess.Popen(
            server_command(self.install, self.options), env=server_env(self.install),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self.process.returncode if self.process else None}"
                                  f" before it was ready{self._log_tail()}")
            if is_ready(self.options.http_url):
                return
            time.sleep(0.25)
        raise ServerError(f"tritonserver was not ready after {timeout:.0f} s{self._log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "TritonProcess":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not Path(self.log_path).exists():
            return ""
        text = Path(self.log_path).read_text(errors="replace").splitlines()[-lines:]
        return "; server log tail:\n" + "\n".join(text)


def is_ready(http_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{http_url}/v2/health/ready", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
