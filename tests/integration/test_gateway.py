"""The HTTP gateway against the session tritonserver: every endpoint gives the raw Triton answer for
the same input, the real OpenAI SDK works against it, every error case gets its status, concurrent
requests keep their order, and the process stops cleanly."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from triton_pooling_contract.tasks import Tensor

from support.raw import infer
from support.triton import free_ports

pytestmark = pytest.mark.integration

TEXTS = ["Hello world.", "Short", "Triton serves pooling models: embedders, cross-encoders and NER taggers.",
         "What is the capital of France? Paris, on the Seine."]
ATOL = 1e-6


class RunningGateway:
    """The gateway as a process on a free loopback port; its output goes to `log_path`."""

    def __init__(self, triton_url: str, log_path: Path, *args: str, module: bool = False):
        (self.port,) = free_ports(1)
        head = [sys.executable, "-m", "triton_pooling_server.gateway"] if module else \
            [str(Path(sys.executable).parent / "triton-pooling"), "gateway"]
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen([*head, "--triton-url", triton_url, "--port", str(self.port), *args],
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_listening(self, timeout: float = 60.0, ready: bool = True) -> None:
        """Until /health answers (200 if `ready`); fails at once if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"the gateway exited with {self.process.returncode}: {self.output()}"
            status, _, _ = request(self.url, "GET", "/health", quiet=True)
            if status == 200 or (status is not None and not ready):
                return
            assert time.monotonic() < deadline, f"gateway /health not ready after {timeout} s: {self.output()}"
            time.sleep(0.2)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f"the gateway did not stop on SIGTERM: {self.output()}")
        self._log.close()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def running_gateway(triton_url: str, log_path: Path, *args: str):
    """A gateway listening (its /health 200) for the block, then stopped: it must exit 0 on SIGTERM."""
    running = RunningGateway(triton_url, log_path, *args)
    try:
        running.wait_listening(120)
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"the gateway exited with {code} on SIGTERM: {running.output()}"


def request(url: str, method: str, path: str, body=None, raw: bytes | None = None, quiet: bool = False):
    """(status, headers, parsed JSON or text); status None when nothing answered (quiet only)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            status, headers, text = response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, dict(e.headers), e.read().decode()
    except OSError:
        if quiet:
            return None, {}, None
        raise
    try:
        return status, headers, json.loads(text)
    except ValueError:
        return status, headers, text


@pytest.fixture(scope="module")
def gateway(triton_server, tmp_path_factory):
    with running_gateway(triton_server.options.grpc_url, tmp_path_factory.mktemp("gateway") / "gateway.log") as running:
        yield running


def post(gateway, path, body):
    status, headers, payload = request(gateway.url, "POST", path, body)
    assert status == 200, (status, payload)
    return payload


def close(got, expected, atol=ATOL):
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert np.max(np.abs(got - expected), initial=0.0) <= atol


def test_embeddings_equal_raw_triton(gateway, triton_server):
    raw = infer("grpc", triton_server, "embed", TEXTS)
    body = post(gateway, "/v1/embeddings", {"model": "embed", "input": TEXTS, "encoding_format": "float"})
    for row, expected in zip(body["data"], raw[Tensor.EMBEDDING]):
        close(row["embedding"], expected)
    assert [d["index"] for d in body["data"]] == [0, 1, 2, 3]
    assert body["usage"]["prompt_tokens"] == int(raw[Tensor.NUM_TOKENS].sum())
    encoded = post(gateway, "/v1/embeddings", {"model": "embed", "input": TEXTS, "encoding_format": "base64"})
    for row, expected in zip(encoded["data"], raw[Tensor.EMBEDDING]):
        close(np.frombuffer(base64.b64decode(row["embedding"]), dtype="<f4"), expected)
    small = infer("grpc", triton_server, "embed", TEXTS[:1], DIMENSIONS=32)
    body = post(gateway, "/v1/embeddings", {"model": "embed", "input": TEXTS[0], "dimensions": 32})
    close(body["data"][0]["embedding"], small[Tensor.EMBEDDING][0])


def test_token_id_input_equals_raw(gateway, triton_server):
    ids = [[101, 7592, 2088, 1012, 102], [101, 2460, 102]]
    body = post(gateway, "/v1/embeddings", {"model": "embed", "input": ids})
    for row, one in zip(body["data"], ids):
        close(row["embedding"], infer("grpc", triton_server, "embed", input_ids=[one])[Tensor.EMBEDDING][0])


@pytest.mark.parametrize("model,task,output,options", [
    ("token_embed", None, Tensor.TOKEN_EMBEDDINGS, {}),
    ("embed", "embed", Tensor.EMBEDDING, {"truncate_prompt_tokens": 3}),
    ("bert_ner", "token_classify", Tensor.TOKEN_SCORES, {"use_activation": False}),
    ("qwen2_prm", None, Tensor.TOKEN_SCORES, {}),
    ("bert_classifier", "classify", Tensor.SCORES, {"use_activation": False}),
])
def test_pooling_equals_raw_triton(gateway, triton_server, model, task, output, options):
    texts = [t + " <extra_0>" for t in TEXTS] if model == "qwen2_prm" else TEXTS
    tensors = {"truncate_prompt_tokens": Tensor.TRUNCATE_PROMPT_TOKENS, "use_activation": Tensor.USE_ACTIVATION}
    raw = infer("grpc", triton_server, model, texts, **{tensors[k]: v for k, v in options.items()})
    body = post(gateway, "/pooling", {"model": model, "input": texts, **({"task": task} if task else {}), **options})
    token_level = raw[output].ndim == 3
    for row, expected, count in zip(body["data"], raw[output], raw[Tensor.NUM_TOKENS].ravel()):
        assert row["object"] == "pooling"
        close(row["data"], expected[:count] if token_level else expected)


def test_pooling_task_the_model_does_not_serve(gateway):
    status, _, body = request(gateway.url, "POST", "/pooling", {"model": "bert_ner", "task": "embed", "input": "x"})
    assert status == 400 and body["error"]["param"] == "task"
    assert "Unsupported task: 'embed'" in body["error"]["message"] and "'token_classify'" in body["error"]["message"]


def test_classify_equals_raw_triton(gateway, triton_server):
    raw = infer("grpc", triton_server, "bert_classifier", TEXTS)
    body = post(gateway, "/classify", {"model": "bert_classifier", "input": TEXTS})
    for row, expected in zip(body["data"], raw[Tensor.SCORES]):
        close(row["probs"], expected)
        assert row["num_classes"] == 3 and row["label"] == f"LABEL_{int(np.argmax(expected))}"


def _cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_score_equals_raw_triton(gateway, triton_server):
    query, docs = TEXTS[0], TEXTS[1:]
    vectors = infer("grpc", triton_server, "embed", [query, *docs])[Tensor.EMBEDDING]
    body = post(gateway, "/score", {"model": "embed", "queries": query, "documents": docs})
    close([d["score"] for d in body["data"]], [_cosine(vectors[0], v) for v in vectors[1:]])
    pairs = infer("grpc", triton_server, "qwen2_reward", [query] * len(docs), pairs=docs)[Tensor.SCORES]
    body = post(gateway, "/score", {"model": "qwen2_reward", "text_1": query, "text_2": docs})
    close([d["score"] for d in body["data"]], pairs[:, 0])
    tokens = infer("grpc", triton_server, "token_embed", [query, docs[0]])
    q, d = (tokens[Tensor.TOKEN_EMBEDDINGS][i][:tokens[Tensor.NUM_TOKENS][i, 0]].astype(np.float64) for i in (0, 1))
    body = post(gateway, "/score", {"model": "token_embed", "queries": [query], "documents": [docs[0]]})
    close([body["data"][0]["score"]], [float((q @ d.T).max(axis=1).sum())], atol=1e-5)


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_rerank_equals_raw_triton(gateway, triton_server, path):
    query, docs = "Where is Paris?", TEXTS
    pairs = infer("grpc", triton_server, "qwen2_reward", [query] * len(docs), pairs=docs)[Tensor.SCORES][:, 0]
    body = post(gateway, path, {"model": "qwen2_reward", "query": query, "documents": [{"text": d} for d in docs],
                                "top_n": 3})
    order = list(np.argsort(-pairs, kind="stable")[:3])
    assert [r["index"] for r in body["results"]] == order
    for r in body["results"]:
        assert r["document"]["text"] == docs[r["index"]]
        close([r["relevance_score"]], [pairs[r["index"]]])


def test_openai_sdk(gateway, triton_server):
    import openai

    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    raw = infer("grpc", triton_server, "embed", TEXTS)[Tensor.EMBEDDING]
    default = client.embeddings.create(model="embed", input=TEXTS)  # the SDK asks for base64 and decodes it
    for item, expected in zip(default.data, raw):
        close(item.embedding, expected)
    assert default.usage.prompt_tokens > 0 and default.model == "embed"
    as_float = client.embeddings.create(model="embed", input=TEXTS[0], encoding_format="float")
    close(as_float.data[0].embedding, raw[0])
    small = client.embeddings.create(model="embed", input=TEXTS[0], dimensions=64)
    close(small.data[0].embedding, infer("grpc", triton_server, "embed", TEXTS[:1], DIMENSIONS=64)[Tensor.EMBEDDING][0])
    ids = client.embeddings.create(model="embed", input=[101, 7592, 102])
    close(ids.data[0].embedding, infer("grpc", triton_server, "embed", input_ids=[[101, 7592, 102]])[Tensor.EMBEDDING][0])
    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model="embed", input="hi", dimensions=1000)
    assert "DIMENSIONS must be between 1 and 384" in str(bad.value)  # Triton's INVALID_ARG, passed through
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="no-such-model", input="hi")
    assert "embed (embed)" in str(missing.value)


def test_openai_sdk_with_an_api_key(triton_server, tmp_path, monkeypatch):
    """The key from TRITON_POOLING_API_KEY; the SDK sends it as `Authorization: Bearer`, a wrong one is the
    SDK's AuthenticationError (401 in OpenAI's error shape)."""
    import openai

    monkeypatch.setenv("TRITON_POOLING_API_KEY", "sdk-test-key")
    keyed = RunningGateway(triton_server.options.grpc_url, tmp_path / "keyed.log")
    try:
        keyed.wait_listening(120)
        good = openai.OpenAI(base_url=keyed.url + "/v1", api_key="sdk-test-key", max_retries=0)
        out = good.embeddings.create(model="embed", input=TEXTS[0], encoding_format="float")
        close(out.data[0].embedding, infer("grpc", triton_server, "embed", TEXTS[:1])[Tensor.EMBEDDING][0])
        with pytest.raises(openai.AuthenticationError) as refused:
            openai.OpenAI(base_url=keyed.url + "/v1", api_key="wrong", max_retries=0).embeddings.create(
                model="embed", input="x")
        assert "invalid API key" in str(refused.value)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=keyed.url + "/v1", api_key="wrong", max_retries=0).models.list()
    finally:
        assert keyed.stop() == 0


@pytest.mark.parametrize("case,path,payload,status,param,needle", [
    ("malformed JSON", "/v1/embeddings", b"{oops", 400, None, "not valid JSON"),
    ("wrong field type", "/v1/embeddings", {"model": "embed", "input": "x", "dimensions": "8"}, 400, "dimensions", "integer"),
    ("missing input", "/pooling", {"model": "embed"}, 400, "input", "input is required"),
    ("unknown task", "/pooling", {"model": "embed", "input": "x", "task": "reward"}, 400, "task", "valid tasks"),
    ("unknown model", "/classify", {"model": "nope", "input": "x"}, 404, "model", "bert_classifier (seq_classify)"),
    ("Triton INVALID_ARG", "/v1/embeddings", {"model": "embed", "input": "word " * 600}, 400, "input",
     "TRUNCATE_PROMPT_TOKENS"),
    ("wrong endpoint for the task", "/classify", {"model": "embed", "input": "x"}, 400, "model", "needs a model serving"),
    ("too large", "/v1/embeddings", {"model": "embed", "input": "x" * (9 * 1024 * 1024)}, 413, None, "at most"),
])
def test_error_cases(gateway, case, path, payload, status, param, needle):
    raw = payload if isinstance(payload, bytes) else None
    got, _, body = request(gateway.url, "POST", path, None if raw else payload, raw=raw)
    assert got == status, body
    error = body["error"]
    assert error["code"] == status and error["param"] == param and needle in error["message"], error


def test_unreachable_triton_is_503_with_retry_after_and_a_short_deadline_504(triton_server, tmp_path):
    (dead,) = free_ports(1)
    down = RunningGateway(f"127.0.0.1:{dead}", tmp_path / "down.log", module=True)
    slow = RunningGateway(triton_server.options.grpc_url, tmp_path / "slow.log", "--timeout", "0.001")
    try:
        down.wait_listening(ready=False)
        status, headers, body = request(down.url, "POST", "/v1/embeddings", {"model": "embed", "input": "x"})
        assert status == 503 and headers.get("Retry-After") == "1" and body["error"]["code"] == 503, body
        status, headers, body = request(down.url, "GET", "/health")
        assert status == 503 and "Retry-After" in headers, body
        slow.wait_listening(ready=False)
        status, _, body = request(slow.url, "POST", "/v1/embeddings", {"model": "embed", "input": TEXTS * 8})
        assert status == 504 and "in time" in body["error"]["message"], body
    finally:
        assert down.stop() == 0 and slow.stop() == 0


def test_concurrent_requests_keep_order(gateway, triton_server):
    texts = [f"{t} (variant {i})" for i in range(8) for t in TEXTS]
    alone = {t: infer("grpc", triton_server, "embed", [t])[Tensor.EMBEDDING][0] for t in texts}
    jobs = [texts[i:i + 5] for i in range(0, len(texts), 3)] * 2

    def send(batch):
        return batch, post(gateway, "/v1/embeddings", {"model": "embed", "input": batch})

    with ThreadPoolExecutor(16) as pool:
        for batch, body in pool.map(send, jobs):
            assert [d["index"] for d in body["data"]] == list(range(len(batch)))
            for row, text in zip(body["data"], batch):
                close(row["embedding"], alone[text], atol=1e-5)  # other batch-mates: the batch-invariance bound


def test_models_health_and_metrics(gateway, test_model_specs):
    status, _, body = request(gateway.url, "GET", "/v1/models")
    served = {m["id"]: m["task"] for m in body["data"]}
    assert status == 200 and served["embed"] == "embed" and served["qwen2_prm"] == "token_classify"
    assert set(test_model_specs) <= set(served)
    status, _, body = request(gateway.url, "GET", "/health")
    assert status == 200 and body["status"] == "ready" and all(v == "ready" for v in body["models"].values()), body
    post(gateway, "/v1/embeddings", {"model": "embed", "input": "count me"})
    status, _, text = request(gateway.url, "GET", "/metrics")
    assert status == 200
    assert 'triton_pooling_gateway_requests_total{endpoint="/v1/embeddings",model="embed",status="200"}' in text
    assert 'triton_pooling_gateway_request_duration_seconds_bucket{endpoint="/v1/embeddings",model="embed",le="+Inf"}' in text
