"""Which files a resolved model becomes in the repository, per runtime."""

from __future__ import annotations

from ..model_config import render_config, render_model_py
from .resolution import ResolvedModel


def model_files(model: ResolvedModel) -> dict[str, str]:
    """Repository-relative path → text. torch / onnx: one Python-backend model folder.
    tensorrt: an ensemble of tokenizer, TensorRT encoder and pooling head (see tensorrt_layout)."""
    if model.runtime == "tensorrt":
        from .tensorrt_layout import tensorrt_files

        return tensorrt_files(model)
    spec = model.spec
    return {f"{spec.name}/config.pbtxt": render_config(spec), f"{spec.name}/1/model.py": render_model_py(spec.task)}
