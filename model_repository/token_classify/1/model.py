"""Triton model serving the 'token_classify' pooling task; all logic lives in triton_pooling_backend."""

from triton_pooling_backend.triton_model import TritonPoolingModel


class TritonPythonModel(TritonPoolingModel):
    task = "token_classify"
