"""Export a checkpoint's encoder for one pooling task to ONNX and check it against torch with ONNX Runtime.

    python -m triton_pooling_server.builder.tensorrt.export_onnx CHECKPOINT --task embed --output model.onnx [--tolerance 1e-4]

The graph takes input_ids, attention_mask (and token_type_ids for BERT-style segment ids) with dynamic batch
and sequence axes, and returns last_hidden_state (embed, token_embed) or the checkpoint's own logits
(seq_classify, token_classify). torch's dynamo exporter is used: the TorchScript tracer baked the example's
padding into BERT's attention-mask code and gave wrong outputs on batches padded differently.
Exit status 1 when ONNX Runtime differs from torch by more than the tolerance on a mixed-length batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from triton_pooling_server.builder import inspect_checkpoint
from triton_pooling_server.builder.tensorrt.layout import encoder_inputs, encoder_output
from triton_pooling_contract.ensemble import ENCODER_GRAPH_OUTPUT
from triton_pooling_contract.tasks import TASK_ALIASES, TASK_NAMES, PoolingTask, parse_task

DEFAULT_TOLERANCE = 1e-4
TOKEN_TYPES = "token_type_ids"


def load_model(checkpoint: Path, task: PoolingTask):
    from triton_pooling_backend.encoders.torch_encoder import load_hf_model

    return load_hf_model(checkpoint, task, ENCODER_GRAPH_OUTPUT[task])


def _wrapper(model, task: PoolingTask, with_token_types: bool):
    from ..artifact.export import graph_module

    return graph_module(model, task, ENCODER_GRAPH_OUTPUT[task], with_token_types)


def _example(model, names: tuple[str, ...]) -> dict:
    import torch

    from triton_pooling_server.builder.artifact.parity import parity_batches

    max_tokens = int(getattr(model.config, "max_position_embeddings", 0) or 512)
    batch = parity_batches(int(model.config.vocab_size), _pad_id(model), max_tokens, TOKEN_TYPES in names)[0]
    return {name: torch.from_numpy(batch[name]) for name in names}


def export(checkpoint: Path, task: PoolingTask, output: Path, model=None) -> tuple[str, ...]:
    """Write the ONNX graph; returns its input names."""
    from ..artifact.export import export_program

    model = model or load_model(checkpoint, task)
    names = encoder_inputs(inspect_checkpoint(checkpoint).uses_token_types)
    output.parent.mkdir(parents=True, exist_ok=True)
    export_program(_wrapper(model, task, TOKEN_TYPES in names), _example(model, names), names, encoder_output(task),
                   output)
    return names


def parity(checkpoint: Path, task: PoolingTask, onnx_path: Path, model=None) -> float:
    """Max-abs difference between ONNX Runtime and torch on a right-padded mixed-length batch (real positions)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    model = model or load_model(checkpoint, task)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = tuple(i.name for i in session.get_inputs())
    batch = _example(model, names)
    with torch.no_grad():
        expected = _wrapper(model, task, TOKEN_TYPES in names)(**batch).numpy()
    actual = session.run(None, {n: batch[n].numpy() for n in names})[0]
    if expected.ndim == 3:  # token rows: padded positions are not part of any answer
        real = batch["attention_mask"].numpy().astype(bool)
        expected, actual = expected[real], actual[real]
    return float(np.abs(actual - expected).max())


def _pad_id(model) -> int:
    return int(getattr(model.config, "pad_token_id", None) or 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--task", required=True, choices=TASK_NAMES + tuple(TASK_ALIASES))
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    args = parser.parse_args(argv)
    task = parse_task(args.task)
    model = load_model(args.checkpoint, task)
    names = export(args.checkpoint, task, args.output, model)
    error = parity(args.checkpoint, task, args.output, model)
    verdict = "ok" if error <= args.tolerance else "FAILED"
    print(f"{verdict}: {args.output} inputs {list(names)}; ONNX Runtime vs torch max-abs {error:.2e} "
          f"(tolerance {args.tolerance:.0e}) on a mixed-length batch")
    return 0 if error <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
