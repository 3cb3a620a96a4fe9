"""Triton model serving the 'token_embed' pooling task; all logic lives in triton_pooling_backend."""

from triton_pooling_backend.triton_model import TritonPoolingModel


class TritonPythonModel(TritonPoolingModel):
    task = "token_embed"
