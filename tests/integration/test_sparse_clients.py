"""A sparse (SPLADE) model through the project's clients and the gateway, on a real tritonserver (issue 20, item 2's
client and gateway part): a seeded SparseEncoder folder built with `triton-pooling build`, then PoolingClient /
AsyncPoolingClient.embed_sparse over HTTP and gRPC, the gateway's TEI /embed_sparse as a plain HTTP client posts it,
vLLM's /pooling and /rerank — each compared with SparseEncoder.encode (the same support, every weight within 1e-5),
the tokens with the tokenizer's, the scores with the reference's dot products."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from triton_pooling import AsyncPoolingClient, PoolingClient
from triton_pooling.errors import InvalidRequestError
from triton_pooling_server.cli import main

from integration.test_gateway import request, running_gateway
from support.raw import PROTOCOLS
from support.sparse import make_splade, reference_weights
from support.triton import running_triton

pytestmark = pytest.mark.integration
TOL = 1e-5
TEXTS = ["Hello world.", "Short", "Paris is the capital of France, and it sits on the Seine river.",
         "a b c d e f g h i j k l m n o p", "What do sparse retrievers weigh?"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparse_clients")
    checkpoint = make_splade(root / "splade", "sparse_encoder", seed=3)
    assert main(["build", str(checkpoint), "--repository", str(root / "repository"), "--name", "sparse"]) == 0
    expected = reference_weights(checkpoint, TEXTS)
    with running_triton(root / "repository", root / "tritonserver.log") as server:
        with running_gateway(server.options.grpc_url, root / "gateway.log", "--model-repository",
                             str(root / "repository")) as gateway:
            yield server, gateway, checkpoint, expected


def url(server, protocol):
    return server.options.http_url if protocol == "http" else server.options.grpc_url


def same_weights(got: dict, expected_row: np.ndarray) -> None:
    """The same support (every reference nonzero, nothing else) and every weight within TOL."""
    support = np.flatnonzero(expected_row).tolist()
    assert sorted(got) == support, (len(got), len(support))
    assert 0 < len(support) < expected_row.shape[0] // 10  # sparse: not a vocabulary-sized vector
    assert max(abs(got[i] - float(expected_row[i])) for i in support) <= TOL


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_embed_sparse_equals_sparse_encoder(served, protocol):
    server, _, _, expected = served
    # 2 texts per request: the requests' K differ and each row is cut of its padding
    with PoolingClient(url(server, protocol), protocol, max_request_size=2) as client:
        got = client.embed_sparse(TEXTS)
        (encoded,) = client.encode(TEXTS[2:3], task="embed", model="sparse")
        with pytest.raises(InvalidRequestError, match="embed_sparse"):
            client.embed(TEXTS[:1])
    for row, weights in enumerate(got):
        same_weights(weights, expected[row])
    assert encoded.outputs.data == got[2] and encoded.num_tokens > 10
    assert np.abs(encoded.outputs.to_dense(expected.shape[1]) - expected[2]).max() <= TOL


def test_async_embed_sparse_and_tokens_equal_the_tokenizer(served):
    import transformers

    server, _, checkpoint, expected = served
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint))

    async def go():
        async with AsyncPoolingClient(server.options.grpc_url, "grpc") as client:
            return await asyncio.gather(client.embed_sparse(TEXTS), client.embed_sparse(TEXTS, return_tokens=True))

    by_id, by_token = asyncio.run(go())
    for row in range(len(TEXTS)):
        same_weights(by_id[row], expected[row])
        ids = sorted(by_id[row])
        assert list(by_token[row]) == tokenizer.convert_ids_to_tokens(ids)
        assert list(by_token[row].values()) == [by_id[row][i] for i in ids]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_score_is_the_dot_product_of_the_reference_vectors(served, protocol):
    server, _, _, expected = served
    with PoolingClient(url(server, protocol), protocol) as client:
        scores = [s.outputs.score for s in client.score(TEXTS[0], TEXTS[1:], model="sparse")]
    reference = expected.astype(np.float64)
    for doc, score in enumerate(scores, start=1):
        want = float(reference[0] @ reference[doc])
        # each weight is within TOL, so the dot product is within TOL x (|q|_1 + |d|_1)
        assert abs(score - want) <= TOL * (reference[0].sum() + reference[doc].sum()), (score, want)
    assert max(scores) > 0


def post(gateway, path, body, status=200):
    got, _, payload = request(gateway.url, "POST", path, body)
    assert got == status, (got, payload)
    return payload


def test_gateway_embed_sparse_as_a_tei_client_posts_it(served):
    server, gateway, _, expected = served
    body = post(gateway, "/embed_sparse", {"inputs": TEXTS, "truncate": False, "truncation_direction": "Right"})
    assert len(body) == len(TEXTS)
    for row, entries in enumerate(body):
        assert set(entries[0]) == {"index", "value"}
        indices = [e["index"] for e in entries]
        assert indices == sorted(indices)
        same_weights({e["index"]: e["value"] for e in entries}, expected[row])
    single = post(gateway, "/embed_sparse?model=sparse", {"inputs": TEXTS[0]})
    assert single == body[:1]
    assert post(gateway, "/", {"inputs": TEXTS[0]}) == body[:1]  # TEI routes a SPLADE model's POST / here
    status, _, info = request(gateway.url, "GET", "/info")
    assert status == 200 and info["model_type"] == {"embedding": {"pooling": "splade"}}


def test_gateway_pooling_rerank_and_refusals(served):
    import transformers

    server, gateway, checkpoint, expected = served
    body = post(gateway, "/pooling", {"model": "sparse", "input": TEXTS[:2], "return_tokens": True})
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    for row, item in enumerate(body["data"]):
        data = item["data"]
        same_weights(dict(zip(data["indices"], data["values"])), expected[row])
        assert data["tokens"] == tokenizer.convert_ids_to_tokens(data["indices"])
    ranked = post(gateway, "/rerank", {"model": "sparse", "query": TEXTS[0], "documents": TEXTS[1:]})["results"]
    reference = expected.astype(np.float64)
    for result in ranked:
        doc = 1 + result["index"]
        bound = TOL * (reference[0].sum() + reference[doc].sum())
        assert abs(result["relevance_score"] - float(reference[0] @ reference[doc])) <= bound
    assert [r["relevance_score"] for r in ranked] == sorted((r["relevance_score"] for r in ranked), reverse=True)
    status, _, error = request(gateway.url, "POST", "/v1/embeddings", {"model": "sparse", "input": "x"})
    assert status == 400 and error["error"]["param"] == "model" and "/embed_sparse" in error["error"]["message"]
    status, _, error = request(gateway.url, "POST", "/embed", {"inputs": "x"})
    assert status == 424 and error["error_type"] == "Backend" and "/embed_sparse" in error["error"]
