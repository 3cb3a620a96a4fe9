"""Triton model serving the 'seq_classify' pooling task; all logic lives in triton_pooling_backend."""

from triton_pooling_backend.triton_model import TritonPoolingModel


class TritonPythonModel(TritonPoolingModel):
    task = "seq_classify"
