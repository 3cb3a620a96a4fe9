"""An ONNX Runtime fp32 encoder: the checkpoint's base model (ids → last hidden state) exported once
with torch's dynamo exporter, cached by content, and checked against torch before it serves.

Why dynamo: the TorchScript tracer bakes the example's padding into BERT's attention-mask code and
gave wrong outputs (max-abs 1.8) on batches padded differently; the dynamo graph stays within ~3e-6.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

# Bumped when the exported graph's interface changes, so stale cache files are not reused.
_GRAPH_VERSION = "1"
# Lengths of the parity batch: mixed on purpose, padding differs per row.
PARITY_LENGTHS = (3, 17, 41)


class OnnxEncoder:
    """Callable like the torch path: {input name: [B, T] int64 tensor} → [B, T, H] float tensor."""

    def __init__(self, session, input_names: tuple[str, ...]):
        self.session = session
        self.input_names = input_names

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        feed = {name: inputs[name].cpu().numpy() for name in self.input_names}
        return torch.from_numpy(self.session.run(None, feed)[0])


class _HiddenStates(torch.nn.Module):
    """Explicit arguments: the exporter needs named tensors, not **kwargs."""

    def __init__(self, model, with_token_types: bool):
        super().__init__()
        self.model = model
        self.with_token_types = with_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {"token_type_ids": token_type_ids} if self.with_token_types else {}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state


def input_names(with_token_types: bool) -> tuple[str, ...]:
    return ("input_ids", "attention_mask", "token_type_ids") if with_token_types else ("input_ids", "attention_mask")


def cache_file(checkpoint: Path, cache_dir: Path, with_token_types: bool) -> Path:
    """Keyed by the checkpoint's bytes (config + weights) and the exporter's version."""
    digest = hashlib.sha256(f"{_GRAPH_VERSION}|{torch.__version__}|{with_token_types}".encode())
    for path in sorted([checkpoint / "config.json", *checkpoint.glob("*.safetensors")]):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return cache_dir / f"encoder-{digest.hexdigest()[:24]}.onnx"


def int8_cache_file(fp32: Path) -> Path:
    """The int8 graph quantized from an fp32 cache file, kept beside it."""
    return fp32.with_name(fp32.stem + "-int8.onnx")


def export_encoder(model, path: Path, with_token_types: bool) -> None:
    """Export with dynamic batch and sequence axes; written to a temp file, then renamed."""
    names = input_names(with_token_types)
    example = parity_batch(vocab_size=int(model.config.vocab_size), pad_token_id=0, with_token_types=with_token_types)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {name: {0: batch, 1: seq} for name in names}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(
            _HiddenStates(model, with_token_types), tuple(example[n] for n in names), dynamo=True,
            input_names=list(names), output_names=["last_hidden_state"], dynamic_shapes=dynamic, verbose=False,
        )
    program.save(str(tmp))
    os.replace(tmp, path)


def load_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize_int8(fp32: Path, path: Path) -> None:
    """Dynamic int8: the weight MatMuls get per-channel int8 weights (VNNI kernels), activations are
    quantized per call; attention's activation x activation products stay fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    activation_products = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] not in weights]
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(fp32, tmp, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                     nodes_to_exclude=activation_products)
    os.replace(tmp, path)


def build_onnx_encoder(model, checkpoint: Path, cache_dir: Path, with_token_types: bool, threads: int,
                       int8: bool = False) -> OnnxEncoder:
    """Export (or reuse the cached export) under a file lock: sibling models of one checkpoint
    load in parallel and must not export it twice."""
    path = cache_file(checkpoint, cache_dir, with_token_types)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):
        if not path.is_file():
            export_encoder(model, path, with_token_types)
        if int8:
            fp32, path = path, int8_cache_file(path)
            if not path.is_file():
                quantize_int8(fp32, path)
    return OnnxEncoder(load_session(path, threads), input_names(with_token_types))


def parity_batch(vocab_size: int, pad_token_id: int, with_token_types: bool) -> dict[str, torch.Tensor]:
    """Seeded ids of mixed lengths, right-padded."""
    generator = torch.Generator().manual_seed(0)
    width = max(PARITY_LENGTHS)
    ids = torch.full((len(PARITY_LENGTHS), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(PARITY_LENGTHS):
        ids[row, :n] = torch.randint(min(5, vocab_size - 1), vocab_size, (n,), generator=generator)
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if with_token_types:
        batch["token_type_ids"] = torch.zeros_like(ids)
    return batch


def parity_error(encoder: OnnxEncoder, model, pad_token_id: int, with_token_types: bool) -> float:
    """Max-abs difference to torch over real (unpadded) positions, relative to the states' scale."""
    batch = parity_batch(int(model.config.vocab_size), pad_token_id, with_token_types)
    with torch.inference_mode():
        expected = model(**batch).last_hidden_state.float()
    actual = encoder(batch)
    real = batch["attention_mask"].bool()
    scale = max(1.0, float(expected[real].abs().max()))
    return float(np.abs((actual[real] - expected[real]).numpy()).max()) / scale


@contextlib.contextmanager
def _locked(lock_path: Path):
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
