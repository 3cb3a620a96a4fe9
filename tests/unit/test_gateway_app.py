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
from support.fake_triton import FakeTriton, _config, _Server, _vector, answer, call, serving  # noqa: F401  (test_gateway_fuzz imports them from here)


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
    assert arrays["PROMPT_NAME"].tolist() == [[b""]]  # the model's default prompt, sent so every request batches alike
    call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": ["hi"], "prompt_name": "query"})
    assert fake.requests[-1][1]["PROMPT_NAME"].tolist() == [[b"query"]]


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


def _probe_failing(fake: FakeTriton, model: str, error: Exception) -> None:
    original = fake.infer

    async def infer(name, *args, **kwargs):
        if name == model and kwargs.get("queue_timeout") is not None:  # only the /health probe
            raise error
        return await original(name, *args, **kwargs)

    fake.infer = infer


@pytest.mark.parametrize("error,status,state", [
    (ServerUnavailableError("model 'ner': Stub process 'ner_0_0' is not healthy."), 503, "not healthy"),
    (ServerUnavailableError("x", server_message="Exceeds maximum queue size"), 200, "busy: Exceeds maximum queue"),
    (ServerUnavailableError("x", server_message="Request timeout expired"), 200, "busy: Request timeout expired"),
    (PoolingTimeoutError("model 'ner': timed out"), 200, "busy: no answer within 1.5 s"),
])
def test_health_dead_is_unready_and_busy_is_ready(fake, error, status, state):
    _probe_failing(fake, "ner", error)
    got, headers, body = call(fake, "GET", "/health")
    assert got == status and state in body["models"]["ner"], body
    assert body["models"]["embed"] == "ready"
    if status == 503:
        assert headers["Retry-After"] == "1" and "'ner'" in body["error"]["message"]
    assert set(fake.queue_timeouts) == {0.5}, "every probe carries its own queue timeout"


def test_health_a_model_silent_past_the_stall_window_is_unready(fake, monkeypatch):
    from triton_pooling_server.gateway.triton import health

    _probe_failing(fake, "ner", PoolingTimeoutError("timed out"))
    monkeypatch.setattr(health, "STALLED_AFTER_S", 0.0)
    status, _, body = call(fake, "GET", "/health")
    assert status == 503 and body["models"]["ner"].startswith("stalled"), body


def test_health_answers_in_time_while_every_inference_is_stuck_behind_user_traffic(fake):
    async def go():
        fake.gate = asyncio.Event()  # the models are saturated: no inference finishes
        async with serving(fake, probe_timeout=0.2) as client:
            user = asyncio.ensure_future(answer(client, "POST", "/v1/embeddings", {"input": "x"}))
            started = asyncio.get_running_loop().time()
            status, _, body = await answer(client, "GET", "/health")
            took = asyncio.get_running_loop().time() - started
            fake.gate.set()
            return status, body, took, (await user)[0]

    status, body, took, user = asyncio.run(go())
    assert status == 200 and all(v.startswith("busy") for v in body["models"].values()), body
    assert took < 2.0 and user == 200, took


KEY = "s3cret-key"
INFERENCE_ROUTES = [("POST", "/v1/embeddings"), ("POST", "/pooling"), ("POST", "/classify"), ("POST", "/score"),
                    ("POST", "/rerank"), ("POST", "/v1/rerank"), ("POST", "/v2/rerank"), ("GET", "/v1/models"),
                    ("GET", "/v1/models/embed")]


def test_api_key_guards_every_route_but_the_probes(fake):
    async def go():
        async with serving(fake, api_key=KEY) as client:
            for method, path in INFERENCE_ROUTES:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"},
                                {"Authorization": "Bearer \u00e9t\u00e9"}):
                    status, got, body = await answer(client, method, path, {"input": "x"}, headers=headers)
                    assert status == 401 and got["WWW-Authenticate"].startswith("Bearer"), (path, headers, body)
                    _error(body, 401, None, "API key")
            good = {"Authorization": f"Bearer {KEY}"}
            ok = await answer(client, "POST", "/v1/embeddings", {"input": "x"}, headers=good)
            models = await answer(client, "GET", "/v1/models", headers={"authorization": f"bearer {KEY}"})
            open_ = [(await answer(client, "GET", path))[0] for path in ("/health", "/metrics")]
            return ok[0], models[0], open_

    assert asyncio.run(go()) == (200, 200, [200, 200])


def test_past_max_concurrent_requests_is_429_at_once_and_probes_still_answer(fake):
    async def go():
        fake.gate = asyncio.Event()
        async with serving(fake, max_concurrent_requests=2) as client:
            held = [asyncio.ensure_future(answer(client, "POST", "/v1/embeddings", {"input": f"t{i}"})) for i in range(2)]
            while fake.in_flight < 2:
                await asyncio.sleep(0.01)
            shed = await answer(client, "POST", "/v1/embeddings", {"input": "third"})
            metrics = await answer(client, "GET", "/metrics")
            fake.gate.set()
            return shed, metrics[0], [(await h)[0] for h in held]

    (status, headers, body), metrics, held = asyncio.run(go())
    assert status == 429 and headers["Retry-After"] == "1" and held == [200, 200] and metrics == 200
    _error(body, 429, None, "--max-concurrent-requests 2")


def test_past_the_body_bytes_in_flight_is_429(fake):
    async def go():
        fake.gate = asyncio.Event()
        async with serving(fake, max_body_bytes=1000, max_body_bytes_in_flight=1500) as client:
            held = asyncio.ensure_future(answer(client, "POST", "/v1/embeddings", {"input": "x" * 900}))
            while fake.in_flight < 1:
                await asyncio.sleep(0.01)
            shed = await answer(client, "POST", "/v1/embeddings", {"input": "y" * 900})
            small = asyncio.ensure_future(answer(client, "POST", "/v1/embeddings", {"input": "z"}))
            await asyncio.sleep(0.05)
            fake.gate.set()
            return shed, (await held)[0], (await small)[0]

    (status, _, body), held, small = asyncio.run(go())
    assert status == 429 and held == 200 and small == 200
    _error(body, 429, None, "--max-body-bytes-in-flight 1500")


async def _raw_exchange(client: TestClient, data: bytes, wait: float) -> tuple[bytes, float]:
    """Send `data` on a bare connection; what comes back until the server closes it, and when it closed."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    started = asyncio.get_running_loop().time()
    writer.write(data)
    received = await asyncio.wait_for(reader.read(-1), wait)
    writer.close()
    return received, asyncio.get_running_loop().time() - started


def test_a_trickled_body_is_408_and_idle_connections_close(fake):
    async def go():
        async with serving(fake, body_timeout=0.3, keepalive_timeout=0.5) as client:
            slow = await _raw_exchange(client, b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                                               b"Content-Type: application/json\r\n\r\n{\"inp", 5)
            headers_never_end = await _raw_exchange(client, b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n", 5)
            idle = await _raw_exchange(client, b"", 5)
            return slow, headers_never_end, idle

    (slow, slow_s), (partial, partial_s), (idle, idle_s) = asyncio.run(go())
    assert slow.startswith(b"HTTP/1.1 408") and b"--body-timeout" in slow and 0.3 <= slow_s < 4, (slow, slow_s)
    assert partial == b"" and 0.4 <= partial_s < 3, partial_s  # closed by the keep-alive timeout
    assert idle == b"" and 0.4 <= idle_s < 3, idle_s


def test_the_gateway_imports_neither_torch_nor_transformers():
    import subprocess
    import sys

    code = ("import sys, triton_pooling_server.gateway.app, triton_pooling_server.gateway.command; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
