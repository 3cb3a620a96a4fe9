"""Which runtime computes the hidden states of embed/token_embed models.

torch always works. ONNX Runtime fp32 (see `onnx_encoder`) is several times faster on small CPU
batches; with no `runtime` parameter it is chosen for embed/token_embed whenever it can serve
(fp32, CPU, export succeeds) and matches torch within PARITY_TOLERANCE on a mixed-length batch,
else torch serves. An explicit `runtime: onnx` that cannot serve is an error instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from triton_pooling.tasks import PoolingTask

from .checkpoint import LoadedCheckpoint
from .errors import ModelConfigError, allowed
from .settings import DType, ModelSettings, Runtime

Encoder = Callable[[dict], torch.Tensor]

ONNX_TASKS = (PoolingTask.EMBED, PoolingTask.TOKEN_EMBED)
# Max-abs (relative to the states' scale) ONNX may differ from torch by and still be the default.
PARITY_TOLERANCE = 1e-5
DEFAULT_ONNX_CACHE = Path.home() / ".cache" / "triton-pooling" / "onnx"

log = logging.getLogger(__name__)


def torch_encoder(model) -> Encoder:
    return lambda inputs: model(**inputs).last_hidden_state


def onnx_unfit_reason(checkpoint: LoadedCheckpoint, settings: ModelSettings) -> str | None:
    """Why ONNX cannot serve this model, or None when it can."""
    if settings.task not in ONNX_TASKS:
        return f"task {settings.task.value!r} runs on torch only (onnx serves {allowed(t.value for t in ONNX_TASKS)})"
    if settings.dtype is not DType.FLOAT32:
        return f"dtype {settings.dtype.value!r} runs on torch only (onnx is float32)"
    if checkpoint.device.type != "cpu":
        return f"device {checkpoint.device.type!r} runs on torch only (onnx runs on cpu)"
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed"
    return None


def build_encoder(checkpoint: LoadedCheckpoint, settings: ModelSettings,
                  cache_dir: Path = DEFAULT_ONNX_CACHE) -> tuple[Runtime, Encoder]:
    """The runtime that serves, and its encoder."""
    model = checkpoint.model
    if settings.runtime is Runtime.TORCH:
        return Runtime.TORCH, torch_encoder(model)
    explicit = settings.runtime is Runtime.ONNX
    reason = onnx_unfit_reason(checkpoint, settings)
    if reason is not None:
        if explicit:
            raise ModelConfigError(f"parameter 'runtime' is 'onnx', but {reason}; allowed here: torch")
        return Runtime.TORCH, torch_encoder(model)
    from .onnx_encoder import build_onnx_encoder, parity_error

    threads = settings.threads
    types = checkpoint.accepts_token_type_ids
    try:
        encoder = build_onnx_encoder(model, settings.checkpoint, cache_dir, types, threads)
        error = parity_error(encoder, model, checkpoint.pad_token_id, types)
    except Exception as e:  # any exporter/runtime failure: explicit asks fail, the default falls back
        if explicit:
            raise ModelConfigError(f"parameter 'runtime' is 'onnx', but the ONNX export of {settings.checkpoint} "
                                   f"failed: {type(e).__name__}: {e}; use runtime 'torch'") from e
        log.warning("ONNX export of %s failed (%s: %s); serving with torch", settings.checkpoint, type(e).__name__, e)
        return Runtime.TORCH, torch_encoder(model)
    if error > PARITY_TOLERANCE:
        if explicit:
            raise ModelConfigError(f"parameter 'runtime' is 'onnx', but the ONNX graph of {settings.checkpoint} differs "
                                   f"from torch by {error:.2e} (> {PARITY_TOLERANCE:.0e}); use runtime 'torch'")
        log.warning("ONNX graph of %s differs from torch by %.2e; serving with torch", settings.checkpoint, error)
        return Runtime.TORCH, torch_encoder(model)
    return Runtime.ONNX, encoder
