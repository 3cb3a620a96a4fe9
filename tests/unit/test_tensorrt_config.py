"""The TensorRT layout's generated configs (parsed with Triton's own ModelConfig protobuf), its optimization
profile, and the engine build's refusal on a host without a GPU (this one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from triton_pooling_server.builder import BuildError, BuildRequest, inspect_checkpoint, resolve
from triton_pooling_server.builder.tensorrt.layout import optimization_profile, tensorrt_files

from unit.build_helpers import fake_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def layout(tmp_path, archs=("BertModel",), platform="tensorrt_plan", ckpt_kw=None, **request):
    path = fake_checkpoint(tmp_path / "ckpt", archs, **(ckpt_kw or {}))
    config = path / "config.json"
    config.write_text(config.read_text()[:-1] + ', "hidden_size": 48, "type_vocab_size": 2, "max_position_embeddings": 128}')
    model = resolve(BuildRequest(checkpoint=path, runtime="tensorrt", **request), inspect_checkpoint(path))
    files = tensorrt_files(model, platform)
    return {rel.split("/")[0]: text_format.Parse(text, model_config_pb2.ModelConfig())
            for rel, text in files.items() if rel.endswith("config.pbtxt")}, files


def test_profile_min_opt_max():
    p = optimization_profile(64, 512)
    assert (p.min, p.opt, p.max) == ((1, 1), (16, 128), (64, 512))
    assert optimization_profile(8, 64, opt_batch=8, opt_tokens=64).opt == (8, 64)
    assert optimization_profile(1, 32).opt == (1, 32)  # opt never above max
    with pytest.raises(BuildError, match=r"opt shape \(9, 10\) is outside min \(1, 1\) .. max \(8, 64\)"):
        optimization_profile(8, 64, opt_batch=9, opt_tokens=10)


def test_embed_ensemble_wires_tokenize_encoder_head(tmp_path):
    configs, files = layout(tmp_path, name="bge")
    assert set(configs) == {"bge", "bge_tokenize", "bge_encoder", "bge_head"}
    ensemble = configs["bge"]
    assert ensemble.platform == "ensemble" and ensemble.max_batch_size == 64
    assert ensemble.parameters["pooling_task"].string_value == "embed"
    assert [o.name for o in ensemble.output] == ["EMBEDDING", "NUM_TOKENS"]
    assert all(i.optional for i in ensemble.input)
    steps = ensemble.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["bge_tokenize", "bge_encoder", "bge_head"]
    assert dict(steps[0].output_map) == {n: f"_{n}" for n in ("input_ids", "attention_mask", "token_type_ids")}
    assert dict(steps[1].input_map) == dict(steps[0].output_map)
    assert dict(steps[2].input_map)["last_hidden_state"] == dict(steps[1].output_map)["last_hidden_state"]
    encoder = configs["bge_encoder"]
    assert (encoder.platform, encoder.default_model_filename) == ("tensorrt_plan", "model.plan")
    assert encoder.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert [(i.name, i.data_type, list(i.dims)) for i in encoder.input] == [
        (n, model_config_pb2.TYPE_INT64, [-1]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    assert [(o.name, list(o.dims)) for o in encoder.output] == [("last_hidden_state", [-1, 48])]
    assert list(configs["bge_head"].input[0].dims) == [-1, 48]
    for step in ("bge_tokenize", "bge_head"):  # only the ensemble looks like a pooling model to clients
        assert configs[step].backend == "python" and "pooling_task" not in configs[step].parameters
        assert configs[step].parameters["ensemble_step_of_task"].string_value == "embed"
    assert "triton_pooling_backend.ensemble.head_step import HeadStep" in files["bge_head/1/model.py"]
    assert "bge/1/.keep" in files  # Triton needs the ensemble's version folder


def test_classifier_layouts_carry_logits_of_the_label_count(tmp_path):
    configs, _ = layout(tmp_path, ("BertForSequenceClassification",), ckpt_kw=dict(num_labels=3), name="ce")
    assert [(o.name, list(o.dims)) for o in configs["ce_encoder"].output] == [("logits", [3])]
    assert [o.name for o in configs["ce"].output] == ["SCORES", "NUM_TOKENS"]
    configs, _ = layout(tmp_path / "b", ("Qwen2ForTokenClassification",), ckpt_kw=dict(num_labels=2), name="prm",
                        step_tag_id=9, returned_token_ids=(1, 0))
    assert [(o.name, list(o.dims)) for o in configs["prm_encoder"].output] == [("logits", [-1, 2])]
    assert configs["prm_head"].parameters["step_tag_id"].string_value == "9"
    assert [o.name for o in configs["prm"].output] == ["TOKEN_SCORES", "NUM_TOKENS"]


def test_cpu_stand_in_encoder_is_a_python_model(tmp_path):
    configs, files = layout(tmp_path, platform="python-onnxruntime", name="e")
    assert configs["e_encoder"].backend == "python" and not configs["e_encoder"].platform
    assert "OnnxEncoderStep" in files["e_encoder/1/model.py"]


def test_copied_checkpoint_is_reached_from_the_step_folders(tmp_path):
    configs, _ = layout(tmp_path, name="e", copy_checkpoint=True)
    assert configs["e"].parameters["checkpoint"].string_value == "checkpoint"
    assert configs["e_tokenize"].parameters["checkpoint"].string_value == "../e/checkpoint"


def test_tensorrt_refuses_a_pooling_the_engine_does_not_compute(tmp_path):
    with pytest.raises(BuildError, match=r"seq_classify with the checkpoint's own head pooling \(LAST\)"):
        layout(tmp_path, ("Qwen2ForSequenceClassification",), pooling_type="MEAN")


def test_engine_build_refuses_clearly_without_a_gpu(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not used: the GPU check comes first")
    done = subprocess.run([sys.executable, "-m", "triton_pooling_server.builder.tensorrt.build_engine", str(onnx),
                           "--plan", str(tmp_path / "model.plan"), "--max-batch-size", "8", "--max-tokens", "128"],
                          capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert "cannot build a TensorRT engine: no NVIDIA driver on this host (libcuda.so.1 cannot be loaded)" in done.stderr
    assert not (tmp_path / "model.plan").exists()


def test_tensorrt_pins_the_token_limit_the_profile_will_cover(tmp_path):
    path = fake_checkpoint(tmp_path / "ckpt")
    (path / "tokenizer_config.json").write_text('{"model_max_length": 256}')
    config = path / "config.json"
    config.write_text(config.read_text()[:-1] + ', "hidden_size": 8, "max_position_embeddings": 512}')
    model = resolve(BuildRequest(checkpoint=path, runtime="tensorrt"), inspect_checkpoint(path))
    assert model.definition.to_parameters()["max_tokens"] == "256"
    assert "max_tokens" not in resolve(BuildRequest(checkpoint=path), inspect_checkpoint(path)).definition.to_parameters()
