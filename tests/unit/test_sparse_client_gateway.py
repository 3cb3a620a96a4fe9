"""Sparse (SPLADE) embed models through the client (sync and async, over a fake wire) and every gateway route
(against the fake Triton): discovery, embed_sparse's {token_id: weight} / {token: weight}, SPARSE_TOKENS asked for
only with return_tokens, variable K across split requests, the dot-product score, TEI's /embed_sparse shape and
errors, the dense routes' refusals naming /embed_sparse, /pooling's {indices, values}, the output budget."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from triton_pooling import AsyncPoolingClient, PoolingClient, SparseEmbeddingOutput
from triton_pooling.discovery import model_info
from triton_pooling.errors import InvalidRequestError, TaskNotServedError
from triton_pooling_contract.tasks import Tensor

from support.fake_triton import (
    FakeTriton, _config, _sparse, _sparse_config, _sparse_token, _vector, answer, call, serving,
)

TEXTS = ["hello world", "a", "sparse vectors weigh words", "zz", "the quick brown fox jumps"]


def dot(a: dict, b: dict) -> float:
    return float(sum(w * b.get(k, 0.0) for k, w in a.items()))


# -- the client, over a fake wire (the fake Triton's answers, sync or awaited) ------------------------------------

class _Result:
    def __init__(self, arrays):
        self.arrays = arrays

    def as_numpy(self, name):
        return self.arrays.get(name)


class FakeWire:
    def __init__(self, fake: FakeTriton, aio: bool):
        self.fake, self.aio = fake, aio

    def _answer(self, make):
        if self.aio:
            async def coro():
                return await make()
            return coro()
        return asyncio.run(make())

    def new_client(self, url, timeout, concurrency=1):
        return self

    def close(self):
        return self._answer(self.fake.close)

    def loaded_models(self, client, timeout):
        async def rows():
            return {"model_stats": await self.fake.loaded_models()}
        return self._answer(rows)

    def model_config(self, client, name, timeout):
        return self._answer(lambda: self.fake.model_config(name))

    def infer(self, client, model, tensors, timeout, outputs=None):
        async def run():
            return _Result(await self.fake.infer(model, tensors, outputs))
        return self._answer(run)


def sync_client(fake: FakeTriton, **kwargs) -> PoolingClient:
    client = PoolingClient("fake:1", "http", **kwargs)
    client._wire = FakeWire(fake, aio=False)
    return client


def test_discovery_tells_a_sparse_model_by_its_outputs_or_its_pooling_type():
    assert model_info(_sparse_config()).sparse
    by_parameter = _config("s", "embed", pooling_type="SPLADE")
    assert model_info(by_parameter).sparse
    assert not model_info(_config("embed", "embed", pooling_type="MEAN")).sparse
    assert not model_info(_config("c", "seq_classify")).sparse


def test_embed_sparse_returns_one_weight_dict_per_text_across_requests_of_different_widths():
    fake = FakeTriton(sparse=True)
    with sync_client(fake, max_request_size=2) as client:
        got = client.embed_sparse(TEXTS)
    assert got == [_sparse(t) for t in TEXTS]  # fake weights are exact halves: equal, not close
    assert len(fake.requests) == 3 and all(m == "sparse" for m, _ in fake.requests)
    widths = {len(_sparse(t)) for t in TEXTS}
    assert len(widths) > 2  # the requests' K differ, and each row lost its padding
    assert all(o == (Tensor.SPARSE_INDICES, Tensor.SPARSE_VALUES, Tensor.NUM_TOKENS) for o in fake.outputs)
    assert [r[Tensor.USE_ACTIVATION][0, 0] for _, r in fake.requests] == [False] * 3  # the model's default


def test_return_tokens_maps_to_tokens_and_asks_for_them_only_then():
    fake = FakeTriton(sparse=True)
    with sync_client(fake) as client:
        got = client.embed_sparse(TEXTS[:2], model="sparse", return_tokens=True, prompt_name="query",
                                  truncate_prompt_tokens=8, use_activation=True)
    assert got == [{_sparse_token(k): w for k, w in _sparse(t).items()} for t in TEXTS[:2]]
    assert fake.outputs == [(Tensor.SPARSE_INDICES, Tensor.SPARSE_VALUES, Tensor.SPARSE_TOKENS, Tensor.NUM_TOKENS)]
    sent = fake.requests[-1][1]
    assert sent[Tensor.PROMPT_NAME][:, 0].tolist() == [b"query"] * 2
    assert sent[Tensor.TRUNCATE_PROMPT_TOKENS][:, 0].tolist() == [8, 8] and sent[Tensor.USE_ACTIVATION].all()


def test_encode_on_a_sparse_model_gives_sparse_outputs_and_embed_refuses_it():
    fake = FakeTriton(sparse=True)
    with sync_client(fake) as client:
        (out,) = client.encode(["banana"], task="embed", model="sparse")
        assert isinstance(out.outputs, SparseEmbeddingOutput) and out.outputs.data == _sparse("banana")
        assert out.outputs.indices.tolist() == sorted(_sparse("banana")) and out.outputs.tokens is None
        dense = out.outputs.to_dense(200)
        assert dense[ord("a")] == 1.5 and dense.sum() == pytest.approx(sum(_sparse("banana").values()))
        assert out.num_tokens == 3 and out.model == "sparse"
        with pytest.raises(InvalidRequestError, match=r"'sparse' is a sparse \(SPLADE\).*embed_sparse"):
            client.embed(["x"], model="sparse")
        with pytest.raises(InvalidRequestError, match="dimensions does not apply to sparse"):
            client.encode(["x"], task="embed", model="sparse", dimensions=8)
        with pytest.raises(InvalidRequestError, match="return_tokens=True needs a sparse"):
            client._plan(client.catalog(), ["x"], "embed", "embed", client_options(), None, True)
        assert np.allclose(client.embed(["x"])[0].outputs.data, _vector("x"))  # the dense default still answers


def test_encode_command_prints_a_sparse_output_as_indices_and_values():
    from triton_pooling.encode_command import _as_json

    with sync_client(FakeTriton(sparse=True)) as client:
        (out,) = client.encode(["abca"], task="embed", model="sparse")
    assert _as_json(out)["data"] == {"indices": [97, 98, 99], "values": [1.0, 0.5, 0.5]}


def client_options():
    from triton_pooling.batching import EncodeOptions

    return EncodeOptions()


def test_embed_sparse_model_choice_and_its_errors():
    fake = FakeTriton()
    with sync_client(fake) as client:
        with pytest.raises(TaskNotServedError,
                           match=r"no sparse \(SPLADE\) embed model on this server.*'embed' \(models"):
            client.embed_sparse(["x"])
    fake = FakeTriton(sparse=True)
    fake.configs["splade2"] = _sparse_config("splade2")
    with sync_client(fake) as client:
        with pytest.raises(TaskNotServedError, match=r"several sparse \(SPLADE\) embed models \(sparse, splade2\)"):
            client.embed_sparse(["x"])
        with pytest.raises(TaskNotServedError,
                           match="'embed' is a dense embed model.*sparse models here: sparse, splade2"):
            client.embed_sparse(["x"], model="embed")
        assert client.embed_sparse(["ab"], model="splade2") == [_sparse("ab")]
    fake.configs["e5"] = _config("e5", "embed")
    del fake.configs["embed"]
    with sync_client(fake) as client:  # embed() chooses among the dense models only
        assert np.allclose(client.embed(["x"])[0].outputs.data, _vector("x")) and fake.requests[-1][0] == "e5"
    del fake.configs["e5"], fake.configs["splade2"]
    with sync_client(fake) as client:  # the one embed model is sparse: embed() names embed_sparse
        with pytest.raises(InvalidRequestError, match="embed_sparse"):
            client.embed(["x"])


def test_score_on_a_sparse_model_is_the_dot_product():
    fake = FakeTriton(sparse=True)
    with sync_client(fake) as client:
        scores = [s.outputs.score for s in client.score("hello", ["hello world", "zz", "ol"], model="sparse")]
        cosines = [s.outputs.score for s in client.score("hello", ["hello world"], model="embed")]
    assert scores == pytest.approx([dot(_sparse("hello"), _sparse(d)) for d in ("hello world", "zz", "ol")])
    assert scores[1] == 0.0 and scores[0] > 1.0  # a dot product, not a cosine
    assert cosines == pytest.approx([float(_vector("hello") @ _vector("hello world"))], abs=1e-6)


def test_async_client_mirrors_the_sync_one():
    fake = FakeTriton(sparse=True)

    async def go():
        async with AsyncPoolingClient("fake:1", "grpc", max_request_size=2) as client:
            client._wire = FakeWire(fake, aio=True)
            ids = await client.embed_sparse(TEXTS)
            tokens = await client.embed_sparse(TEXTS[:1], return_tokens=True)
            score = await client.score("ab", ["abc"], model="sparse")
            with pytest.raises(InvalidRequestError, match="embed_sparse"):
                await client.embed(["x"], model="sparse")
            return ids, tokens, score

    ids, tokens, score = asyncio.run(go())
    assert ids == [_sparse(t) for t in TEXTS]
    assert tokens == [{_sparse_token(k): w for k, w in _sparse(TEXTS[0]).items()}]
    assert score[0].outputs.score == pytest.approx(dot(_sparse("ab"), _sparse("abc")))


# -- the gateway -----------------------------------------------------------------------------------------------------

@pytest.fixture
def fake():
    fake = FakeTriton(sparse=True)
    fake.configs["sparse"]["parameters"]["max_tokens"] = {"string_value": "128"}
    return fake


def tei_values(text: str) -> list[dict]:
    return [{"index": k, "value": w} for k, w in _sparse(text).items()]


def test_embed_sparse_answers_teis_shape(fake):
    status, _, body = call(fake, "POST", "/embed_sparse", {"inputs": "hello"})
    assert status == 200 and body == [tei_values("hello")]
    assert fake.outputs[-1] == (Tensor.SPARSE_INDICES, Tensor.SPARSE_VALUES, Tensor.NUM_TOKENS)  # no tokens
    status, _, body = call(fake, "POST", "/embed_sparse?model=sparse",
                           {"inputs": TEXTS, "truncate": True, "truncation_direction": "Left", "prompt_name": "q"})
    assert status == 200 and body == [tei_values(t) for t in TEXTS]
    assert [len(r) for r in body] == [len(_sparse(t)) for t in TEXTS]  # padding of the 2 requests dropped
    sent = fake.requests[-1][1]
    assert sent[Tensor.TRUNCATE_PROMPT_TOKENS][:, 0].tolist() == [128] and sent[Tensor.PROMPT_NAME][0, 0] == b"q"
    status, _, body = call(fake, "POST", "/embed_sparse", {"inputs": [[101, 7, 102]], "model": "sparse"})
    assert status == 200 and body == [tei_values("101 7 102")]
    status, _, body = call(fake, "POST", "/", {"inputs": "abc", "model": "sparse"})  # TEI routes SPLADE to it
    assert status == 200 and body == [tei_values("abc")]


def tei_error(status, payload, want_status, error_type, *needles):
    assert status == want_status and set(payload) == {"error", "error_type"}, payload
    assert payload["error_type"] == error_type, payload
    for needle in needles:
        assert needle in payload["error"], payload["error"]


def test_embed_sparse_errors_are_teis(fake):
    status, _, payload = call(fake, "POST", "/embed_sparse", {"inputs": "x", "model": "embed"})
    tei_error(status, payload, 424, "Backend", "'embed' is not an embedding model with SPLADE pooling",
              "sparse models here: sparse")
    status, _, payload = call(fake, "POST", "/embed_sparse?model=nope", {"inputs": "x"})
    tei_error(status, payload, 422, "Validation", "'nope' does not exist")  # TEI: an unknown model is a 422
    status, _, payload = call(fake, "POST", "/embed_sparse", {"inputs": []})
    tei_error(status, payload, 400, "Empty", "`inputs` cannot be empty")
    status, _, payload = call(fake, "POST", "/embed_sparse", {"inputs": "x", "truncate": True})
    tei_error(status, payload, 422, "Validation", "truncation_direction")
    fake.configs["splade2"] = _sparse_config("splade2")
    status, _, payload = call(fake, "POST", "/embed_sparse", {"inputs": "x"})
    tei_error(status, payload, 422, "Validation", "several sparse (SPLADE) models are served (sparse, splade2)")
    status, _, payload = call(fake, "POST", "/embed", {"inputs": "x", "model": "sparse"})
    tei_error(status, payload, 424, "Backend", "model 'sparse' is sparse", "/embed_sparse")


@pytest.mark.parametrize("path, body", [
    ("/v1/embeddings", {"model": "sparse", "input": "x"}),
    ("/v2/embed", {"model": "sparse", "texts": ["x"], "embedding_types": ["float"]}),
])
def test_dense_routes_refuse_a_sparse_model_naming_the_field(fake, path, body):
    status, _, payload = call(fake, "POST", path, body)
    error = payload["error"]
    assert status == 400 and error["param"] == "model" and error["type"] == "BadRequestError", payload
    assert "'sparse' is sparse" in error["message"] and "/embed_sparse" in error["message"]
    assert "/pooling" in error["message"]


def test_dense_routes_default_to_the_dense_model_and_refuse_when_only_sparse_is_served(fake):
    status, _, body = call(fake, "POST", "/v1/embeddings", {"input": "x"})
    assert status == 200 and body["model"] == "embed"
    del fake.configs["embed"]
    status, _, payload = call(fake, "POST", "/v1/embeddings", {"input": "x"})
    assert status == 400 and payload["error"]["param"] == "model"
    assert "no dense embed model is served and model 'sparse' is sparse" in payload["error"]["message"]


def test_pooling_answers_indices_and_values(fake):
    status, _, body = call(fake, "POST", "/pooling", {"model": "sparse", "input": ["hello", "a"]})
    assert status == 200 and [d["data"] for d in body["data"]] == [
        {"indices": list(_sparse(t)), "values": list(_sparse(t).values())} for t in ("hello", "a")]
    assert body["usage"]["prompt_tokens"] == 6
    status, _, body = call(fake, "POST", "/pooling", {"model": "sparse", "input": "ab", "return_tokens": True})
    assert status == 200 and body["data"][0]["data"]["tokens"] == ["##a", "##b"]
    assert Tensor.SPARSE_TOKENS in fake.outputs[-1]
    for extra, param in (({"encoding_format": "base64"}, "encoding_format"), ({"dimensions": 8}, "dimensions")):
        status, _, payload = call(fake, "POST", "/pooling", {"model": "sparse", "input": "x", **extra})
        assert status == 400 and payload["error"]["param"] == param, payload
    status, _, payload = call(fake, "POST", "/pooling", {"model": "embed", "input": "x", "return_tokens": True})
    assert status == 400 and payload["error"]["param"] == "return_tokens"


def test_score_and_rerank_on_a_sparse_model_are_dot_products(fake):
    docs = ["hello world", "zz", "ol"]
    expected = [dot(_sparse("hello"), _sparse(d)) for d in docs]
    status, _, body = call(fake, "POST", "/score", {"model": "sparse", "queries": "hello", "documents": docs})
    assert status == 200 and [d["score"] for d in body["data"]] == pytest.approx(expected)
    status, _, body = call(fake, "POST", "/rerank", {"model": "sparse", "query": "hello", "documents": docs})
    assert status == 200 and [r["index"] for r in body["results"]] == [0, 2, 1]
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx(sorted(expected, reverse=True))
    status, _, body = call(fake, "POST", "/rerank", {"model": "sparse", "query": "hello", "texts": docs})
    assert status == 200 and {r["index"]: r["score"] for r in body} == pytest.approx(dict(enumerate(expected)))


def test_info_and_health_with_a_sparse_model(fake):
    status, _, info = call(fake, "GET", "/info?model=sparse")
    assert status == 200 and info["model_type"] == {"embedding": {"pooling": "splade"}}
    status, _, health = call(fake, "GET", "/health")
    assert status == 200, health  # the probe asks a sparse model for its own outputs
    assert (Tensor.SPARSE_INDICES, Tensor.SPARSE_VALUES, Tensor.NUM_TOKENS) in fake.outputs


def test_output_budget_counts_sparse_answers_and_never_learns_a_width(fake):
    texts = ["abcdefghijklmnopqrstuvwxyz"] * 8  # 2 requests x 4 rows x 26 entries x 8 bytes = 1,664 bytes

    async def go():
        async with serving(fake, max_output_bytes=1000) as client:
            await answer(client, "GET", "/health")
            small = await answer(client, "POST", "/embed_sparse", {"inputs": ["ab"] * 8})
            big = await answer(client, "POST", "/embed_sparse", {"inputs": texts})
            pooled = await answer(client, "POST", "/pooling", {"model": "sparse", "input": texts})
            return small, big, pooled, client.server.app

    (s1, _, small), (s2, _, big), (s3, _, pooled), app = asyncio.run(go())
    assert s1 == 200 and small == [tei_values("ab")] * 8
    tei_error(s2, big, 413, "Validation", "passed 1000 bytes after 2 of its 2 Triton answers", "--max-output-bytes")
    assert s3 == 413 and pooled["error"]["param"] == "input"
    from triton_pooling_server.gateway.context import STATE

    assert "sparse" not in app[STATE].encoder.widths  # a request's K bounds no other request's


def test_many_token_id_lists_fan_out_within_the_bound(fake):
    ids = [list(range(1, n + 1)) for n in range(1, 41)]  # 40 lengths: 40 Triton requests of different widths
    fake.gate = asyncio.Event()

    async def go():
        async with serving(fake, max_calls_per_request=3) as client:
            pending = asyncio.ensure_future(answer(client, "POST", "/embed_sparse", {"inputs": ids}))
            await asyncio.sleep(0.2)
            fake.gate.set()
            return await pending

    status, _, body = asyncio.run(go())
    assert status == 200 and fake.most_in_flight == 3 and len(fake.requests) == 40
    assert body == [tei_values(" ".join(map(str, one))) for one in ids]
