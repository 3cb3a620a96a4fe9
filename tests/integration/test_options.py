"""Each per-request option: DIMENSIONS, USE_ACTIVATION, TRUNCATE_PROMPT_TOKENS, INPUT_IDS, TEXT_PAIR."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling_contract.tasks import Tensor

from support import reference as ref
from support.raw import PROTOCOLS, infer
from test_parity import TEXTS, assert_close

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dimensions_truncate_then_normalize(triton_server, minilm_path, protocol):
    out = infer(protocol, triton_server, "embed", TEXTS, DIMENSIONS=64)[Tensor.EMBEDDING]
    assert out.shape == (len(TEXTS), 64)
    for i, text in enumerate(TEXTS):
        assert_close(out[i], ref.embedding(minilm_path, text, dimensions=64))
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_dimensions_on_token_embed(triton_server, minilm_path):
    out = infer("grpc", triton_server, "token_embed", TEXTS[:2], DIMENSIONS=16)
    n = out[Tensor.NUM_TOKENS][0, 0]
    assert out[Tensor.TOKEN_EMBEDDINGS].shape[-1] == 16
    assert_close(out[Tensor.TOKEN_EMBEDDINGS][0, :n], ref.token_embeddings(minilm_path, TEXTS[0], dimensions=16))


def test_minus_one_means_default(triton_server):
    plain = infer("grpc", triton_server, "embed", TEXTS)
    defaults = infer("grpc", triton_server, "embed", TEXTS, DIMENSIONS=-1, TRUNCATE_PROMPT_TOKENS=-1)
    assert np.array_equal(plain[Tensor.EMBEDDING], defaults[Tensor.EMBEDDING])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_use_activation_false_gives_raw_values(triton_server, minilm_path, checkpoints, protocol):
    raw_embed = infer(protocol, triton_server, "embed", TEXTS, USE_ACTIVATION=False)[Tensor.EMBEDDING]
    assert_close(raw_embed[1], ref.embedding(minilm_path, TEXTS[1], normalize=False))
    raw_scores = infer(protocol, triton_server, "bert_classifier", TEXTS, USE_ACTIVATION=False)[Tensor.SCORES]
    assert_close(raw_scores[0], ref.sequence_logits(checkpoints["bert-seq-3"], TEXTS[0]))
    raw_reward = infer(protocol, triton_server, "qwen2_reward", TEXTS, USE_ACTIVATION=False)[Tensor.SCORES]
    assert_close(raw_reward[2], ref.sequence_logits(checkpoints["qwen2-seq-reward"], TEXTS[2]))
    mixed = infer(protocol, triton_server, "bert_classifier", TEXTS[:2], USE_ACTIVATION=[True, False])[Tensor.SCORES]
    assert_close(mixed[0], ref.softmax(ref.sequence_logits(checkpoints["bert-seq-3"], TEXTS[0])))
    assert_close(mixed[1], ref.sequence_logits(checkpoints["bert-seq-3"], TEXTS[1]))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_truncate_prompt_tokens_keeps_last_k(triton_server, minilm_path, checkpoints, protocol):
    out = infer(protocol, triton_server, "embed", TEXTS, TRUNCATE_PROMPT_TOKENS=6)
    assert (out[Tensor.NUM_TOKENS][:, 0] <= 6).all()
    for i, text in enumerate(TEXTS):
        assert_close(out[Tensor.EMBEDDING][i], ref.embedding(minilm_path, text, truncate=6))
    reward = infer(protocol, triton_server, "qwen2_reward", TEXTS, TRUNCATE_PROMPT_TOKENS=10)[Tensor.SCORES]
    assert_close(reward[1], ref.sigmoid(ref.sequence_logits(checkpoints["qwen2-seq-reward"], TEXTS[1], truncate=10)))


def test_truncation_lets_an_over_long_text_through(triton_server, minilm_path):
    long_text = "pooling " * 400
    out = infer("grpc", triton_server, "embed", [long_text], TRUNCATE_PROMPT_TOKENS=256)
    assert out[Tensor.NUM_TOKENS][0, 0] == 256
    assert_close(out[Tensor.EMBEDDING][0], ref.embedding(minilm_path, long_text, truncate=256))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_input_ids_equal_text(triton_server, minilm_path, protocol):
    ids = ref.encode(minilm_path, TEXTS[0])["input_ids"].numpy()
    by_ids = infer(protocol, triton_server, "embed", input_ids=ids)
    by_text = infer(protocol, triton_server, "embed", [TEXTS[0]])
    assert_close(by_ids[Tensor.EMBEDDING], by_text[Tensor.EMBEDDING])
    assert by_ids[Tensor.NUM_TOKENS][0, 0] == ids.shape[1]
    # Pre-tokenized rows of one length travel together; truncation keeps the last k ids.
    two = infer(protocol, triton_server, "embed", input_ids=np.vstack([ids, ids]), TRUNCATE_PROMPT_TOKENS=3)
    assert (two[Tensor.NUM_TOKENS][:, 0] == 3).all()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_text_pair_cross_encoder(triton_server, checkpoints, protocol):
    queries = ["what is triton?", "capital of france"]
    documents = ["Triton is an inference server.", "Paris is the capital of France."]
    out = infer(protocol, triton_server, "bert_classifier", queries, pairs=documents)[Tensor.SCORES]
    for i in range(2):
        expected = ref.softmax(ref.sequence_logits(checkpoints["bert-seq-3"], queries[i], documents[i]))
        assert_close(out[i], expected)
    unpaired = infer(protocol, triton_server, "bert_classifier", queries)[Tensor.SCORES]
    assert np.abs(out - unpaired).max() > 1e-4, "the pair must change the score"
