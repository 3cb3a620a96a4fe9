"""OpenVINO (CPU, fp32) running the graph `triton-pooling build` exported.

The ONNX graph's inputs are reshaped to dynamic [-1, -1] so it compiles once (a static reshape per
batch shape recompiles, ~4x slower); precision is pinned to f32 (the CPU plugin would pick bf16 on CPUs
that have it) and threads are not pinned to cores (instances share them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triton_pooling_contract.parameters import Runtime
from triton_pooling_contract.serving import GraphOutput

from .base import Encoder, EncoderBatch


def compile_config(threads: int) -> dict:
    return {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}


class OpenVinoEncoder(Encoder):
    runtime = Runtime.OPENVINO

    def __init__(self, graph: Path, inputs: tuple[str, ...], output: GraphOutput, threads: int):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(graph))
        model.reshape({port.get_any_name(): ov.PartialShape([-1, -1]) for port in model.inputs})
        self.compiled = core.compile_model(model, "CPU", compile_config(threads))
        self.request = self.compiled.create_infer_request()
        self.inputs = inputs
        self.output = output

    def run(self, batch: EncoderBatch) -> np.ndarray:
        self.request.infer(batch.feed(self.inputs))
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)  # a copy: the buffer is reused
