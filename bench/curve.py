"""The runtime's cost curve: texts/s of the exported all-MiniLM-L6-v2 graph at fixed-length sequences, per runtime,
thread count and batch size (the issue-22 table). This is what the tuner's plan rests on: a runtime whose
throughput grows with the pass (bf16 on AMX) wants wide passes; one whose curve is flat wants many instances.

    python -m bench.curve [--runtimes openvino,openvino_bf16,onnx] [--threads 1,2] [--batches 1,4,16] [--tokens 24]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .engines import minilm_artifact
from .hostinfo import host_label


def fixed_batch(batch: int, tokens: int, vocab: int = 30522, seed: int = 0, with_types: bool = True):
    from triton_pooling_backend.encoders import EncoderBatch

    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab, size=(batch, tokens), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    mask = np.ones_like(ids)
    return EncoderBatch(ids, mask, np.zeros_like(ids) if with_types else None)


def rate(encoder, batch, seconds: float) -> float:
    encoder.run(batch)  # warm-up: the shape once
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        encoder.run(batch)
        done += len(batch.input_ids)
    return done / (time.perf_counter() - start)


def measure(runtime: str, threads: int, batches: tuple[int, ...], tokens: int, seconds: float) -> dict[int, float]:
    from triton_pooling_backend.encoders import open_lean_encoder
    from triton_pooling_contract.parameters import Runtime
    from triton_pooling_contract.serving import ServingDescription

    folder = minilm_artifact(runtime)
    d = ServingDescription.read(folder)
    encoder = open_lean_encoder(Runtime(runtime), folder / d.graph, d.graph_inputs, d.graph_output, threads)
    types = "token_type_ids" in d.graph_inputs
    return {b: rate(encoder, fixed_batch(b, tokens, with_types=types), seconds) for b in batches}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.curve", description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default="openvino,openvino_bf16,onnx")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    batches = tuple(int(b) for b in args.batches.split(","))
    print(f"Host: {host_label()}; {args.tokens}-token sequences, texts/s\n")
    print("| runtime | threads | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|---:|" + "---:|" * len(batches))
    for runtime in args.runtimes.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            rates = measure(runtime, threads, batches, args.tokens, args.seconds)
            print(f"| {runtime} | {threads} | " + " | ".join(f"{rates[b]:.0f}" for b in batches) + " |", flush=True)


if __name__ == "__main__":
    main()
