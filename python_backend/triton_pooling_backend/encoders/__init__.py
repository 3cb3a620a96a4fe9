"""Encoders: ids + mask → the graph's output (hidden states or logits), one class per runtime.

    encoder = open_lean_encoder(Runtime.OPENVINO, graph_path, description, threads=1)
    out = encoder.run(EncoderBatch(input_ids, attention_mask))   # float32 numpy

Every class takes the same right-padded int64 [B, T] arrays and returns what its `output` says
(GraphOutput). The lean ones (ONNX Runtime, OpenVINO) import only their runtime; the torch one imports
torch and transformers, and only when a model asks for `runtime: torch`.
"""

from __future__ import annotations

from pathlib import Path

from triton_pooling_contract.parameters import Runtime
from triton_pooling_contract.serving import GraphOutput

from .base import Encoder, EncoderBatch


def open_lean_encoder(runtime: Runtime, graph: Path, inputs: tuple[str, ...], output: GraphOutput,
                      threads: int) -> Encoder:
    """The encoder of a built graph for a lean runtime (imports that runtime only)."""
    if runtime in (Runtime.OPENVINO, Runtime.OPENVINO_BF16):
        from .openvino_encoder import OpenVinoEncoder

        return OpenVinoEncoder(graph, inputs, output, threads, runtime)
    if runtime in (Runtime.ONNX, Runtime.ONNX_INT8):
        from .ort_encoder import OnnxRuntimeEncoder

        return OnnxRuntimeEncoder(graph, inputs, output, threads, runtime)
    raise ValueError(f"runtime {runtime.value!r} does not serve a built graph")


__all__ = ["Encoder", "EncoderBatch", "open_lean_encoder"]
