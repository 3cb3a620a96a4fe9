"""The gateway's HTTP app end to end against a fake Triton (no server): routes, response bodies,
model resolution, every error kind with its status, health and metrics."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from triton_pooling.errors import PoolingTimeoutError, ServerUnavailableError, classify_error
from triton_pooling_server.gateway.app import create_app
from triton_pooling_server.gateway.settings import GatewaySettings


def _config(name: str, task: str, **params: str) -> dict:
    inputs = ["TEXT", "INPUT_IDS", "TEXT_PAIR", "TRUNCATE_PROMPT_TOKENS", "DIMENSIONS", "USE_ACTIVATION"]
    parameters = {"pooling_task": {"string_value": task}, **{k: {"string_value": v} for k, v in params.items()}}
    return {"name": name, "max_batch_size": 4, "input": [{"name": i} for i in inputs], "parameters": parameters}


def _vector(text: str) -> np.ndarray:
    v = np.array([len(text), sum(map(ord, text)) % 17 + 1, text.count("a") + 0.5, 1.0], dtype=np.float32)
    return v / np.linalg.norm(v)


class FakeTriton:
    """Answers like the contract: one row per text, token rows zero-padded, NUM_TOKENS per text."""

    def __init__(self):
        self.configs = {c["name"]: c for c in (
            _config("embed", "embed"), _config("token_embed", "token_embed"),
            _config("cross", "seq_classify"), _config("sentiment", "seq_classify", id2label='{"0": "neg", "1": "pos", "2": "mixed"}'),
            _config("ner", "token_classify"))}
        self.fail: Exception | None = None
        self.requests: list[tuple[str, dict]] = []

    async def infer(self, model, tensors, outputs, timeout=None):
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        arrays = {name: array for name, array, _ in tensors}
        self.requests.append((model, arrays))
        if "TEXT" in arrays:
            texts = [row[0].decode() for row in arrays["TEXT"]]
        else:
            texts = [" ".join(map(str, row)) for row in arrays["INPUT_IDS"]]
        pairs = [row[0].decode() for row in arrays["TEXT_PAIR"]] if "TEXT_PAIR" in arrays else [""] * len(texts)
        counts = np.array([[len(t.split()) + 2] for t in texts], dtype=np.int32)
        longest = int(counts.max())
        task = self.configs[model]["parameters"]["pooling_task"]["string_value"]
        if task == "embed":
            data = np.stack([_vector(t) for t in texts])
        elif task == "token_embed":
            data = np.zeros((len(texts), longest, 4), dtype=np.float32)
            for i, t in enumerate(texts):
                data[i, :counts[i, 0]] = [_vector(f"{t}{k}") for k in range(counts[i, 0])]
        elif task == "seq_classify":
            width = 3 if model == "sentiment" else 1
            data = np.stack([np.linspace(0.1, 0.9, width, dtype=np.float32) * (len(t + p) % 5 + 1) / 5
                             for t, p in zip(texts, pairs)])
        else:
            data = np.ones((len(texts), longest, 2), dtype=np.float32)
        name = {"embed": "EMBEDDING", "token_embed": "TOKEN_EMBEDDINGS", "seq_classify": "SCORES",
                "token_classify": "TOKEN_SCORES"}[task]
        return {name: data, "NUM_TOKENS": counts}

    async def server_ready(self, timeout):
        if self.fail is not None:
            raise self.fail
        return True

    async def loaded_models(self):
        return [{"name": n, "version": "1"} for n in self.configs]

    async def model_config(self, name):
        return self.configs[name]

    async def close(self):
        pass


def call(fake: FakeTriton, method: str, path: str, body=None, raw: bytes | None = None, **settings):
    """One request to a fresh app over a real socket; returns (status, headers, JSON or text)."""
    async def go():
        app = create_app(GatewaySettings("fake:1", **settings), pool=fake)
        async with TestClient(TestServer(app)) as client:
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            response = await client.request(method, path, data=data)
            text = await response.text()
            try:
                payload = json.loads(text)
            except ValueError:
                payload = text
            return response.status, response.headers, payload
    return asyncio.run(go())


@pytest.fixture
def fake():
    return FakeTriton()


def _error(payload, status, param=None, *needles):
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status, payload
    assert error["param"] == param, payload
    for needle in needles:
        assert needle in error["message"], error["message"]


def test_embeddings_float_and_base64_in_input_order(fake):
    texts = [f"text number {i} " + "a" * i for i in range(9)]  # 9 texts: three Triton requests of <= 4
    status, _, body = call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": texts})
    assert status == 200 and body["object"] == "list" and body["model"] == "embed"
    assert [d["index"] for d in body["data"]] == list(range(9)) and {d["object"] for d in body["data"]} == {"embedding"}
    for d, t in zip(body["data"], texts):
        assert np.allclose(d["embedding"], _vector(t), atol=1e-7)
    assert body["usage"] == {"prompt_tokens": sum(len(t.split()) + 2 for t in texts),
                             "total_tokens": sum(len(t.split()) + 2 for t in texts)}
    assert len(fake.requests) == 3 and all(len(a["TEXT"]) <= 4 for _, a in fake.requests)
    status, _, body = call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": "hi", "encoding_format": "base64"})
    assert np.array_equal(np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), "<f4"), _vector("hi"))


def test_embeddings_sends_every_option_input(fake):
    call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": [[5, 6, 7]], "dimensions": 2,
                                          "truncate_prompt_tokens": 2, "use_activation": False})
    (_, arrays), = fake.requests
    assert arrays["INPUT_IDS"].tolist() == [[5, 6, 7]] and arrays["DIMENSIONS"].tolist() == [[2]]
    assert arrays["TRUNCATE_PROMPT_TOKENS"].tolist() == [[2]] and arrays["USE_ACTIVATION"].tolist() == [[False]]


def test_model_defaults_to_the_one_named_after_the_task(fake):
    status, _, body = call(fake, "POST", "/v1/embeddings", {"input": "hi"})
    assert status == 200 and body["model"] == "embed"


def test_pooling_trims_token_rows_and_checks_the_task(fake):
    status, _, body = call(fake, "POST", "/pooling", {"model": "token_embed", "input": ["a b c d", "x"]})
    assert status == 200 and [len(d["data"]) for d in body["data"]] == [6, 3]
    assert body["data"][1]["object"] == "pooling"
    status, _, body = call(fake, "POST", "/pooling", {"model": "token_embed", "input": "x", "task": "embed"})
    assert status == 400
    _error(body, 400, "task", "Unsupported task: 'embed'", "'token_embed'")
    status, _, body = call(fake, "POST", "/pooling", {"task": "token_classify", "input": "x"})
    assert status == 200 and body["model"] == "ner"
    status, _, body = call(fake, "POST", "/pooling", {"input": "x"})
    _error(body, 400, "model", "needs model")


def test_endpoint_task_mismatch_names_what_the_model_serves(fake):
    status, _, body = call(fake, "POST", "/v1/embeddings", {"model": "ner", "input": "x"})
    assert status == 400
    _error(body, 400, "model", "/v1/embeddings needs a model serving 'embed'", "serves 'token_classify'")


def test_unknown_model_is_404_listing_the_served_ones(fake):
    status, _, body = call(fake, "POST", "/v1/embeddings", {"model": "nope", "input": "x"})
    assert status == 404
    _error(body, 404, "model", "'nope' does not exist", "embed (embed)", "ner (token_classify)")


def test_classify_labels(fake):
    status, _, body = call(fake, "POST", "/classify", {"model": "sentiment", "input": ["good", "bad one"]})
    assert status == 200
    first = body["data"][0]
    assert first["num_classes"] == 3 and first["label"] == "mixed" and len(first["probs"]) == 3
    status, _, body = call(fake, "POST", "/classify", {"model": "cross", "input": "x"})
    assert body["data"][0]["label"] == "LABEL_0" and body["data"][0]["num_classes"] == 1


def test_score_cosine_and_cross_encoder(fake):
    status, _, body = call(fake, "POST", "/score", {"model": "embed", "queries": "q", "documents": ["d1", "longer d2"]})
    assert status == 200
    expected = [float(_vector("q") @ _vector(d)) for d in ("d1", "longer d2")]
    assert np.allclose([d["score"] for d in body["data"]], expected, atol=1e-6)
    status, _, body = call(fake, "POST", "/score", {"model": "cross", "text_1": "q", "text_2": ["d1", "dd2"]})
    pairs = [(m, a["TEXT"].ravel().tolist(), a["TEXT_PAIR"].ravel().tolist()) for m, a in fake.requests[-1:]]
    assert pairs == [("cross", [b"q", b"q"], [b"d1", b"dd2"])] and len(body["data"]) == 2
    status, _, body = call(fake, "POST", "/score", {"model": "sentiment", "text_1": "q", "text_2": "d"})
    _error(body, 400, None, "one-label cross-encoder")


def test_rerank_sorted_with_top_n_on_every_path(fake):
    docs = ["alpha", {"text": "banana bread"}, "c"]
    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
        status, _, body = call(fake, "POST", path, {"model": "embed", "query": "a", "documents": docs, "top_n": 2})
        assert status == 200, body
        scores = {i: float(_vector("a") @ _vector(t)) for i, t in enumerate(["alpha", "banana bread", "c"])}
        best = sorted(scores, key=scores.get, reverse=True)[:2]
        assert [r["index"] for r in body["results"]] == best
        assert body["results"][0]["document"]["text"] in ("alpha", "banana bread", "c")
        assert np.isclose(body["results"][0]["relevance_score"], scores[best[0]], atol=1e-6)


def test_maxsim_with_token_embed(fake):
    status, _, body = call(fake, "POST", "/score", {"model": "token_embed", "queries": "q", "documents": "d d"})
    assert status == 200 and body["data"][0]["score"] > 0


def test_malformed_bodies(fake):
    status, _, body = call(fake, "POST", "/v1/embeddings", raw=b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, _, body = call(fake, "POST", "/v1/embeddings", raw=b"[1, 2]")
    assert status == 400 and "JSON object" in body["error"]["message"]
    status, _, body = call(fake, "POST", "/v1/embeddings", {"input": "x" * 5000}, max_body_bytes=1000)
    assert status == 413 and body["error"]["code"] == 413 and "1000 bytes" in body["error"]["message"]


def test_routes_and_methods(fake):
    status, _, body = call(fake, "GET", "/nope")
    assert status == 404 and body["error"]["type"] == "NotFoundError"
    status, _, body = call(fake, "GET", "/v1/embeddings")
    assert status == 405 and body["error"]["code"] == 405


def test_triton_unavailable_is_503_with_retry_after_and_timeout_is_504(fake):
    class Rpc(Exception):
        def status(self):
            return "StatusCode.UNAVAILABLE"

        def message(self):
            return "Exceeds maximum queue size"

    fake.fail = classify_error(Rpc(), "model 'embed'")
    assert isinstance(fake.fail, ServerUnavailableError)
    status, headers, body = call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": "x"})
    assert status == 503 and headers["Retry-After"] == "1" and "Exceeds maximum queue size" in body["error"]["message"]
    fake.fail = PoolingTimeoutError("model 'embed': timed out")
    status, _, body = call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": "x"})
    assert status == 504 and body["error"]["code"] == 504


def test_unexpected_failure_is_a_json_500(fake):
    fake.fail = RuntimeError("kaboom")
    status, _, body = call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": "x"})
    assert status == 500 and "kaboom" in body["error"]["message"]


def test_models_health_metrics(fake):
    status, _, body = call(fake, "GET", "/v1/models")
    assert status == 200 and [m["id"] for m in body["data"]] == sorted(fake.configs)
    assert {m["task"] for m in body["data"]} == {"embed", "token_embed", "seq_classify", "token_classify"}
    status, _, body = call(fake, "GET", "/v1/models/ner")
    assert status == 200 and body["id"] == "ner"
    assert call(fake, "GET", "/v1/models/zzz")[0] == 404
    status, _, body = call(fake, "GET", "/health")
    assert status == 200 and body["status"] == "ready" and set(body["models"]) == set(fake.configs)
    status, headers, text = call(fake, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain") and "requests_in_flight" in text


def test_health_fails_when_a_probe_inference_fails(fake):
    original = fake.infer

    async def broken(model, *args, **kwargs):
        if model == "ner":
            raise ServerUnavailableError("model 'ner': Stub process 'ner_0_0' is not healthy.")
        return await original(model, *args, **kwargs)

    fake.infer = broken
    status, headers, body = call(fake, "GET", "/health")
    assert status == 503 and headers["Retry-After"] == "1"
    assert "'ner'" in body["error"]["message"] and "not healthy" in body["models"]["ner"]
    assert body["models"]["embed"] == "ready"


def test_the_gateway_imports_neither_torch_nor_transformers():
    import subprocess
    import sys

    code = ("import sys, triton_pooling_server.gateway.app, triton_pooling_server.gateway.command; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
