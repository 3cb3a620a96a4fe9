"""Served outputs equal Hugging Face transformers (fp32, ≤ 1e-5), over HTTP and gRPC, per task."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling_contract.tasks import Tensor

from support import reference as ref
from support.raw import PROTOCOLS, infer

pytestmark = pytest.mark.integration
TOL = 1e-5

# Mixed lengths on purpose: one request pads them to the longest.
TEXTS = [
    "Hello world.",
    "Triton serves pooling models: embedders, cross-encoders, reward models and NER taggers, batched.",
    "Short",
    "What is the capital of France? Paris is the capital of France, and it sits on the Seine.",
]
STEP_TEXTS = [
    "Step 1: 2 + 2 = 4. <extra_0> Step 2: 4 * 3 = 12. <extra_0>",
    "The answer is 7 <extra_0>",
    "No step tags here at all",
]


def assert_close(actual, expected, tol=TOL):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.max(np.abs(actual - expected), initial=0.0) <= tol, np.max(np.abs(actual - expected))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_embed_matches_transformers(triton_server, minilm_path, protocol):
    out = infer(protocol, triton_server, "embed", TEXTS)
    assert out[Tensor.EMBEDDING].shape == (len(TEXTS), 384)
    for i, text in enumerate(TEXTS):
        assert_close(out[Tensor.EMBEDDING][i], ref.embedding(minilm_path, text))
        assert out[Tensor.NUM_TOKENS][i, 0] == ref.encode(minilm_path, text)["input_ids"].shape[1]


def test_embed_matches_sentence_transformers(triton_server, minilm_path):
    from sentence_transformers import SentenceTransformer

    expected = SentenceTransformer(str(minilm_path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert_close(infer("grpc", triton_server, "embed", TEXTS)[Tensor.EMBEDDING], expected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cls_pooled_embed_matches_transformers(triton_server, checkpoints, protocol):
    out = infer(protocol, triton_server, "bert_cls_embed", TEXTS)[Tensor.EMBEDDING]
    for i, text in enumerate(TEXTS):
        assert_close(out[i], ref.embedding(checkpoints["bert-embed"], text, pooling="CLS"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_token_embed_matches_transformers(triton_server, minilm_path, protocol):
    out = infer(protocol, triton_server, "token_embed", TEXTS)
    rows, counts = out[Tensor.TOKEN_EMBEDDINGS], out[Tensor.NUM_TOKENS][:, 0]
    assert rows.shape[:2] == (len(TEXTS), counts.max())
    for i, text in enumerate(TEXTS):
        assert_close(rows[i, : counts[i]], ref.token_embeddings(minilm_path, text))
        assert not rows[i, counts[i]:].any(), "padding rows must be zero"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bert_classifier_softmax_matches_transformers(triton_server, checkpoints, protocol):
    out = infer(protocol, triton_server, "bert_classifier", TEXTS)[Tensor.SCORES]
    assert out.shape == (len(TEXTS), 3)
    for i, text in enumerate(TEXTS):
        assert_close(out[i], ref.softmax(ref.sequence_logits(checkpoints["bert-seq-3"], text)))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", ["qwen2_reward", "seq_classify"])
def test_sequence_reward_model_last_pooling_matches_transformers(triton_server, checkpoints, model_repository,
                                                                 protocol, model):
    path = checkpoints["qwen2-seq-reward"] if model == "qwen2_reward" else model_repository / model / "checkpoint"
    out = infer(protocol, triton_server, model, TEXTS)[Tensor.SCORES]
    assert out.shape == (len(TEXTS), 1)
    for i, text in enumerate(TEXTS):
        assert_close(out[i], ref.sigmoid(ref.sequence_logits(path, text)))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ner_token_classifier_matches_transformers(triton_server, checkpoints, protocol):
    out = infer(protocol, triton_server, "bert_ner", TEXTS)
    for i, text in enumerate(TEXTS):
        logits, _ = ref.token_logits(checkpoints["bert-token-5"], text)
        n = out[Tensor.NUM_TOKENS][i, 0]
        assert n == logits.shape[0]
        assert_close(out[Tensor.TOKEN_SCORES][i, :n], ref.softmax(logits))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", ["qwen2_prm", "token_classify"])
def test_process_reward_model_step_pooling_matches_transformers(triton_server, checkpoints, model_repository,
                                                                protocol, model):
    from support.checkpoints import step_tag_id

    path = checkpoints["qwen2-prm"] if model == "qwen2_prm" else model_repository / model / "checkpoint"
    tag = step_tag_id(path)
    out = infer(protocol, triton_server, model, STEP_TEXTS)
    for i, text in enumerate(STEP_TEXTS):
        logits, ids = ref.token_logits(path, text)
        expected = ref.softmax(logits[ids == tag])
        n = out[Tensor.NUM_TOKENS][i, 0]
        assert n == text.count("<extra_0>")
        assert_close(out[Tensor.TOKEN_SCORES][i, :n], expected)
