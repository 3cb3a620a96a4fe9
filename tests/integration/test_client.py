"""PoolingClient against the session tritonserver, over HTTP and gRPC: every call equals raw tritonclient."""

from __future__ import annotations

import re
import time
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from triton_pooling import deprecation
from triton_pooling.client import PoolingClient
from triton_pooling.errors import (InvalidRequestError, ModelNotFoundError, PoolingTimeoutError, TaskNotServedError,
                                   UnknownTaskError)
from triton_pooling_contract.tasks import OUTPUT_TENSOR, PoolingTask, Tensor, TOKEN_LEVEL_TASKS

from support.raw import PROTOCOLS, infer

pytestmark = pytest.mark.integration

TEXTS = ["Hello world.", "Short", "Triton serves pooling models: embedders, cross-encoders and NER taggers.",
         "What is the capital of France? Paris, on the Seine."]
STEP_TEXTS = ["Step 1: 2 + 2 = 4. <extra_0> Step 2: 4 * 3 = 12. <extra_0>", "No step tags here"]
ATOL = 1e-6  # the dynamic batcher may pad a request with another's texts


@pytest.fixture(scope="module", params=PROTOCOLS)
def protocol(request):
    return request.param


@pytest.fixture(scope="module")
def client(triton_server, protocol):
    url = triton_server.options.http_url if protocol == "http" else triton_server.options.grpc_url
    with PoolingClient(url, protocol) as c:
        yield c


def raw_rows(protocol, server, model, task, texts=None, **kwargs) -> list[np.ndarray]:
    """One raw request; each text's rows cut to NUM_TOKENS for token-level tasks."""
    out = infer(protocol, server, model, texts, **kwargs)
    data, counts = out[OUTPUT_TENSOR[task]], out[Tensor.NUM_TOKENS][:, 0]
    return [data[i, :n] if task in TOKEN_LEVEL_TASKS else data[i] for i, n in enumerate(counts)]


def assert_outputs(outputs, expected):
    assert len(outputs) == len(expected)
    for out, want in zip(outputs, expected):
        assert out.outputs.data.shape == want.shape
        np.testing.assert_allclose(out.outputs.data, want, atol=ATOL, rtol=0)


def test_discovery_reads_every_model_and_its_task(client):
    models = client.models()
    expected = {"embed": "embed", "token_embed": "token_embed", "seq_classify": "seq_classify",
                "token_classify": "token_classify", "bert_classifier": "seq_classify", "bert_ner": "token_classify",
                "qwen2_reward": "seq_classify", "qwen2_prm": "token_classify", "bert_cls_embed": "embed"}
    assert {name: m.task.value for name, m in models.items()} == expected
    assert all(m.max_batch_size > 1 and m.use_activation for m in models.values())
    assert client.refresh().models == client.catalog().models


@pytest.mark.parametrize("model, task, texts", [
    ("embed", PoolingTask.EMBED, TEXTS), ("token_embed", PoolingTask.TOKEN_EMBED, TEXTS),
    ("bert_classifier", PoolingTask.SEQ_CLASSIFY, TEXTS), ("bert_ner", PoolingTask.TOKEN_CLASSIFY, TEXTS),
    ("qwen2_prm", PoolingTask.TOKEN_CLASSIFY, STEP_TEXTS),
])
def test_encode_equals_raw_request(client, triton_server, protocol, model, task, texts):
    outputs = client.encode(texts, task=task.value, model=model)
    assert_outputs(outputs, raw_rows(protocol, triton_server, model, task, texts))
    counts = infer(protocol, triton_server, model, texts)[Tensor.NUM_TOKENS][:, 0]
    assert [o.num_tokens for o in outputs] == counts.tolist()
    assert [o.prompt for o in outputs] == texts and {o.model for o in outputs} == {model}


def test_pairs_token_ids_and_options_equal_raw(client, triton_server, protocol):
    pairs = [("What is the capital of France?", "Paris."), ("Is it raining?", "The sun is out.")]
    assert_outputs(client.encode(pairs, task="classify", model="qwen2_reward"),
                   raw_rows(protocol, triton_server, "qwen2_reward", PoolingTask.SEQ_CLASSIFY,
                            [q for q, _ in pairs], pairs=[d for _, d in pairs]))
    ids = [[101, 7592, 2088, 102], [101, 2460, 102, 0][:3]]
    outputs = client.encode(ids, task="embed")
    assert [o.prompt_token_ids for o in outputs] == ids and [o.num_tokens for o in outputs] == [4, 3]
    for out, row in zip(outputs, ids):
        want = raw_rows(protocol, triton_server, "embed", PoolingTask.EMBED, input_ids=[row])
        assert_outputs([out], want)
    options = dict(DIMENSIONS=32, USE_ACTIVATION=False, TRUNCATE_PROMPT_TOKENS=4)
    assert_outputs(client.encode(TEXTS, task="embed", dimensions=32, use_activation=False, truncate_prompt_tokens=4),
                   raw_rows(protocol, triton_server, "embed", PoolingTask.EMBED, TEXTS, **options))


def test_order_kept_under_concurrency_with_mixed_lengths(triton_server, protocol):
    url = triton_server.options.http_url if protocol == "http" else triton_server.options.grpc_url
    texts = [" ".join(["word"] * (1 + (i * 7) % 23)) + f" number {i}" for i in range(30)]
    ids = [[101] + [2000 + i] * (1 + i % 4) + [102] for i in range(10)]
    prompts = [p for pair in zip(texts[:10], ids) for p in pair] + texts[10:]
    bars = []

    class RecordingBar:  # a tqdm-like class, as vLLM's use_tqdm accepts
        def __init__(self, total, **kwargs):
            self.total, self.done, self.closed = total, 0, False
            bars.append(self)

        def update(self, n):
            self.done += n

        def close(self):
            self.closed = True

    with PoolingClient(url, protocol, max_request_size=3, max_concurrency=4) as small_requests:
        outputs = small_requests.encode(prompts, task="token_embed", use_tqdm=RecordingBar)
    assert [(b.total, b.done, b.closed) for b in bars] == [(len(prompts), len(prompts), True)]
    expected_texts = raw_rows(protocol, triton_server, "token_embed", PoolingTask.TOKEN_EMBED, texts)
    by_prompt = {i: out for i, out in enumerate(outputs)}
    text_outputs = [by_prompt[i] for i in range(0, 20, 2)] + outputs[20:]
    assert [o.prompt for o in text_outputs] == texts
    assert_outputs(text_outputs, expected_texts)
    id_outputs = [by_prompt[i] for i in range(1, 20, 2)]
    assert [o.prompt_token_ids for o in id_outputs] == ids
    assert [o.num_tokens for o in id_outputs] == [len(r) for r in ids]
    assert [o.request_id for o in outputs] == [str(i) for i in range(len(prompts))]


def test_embed_and_classify_wrappers(client):
    embedded = client.embed(TEXTS)
    assert [o.outputs.embedding for o in embedded] == [o.outputs.data.tolist() for o in client.encode(TEXTS, "embed")]
    assert all(o.task is PoolingTask.EMBED and len(o.outputs.embedding) == 384 for o in embedded)
    classified = client.classify(TEXTS, model="bert_classifier")
    assert all(len(o.outputs.probs) == 3 and abs(sum(o.outputs.probs) - 1) < 1e-5 for o in classified)


def test_score_three_ways(client, triton_server, protocol):
    query, docs = "What is the capital of France?", ["Paris is the capital of France.", "Cats purr."]
    emb = raw_rows(protocol, triton_server, "embed", PoolingTask.EMBED, [query, *docs])
    cosine = client.score(query, docs)
    assert [s.outputs.score for s in cosine] == pytest.approx(
        [float(emb[0] @ e / np.linalg.norm(emb[0]) / np.linalg.norm(e)) for e in emb[1:]], abs=1e-6)
    assert cosine[0].outputs.score > cosine[1].outputs.score  # MiniLM knows Paris
    cross = client.score(query, docs, model="qwen2_reward")
    pair_scores = raw_rows(protocol, triton_server, "qwen2_reward", PoolingTask.SEQ_CLASSIFY, [query] * 2, pairs=docs)
    assert [s.outputs.score for s in cross] == pytest.approx([float(s[0]) for s in pair_scores], abs=1e-6)
    tok = raw_rows(protocol, triton_server, "token_embed", PoolingTask.TOKEN_EMBED, [query, *docs])
    maxsim = client.score([query, query], docs, task="token_embed")  # N to N
    assert [s.outputs.score for s in maxsim] == pytest.approx(
        [float((tok[0] @ d.T).max(axis=1).sum()) for d in tok[1:]], abs=1e-5)
    assert [(s.query, s.document) for s in maxsim] == [(query, d) for d in docs]
    with pytest.raises(InvalidRequestError, match="one-label cross-encoder; model 'bert_classifier' returns 3 labels"):
        client.score(query, docs, model="bert_classifier")
    with pytest.raises(InvalidRequestError, match="got 2 queries and 3 documents"):
        client.score([query, query], docs + ["x"])


def test_verification_messages(client):
    with pytest.raises(UnknownTaskError, match="Unknown pooling task 'embedding'; valid tasks: 'embed', "
                                               "'token_embed', 'seq_classify', 'token_classify', 'classify'"):
        client.encode(TEXTS, task="embedding")
    with pytest.raises(TaskNotServedError, match="model 'bert_ner' serves 'token_classify', not 'embed'.*"
                                                 "model serving 'embed': bert_cls_embed, embed"):
        client.encode(TEXTS, task="embed", model="bert_ner")
    with pytest.raises(ModelNotFoundError, match="model 'nope' is not a pooling model on this server; this server "
                                                 r"serves 'embed' \(models: bert_cls_embed, embed\)"):
        client.encode(TEXTS, task="embed", model="nope")
    with pytest.raises(InvalidRequestError, match="model 'embed': DIMENSIONS must be between 1 and 384") as info:
        client.encode(TEXTS, task="embed", dimensions=999)
    assert "DIMENSIONS must be between 1 and 384" in info.value.server_message and info.value.__cause__ is not None


def test_reward_is_deprecated_once_and_equals_token_classify(client, monkeypatch):
    monkeypatch.setattr(deprecation, "_reward_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = client.reward(STEP_TEXTS)
        second = client.reward(STEP_TEXTS, model="qwen2_prm")
    deprecations = [w for w in caught if w.category is DeprecationWarning]
    messages = [str(w.message) for w in deprecations]
    assert len(messages) == 1 and deprecations[0].filename == __file__  # points at the caller's line
    assert 'task="seq_classify"' in messages[0] and 'task="token_classify"' in messages[0]
    expected = client.encode(STEP_TEXTS, task="token_classify")
    assert_outputs(first, [o.outputs.data for o in expected])
    assert all(o.task is PoolingTask.TOKEN_CLASSIFY for o in first + second)


def test_timeout_is_reported_not_retried(triton_server, protocol):
    url = triton_server.options.http_url if protocol == "http" else triton_server.options.grpc_url
    with PoolingClient(url, protocol, timeout=1e-4, retries=5) as hasty:
        with pytest.raises(PoolingTimeoutError, match="timed out"):
            hasty.encode(TEXTS * 8, task="token_embed")


def test_dynamic_batcher_groups_the_clients_requests(triton_server):
    """Every request carries the same input set, so concurrent one-text calls share executions."""
    def counters():
        text = urllib.request.urlopen(triton_server.options.metrics_url, timeout=10).read().decode()
        value = lambda name: float(re.search(name + r'\{model="embed",version="1"\} (\S+)', text).group(1))
        return value("nv_inference_request_success"), value("nv_inference_exec_count")

    texts = [" ".join(["word"] * (1 + i % 17)) for i in range(48)]
    with PoolingClient(triton_server.options.grpc_url) as client:
        client.catalog()
        requests_before, executions_before = counters()
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(lambda text: client.encode([text], task="embed"), texts))
        deadline = time.monotonic() + 15  # Triton publishes its metrics on an interval, not per request
        while (counts := counters())[0] - requests_before < len(texts) and time.monotonic() < deadline:
            time.sleep(0.5)
        requests_after, executions_after = counts
    assert requests_after - requests_before == len(texts)
    assert executions_after - executions_before < 0.75 * len(texts)
