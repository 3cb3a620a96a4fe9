"""The compose stack, parsed with a real YAML parser (no Docker engine or compose plugin here), its Dockerfile,
the builder service's plan and the perf recipe."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose(name="docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def builder_module():
    spec = importlib.util.spec_from_file_location("build_repository", ROOT / "docker" / "build_repository.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_services_ports_healthcheck_and_order():
    services = compose()["services"]
    assert set(services) == {"builder", "triton", "perf"}
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
    assert tensorrt[0][2][:2] == [sys.executable, str(ROOT / "build_scripts" / "build_tensorrt.py")]


def test_builder_refuses_an_empty_environment():
    done = subprocess.run([sys.executable, str(ROOT / "docker" / "build_repository.py"), "--dry-run"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "set at least one of MODEL_EMBED" in done.stderr
