"""The in-process ceiling: sentence-transformers on the same model and corpus, no server, at each
batch size (the best one is the ceiling the served model is compared with)."""

from __future__ import annotations

import time
from pathlib import Path

from .results import Measurement, latency_stats

SYSTEM = "in-process sentence-transformers"  # fp32: the ceiling every ratio is taken to
SYSTEM_BF16 = "in-process sentence-transformers bf16"  # the peer a speed-minded user picks on a bf16 CPU


def load_sentence_transformer(model_path: Path, threads: int, bf16: bool = False):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(model_path), device="cpu")
    return model.to(torch.bfloat16) if bf16 else model


def measure_batch(model, texts: list[str], batch_size: int, seconds: float, corpus: str,
                  system: str = SYSTEM) -> Measurement:
    """Batch 1: one text per call, latency per text. Larger: the whole corpus per call, as a user's
    offline job would (sentence-transformers sorts it by length, then cuts batches), for at least
    `seconds`; latency there is the mean time per batch."""
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    latencies, done, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunk = [texts[done % len(texts)]] if batch_size == 1 else texts
        t0 = time.perf_counter()
        model.encode(chunk, batch_size=batch_size, convert_to_numpy=True)
        latencies.append(time.perf_counter() - t0)
        done += len(chunk)
    elapsed = time.perf_counter() - start
    if batch_size == 1:
        p50, p99 = latency_stats(latencies)
    else:
        p50, p99 = 1000.0 * elapsed * batch_size / done, float("nan")
    return Measurement(system, "embed", "python", corpus, batch_size, done / elapsed, p50, p99, requests=len(latencies),
                       note="" if batch_size == 1 else "whole corpus per call")


def sweep(model_path: Path, texts: list[str], batch_sizes: tuple[int, ...], seconds: float, corpus: str,
          threads: int, bf16: bool = False) -> list[Measurement]:
    model = load_sentence_transformer(model_path, threads, bf16)
    system = SYSTEM_BF16 if bf16 else SYSTEM
    return [measure_batch(model, texts, b, seconds, corpus, system) for b in batch_sizes]


def reference_embeddings(model_path: Path, texts: list[str], threads: int):
    """sentence-transformers fp32's embeddings: what every served variant's lowest cosine is taken against."""
    return load_sentence_transformer(model_path, threads).encode(texts, batch_size=16, convert_to_numpy=True)


def best(measurements: list[Measurement]) -> Measurement:
    return max(measurements, key=lambda m: m.throughput)
