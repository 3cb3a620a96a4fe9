"""AsyncPoolingClient against the session tritonserver, over HTTP and gRPC: the same answers as the sync client."""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import pytest

from triton_pooling import deprecation
from triton_pooling.async_client import AsyncPoolingClient
from triton_pooling.client import PoolingClient
from triton_pooling.errors import InvalidRequestError, PoolingTimeoutError, TaskNotServedError, UnknownTaskError

from support.raw import PROTOCOLS

pytestmark = pytest.mark.integration

TEXTS = ["Hello world.", "Short", "Triton serves pooling models: embedders, cross-encoders and NER taggers.",
         "What is the capital of France? Paris, on the Seine.", "One more text, of middling length."]


def url_of(server, protocol):
    return server.options.http_url if protocol == "http" else server.options.grpc_url


def same(a, b):
    assert [x.request_id for x in a] == [y.request_id for y in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.outputs.data, y.outputs.data, atol=1e-6, rtol=0)
        assert x.num_tokens == y.num_tokens


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_async_client_matches_sync(triton_server, protocol, monkeypatch):
    url = url_of(triton_server, protocol)
    with PoolingClient(url, protocol) as sync:
        expected = {
            "token_embed": sync.encode(TEXTS, task="token_embed"),
            "embed": sync.embed(TEXTS),
            "classify": sync.classify(TEXTS, model="bert_classifier"),
            "token_classify": sync.encode(TEXTS, task="token_classify", model="bert_ner"),
            "score": sync.score(TEXTS[0], TEXTS[1:], model="qwen2_reward"),
        }
    monkeypatch.setattr(deprecation, "_reward_warned", False)

    async def run():
        async with AsyncPoolingClient(url, protocol, max_request_size=2, max_concurrency=3) as client:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results = await asyncio.gather(
                    client.encode(TEXTS, task="token_embed"), client.embed(TEXTS),
                    client.classify(TEXTS, model="bert_classifier"), client.reward(TEXTS, model="bert_ner"),
                    client.score(TEXTS[0], TEXTS[1:], model="qwen2_reward"), client.reward(TEXTS, model="bert_ner"))
            errors = []
            for call in (lambda: client.encode(TEXTS, task="nope"),
                         lambda: client.encode(TEXTS, task="embed", model="bert_ner"),
                         lambda: client.encode(TEXTS, task="embed", dimensions=999)):
                try:
                    await call()
                except Exception as e:  # noqa: BLE001  (checked below)
                    errors.append(e)
            return results, caught, errors, await client.models()

    (token_embed, embed, classify, reward, score, _), caught, errors, models = asyncio.run(run())
    same(token_embed, expected["token_embed"])
    same(embed, expected["embed"])
    same(classify, expected["classify"])
    same(reward, expected["token_classify"])
    assert [s.outputs.score for s in score] == pytest.approx([s.outputs.score for s in expected["score"]], abs=1e-6)
    assert sum(w.category is DeprecationWarning for w in caught) == 1
    assert [type(e) for e in errors] == [UnknownTaskError, TaskNotServedError, InvalidRequestError]
    assert "DIMENSIONS must be between 1 and 384" in errors[2].server_message
    assert models["qwen2_prm"].task.value == "token_classify"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_async_timeout(triton_server, protocol):
    async def run():
        async with AsyncPoolingClient(url_of(triton_server, protocol), protocol, timeout=1e-4) as client:
            await client.encode(TEXTS * 8, task="token_embed")

    with pytest.raises(PoolingTimeoutError):
        asyncio.run(run())
