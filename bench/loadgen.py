"""A closed-loop HTTP load generator (asyncio + aiohttp): `concurrency` workers, each sending one
single-text request after another for a fixed time. The same generator drives our HTTP endpoint
and Infinity's REST API, so their comparison is fair (perf_analyzer cannot speak Infinity's API)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from typing import Callable

from .results import latency_stats

# Builds (path, JSON body) for one text.
RequestMaker = Callable[[str], tuple[str, dict]]


@dataclasses.dataclass
class LoadResult:
    throughput: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    first_error: str = ""


def triton_http_request(model: str) -> RequestMaker:
    """KServe v2 JSON inference with the text as a [1, 1] BYTES tensor."""
    def make(text: str) -> tuple[str, dict]:
        return f"/v2/models/{model}/infer", {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES",
                                                         "data": [text]}]}
    return make


def infinity_request(model: str) -> RequestMaker:
    """Infinity's OpenAI-style /embeddings with one input."""
    return lambda text: ("/embeddings", {"model": model, "input": [text]})


def run_load(base_url: str, make_request: RequestMaker, texts: list[str], concurrency: int,
             seconds: float, warmup_seconds: float = 1.0) -> LoadResult:
    return asyncio.run(_run(base_url, make_request, texts, concurrency, seconds, warmup_seconds))


async def _run(base_url, make_request, texts, concurrency, seconds, warmup_seconds) -> LoadResult:
    import aiohttp

    cycle = itertools.cycle(texts)
    latencies: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:
        async def worker(until: float, record: bool) -> None:
            while time.perf_counter() < until:
                path, body = make_request(next(cycle))
                start = time.perf_counter()
                async with session.post(path, json=body) as response:
                    await response.read()
                    ok = response.status == 200
                if record:
                    (latencies.append(time.perf_counter() - start) if ok
                     else errors.append(f"HTTP {response.status}"))

        await asyncio.gather(*(worker(time.perf_counter() + warmup_seconds, False) for _ in range(concurrency)))
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    p50, p99 = latency_stats(latencies)
    return LoadResult(len(latencies) / elapsed, p50, p99, len(latencies), len(errors), errors[0] if errors else "")
