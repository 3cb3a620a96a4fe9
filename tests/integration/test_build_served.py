"""`triton-pooling build` on checkpoints of each family → ONE real tritonserver → parity with transformers, served
by lean stubs (numpy + tokenizers + the inference runtime: no torch mapped) with the instances the build planned.

BERT (token_classify by default), RoBERTa (vLLM's `classify` alias), DistilBERT (embed), Qwen2 sequence
reward (LAST pooling), Qwen2 PRM (STEP pooling, returned_token_ids reordered), and a sentence-transformers folder
whose Pooling module says CLS and that has no Normalize module (copied into the repository); plus the TensorRT
layout of a BERT embedder (python -m triton_pooling_server.builder.tensorrt) with its encoder on the CPU stand-in, which runs the
exported ONNX graph in ONNX Runtime: the ensemble tokenize → encoder → head on the same server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from triton_pooling_server.cli import main
from triton_pooling_contract.tasks import Tensor

from support import reference as ref
from support.raw import PROTOCOLS, infer
from support.triton import running_triton

pytestmark = pytest.mark.integration
TOL = 1e-5
ONNX_TOL = 1e-4
ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Hello world.", "Short", "Paris is the capital of France, and it sits on the Seine river."]
STEP_TEXTS = ["Step 1: 2 + 2 = 4. <extra_0> Step 2: 4 * 3 = 12. <extra_0>", "The answer is 7 <extra_0>"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, checkpoints, minilm_path):
    """Checkpoint paths by model name, all built with the CLI into one repository and served."""
    from support.checkpoints import make_checkpoint, step_tag_id

    root = tmp_path_factory.mktemp("build_served")
    roberta = make_checkpoint("roberta-seq-2", root / "roberta", seed=11)
    distilbert = make_checkpoint("distilbert-embed", root / "distilbert", seed=12)
    st_folder = _cls_sentence_transformers_copy(minilm_path, root / "st_cls")
    prm = checkpoints["qwen2-prm"]
    builds = {
        "bert_ner": [checkpoints["bert-token-5"]],
        "roberta_classify": [roberta, "--task", "classify"],
        "distilbert_embed": [distilbert],
        "qwen2_reward": [checkpoints["qwen2-seq-reward"]],
        "qwen2_prm": [prm, "--step-tag-id", step_tag_id(prm), "--returned-token-ids", "1,0"],
        "st_cls": [st_folder, "--copy-checkpoint"],
        "bert_ner_openvino": [checkpoints["bert-token-5"], "--runtime", "openvino", "--instances", "2"],
    }
    repo = root / "repository"
    for name, args in builds.items():
        assert main(["build", *map(str, args), "--repository", str(repo), "--name", name]) == 0, name
    subprocess.run([sys.executable, "-m", "triton_pooling_server.builder.tensorrt", str(checkpoints["bert-embed"]),
                    "--repository", str(repo), "--name", "bert_ensemble", "--encoder-platform", "python-onnxruntime",
                    "--matryoshka-dimensions", "all"],
                   check=True, capture_output=True)
    builds["bert_ensemble"] = [checkpoints["bert-embed"]]
    with running_triton(repo, root / "tritonserver.log") as server:
        yield server, {name: args[0] for name, args in builds.items()}


def _cls_sentence_transformers_copy(minilm, target):
    shutil.copytree(minilm, target)
    pooling = json.loads((target / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules = [m for m in json.loads((target / "modules.json").read_text()) if not m["type"].endswith("Normalize")]
    (target / "modules.json").write_text(json.dumps(modules))
    return target


def assert_close(actual, expected):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.max(np.abs(actual - expected), initial=0.0) <= TOL, np.max(np.abs(actual - expected))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", ["bert_ner", "bert_ner_openvino"])
def test_bert_token_classifier(built, protocol, model):
    server, paths = built
    out = infer(protocol, server, model, TEXTS)
    for i, text in enumerate(TEXTS):
        logits, _ = ref.token_logits(paths[model], text)
        n = out[Tensor.NUM_TOKENS][i, 0]
        assert n == len(logits)
        assert_close(out[Tensor.TOKEN_SCORES][i, :n], ref.softmax(logits))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model, activation", [("roberta_classify", ref.softmax), ("qwen2_reward", ref.sigmoid)])
def test_sequence_classifiers(built, protocol, model, activation):
    server, paths = built
    out = infer(protocol, server, model, TEXTS)[Tensor.SCORES]
    for i, text in enumerate(TEXTS):
        assert_close(out[i], activation(ref.sequence_logits(paths[model], text)))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_distilbert_embedder(built, protocol):
    server, paths = built
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(paths["distilbert_embed"]))
    model = transformers.AutoModel.from_pretrained(str(paths["distilbert_embed"])).eval()
    out = infer(protocol, server, "distilbert_embed", TEXTS)[Tensor.EMBEDDING]
    for i, text in enumerate(TEXTS):
        ids = tokenizer(text, return_tensors="pt", return_token_type_ids=False)  # DistilBERT takes no types
        with torch.inference_mode():
            vector = model(**ids).last_hidden_state[0].mean(0)
        assert_close(out[i], torch.nn.functional.normalize(vector, dim=-1).numpy())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_process_reward_model_returns_the_chosen_label_at_steps(built, protocol):
    from support.checkpoints import step_tag_id

    server, paths = built
    tag = step_tag_id(paths["qwen2_prm"])
    out = infer(protocol, server, "qwen2_prm", STEP_TEXTS)
    for i, text in enumerate(STEP_TEXTS):
        logits, ids = ref.token_logits(paths["qwen2_prm"], text)
        n = out[Tensor.NUM_TOKENS][i, 0]
        assert n == text.count("<extra_0>")
        # vLLM picks the label columns first, then activates over the picked ones.
        assert_close(out[Tensor.TOKEN_SCORES][i, :n], ref.softmax(logits[ids == tag][:, [1, 0]]))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sentence_transformers_folder_serves_its_own_pooling(built, protocol):
    from sentence_transformers import SentenceTransformer

    server, paths = built
    expected = SentenceTransformer(str(paths["st_cls"]), device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert abs(np.linalg.norm(expected[0]) - 1.0) > 0.1  # CLS without Normalize: really not unit length
    assert_close(infer(protocol, server, "st_cls", TEXTS)[Tensor.EMBEDDING], expected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tensorrt_layout_ensemble_matches_transformers(built, protocol):
    server, paths = built
    out = infer(protocol, server, "bert_ensemble", TEXTS)
    for i, text in enumerate(TEXTS):
        assert_close(out[Tensor.EMBEDDING][i], ref.embedding(paths["bert_ensemble"], text))
        assert out[Tensor.NUM_TOKENS][i, 0] == ref.encode(paths["bert_ensemble"], text)["input_ids"].shape[1]
    raw = infer(protocol, server, "bert_ensemble", TEXTS, DIMENSIONS=8, USE_ACTIVATION=False)[Tensor.EMBEDDING]
    for i, text in enumerate(TEXTS):
        assert_close(raw[i], ref.embedding(paths["bert_ensemble"], text, normalize=False, dimensions=8))


def test_project_client_sees_the_ensemble_as_one_embed_model_and_not_its_steps(built):
    from triton_pooling import PoolingClient

    server, paths = built
    with PoolingClient(server.options.grpc_url) as client:
        models = client.models()
        assert models["bert_ensemble"].task.value == "embed"
        assert not any(name.startswith("bert_ensemble_") for name in models)
        out = client.embed(TEXTS[:1], model="bert_ensemble")[0].outputs.data
    assert_close(out, ref.embedding(paths["bert_ensemble"], TEXTS[0]))


def test_exported_onnx_matches_transformers_on_a_mixed_length_batch(built):
    import onnxruntime as ort

    server, paths = built
    graph = server.options.model_repository / "bert_ensemble_encoder" / "1" / "model.onnx"
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    assert all(isinstance(d, str) for i in session.get_inputs() for d in i.shape)  # batch and sequence are dynamic
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(paths["bert_ensemble"]))
    batch = tokenizer(TEXTS, padding=True, return_tensors="np")
    assert len(set(batch["attention_mask"].sum(1))) == len(TEXTS)  # every row padded differently
    actual = session.run(None, {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()})[0]
    model = transformers.AutoModel.from_pretrained(str(paths["bert_ensemble"])).eval()
    with torch.inference_mode():
        expected = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    real = batch["attention_mask"].astype(bool)
    assert np.abs(actual[real] - expected[real]).max() <= ONNX_TOL


def test_served_instances_are_what_the_build_planned_and_stubs_hold_no_torch(built):
    """One core budget for the whole repository: 8 CPU models on this host's cores, one instance each unless
    pinned; every lean stub maps the inference runtime and tokenizers, and no libtorch."""
    from triton_pooling_server.builder.tuning import Host, TuningFlags, plan_repository
    from triton_pooling_server.launch.stubs import stubs

    server, paths = built
    repo = server.options.model_repository
    lean = [name for name in paths if name != "bert_ensemble"]
    flags = {name: TuningFlags() for name in lean}
    flags["bert_ner_openvino"] = TuningFlags(instances=2)
    plans = plan_repository(Host.detect(), flags)
    running: dict[str, list[int]] = {}
    for stub in stubs(server.process.pid):
        running.setdefault(stub.model, []).append(stub.pid)
    for name in lean:
        config = (repo / name / "config.pbtxt").read_text()
        assert f"instance_group [ {{ count: {plans[name].instances} kind: KIND_CPU }} ]" in config, name
        assert len(running[name]) == plans[name].instances, name
        for pid in running[name]:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "libtorch" not in maps, f"{name} stub {pid} maps libtorch"
            runtime = "libopenvino.so" if name.endswith("openvino") else "onnxruntime_pybind11_state"
            assert runtime in maps and "tokenizers" in maps, name
    assert running["bert_ner_openvino"] and len(running["bert_ner_openvino"]) == 2
