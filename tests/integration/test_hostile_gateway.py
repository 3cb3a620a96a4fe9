"""Hostile traffic against the real thing, on loopback, bounded in time: `triton-pooling serve --gateway-port`
with the API key from TRITON_POOLING_API_KEY, over two tiny seeded models (embed with a 16-request Triton
queue, token_embed), plus a second gateway with small limits. Each case prints what it measured (the
figures in docs/reliability.md come from `pytest -s` of this file)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.tasks import PoolingTask, Tensor
from triton_pooling_server.builder.config_text import ModelSpec
from triton_pooling_server.launch.stubs import command_line, descendants

from support.raw import infer
from support.serve_cli import ServeCommand
from support.triton import free_ports, write_model

pytestmark = pytest.mark.integration

KEY = "hostile-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
GATEWAY = "triton_pooling_server.gateway"


def call(url: str, path: str, body=None, raw: bytes | None = None, headers=AUTH, timeout: float = 60):
    """(status, headers, JSON or text, seconds); status None when the connection failed."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json", **headers})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, got, text = response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        status, got, text = e.code, dict(e.headers), e.read().decode()
    except OSError as e:
        return None, {}, str(e), time.monotonic() - started
    took = time.monotonic() - started
    try:
        return status, got, json.loads(text), took
    except ValueError:
        return status, got, text, took


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """serve + gateway (key from the environment) on a repository of two tiny models; SIGHUP at the end."""
    from support.checkpoints import make_checkpoint

    root = tmp_path_factory.mktemp("hostile")
    checkpoint = make_checkpoint("bert-embed", root / "checkpoint", seed=7)
    write_model(root / "repo", ModelSpec("embed", ModelDefinition(PoolingTask.EMBED, str(checkpoint)), max_queue_size=16))
    write_model(root / "repo", ModelSpec("token_embed", ModelDefinition(PoolingTask.TOKEN_EMBED, str(checkpoint))))
    (port,) = free_ports(1)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRITON_POOLING_API_KEY", KEY)
        serve = ServeCommand(root / "repo", root / "triton.log", "--gateway-port", str(port)).start()
    try:
        serve.wait_ready(180)
        serve.gateway_url = f"http://127.0.0.1:{port}"
        serve.raw = types.SimpleNamespace(options=serve)  # what support.raw's infer reads
        yield serve
        pids = descendants(serve.process.pid)
        os.kill(serve.process.pid, signal.SIGHUP)  # a closed terminal stops everything, as SIGTERM does
        assert serve.wait_exit(60) == 0, serve.output()
        time.sleep(0.5)
        assert not [p for p in pids if Path(f"/proc/{p}").exists()], "processes outlived serve after SIGHUP"
    finally:
        serve.stop(timeout=30)


@pytest.fixture(scope="module")
def tight(served, tmp_path_factory):
    """A second gateway on the same Triton with small bounds, so floods and trickles are quick to show."""
    (port,) = free_ports(1)
    log = open(tmp_path_factory.mktemp("tight") / "gateway.log", "wb")
    args = ["--max-concurrent-requests", "8", "--body-timeout", "1", "--keepalive-timeout", "1",
            "--max-output-bytes", "1000000", "--probe-timeout", "1"]
    process = subprocess.Popen([sys.executable, "-m", GATEWAY, "--triton-url", served.grpc_url, "--port", str(port),
                                *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={k: v for k, v in os.environ.items() if k != "TRITON_POOLING_API_KEY"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while call(url, "/health")[0] != 200:
        assert process.poll() is None and time.monotonic() < deadline, "the tight gateway did not get ready"
        time.sleep(0.2)
    yield url
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    log.close()


def _gateway_pid(serve: ServeCommand) -> int:
    pids = [p for p in descendants(serve.process.pid) if GATEWAY in " ".join(command_line(p))]
    assert len(pids) == 1, pids
    return pids[0]


def test_the_key_guards_every_inference_route_and_never_travels_on_a_command_line(served):
    url = served.gateway_url
    for path, body in [("/v1/embeddings", {"input": "x"}), ("/pooling", {"model": "embed", "input": "x"}),
                       ("/classify", {"input": "x"}), ("/score", {"queries": "q", "documents": "d"}),
                       ("/v2/rerank", {"query": "q", "documents": ["d"]}), ("/v1/models", None)]:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            status, got, payload, _ = call(url, path, body, headers=headers)
            assert status == 401 and payload["error"]["type"] == "AuthenticationError", (path, payload)
            assert got.get("WWW-Authenticate", "").startswith("Bearer")
    assert call(url, "/v1/embeddings", {"input": "x"})[0] == 200
    assert [call(url, p, headers={})[0] for p in ("/health", "/metrics")] == [200, 200]
    gateway = _gateway_pid(served)
    assert KEY not in " ".join(command_line(gateway)) and KEY not in " ".join(command_line(served.process.pid))
    assert f"TRITON_POOLING_API_KEY={KEY}".encode() in Path(f"/proc/{gateway}/environ").read_bytes()


def test_malformed_bodies_are_400_naming_the_field(served):
    cases = [b'{"input": [9223372036854775808]}', b'{"input": ' + b"[" * 1000 + b"]" * 1000 + b"}",
             b'{"input": ' + b"[" * 1100 + b"]" * 1100 + b"}", json.dumps({"input": [{}] * 100_000}).encode(),
             b'{"input": "a", "dimensions": 99999999999}']
    for raw in cases:
        status, _, body, took = call(served.gateway_url, "/v1/embeddings", raw=raw)
        assert status == 400 and body["error"]["type"] == "BadRequestError", (raw[:40], status, body)
        print(f"malformed {raw[:24]!r}...: 400 in {took * 1000:.0f} ms")


def test_token_ids_of_120_lengths_in_one_request_are_exact_and_a_second_client_sees_no_error(served):
    ids = [[5 + (i * 7 + j) % 900 for j in range(n)] for i, n in enumerate(range(1, 121))]  # 120 Triton requests
    with ThreadPoolExecutor(2) as pool:
        other = pool.submit(lambda: [call(served.gateway_url, "/v1/embeddings", {"model": "embed", "input": "other"})[0]
                                     for _ in range(15)])
        status, _, body, took = call(served.gateway_url, "/v1/embeddings", {"model": "embed", "input": ids})
        others = other.result()
    assert status == 200, body
    print(f"120 id lists of 120 lengths: 200 in {took:.2f} s; the other client: {others}")
    assert others == [200] * 15, "the queue (16) never overflowed: calls go at most 8 at once"
    for one in (ids[0], ids[59], ids[119]):
        expected = infer("grpc", served.raw, "embed", input_ids=[one])[Tensor.EMBEDDING][0]
        got = body["data"][ids.index(one)]["embedding"]
        assert np.max(np.abs(np.asarray(got) - expected)) <= 1e-6


def test_an_output_too_large_is_413_before_it_is_computed(tight):
    assert call(tight, "/health")[0] == 200  # the probe has learnt each model's row width
    texts = ["w " * 120] * 2048  # token_embed: 2048 x up to 244 rows x 32 floats: ~64 MB > the 1 MB limit
    status, _, body, took = call(tight, "/pooling", {"model": "token_embed", "input": texts})
    assert status == 413 and "--max-output-bytes" in body["error"]["message"] and "would be" in body["error"]["message"]
    print(f"token_embed 2048 x 122 tokens: 413 in {took * 1000:.0f} ms ({body['error']['message'][:80]}...)")
    assert took < 2.0


def test_a_flood_is_shed_with_429_or_503_in_time_and_health_stays_200(served, tight):
    """20 clients on serve's gateway (its bound, 512, is far: Triton's 16-request queue overflows, 503) and 20
    on the tight one (8 in flight, then 429), each sending 32 texts back to back for 6 s."""
    texts = [f"a longer sentence number {i}, repeated to be worth batching " * 3 for i in range(32)]
    urls = [served.gateway_url] * 20 + [tight] * 20
    health: list[tuple[str, int, float]] = []
    stop = time.monotonic() + 6

    def poll_health():
        while time.monotonic() < stop:
            for url in (served.gateway_url, tight):
                status, _, _, took = call(url, "/health", timeout=10)
                health.append((url, status, took))
            time.sleep(0.2)

    def client(url):
        results = []
        while time.monotonic() < stop:
            status, headers, _, took = call(url, "/v1/embeddings", {"model": "embed", "input": texts}, timeout=30)
            results.append((url, status, took, headers.get("Retry-After")))
        return results

    with ThreadPoolExecutor(len(urls) + 1) as pool:
        watcher = pool.submit(poll_health)
        answers = [r for rs in pool.map(client, urls) for r in rs]
        watcher.result()
    for url, name in ((served.gateway_url, "serve's gateway"), (tight, "tight gateway")):
        mine = [a for a in answers if a[0] == url]
        counts = {s: sum(1 for a in mine if a[1] == s) for s in sorted({a[1] for a in mine}, key=str)}
        shed = [a[2] for a in mine if a[1] in (429, 503)]
        checks = [h for h in health if h[0] == url]
        print(f"flood on {name}: {counts}; slowest shed answer {max(shed, default=0):.2f} s; /health "
              f"{len(checks)} answers {sorted({h[1] for h in checks})}, slowest {max(h[2] for h in checks):.2f} s")
    assert {a[1] for a in answers} <= {200, 429, 503}, answers
    assert any(a[1] == 429 for a in answers if a[0] == tight), "the tight gateway shed with 429"
    assert all(a[3] == "1" for a in answers if a[1] in (429, 503)), "every shed answer says when to retry"
    assert all(a[2] < 2.0 for a in answers if a[1] == 429)
    assert {h[1] for h in health} == {200} and max(h[2] for h in health) < 2.0, health


def _raw(url: str, data: bytes, wait: float) -> tuple[bytes, float]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        started = time.monotonic()
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started


def test_slow_bodies_get_408_and_unfinished_headers_are_cut(tight):
    slow, slow_s = _raw(tight, b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"in", 10)
    cut, cut_s = _raw(tight, b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n", 10)
    print(f"slow body: 408 after {slow_s:.2f} s (closed); unfinished headers: closed after {cut_s:.2f} s")
    assert slow.startswith(b"HTTP/1.1 408") and 1.0 <= slow_s < 5
    assert cut == b"" and 0.9 <= cut_s < 5


def test_a_killed_gateway_is_restarted_by_serve(served):
    url = served.gateway_url
    killed_at = time.monotonic()
    os.kill(_gateway_pid(served), signal.SIGKILL)
    while call(url, "/v1/embeddings", {"input": "back?"}, timeout=5)[0] != 200:
        assert time.monotonic() - killed_at < 30 and served.process.poll() is None, served.output()
        time.sleep(0.1)
    back = time.monotonic() - killed_at
    print(f"gateway kill -9: answering again {back:.1f} s later")
    assert served.said("restarting it in 0.5 s") and served.said("gateway restarted")
