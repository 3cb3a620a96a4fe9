"""Run a real `tritonserver`: the one bundled in the `nvidia-pytriton` wheel, or one on PATH.

The wheel's binary needs its libraries on LD_LIBRARY_PATH, a Python-version-matched
`triton_python_backend_stub` beside the Python backend, this interpreter's bin first on PATH
(the stub runs models with the `python3` it finds) and this interpreter's libpython first on
LD_LIBRARY_PATH (else the stub picks the system's and `import torch` fails).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import ServerError
from .processes import stop_group
from .server_output import ServerOutput

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise
# The header that unlocks the restricted APIs; its value is a fresh secret per `serve`, known only to
# the launcher (which reloads a model whose stub died through the repository API).
ADMIN_HEADER = "triton-pooling-admin"
# APIs nobody but the launcher may call: load/unload (model-repository), tracing and log settings
# (they write files and change verbosity), and shared-memory registration (it maps named regions of
# this host, the Python stubs' included, into the server).
RESTRICTED_APIS = ("model-repository", "trace", "logging", "shared-memory")
# With --model-control and an API key, the repository API (load / unload / index) is keyed to the API key in
# this header: Triton's load API takes file overrides (a model.py in the request), so it runs code.
API_KEY_HEADER = "triton-pooling-api-key"
# A graceful stop waits this long for in-flight requests and unloading models, then exits anyway.
EXIT_TIMEOUT_S = 10


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
    model_control: bool = False  # users may load/unload over the API (with api_key: keyed to it)
    response_cache_bytes: int = 0  # 0: no response cache
    log_verbose: int = 0
    extra_args: tuple[str, ...] = ()
    admin_key: str = dataclasses.field(default_factory=lambda: secrets.token_hex(16), repr=False)
    api_key: str | None = dataclasses.field(default=None, repr=False)  # keys model control (API_KEY_HEADER)

    @property
    def keyed_model_control(self) -> bool:
        return self.model_control and self.api_key is not None

    @property
    def admin_headers(self) -> dict[str, str]:
        """What the launcher sends to reach every restricted API (the repository one for its reloads)."""
        return {ADMIN_HEADER: self.admin_key, **({API_KEY_HEADER: self.api_key} if self.keyed_model_control else {})}

    @property
    def restricted_apis(self) -> tuple[str, ...]:
        """The APIs behind the launcher's secret; with --model-control the repository API is not among them."""
        return tuple(a for a in RESTRICTED_APIS if not (self.model_control and a == "model-repository"))

    def restrictions(self) -> list[tuple[tuple[str, ...], str, str]]:
        """(APIs, header, value) groups for --http-restricted-api / --grpc-restricted-protocol."""
        groups = [(self.restricted_apis, ADMIN_HEADER, self.admin_key)]
        if self.keyed_model_control:
            groups.append((("model-repository",), API_KEY_HEADER, self.api_key))
        return groups

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
                "no tritonserver found: install the triton extra (pip install 'triton-pooling-server[triton]', "
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
        # Explicit control (every model loaded at start) lets the launcher reload just a broken model;
        # the repository API stays closed to everyone else (restricted below).
        "--model-control-mode=explicit", "--load-model=*",
        # Complete configs are written by `build`: no short-lived auto-complete stub per model.
        "--disable-auto-complete-config",
        "--strict-readiness=true",
        f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
        f"--log-verbose={options.log_verbose}",
    ]
    for apis, header, value in options.restrictions():
        restricted = ",".join(apis)
        cmd += [f"--http-restricted-api={restricted}:{header}={value}",
                f"--grpc-restricted-protocol={restricted}:{header}={value}"]
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
    """A tritonserver child process: start, wait until ready (or fail with its own words), stop.

    Its output goes to `log_path` when given, else to stderr; either way its tail is kept for errors.
    """

    def __init__(self, options: ServerOptions, log_path: Path | None = None, install: TritonInstall | None = None,
                 output: ServerOutput | None = None):
        self.options = options
        self.install = install or find_triton()
        self.log_path = log_path
        self.output = output or ServerOutput(log_path)
        self.process: subprocess.Popen | None = None

    def start(self) -> "TritonProcess":
        self.process = subprocess.Popen(
            server_command(self.install, self.options), env=server_env(self.install),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.output.follow(self.process.stdout)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exited_error(self) -> ServerError:
        code = self.process.returncode if self.process else None
        return ServerError(f"tritonserver exited with code {code} before it was ready{self.output.failure_summary()}")

    def wait_ready(self, timeout: float = 300.0, should_stop=lambda: False) -> None:
        deadline = time.monotonic() + timeout
        while not should_stop():
            if not self.running():
                raise self.exited_error()
            if is_ready(self.options.http_url):
                return
            if time.monotonic() > deadline:
                raise ServerError(f"tritonserver was not ready after {timeout:.0f} s{self.output.failure_summary()}")
            time.sleep(0.25)

    def stop(self, timeout: float = EXIT_TIMEOUT_S + 5.0) -> None:
        """SIGINT (Triton's graceful stop), then SIGKILL of its whole process group after `timeout`."""
        if self.process is None:
            return
        stop_group(self.process, signal.SIGINT, timeout)
        self.output.drain()
        if self.process.stdout is not None:
            self.process.stdout.close()

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
