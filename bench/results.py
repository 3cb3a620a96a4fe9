"""One measured point, and the stats every driver reports the same way."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Measurement:
    system: str  # e.g. "in-process sentence-transformers", "triton (perf_analyzer)", "infinity"
    task: str
    protocol: str  # grpc, http, python
    corpus: str
    concurrency: int  # in-process: the batch size
    throughput: float  # texts per second
    p50_ms: float
    p99_ms: float
    requests: int = 0
    errors: int = 0
    note: str = ""


def latency_stats(latencies_s: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds; NaN when nothing completed."""
    if not latencies_s:
        return float("nan"), float("nan")
    ms = np.asarray(latencies_s) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
