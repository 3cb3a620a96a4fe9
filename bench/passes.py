"""How the engine cuts an execution into forward passes, per runtime: the served engine path in-process (tokenize, cut,
run, pool) over a stream of executions of N texts drawn at random from the mix corpus (as a dynamic batcher forms
them: shapes keep changing), under each rule, at 1 and 2 threads.

    python -m bench.passes [--runtimes onnx,openvino,openvino_bf16] [--threads 1,2] [--execution 10]

Rules: `near-equal` (a row is padded by at most max(2, 5%) of the pass's width), `buckets-N` (widths rounded up to
N tokens, rows of one bucket share a pass: fewer shapes for runtimes that compile per shape), `wide` (the token
budget alone).
"""

from __future__ import annotations

import argparse
import random
import time

from .corpus import make_corpus
from .hostinfo import host_label
from .steps import _requests, _service

RULES = ("near-equal", "buckets-16", "wide")


def apply_rule(engine, rule: str) -> None:
    from triton_pooling_backend.engine import cpu_pad_slack

    engine.pad_slack = None if rule == "wide" else cpu_pad_slack
    engine.width_multiple = int(rule.split("-")[1]) if rule.startswith("buckets-") else 1


def stream(texts: list[str], execution: int, count: int, seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    return [_requests(rng.sample(texts, execution)) for _ in range(count)]


def texts_per_second(handle, executions) -> float:
    start = time.perf_counter()
    for e in executions:
        handle(e)
    return sum(len(e) for e in executions) / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.passes", description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default="onnx,openvino,openvino_bf16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--execution", type=int, default=10, help="texts per execution (a c=32 load gives ~10)")
    parser.add_argument("--executions", type=int, default=60)
    parser.add_argument("--rules", default=",".join(RULES))
    args = parser.parse_args(argv)
    texts = make_corpus("mix", 512)
    rules = args.rules.split(",")
    print(f"Host: {host_label()}; a stream of {args.executions} executions of {args.execution} random mix texts "
          f"(fresh shapes included), texts/s\n")
    print("| runtime | threads | " + " | ".join(rules) + " |\n|---|---:|" + "---:|" * len(rules))
    for runtime in args.runtimes.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            cells = []
            for k, rule in enumerate(rules):
                service = _service(runtime, 512, threads)  # a fresh instance: no shape compiled yet
                apply_rule(service.engine, rule)
                service.handle(_requests(texts[:1]))
                cells.append(texts_per_second(service.handle, stream(texts, args.execution, args.executions, k)))
            print(f"| {runtime} | {threads} | " + " | ".join(f"{c:.0f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
