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


# Inference precision per runtime: f32 is pinned (the CPU plugin would pick bf16 by itself on CPUs that
# have it); openvino_bf16 asks for bf16 on purpose.
PRECISION = {Runtime.OPENVINO: "f32", Runtime.OPENVINO_BF16: "bf16"}


def compile_config(threads: int, runtime: Runtime = Runtime.OPENVINO) -> dict:
    return {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": PRECISION[runtime], "ENABLE_CPU_PINNING": False}


def check_bf16(core) -> None:
    """No silent fallback: without bf16 instructions OpenVINO quietly computes in f32 under the bf16 hint."""
    capabilities = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    if "BF16" not in capabilities:
        raise ValueError(
            f"runtime 'openvino_bf16' needs a CPU with bf16 instructions (AVX512_BF16 or AMX); this CPU "
            f"({core.get_property('CPU', 'FULL_DEVICE_NAME')}) offers {', '.join(capabilities)}, where OpenVINO "
            "would compute in f32 anyway: use runtime 'openvino' here, or serve on a CPU with bf16"
        )


# OpenVINO compiles kernels for each new input shape (bf16 on AMX: a first-seen shape cost ~2x a known one); widths
# rounded to 16 tokens (one AMX tile of rows) keep the shapes a served model meets to a few dozen.
PASS_WIDTH_MULTIPLE = 16


class OpenVinoEncoder(Encoder):
    runtime = Runtime.OPENVINO
    pass_width_multiple = PASS_WIDTH_MULTIPLE

    def __init__(self, graph: Path, inputs: tuple[str, ...], output: GraphOutput, threads: int,
                 runtime: Runtime = Runtime.OPENVINO):
        import openvino as ov

        self.runtime = runtime
        core = ov.Core()
        if runtime is Runtime.OPENVINO_BF16:
            check_bf16(core)
        model = core.read_model(str(graph))
        model.reshape({port.get_any_name(): ov.PartialShape([-1, -1]) for port in model.inputs})
        self.compiled = core.compile_model(model, "CPU", compile_config(threads, runtime))
        self.request = self.compiled.create_infer_request()
        self.inputs = inputs
        self.output = output

    def run(self, batch: EncoderBatch) -> np.ndarray:
        self.request.infer(batch.feed(self.inputs))
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)  # a copy: the buffer is reused
