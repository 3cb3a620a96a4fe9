"""TEI's routes on the gateway against the fake Triton: bodies in TEI's shapes, answers in TEI's shapes,
TEI's error convention ({"error", "error_type"} with 422 / 400 / 413 / 424 / 429), /rerank told apart by
its fields, POST / routed by the model's kind, and vLLM's truncate_prompt_tokens -1."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling.errors import ServerUnavailableError
from support.fake_triton import FakeTriton, _config, _vector, call


@pytest.fixture
def fake():
    fake = FakeTriton()
    fake.configs["embed"] = _config("embed", "embed", max_tokens="256", prompts='{"query": "query: ", "passage": "passage: "}')
    return fake


def tei_error(payload, status_got, status, error_type, *needles):
    assert status_got == status, payload
    assert set(payload) == {"error", "error_type"} and payload["error_type"] == error_type, payload
    for needle in needles:
        assert needle in payload["error"], payload["error"]


def sent(fake, name):
    return fake.requests[-1][1][name][:, 0].tolist()


def test_embed_single_batch_and_options(fake):
    status, _, body = call(fake, "POST", "/embed", {"inputs": "hello"})
    assert status == 200 and np.allclose(body, [_vector("hello")], atol=1e-6)
    assert sent(fake, "USE_ACTIVATION") == [True] and sent(fake, "TRUNCATE_PROMPT_TOKENS") == [-1]
    status, _, body = call(fake, "POST", "/embed", {"inputs": ["a", "bb"], "normalize": False, "prompt_name": "query",
                                                    "dimensions": 2, "truncate": True, "truncation_direction": "Left"})
    assert status == 200 and len(body) == 2
    assert sent(fake, "USE_ACTIVATION") == [False, False] and sent(fake, "DIMENSIONS") == [2, 2]
    assert sent(fake, "TRUNCATE_PROMPT_TOKENS") == [256, 256] and sent(fake, "PROMPT_NAME") == [b"query", b"query"]
    status, _, body = call(fake, "POST", "/embed", {"inputs": [[101, 7, 102], "text"]})
    assert status == 200 and len(body) == 2


def test_truncation_direction_right_is_refused_only_when_truncating(fake):
    for direction in (None, "Right", "right"):
        body = {"inputs": "x", "truncate": True, **({"truncation_direction": direction} if direction else {})}
        status, _, payload = call(fake, "POST", "/embed", body)
        tei_error(payload, status, 422, "Validation", "truncation_direction", "Left")
    status, _, _ = call(fake, "POST", "/embed", {"inputs": "x", "truncate": False, "truncation_direction": "Right"})
    assert status == 200
    status, _, payload = call(fake, "POST", "/embed", {"inputs": "x", "truncation_direction": "Up"})
    tei_error(payload, status, 422, "Validation", "truncation_direction", "'Up'")


def test_tei_errors(fake):
    status, _, payload = call(fake, "POST", "/embed", {"inputs": []})
    tei_error(payload, status, 400, "Empty", "`inputs` cannot be empty")
    status, _, payload = call(fake, "POST", "/embed", {"inputs": 3})
    tei_error(payload, status, 422, "Validation", "inputs")
    status, _, payload = call(fake, "POST", "/embed", {"inputs": ["a"] * 5}, max_inputs=4)
    tei_error(payload, status, 422, "Validation", "--max-inputs")
    status, _, payload = call(fake, "POST", "/embed", raw=b"x" * 2000, max_body_bytes=1000, max_body_bytes_in_flight=1000)
    tei_error(payload, status, 413, "Validation", "--max-body-bytes")
    fake.fail = ServerUnavailableError("Exceeds maximum queue size", server_message="Exceeds maximum queue size")
    status, headers, payload = call(fake, "POST", "/embed", {"inputs": "a"})
    tei_error(payload, status, 429, "Overloaded") and None
    assert headers["Retry-After"] == "1"
    fake.fail = RuntimeError("boom")
    status, _, payload = call(fake, "POST", "/embed", {"inputs": "a"})
    assert status in (424, 500) and set(payload) == {"error", "error_type"}
    fake.fail = None
    status, _, payload = call(fake, "POST", "/embed", {"inputs": "a"}, headers={"Authorization": "Bearer no"},
                              api_key="secret")
    tei_error(payload, status, 401, "Unauthorized")
    status, _, payload = call(fake, "POST", "/embed_sparse", {"inputs": "a"})  # no sparse model served
    tei_error(payload, status, 424, "Backend", "no sparse (SPLADE) embed model is served", "embed (embed)")
    # the OpenAI / vLLM routes keep their own shape
    status, _, payload = call(fake, "POST", "/v1/embeddings", {"input": []})
    assert status == 400 and set(payload) == {"error"} and payload["error"]["type"] == "BadRequestError"


def test_embed_all_is_unnormalized_token_rows(fake):
    status, _, body = call(fake, "POST", "/embed_all", {"inputs": ["a b", "c"]})
    assert status == 200 and [len(rows) for rows in body] == [4, 3]
    assert sent(fake, "USE_ACTIVATION") == [False, False]


def test_predict_single_pair_and_batch_sorted_with_labels(fake):
    status, _, body = call(fake, "POST", "/predict", {"inputs": "good", "model": "sentiment"})
    assert status == 200 and [p["label"] for p in body] == ["mixed", "pos", "neg"]
    assert body[0]["score"] >= body[1]["score"] >= body[2]["score"]
    status, _, body = call(fake, "POST", "/predict", {"inputs": ["q", "d"], "model": "cross", "raw_scores": True})
    assert status == 200 and body[0]["label"] == "LABEL_0" and "TEXT_PAIR" in fake.requests[-1][1]
    assert sent(fake, "USE_ACTIVATION") == [False]
    status, _, body = call(fake, "POST", "/predict", {"inputs": [["a"], ["b", "c"]], "model": "sentiment"})
    assert status == 200 and len(body) == 2 and all(len(row) == 3 for row in body)
    status, _, payload = call(fake, "POST", "/predict", {"inputs": [["a", "b", "c"]], "model": "sentiment"})
    tei_error(payload, status, 422, "Validation", "inputs[0]")


def test_rerank_tells_tei_from_vllm_by_fields(fake):
    status, _, body = call(fake, "POST", "/rerank", {"query": "q", "texts": ["aaa", "b"], "return_text": True})
    assert status == 200 and isinstance(body, list) and {r["index"] for r in body} == {0, 1}
    assert body[0]["score"] >= body[1]["score"] and "text" in body[0]
    status, _, body = call(fake, "POST", "/rerank", {"query": "q", "texts": ["aaa", "b"]})
    assert all("text" not in r for r in body)
    status, _, body = call(fake, "POST", "/rerank", {"query": "q", "documents": ["aaa", "b"]})
    assert status == 200 and "results" in body
    status, _, payload = call(fake, "POST", "/rerank", {"query": "q", "texts": []})
    tei_error(payload, status, 400, "Empty", "`texts` cannot be empty")


def test_similarity_is_cosine_of_unnormalized_embeddings(fake):
    body = {"inputs": {"source_sentence": "abc", "sentences": ["abc", "zz top"]}, "parameters": {"prompt_name": "query"}}
    status, _, scores = call(fake, "POST", "/similarity", body)
    a, b = _vector("abc"), _vector("zz top")
    assert status == 200 and np.allclose(scores, [1.0, float(a @ b)], atol=1e-6)
    assert sent(fake, "USE_ACTIVATION") == [False] * 3 and sent(fake, "PROMPT_NAME") == [b"query"] * 3


def test_root_routes_by_the_models_kind(fake):
    status, _, body = call(fake, "POST", "/", {"inputs": "hello"})
    assert status == 200 and np.allclose(body, [_vector("hello")], atol=1e-6)
    status, _, body = call(fake, "POST", "/", {"inputs": {"source_sentence": "a", "sentences": ["a"]}})
    assert status == 200 and np.allclose(body, [1.0])
    status, _, body = call(fake, "POST", "/", {"inputs": "good", "model": "sentiment"})
    assert status == 200 and len(body) == 3 and "label" in body[0]
    status, _, body = call(fake, "POST", "/", {"query": "q", "texts": ["a"], "model": "cross"})
    assert status == 200 and body[0]["index"] == 0
    status, _, payload = call(fake, "POST", "/", {"inputs": "x", "model": "ner"})
    tei_error(payload, status, 422, "Validation", "token_classify")


def test_info(fake):
    status, _, body = call(fake, "GET", "/info")
    assert status == 200 and body["model_type"] == {"embedding": {"pooling": "mean"}} and body["max_input_length"] == 256
    status, _, body = call(fake, "GET", "/info?model=sentiment")
    assert body["model_type"]["classifier"]["id2label"] == {"0": "neg", "1": "pos", "2": "mixed"}
    status, _, body = call(fake, "GET", "/info?model=cross")
    assert "reranker" in body["model_type"]


def test_vllm_truncate_minus_one_is_the_models_maximum(fake):
    status, _, _ = call(fake, "POST", "/v1/embeddings", {"input": "a", "truncate_prompt_tokens": -1})
    assert status == 200 and sent(fake, "TRUNCATE_PROMPT_TOKENS") == [256]
    status, _, payload = call(fake, "POST", "/pooling", {"model": "token_embed", "input": "a", "truncate_prompt_tokens": -1})
    assert status == 400 and payload["error"]["param"] == "truncate_prompt_tokens" and "max_tokens" in payload["error"]["message"]
