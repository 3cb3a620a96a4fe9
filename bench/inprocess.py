"""The in-process ceiling: sentence-transformers on the same model and corpus, no server, at each
batch size (the best one is the ceiling the served model is compared with)."""

from __future__ import annotations

import time
from pathlib import Path

from .results import Measurement, latency_stats

SYSTEM = "in-process sentence-transformers"


def load_sentence_transformer(model_path: Path, threads: int):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    return SentenceTransformer(str(model_path), device="cpu")


def measure_batch(model, texts: list[str], batch_size: int, seconds: float, corpus: str) -> Measurement:
    """Encode consecutive batches of `batch_size` texts for about `seconds`; latency is per batch."""
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    latencies, done, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        first = (done % len(texts))
        batch = (texts + texts)[first: first + batch_size]
        t0 = time.perf_counter()
        model.encode(batch, batch_size=batch_size, convert_to_numpy=True)
        latencies.append(time.perf_counter() - t0)
        done += len(batch)
    elapsed = time.perf_counter() - start
    p50, p99 = latency_stats(latencies)
    return Measurement(SYSTEM, "embed", "python", corpus, batch_size, done / elapsed, p50, p99, requests=len(latencies))


def sweep(model_path: Path, texts: list[str], batch_sizes: tuple[int, ...], seconds: float, corpus: str,
          threads: int) -> list[Measurement]:
    model = load_sentence_transformer(model_path, threads)
    return [measure_batch(model, texts, b, seconds, corpus) for b in batch_sizes]


def best(measurements: list[Measurement]) -> Measurement:
    return max(measurements, key=lambda m: m.throughput)
