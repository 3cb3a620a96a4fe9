"""A fake Triton for the gateway's unit tests (no server), and helpers that run the gateway's app over a real
loopback socket against it: tests/unit/test_gateway_*.py share them."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from aiohttp.test_utils import TestClient, TestServer

from triton_pooling.errors import InternalServerError, classify_error
from triton_pooling_server.gateway.app import create_app, runner_options
from triton_pooling_server.gateway.settings import GatewaySettings


def _config(name: str, task: str, **params: str) -> dict:
    inputs = ["TEXT", "INPUT_IDS", "TEXT_PAIR", "TRUNCATE_PROMPT_TOKENS", "DIMENSIONS", "USE_ACTIVATION", "PROMPT_NAME"]
    parameters = {"pooling_task": {"string_value": task}, **{k: {"string_value": v} for k, v in params.items()}}
    return {"name": name, "max_batch_size": 4, "input": [{"name": i} for i in inputs], "parameters": parameters}


def _sparse_config(name: str = "sparse") -> dict:
    """A sparse (SPLADE) embed model as `build` writes it: SPARSE_* outputs instead of EMBEDDING."""
    config = _config(name, "embed", pooling_type="SPLADE", use_activation="false")
    config["output"] = [{"name": n} for n in ("SPARSE_INDICES", "SPARSE_VALUES", "SPARSE_TOKENS", "NUM_TOKENS")]
    return config


def _sparse(text: str) -> dict[int, float]:
    """The fake sparse model's weights: one entry per distinct character (its code point), weighted by its count
    (texts of different lengths hold different numbers of entries, so a request's rows are padded)."""
    return {ord(c): float(text.count(c)) / 2 for c in sorted(set(text))}


def _sparse_token(token_id: int) -> str:
    return f"##{chr(token_id)}"


def _sparse_outputs(texts: list[str]) -> dict[str, np.ndarray]:
    """Padded as the contract pads a request: to its most nonzeros, with index -1, weight 0 and token ""."""
    rows = [_sparse(t) for t in texts]
    width = max(1, max(len(r) for r in rows))
    indices = np.full((len(rows), width), -1, dtype=np.int32)
    values = np.zeros((len(rows), width), dtype=np.float32)
    tokens = np.full((len(rows), width), b"", dtype=object)
    for i, row in enumerate(rows):
        indices[i, :len(row)] = list(row)
        values[i, :len(row)] = list(row.values())
        tokens[i, :len(row)] = [_sparse_token(k).encode() for k in row]
    return {"SPARSE_INDICES": indices, "SPARSE_VALUES": values, "SPARSE_TOKENS": tokens}


def _vector(text: str) -> np.ndarray:
    v = np.array([len(text), sum(map(ord, text)) % 17 + 1, text.count("a") + 0.5, 1.0], dtype=np.float32)
    return v / np.linalg.norm(v)


class FakeTriton:
    """Answers like the contract: one row per text, token rows zero-padded, NUM_TOKENS per text."""

    def __init__(self, sparse: bool = False):
        """`sparse`: also serve a sparse (SPLADE) embed model named "sparse"."""
        self.configs = {c["name"]: c for c in (
            _config("embed", "embed"), _config("token_embed", "token_embed"),
            _config("cross", "seq_classify"), _config("sentiment", "seq_classify", id2label='{"0": "neg", "1": "pos", "2": "mixed"}'),
            _config("ner", "token_classify"), *((_sparse_config(),) if sparse else ()))}
        self.outputs: list[tuple[str, ...]] = []  # the outputs each inference asked for
        self.fail: Exception | None = None
        self.requests: list[tuple[str, dict]] = []
        self.queue_timeouts: list[float | None] = []
        self.in_flight = self.most_in_flight = 0
        self.gate: asyncio.Event | None = None  # when set, inferences wait for it

    async def infer(self, model, tensors, outputs, timeout=None, queue_timeout=None):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:  # a probe (it carries a queue timeout) keeps its deadline, timing out as the pool reports it
            await asyncio.wait_for(self.gate.wait() if self.gate else asyncio.sleep(0), queue_timeout and timeout)
        except asyncio.TimeoutError as e:
            raise classify_error(e, f"model {model!r}") from e
        finally:
            self.in_flight -= 1
        if self.fail is not None:
            raise self.fail
        arrays = {name: array for name, array, _ in tensors}
        self.requests.append((model, arrays))
        self.queue_timeouts.append(queue_timeout)
        if "TEXT" in arrays:
            texts = [row[0].decode() for row in arrays["TEXT"]]
        else:
            texts = [" ".join(map(str, row)) for row in arrays["INPUT_IDS"]]
        pairs = [row[0].decode() for row in arrays["TEXT_PAIR"]] if "TEXT_PAIR" in arrays else [""] * len(texts)
        counts = np.array([[len(t.split()) + 2] for t in texts], dtype=np.int32)
        longest = int(counts.max())
        self.outputs.append(tuple(outputs))
        params = self.configs[model]["parameters"]
        task = params["pooling_task"]["string_value"]
        if params.get("pooling_type", {}).get("string_value") == "SPLADE":
            return self._asked({**_sparse_outputs(texts), "NUM_TOKENS": counts}, outputs, model)
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

    @staticmethod
    def _asked(answer: dict, outputs, model: str) -> dict:
        """Only the outputs asked for, as Triton answers; one the model lacks fails as the pool reports it."""
        missing = [n for n in outputs if n not in answer]
        if missing:
            raise InternalServerError(f"model {model!r}: the answer has no {missing[0]} output")
        return {n: answer[n] for n in outputs}

    async def server_ready(self, timeout):
        if self.fail is not None:
            raise self.fail
        return True

    async def model_ready(self, name, timeout):
        return name in self.configs

    async def loaded_models(self):
        return [{"name": n, "version": "1"} for n in self.configs]

    async def model_config(self, name):
        return self.configs[name]

    async def close(self):
        pass


class _Server(TestServer):
    """TestServer with the gateway's server options (TestServer drops its constructor's extra arguments)."""

    def __init__(self, app, options: dict):
        super().__init__(app)
        self._options = options

    async def _make_runner(self, **kwargs):
        return await super()._make_runner(**kwargs, **self._options)


def serving(fake: FakeTriton, **settings) -> TestClient:
    """A fresh app over a real loopback socket (`async with serving(...) as client`)."""
    settings = GatewaySettings("fake:1", **settings)
    return TestClient(_Server(create_app(settings, pool=fake), runner_options(settings)))


async def answer(client: TestClient, method: str, path: str, body=None, raw: bytes | None = None, headers=None):
    """(status, headers, JSON or text) of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    response = await client.request(method, path, data=data, headers=headers)
    text = await response.text()
    try:
        return response.status, response.headers, json.loads(text)
    except ValueError:
        return response.status, response.headers, text


def call(fake: FakeTriton, method: str, path: str, body=None, raw: bytes | None = None, headers=None, **settings):
    """One request to a fresh app; returns (status, headers, JSON or text)."""
    async def go():
        async with serving(fake, **settings) as client:
            return await answer(client, method, path, body, raw, headers)
    return asyncio.run(go())
