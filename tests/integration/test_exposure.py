"""Exposure defaults on the real server: `serve` listens on loopback only, model control (load/unload
over the API) is off unless asked for and, with an API key, needs that key; a checkpoint needing remote
code or pickled weights refuses to load with a clear message — and runs none of that code."""

from __future__ import annotations

import json
import shutil

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_server.builder.config_text import ModelSpec
from triton_pooling_contract.tasks import PoolingTask

from support.processes import listening_sockets
from support.serve_cli import ServeCommand
from support.triton import running_triton, write_model

pytestmark = pytest.mark.integration

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


@pytest.fixture(scope="module")
def default_serve(tmp_path_factory):
    """`triton-pooling serve` with no options but ports, on an empty repository (starts in seconds)."""
    repo = tmp_path_factory.mktemp("empty_repository")
    command = ServeCommand(repo, repo.parent / "exposure-serve.log").start()
    try:
        command.wait_ready()
        yield command
    finally:
        command.stop()


def test_serve_listens_on_loopback_only_by_default(default_serve):
    listeners = listening_sockets(default_serve.tritonserver_pid())
    assert {l.port for l in listeners} == {default_serve.http_port, default_serve.grpc_port, default_serve.metrics_port}
    assert {l.address for l in listeners} <= LOOPBACK, listeners
    assert listening_sockets(default_serve.process.pid) == [], "the launcher itself must not listen"


def test_model_control_is_off_by_default(default_serve):
    """Load/unload, trace and log settings and shared-memory registration are restricted to a header
    only the launcher knows, over HTTP and gRPC."""
    http = httpclient.InferenceServerClient(default_serve.http_url)
    grpc = grpcclient.InferenceServerClient(default_serve.grpc_url)
    try:
        for call in (lambda: http.load_model("anything"), lambda: http.unload_model("anything"),
                     lambda: grpc.load_model("anything"), lambda: grpc.unload_model("anything"),
                     lambda: http.get_model_repository_index(), lambda: grpc.get_model_repository_index(),
                     lambda: http.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"]}),
                     lambda: grpc.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"]}),
                     lambda: http.update_log_settings({"log_verbose_level": 1}),
                     lambda: grpc.update_log_settings({"log_verbose_level": 1}),
                     lambda: http.register_system_shared_memory("x", "/triton_python_backend_shm_region", 8),
                     lambda: grpc.register_system_shared_memory("x", "/triton_python_backend_shm_region", 8)):
            with pytest.raises(InferenceServerException) as excinfo:
                call()
            assert "restricted" in str(excinfo.value), str(excinfo.value)
    finally:
        http.close()
        grpc.close()


@pytest.fixture(scope="module")
def control_server(tmp_path_factory):
    """A server with model control on (so a refused load is an answer, not a failed startup)."""
    repo = tmp_path_factory.mktemp("unsafe_repository")
    with running_triton(repo, repo.parent / "unsafe-tritonserver.log", model_control=True) as server:
        yield server


def _load_error(server, spec: ModelSpec) -> str:
    write_model(server.options.model_repository, spec)
    http = httpclient.InferenceServerClient(server.options.http_url, network_timeout=300)
    try:
        with pytest.raises(InferenceServerException) as excinfo:
            http.load_model(spec.name)
    finally:
        http.close()  # an open connection would hold the server's shutdown for 30 s
    return str(excinfo.value)


def test_pickled_weights_refuse_to_load_unless_allowed(control_server, checkpoints, tmp_path):
    import safetensors.torch
    import torch

    pickled = tmp_path / "pickled"
    shutil.copytree(checkpoints["bert-seq-3"], pickled)
    weights = pickled / "model.safetensors"
    torch.save(safetensors.torch.load_file(weights), pickled / "pytorch_model.bin")  # transformers 5 writes no .bin
    weights.unlink()
    assert (pickled / "pytorch_model.bin").is_file() and not list(pickled.glob("*.safetensors"))
    message = _load_error(control_server, ModelSpec("pickled", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(pickled))))
    assert "has no *.safetensors weights" in message and "allow_unsafe_weights" in message, message


def test_remote_code_is_not_run_unless_trusted(control_server, checkpoints, tmp_path):
    remote = tmp_path / "remote_code"
    shutil.copytree(checkpoints["bert-seq-3"], remote)
    marker = tmp_path / "remote-code-ran"
    config = json.loads((remote / "config.json").read_text())
    config.update(model_type="evil_bert", architectures=["EvilForSequenceClassification"], auto_map={
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForSequenceClassification": "modeling_evil.EvilForSequenceClassification"})
    (remote / "config.json").write_text(json.dumps(config))
    payload = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    (remote / "configuration_evil.py").write_text(payload)
    (remote / "modeling_evil.py").write_text(payload)
    message = _load_error(control_server, ModelSpec("remote_code", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(remote))))
    assert "trust_remote_code" in message, message
    assert not marker.exists(), "the checkpoint's own code ran without trust_remote_code"


def test_model_control_with_an_api_key_needs_the_key_and_opens_nothing_else(tmp_path):
    """Two restriction groups on one server: the repository API keyed to the user's key, the rest to the
    launcher's secret (which the key does not open)."""
    from triton_pooling_server.launch.triton import API_KEY_HEADER

    with running_triton(tmp_path, tmp_path / "keyed.log", model_control=True, api_key="user-key") as server:
        http = httpclient.InferenceServerClient(server.options.http_url)
        grpc = grpcclient.InferenceServerClient(server.options.grpc_url)
        key = {API_KEY_HEADER: "user-key"}
        try:
            for call in (lambda h: http.load_model("absent", headers=h), lambda h: grpc.load_model("absent", headers=h),
                         lambda h: http.get_model_repository_index(headers=h)):
                with pytest.raises(InferenceServerException, match="restricted"):
                    call({})
                with pytest.raises(InferenceServerException, match="restricted"):
                    call({API_KEY_HEADER: "wrong"})
            assert http.get_model_repository_index(headers=key) == []
            # Triton 2.51 looks for a gRPC restriction header under its own prefix.
            grpc_key = {f"triton-grpc-protocol-{API_KEY_HEADER}": "user-key"}
            assert grpc.get_model_repository_index(headers=grpc_key, as_json=True) == {}
            with pytest.raises(InferenceServerException) as absent:
                http.load_model("absent", headers=key)
            assert "restricted" not in str(absent.value), str(absent.value)  # let through: the model is missing
            with pytest.raises(InferenceServerException, match="restricted"):
                http.update_log_settings({"log_verbose_level": 1}, headers=key)
        finally:
            http.close()
            grpc.close()
