"""ONNX Runtime (CPU) running the graph `triton-pooling build` exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triton_pooling_contract.parameters import Runtime
from triton_pooling_contract.serving import SHARE_WEIGHTS_MIN_BYTES, GraphOutput, external_data_name

from .base import Encoder, EncoderBatch


def shares_weights(graph: Path) -> bool:
    """Large external weights are used in place from the mapped file (one copy for all instances)."""
    data = graph.with_name(external_data_name(graph.name))
    if not data.is_file() or not graph.is_file():
        return False
    size = data.stat().st_size  # a graph bigger than it holds its weights inline (a stale .data beside it)
    return size >= SHARE_WEIGHTS_MIN_BYTES and graph.stat().st_size < size


class OnnxRuntimeEncoder(Encoder):
    def __init__(self, graph: Path, inputs: tuple[str, ...], output: GraphOutput, threads: int,
                 runtime: Runtime = Runtime.ONNX):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Several instances share the cores: idle pool threads must sleep, not spin.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.shares_weights = shares_weights(Path(graph))
        if self.shares_weights:  # prepacking would copy every MatMul weight into this process's private memory
            options.add_session_config_entry("session.disable_prepacking", "1")
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.inputs = inputs
        self.output = output
        self.runtime = runtime

    def run(self, batch: EncoderBatch) -> np.ndarray:
        return self.session.run(None, batch.feed(self.inputs))[0]
