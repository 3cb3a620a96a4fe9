"""Run a request's Triton calls with at most `limit` in flight: pre-tokenized input travels as one Triton
request per distinct length (INPUT_IDS rows share a length), so 300 id lists of 300 lengths would otherwise
be 300 simultaneous requests, overflow a model's queue (256) and make other clients' requests fail."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Sequence, TypeVar

T = TypeVar("T")


async def gather_bounded(calls: Sequence[Callable[[], Awaitable[T]]], limit: int,
                         check: Callable[[T], None] = lambda result: None) -> list[T]:
    """Every call's result in call order. `check` sees each result as it arrives and may raise to stop the
    rest; the first failure cancels the calls in flight (their answers are not worth waiting for)."""
    if len(calls) == 1:
        result = await calls[0]()
        check(result)
        return [result]
    results: list = [None] * len(calls)
    todo = iter(range(len(calls)))  # shared by the workers: each takes the next call when it is free

    async def worker() -> None:
        for index in todo:
            results[index] = await calls[index]()
            check(results[index])

    workers = [asyncio.ensure_future(worker()) for _ in range(min(limit, len(calls)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        raise
    return results
