"""deploy/kubernetes, offline (2 of 2: what the pod serves): the model repository built the way compose builds it,
the builder sizing the models for the triton container's CPU limit (TUNING_ARGS --cpus: `triton-pooling build` is the
one owner of config.pbtxt), the triton container running `triton-pooling serve` (its restricted admin APIs, read from
serve's own parser and command line), the gateway's API key from an optional Secret, the NetworkPolicy, Services,
autoscaler, disruption budget, rollout and the GPU request. Rendered with kubectl's own kustomize; nothing applied.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shlex

import pytest
import yaml

from support.serve_cli import serve_flags
from unit.kubernetes_render import (
    FILES, GPU_QUEUE_TIME, K8S, OVERLAYS, ROOT, TARGETS, all_containers, config_map, container, one, pod_spec,
    port_number, quantity, render,
)

pytestmark = pytest.mark.slow  # runs kubectl kustomize in subprocesses


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
