"""The lean serving runtime: a graph built once (dynamo export, parity-checked against transformers on
mixed-length batches, cached by content) served by ONNX Runtime or OpenVINO with numpy pooling and heads, for
all four tasks; torch only on request; refusals that name their cause."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.definition_reader import read_definition
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.parameters import DefinitionError, Runtime

pytestmark = pytest.mark.slow  # exports graphs (torch's dynamo exporter) unless the artifact cache holds them

# Mixed lengths on purpose: the exported graph must not bake in one padding.
TEXTS = ["hi", "a considerably longer text with many more words than the others have", "mid length one", "x " * 60]
STEP_TEXTS = ["Step 1: 2 + 2 = 4. <extra_0> Step 2: 4 * 3 = 12. <extra_0>", "The answer <extra_0>", "no tags"]
OUTPUT = {"embed": "EMBEDDING", "token_embed": "TOKEN_EMBEDDINGS", "seq_classify": "SCORES",
          "token_classify": "TOKEN_SCORES"}
# (checkpoint kind, task, extra parameters): every task, encoders and decoders, the checkpoint's own head and ours.
CASES = [
    ("bert-embed", "embed", {}),
    ("bert-embed", "embed", {"pooling_type": "CLS"}),
    ("bert-embed", "token_embed", {}),
    ("bert-seq-3", "seq_classify", {}),
    ("qwen2-seq-reward", "seq_classify", {}),
    ("bert-token-5", "token_classify", {}),
    ("qwen2-prm", "token_classify", {"pooling_type": "STEP", "step_tag_id": "257", "returned_token_ids": "1,0"}),
]


def _settings(checkpoint: Path, task: str = "embed", **params: str) -> ModelDefinition:
    raw = {"pooling_task": task, "checkpoint": str(checkpoint), **params}  # as config.pbtxt spells them
    return ModelDefinition.from_parameters(raw, max_batch_size=8).located()


def _service(definition: ModelDefinition):
    from triton_pooling_server.builder.artifact import load_service

    return load_service(definition)


def _rows(service, texts: list[str], name: str) -> list[np.ndarray]:
    answer = service.handle([{"TEXT": np.array([[t.encode()] for t in texts], dtype=object)}])[0]
    rows, counts = answer[name], answer["NUM_TOKENS"][:, 0]
    return [rows[i, : counts[i]] if rows.ndim == 3 else rows[i] for i in range(len(texts))]


def test_runtime_parameter_parses_and_names_allowed_values(checkpoints):
    assert _settings(checkpoints["bert-embed"], runtime="OpenVINO").runtime is Runtime.OPENVINO
    assert _settings(checkpoints["bert-embed"]).runtime is None
    with pytest.raises(DefinitionError, match=r"parameter 'runtime' is 'fast'; allowed: torch, onnx, openvino, onnx_int8"):
        _settings(checkpoints["bert-embed"], runtime="fast")


# OpenVINO runs the same graphs: one case per graph output keeps the suite's cold-cache exports few.
RUNTIME_CASES = [("onnx", case) for case in CASES] + [("openvino", CASES[i]) for i in (0, 3, 6)]


@pytest.mark.parametrize("runtime,case", RUNTIME_CASES,
                         ids=[f"{r}-{k}-{t}-{'-'.join(p) or 'default'}" for r, (k, t, p) in RUNTIME_CASES])
def test_lean_runtimes_match_torch_on_mixed_lengths(checkpoints, runtime, case):
    kind, task, params = case
    path = checkpoints[kind]
    lean = _service(_settings(path, task, runtime=runtime, **params))
    reference = _service(_settings(path, task, runtime="torch", **params))
    assert (lean.runtime, reference.runtime) == (Runtime(runtime), Runtime.TORCH)
    texts = STEP_TEXTS if params.get("pooling_type") == "STEP" else TEXTS
    for a, b in zip(_rows(lean, texts, OUTPUT[task]), _rows(reference, texts, OUTPUT[task])):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b), initial=0.0) <= 1e-5


def test_a_lean_stub_imports_no_torch(checkpoints, tmp_path):
    """What a stub process holds: load a built model and answer, then list the heavy modules it imported."""
    from triton_pooling_server.builder.artifact import ArtifactRequest, cached_artifact

    definition = _settings(checkpoints["qwen2-prm"], "token_classify", runtime="onnx")
    entry, _ = cached_artifact(ArtifactRequest.from_definition(definition, Runtime.ONNX))
    script = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from triton_pooling_backend.loading import Instance\n"
        "from triton_pooling_backend.service import PoolingService\n"
        "from triton_pooling_contract.definition import ModelDefinition\n"
        f"raw = {{'pooling_task': 'token_classify', 'checkpoint': {str(checkpoints['qwen2-prm'])!r}, 'runtime': 'onnx'}}\n"
        f"service = PoolingService.load(ModelDefinition.from_parameters(raw, max_batch_size=8).located(), Instance(Path({str(entry)!r})))\n"
        "service.handle([{'TEXT': np.array([[b'hello world']], dtype=object)}])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'onnxscript', 'onnx', 'safetensors'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_artifact_is_cached_by_content(checkpoints, tmp_path):
    from triton_pooling_server.builder.artifact import ArtifactRequest, ensure_artifact

    definition = _settings(checkpoints["bert-embed"], runtime="onnx")
    request = ArtifactRequest.from_definition(definition, Runtime.ONNX)
    version = tmp_path / "model" / "1"
    description, status = ensure_artifact(version, request, log=lambda m: None)
    assert status in ("built", "from cache") and (version / "encoder.onnx").is_file()
    assert description.task == "embed" and description.graph_inputs[:2] == ("input_ids", "attention_mask")
    assert description.parity_max_abs <= 1e-5 and description.versions["onnxruntime"]
    stamp = (version / "encoder.onnx").stat().st_mtime_ns
    assert ensure_artifact(version, request, log=lambda m: None)[1] == "unchanged"
    assert (version / "encoder.onnx").stat().st_mtime_ns == stamp
    # The same checkpoint as token_embed shares the graph; another task or pooling is another model key.
    token = ArtifactRequest.from_definition(_settings(checkpoints["bert-embed"], "token_embed"), Runtime.ONNX)
    assert token.graph_key == request.graph_key and token.key != request.key


def test_library_versions_and_weights_are_in_the_key(checkpoints, tmp_path, monkeypatch):
    import shutil

    from triton_pooling_server.builder.artifact import ArtifactRequest, request as request_module

    base = ArtifactRequest.from_definition(_settings(checkpoints["bert-embed"]), Runtime.ONNX).graph_key
    real = request_module._version
    monkeypatch.setattr(request_module, "_version", lambda name: "9.9" if name == "torch" else real(name))
    assert ArtifactRequest.from_definition(_settings(checkpoints["bert-embed"]), Runtime.ONNX).graph_key != base
    monkeypatch.undo()
    copy = shutil.copytree(checkpoints["bert-embed"], tmp_path / "copy")
    assert ArtifactRequest.from_definition(_settings(copy), Runtime.ONNX).graph_key == base  # content, not path
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert ArtifactRequest.from_definition(_settings(copy), Runtime.ONNX).graph_key != base


def test_a_failed_export_is_a_build_error_naming_its_cause(checkpoints, tmp_path, monkeypatch, capsys):
    import torch

    from triton_pooling_server.cli import main

    def refuse(*args, **kwargs):
        raise RuntimeError("aten::frobnicate has no ONNX symbolic")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    monkeypatch.setenv("TRITON_POOLING_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "repository"
    assert main(["build", str(checkpoints["bert-seq-3"]), "--repository", str(repo), "--name", "m"]) == 2
    message = capsys.readouterr().err
    assert f"ONNX export (torch dynamo exporter) of {checkpoints['bert-seq-3']} for seq_classify (sequence_logits) " \
           "failed: RuntimeError: aten::frobnicate has no ONNX symbolic; serve it with --runtime torch" in message
    assert not (repo / "m").exists(), "no silent fallback: a failed export writes no model"


def test_a_graph_that_differs_from_transformers_is_refused(checkpoints, tmp_path, monkeypatch):
    from triton_pooling_server.builder.artifact import ArtifactError, ArtifactRequest, build, cached_artifact

    monkeypatch.setattr(build, "parity_error", lambda *a: 3.5e-3)
    request = ArtifactRequest.from_definition(_settings(checkpoints["bert-token-5"], "token_classify"), Runtime.ONNX)
    with pytest.raises(ArtifactError, match=r"differs from transformers by 3.50e-03 \(relative max-abs > 1e-05\) on "
                                            r"mixed-length batches; serve it with --runtime torch"):
        cached_artifact(request, tmp_path / "cache", log=lambda m: None)


def test_a_lean_model_without_its_artifact_says_how_to_build_it(checkpoints, tmp_path):
    from triton_pooling_backend.loading import Instance, load_model

    definition = _settings(checkpoints["bert-embed"])
    with pytest.raises(ModelConfigError, match=r"holds no built model \(serving.json\).*triton-pooling build"):
        load_model(definition, Instance(tmp_path / "1"))


def test_a_built_model_refuses_a_config_that_now_names_another_checkpoint(checkpoints, tmp_path):
    """Editing `checkpoint` in config.pbtxt by hand must not serve the old graph silently."""
    from triton_pooling_server.builder.artifact import ArtifactRequest, ensure_artifact
    from triton_pooling_backend.loading import Instance, load_model

    definition = _settings(checkpoints["bert-token-5"], "token_classify", runtime="onnx")
    version = tmp_path / "model" / "1"
    ensure_artifact(version, ArtifactRequest.from_definition(definition, Runtime.ONNX), log=lambda m: None)
    assert load_model(definition, Instance(version)).encoder.runtime is Runtime.ONNX
    other = _settings(checkpoints["qwen2-prm"], "token_classify", runtime="onnx")
    with pytest.raises(ModelConfigError, match=r"was made for checkpoint .*bert-token-5.*\(config says .*qwen2-prm.*rebuild"):
        load_model(other, Instance(version))


def test_threads_split_the_cpus_among_instances(checkpoints, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    # the model config in the JSON form Triton hands a stub: instance_group is Triton's, not a parameter
    raw = {"pooling_task": {"string_value": "embed"}, "checkpoint": {"string_value": str(checkpoints["bert-embed"])}}
    two = read_definition({"parameters": raw, "instance_group": [{"count": 2, "kind": "KIND_CPU"}]},
                          checkpoints["bert-embed"])
    assert (two.instance_count, two.threads) == (2, 2)
    assert read_definition({"parameters": raw}, checkpoints["bert-embed"]).threads == 4
    pinned = {**raw, "intra_op_threads": {"string_value": "3"}}
    assert read_definition({"parameters": pinned, "instance_group": [{"count": 2}]},
                           checkpoints["bert-embed"]).threads == 3
    gpus = read_definition({"parameters": raw, "instance_group": [{"count": 2, "gpus": [0, 1]}]},
                           checkpoints["bert-embed"])
    assert gpus.instance_count == 4  # count is per listed GPU


def test_int8_is_opt_in_lossy_and_close(checkpoints):
    path = checkpoints["bert-embed"]
    reference = _service(_settings(path, runtime="torch"))
    int8 = _service(_settings(path, runtime="onnx_int8"))
    assert int8.runtime is Runtime.ONNX_INT8 and _settings(path).runtime is None
    errors, cosines = [], []
    for a, b in zip(_rows(int8, TEXTS, "EMBEDDING"), _rows(reference, TEXTS, "EMBEDDING")):
        errors.append(float(np.max(np.abs(a - b))))
        cosines.append(float(a @ b))
    assert max(errors) > 1e-5, "int8 weights must actually change the outputs"
    assert min(cosines) > 0.95
