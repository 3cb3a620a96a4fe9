"""A CPU stand-in for the ensemble's `tensorrt_plan` encoder: the same exported ONNX graph, run by ONNX Runtime
in a Python model, with the same tensor names. It lets the whole ensemble run (and be tested) without a GPU."""

from __future__ import annotations

import numpy as np

from triton_pooling_contract.ensemble import ENCODER_FILES

from ..errors import ModelConfigError
from .step import StepModel


class OnnxEncoderStep(StepModel):
    def setup(self) -> None:
        import onnxruntime as ort

        path = self.version_dir / ENCODER_FILES["python-onnxruntime"]
        if not path.is_file():
            raise ModelConfigError(f"encoder graph {path} is missing: run python -m triton_pooling_server.builder.tensorrt.export_onnx for this model")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one instance per core is the CPU scaling knob, as in the torch path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.output_name = self.config["output"][0]["name"]

    def answer(self, tensors):
        feed = {name: np.ascontiguousarray(tensors[name]) for name in self.input_names}
        return {self.output_name: self.session.run([self.output_name], feed)[0]}
