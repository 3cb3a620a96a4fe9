"""Retry with exponential backoff, only while the server is unavailable (never for bad requests)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Awaitable, Callable, Iterator, TypeVar

from .errors import InvalidRequestError, classify_error, is_retryable

T = TypeVar("T")


# Defaults sized to outlast what `triton-pooling serve` needs to heal: a dead model instance is
# reloaded within seconds, a whole-server restart takes ~15-20 s; these retry for ~23.5 s in all
# (0.5 + 1 + 2 + 4 x 5), only while the server answers "unavailable".
DEFAULT_RETRIES = 8
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 4.0


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    retries: int = DEFAULT_RETRIES  # extra attempts after the first
    backoff: float = DEFAULT_BACKOFF  # seconds before the first retry, doubled each time
    max_backoff: float = DEFAULT_MAX_BACKOFF

    @property
    def budget_s(self) -> float:
        """Seconds of back-off in all, once every retry is spent."""
        return sum(self.delays())

    def __post_init__(self):
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise InvalidRequestError(f"retries, backoff and max_backoff must be >= 0; got {self}")

    def delays(self) -> Iterator[float]:
        for attempt in range(self.retries):
            yield min(self.max_backoff, self.backoff * (2 ** attempt))


def call_with_retry(call: Callable[[], T], policy: RetryPolicy, context: str) -> T:
    delays = policy.delays()
    while True:
        try:
            return call()
        except Exception as e:  # noqa: BLE001  (classified below; unknown kinds re-raised wrapped)
            error = classify_error(e, context)
            delay = next(delays, None) if is_retryable(error) else None
            if delay is None:
                _raise(error, e)
        time.sleep(delay)


async def acall_with_retry(call: Callable[[], Awaitable[T]], policy: RetryPolicy, context: str) -> T:
    delays = policy.delays()
    while True:
        try:
            return await call()
        except Exception as e:  # noqa: BLE001
            error = classify_error(e, context)
            delay = next(delays, None) if is_retryable(error) else None
            if delay is None:
                _raise(error, e)
        await asyncio.sleep(delay)


def _raise(error: Exception, cause: Exception):
    if error is cause:
        raise error
    raise error from cause
