"""A large offline job through the project's own client: texts per second end to end."""

from __future__ import annotations

import time

from .results import Measurement

SYSTEM = "triton (PoolingClient offline job)"


def measure(url: str, protocol: str, texts: list[str], corpus: str, task: str = "embed") -> Measurement:
    from triton_pooling.client import PoolingClient

    with PoolingClient(url, protocol=protocol) as client:
        client.encode(texts[:8], task=task)  # warm-up and model discovery
        start = time.perf_counter()
        outputs = client.encode(texts, task=task)
        elapsed = time.perf_counter() - start
    if len(outputs) != len(texts):
        raise RuntimeError(f"the client returned {len(outputs)} outputs for {len(texts)} texts")
    return Measurement(SYSTEM, task, protocol, corpus, len(texts), len(texts) / elapsed, float("nan"), float("nan"),
                       requests=1, note=f"{len(texts)} texts, one call")
