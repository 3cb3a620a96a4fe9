"""Which files a resolved model becomes in the repository, per runtime."""

from __future__ import annotations

from triton_pooling_contract.parameters import Runtime

from .config_text import render_config, render_model_py
from .resolution import ResolvedModel


def model_files(model: ResolvedModel) -> dict[str, str]:
    """Repository-relative path → text. torch / onnx: one Python-backend model folder.
    tensorrt: an ensemble of tokenizer, TensorRT encoder and pooling head (see tensorrt.layout)."""
    if model.runtime is Runtime.TENSORRT:
        from .tensorrt.layout import tensorrt_files

        return tensorrt_files(model)
    spec = model.spec
    return {f"{spec.name}/config.pbtxt": render_config(spec), f"{spec.name}/1/model.py": render_model_py(spec.task)}


def stale_folders(model: ResolvedModel, files: dict[str, str]) -> tuple[str, ...]:
    """Folders the same model name has in the other layout (the ensemble's steps, or none)."""
    from .tensorrt.layout import step_names

    written = {rel.split("/")[0] for rel in files}
    return tuple(n for n in step_names(model.spec.name).values() if n not in written)
