"""Readiness that an inference proves: Triton ready (strict readiness: every model it loads is ready), and a
tiny inference through each loaded pooling model answered (a Python stub can die while Triton still says
ready).
The verdict is cached for `ttl` seconds and concurrent callers share one probe."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from triton_pooling.batching import EncodeOptions
from triton_pooling.errors import PoolingClientError
from triton_pooling.prompts import NormalizedPrompt

from .catalog import Catalog
from .encoder import TritonEncoder
from .pool import TritonPool

PROBE_TEXT = "ok"


@dataclasses.dataclass(frozen=True)
class HealthReport:
    ready: bool
    models: dict[str, str]  # model → "ready" or why not
    problem: str = ""  # when not ready: the first reason
    checked_at: float = 0.0


class Health:
    def __init__(self, pool: TritonPool, catalog: Catalog, encoder: TritonEncoder, ttl: float = 2.0,
                 probe_timeout: float = 10.0):
        self._pool, self._catalog, self._encoder = pool, catalog, encoder
        self._ttl = ttl
        self._probe_timeout = probe_timeout
        self._report: HealthReport | None = None
        self._running: asyncio.Future | None = None

    async def check(self) -> HealthReport:
        report = self._report
        if report is not None and time.monotonic() - report.checked_at < self._ttl:
            return report
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe())
            self._running.add_done_callback(self._store)
        return await asyncio.shield(self._running)

    def _store(self, future: asyncio.Future) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._report = future.result()

    async def _probe(self) -> HealthReport:
        try:
            if not await self._pool.server_ready(self._probe_timeout):
                return _not_ready({}, "Triton is not ready")
            served = await self._catalog.models(refresh=True)
            results = await asyncio.gather(*(self._infer(m) for m in served.values()))
            models = {m.name: r for m, r in zip(served.values(), results)}
        except PoolingClientError as e:
            return _not_ready({}, f"Triton unreachable: {e}")
        bad = {n: s for n, s in models.items() if s != "ready"}
        if bad:
            name, state = sorted(bad.items())[0]
            return _not_ready(models, f"model {name!r} is not ready: {state}")
        if not served:
            return _not_ready(models, "Triton serves no pooling models")
        return HealthReport(True, models, checked_at=time.monotonic())

    async def _infer(self, model) -> str:
        prompt = NormalizedPrompt(PROBE_TEXT, text=PROBE_TEXT)
        try:
            await asyncio.wait_for(self._encoder.encode(model.info, [prompt], EncodeOptions()), self._probe_timeout)
        except (PoolingClientError, asyncio.TimeoutError) as e:
            return f"probe inference failed: {e or 'timed out'}"
        return "ready"


def _not_ready(models: dict[str, str], problem: str) -> HealthReport:
    return HealthReport(False, models, problem, time.monotonic())

