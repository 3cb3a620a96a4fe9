"""Readiness that tells the truth under load. Ready = Triton ready (strict: every model it loads is ready),
each pooling model ready by Triton's own metadata, and each model's instances alive, proven by a tiny probe
inference that never waits behind user traffic: it carries its own queue timeout and a short client deadline.

A Python stub can die while Triton still says ready (its model then answers `Stub process ... is not
healthy`), which only an inference shows. A *busy* model is alive: its queue refuses the probe at once
(`Exceeds maximum queue size`) or when the running batch ends (`Request timeout expired`), or a long batch
outlasts the probe's deadline. Busy stays ready — readiness is the Kubernetes Service's membership, and
taking every busy pod out at once would move the load nowhere — unless no answer at all came for
STALLED_AFTER_S, which no batch takes: a wedged instance.

The verdict is cached for `ttl` seconds and concurrent callers share one probe."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from triton_pooling.errors import PoolingClientError, PoolingTimeoutError, ServerUnavailableError
from triton_pooling.prompts import NormalizedPrompt

from .catalog import Catalog, ServedModel
from .encoder import TritonEncoder
from .pool import TritonPool

PROBE_TEXT = "ok"
READY = "ready"
# Triton's words for a queue that refused the probe: the model is there, and busy.
BUSY_ANSWERS = ("Exceeds maximum queue size", "Request timeout expired")
DEAD_ANSWER = "is not healthy"  # a dead Python stub
STALLED_AFTER_S = 60.0  # longer than any batch here runs (30 s is the default queue timeout)


@dataclasses.dataclass(frozen=True)
class HealthReport:
    ready: bool
    models: dict[str, str]  # model → "ready", "busy: ..." (also ready) or why not
    problem: str = ""  # when not ready: the first reason
    checked_at: float = 0.0


class Health:
    def __init__(self, pool: TritonPool, catalog: Catalog, encoder: TritonEncoder, ttl: float = 2.0,
                 probe_timeout: float = 1.5, queue_timeout: float = 0.5, clock=time.monotonic):
        self._pool, self._catalog, self._encoder = pool, catalog, encoder
        self._ttl = ttl
        self._probe_timeout = probe_timeout
        self._queue_timeout = queue_timeout
        self._clock = clock
        self._silent_since: dict[str, float] = {}  # model → when its probes stopped getting any answer
        self._report: HealthReport | None = None
        self._running: asyncio.Future | None = None

    async def check(self) -> HealthReport:
        report = self._report
        if report is not None and self._clock() - report.checked_at < self._ttl:
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
                return self._not_ready({}, "Triton is not ready")
            served = await self._catalog.models(refresh=True)
            states = await asyncio.gather(*(self._model_state(m) for m in served.values()))
        except PoolingClientError as e:
            return self._not_ready({}, f"Triton unreachable: {e}")
        models = {m.name: s for m, s in zip(served.values(), states)}
        bad = {n: s for n, s in models.items() if not alive(s)}
        if bad:
            name, state = sorted(bad.items())[0]
            return self._not_ready(models, f"model {name!r} is not ready: {state}")
        if not served:
            return self._not_ready(models, "Triton serves no pooling models")
        return HealthReport(True, models, checked_at=self._clock())

    async def _model_state(self, model: ServedModel) -> str:
        try:
            if not await self._pool.model_ready(model.name, self._probe_timeout):
                return "Triton reports the model not ready"
            await self._encoder.probe(model.info, NormalizedPrompt(PROBE_TEXT, text=PROBE_TEXT),
                                      self._probe_timeout, self._queue_timeout)
        except PoolingTimeoutError:
            return self._silent(model.name)
        except ServerUnavailableError as e:
            message = str(e.server_message or e)
            if DEAD_ANSWER not in message and any(b in message for b in BUSY_ANSWERS):
                self._silent_since.pop(model.name, None)
                return f"busy: {message}"
            return f"probe inference failed: {message}"
        except PoolingClientError as e:
            return f"probe inference failed: {e}"
        self._silent_since.pop(model.name, None)
        return READY

    def _silent(self, name: str) -> str:
        since = self._silent_since.setdefault(name, self._clock())
        silent = self._clock() - since
        if silent >= STALLED_AFTER_S:
            return f"stalled: no answer to any probe for {silent:.0f} s (a wedged instance)"
        return f"busy: no answer within {self._probe_timeout:g} s (a long batch is running)"

    def _not_ready(self, models: dict[str, str], problem: str) -> HealthReport:
        return HealthReport(False, models, problem, self._clock())


def alive(state: str) -> bool:
    return state == READY or state.startswith("busy")
