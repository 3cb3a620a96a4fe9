"""The images compose builds, offline: docker/Dockerfile's slim serving target (no torch) and builder target (with
torch), their pinned requirements, the build context allowlist, and the GPU image on NGC's Triton (serve, no
pytriton). The stack itself is test_compose.py; building them for real is `make compose-test`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def compose(name="docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def pins(name: str) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in (DOCKER / name).read_text().splitlines()]
    found = {}
    for line in filter(None, lines):
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][A-Za-z0-9.+\-]*", line), f"{name}: unpinned {line!r}"
        package, version = line.split("==")
        found[re.sub(r"\[.*\]", "", package).lower().replace("_", "-")] = version
    return found


def dockerfile(name="Dockerfile") -> str:
    return (DOCKER / name).read_text()


def stages(text: str) -> dict[str, str]:
    """Stage name -> its instructions."""
    parts = re.split(r"^FROM (\S+)(?: AS (\S+))?$", text, flags=re.MULTILINE)
    return {parts[i + 1]: f"FROM {parts[i]}\n{parts[i + 2]}" for i in range(1, len(parts) - 2, 3) if parts[i + 1]}


def test_cpu_images_are_a_slim_serving_target_and_a_builder_target_with_torch():
    text = dockerfile()
    assert "ARG BASE_IMAGE=debian:bookworm-slim\n" in text and "FROM ${BASE_IMAGE} AS runtime" in text
    targets = stages(text)
    assert set(targets) == {"runtime", "serving-deps", "builder-deps", "serving", "builder"}
    # the serving image: runtime + the serving pins + the packages; the builder: the same + the builder pins
    assert targets["serving-deps"].startswith("FROM runtime\n") and targets["serving"].startswith("FROM serving-deps\n")
    assert targets["builder-deps"].startswith("FROM serving-deps\n") and targets["builder"].startswith("FROM builder-deps\n")
    assert "docker/requirements-serving.txt" in targets["serving-deps"]
    assert "docker/requirements-builder.txt" in targets["builder-deps"] and "TORCH_INDEX_URL" in targets["builder-deps"]
    serving, builder = targets["serving"], targets["builder"]
    assert "torch" not in targets["serving-deps"] + serving
    assert "HEALTHCHECK" not in builder  # the one-shot builder has no server to probe
    for target in (serving, builder):  # the same four packages in both
        assert "/tmp/src/contract /tmp/src/client /tmp/src/server /tmp/src/python_backend" in target
    # the serving side runs serve (not a bare tritonserver), as non-root, with the readiness healthcheck
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", serving, re.MULTILINE)[1])
    assert cmd == compose()["services"]["triton"]["command"]
    assert "/v2/health/ready" in serving and "EXPOSE 8000 8001 8002 9000" in serving
    assert "COPY docker/build_repository.py docker/healthcheck.py docker/" in serving
    assert re.search(r"^USER 10001:10001$", serving, re.MULTILINE) and re.search(r"^USER 10001:10001$", builder,
                                                                                re.MULTILINE)
    assert json.loads(re.search(r"^CMD (\[.*\])$", builder, re.MULTILINE)[1]) == compose()["services"]["builder"]["command"]
    assert "WORKDIR /opt/triton-pooling" in text
    # a local wheel folder is offered to every install (empty in a checkout, present in the tree)
    runs = re.findall(r"^RUN (.*?)(?<!\\)$", text.replace("\\\n", " "), re.MULTILINE)
    installs = [r for r in runs if "pip install" in r]
    assert len(installs) == 4 and all(r.startswith("--mount=type=bind,source=docker/wheels,target=/wheels ")
                                      and r.count("pip install --find-links /wheels ${PIP_EXTRA_ARGS}") ==
                                      r.count("pip install") for r in installs)
    assert (DOCKER / "wheels" / ".gitignore").is_file()


def test_serving_requirements_are_lean_and_pinned_and_the_builder_adds_torch():
    serving, builder = pins("requirements-serving.txt"), pins("requirements-builder.txt")
    assert {"numpy", "tokenizers", "onnxruntime", "openvino", "tritonclient", "aiohttp", "orjson",
            "nvidia-pytriton"} <= set(serving)
    assert not {"torch", "transformers", "onnx", "onnxscript", "sentence-transformers"} & set(serving)
    assert {"torch", "transformers", "onnx", "onnxscript", "safetensors", "sentence-transformers"} <= set(builder)
    assert not set(serving) & set(builder)  # the builder adds, never re-pins
    assert serving["nvidia-pytriton"] == "0.7.0"  # Triton 2.51, the server every test runs
    # what the packages declare is in the serving image (the backend's runtimes, the gateway's server)
    def declared(package: str, key: str = "dependencies") -> set[str]:
        text = re.search(rf"^{key} = \[(.*?)\]", (ROOT / package / "pyproject.toml").read_text(), re.S | re.M)[1]
        text = "\n".join(line.split("#")[0] for line in text.splitlines())
        return {d.lower() for d in re.findall(r'"([A-Za-z0-9_\-]+)', text) if not d.startswith("triton-pooling")}

    for package in ("python_backend", "server"):
        assert declared(package) <= set(serving), package
    # and what `triton-pooling build` needs (server's build extra, the backend's torch extra) is in the builder
    build = declared("server", "build") | declared("python_backend", "torch")
    assert build <= set(serving) | set(builder)
    # the GPU image (one image for both sides) pins all of it but tritonserver, which NGC's image has
    gpu = pins("requirements-gpu.txt")
    assert declared("python_backend") | declared("server") | build <= set(gpu)


def test_build_context_is_an_allowlist():
    """The root .dockerignore: Compose's internal builder (podman) ignores a Dockerfile-specific
    docker/Dockerfile.dockerignore (measured: it sent the whole tree), so there is none, and BuildKit reads this one."""
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignore[0] == "*"  # .venv, .git, build/, model repositories and checkpoints never travel
    assert {"!contract", "!client", "!server", "!python_backend", "!docker"} <= set(ignore)
    assert not list(DOCKER.glob("*.dockerignore"))  # BuildKit would prefer it and the two could drift apart
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile() + dockerfile("Dockerfile.gpu"), re.MULTILINE))
    for source in copied:  # everything the Dockerfiles copy is let through
        assert source.split("/")[0] in {i[1:] for i in ignore if i.startswith("!")}, source


def test_gpu_image_is_ngc_triton_with_serve_and_no_pytriton():
    text = dockerfile("Dockerfile.gpu")
    assert "ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3\nFROM ${TRITON_IMAGE} AS serving" in text
    assert set(stages(text)) == {"serving", "builder"}  # the targets docker-compose.yml names
    assert json.loads(re.search(r"^CMD (\[.*\])$", stages(text)["serving"], re.MULTILINE)[1]) == \
        compose()["services"]["triton"]["command"]
    gpu = pins("requirements-gpu.txt")
    assert "nvidia-pytriton" not in gpu  # serve must find the image's own tritonserver on PATH
    assert {"torch", "onnxruntime", "openvino", "aiohttp", "sentence-transformers"} <= set(gpu)
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
