"""Which runtime computes the hidden states of embed/token_embed models.

torch always works. ONNX Runtime fp32 (see `onnx_encoder`) is several times faster on small CPU
batches; with no `runtime` parameter it is chosen for embed/token_embed whenever it can serve
(fp32, CPU, export succeeds) and matches torch within PARITY_TOLERANCE on a mixed-length batch,
else torch serves. An explicit `runtime: onnx` that cannot serve is an error instead.

`runtime: onnx_int8` (opt-in, never the default) serves the same graph with int8 weights: faster
and lossy (its measured error is in docs/performance.md); it is refused only when its error on the
parity batch shows a broken graph (> INT8_SANITY_TOLERANCE), and the error it has is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from triton_pooling_contract.tasks import PoolingTask

from .checkpoint import LoadedCheckpoint
from .errors import ModelConfigError, allowed
from .settings import DType, ModelSettings, Runtime

Encoder = Callable[[dict], torch.Tensor]

ONNX_TASKS = (PoolingTask.EMBED, PoolingTask.TOKEN_EMBED)
# Max-abs (relative to the states' scale) ONNX may differ from torch by and still be the default.
PARITY_TOLERANCE = 1e-5
# Relative max-abs beyond which an int8 graph is taken as broken rather than lossy.
INT8_SANITY_TOLERANCE = 0.5
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
    asked = settings.runtime  # None: the default choice
    reason = onnx_unfit_reason(checkpoint, settings)
    if reason is not None:
        if asked is not None:
            raise ModelConfigError(f"parameter 'runtime' is {asked.value!r}, but {reason}; allowed here: torch")
        return Runtime.TORCH, torch_encoder(model)
    from .onnx_encoder import build_onnx_encoder, parity_error

    runtime = asked or Runtime.ONNX
    types = checkpoint.accepts_token_type_ids
    try:
        encoder = build_onnx_encoder(model, settings.checkpoint, cache_dir, types, settings.threads,
                                     int8=runtime is Runtime.ONNX_INT8)
        error = parity_error(encoder, model, checkpoint.pad_token_id, types)
    except Exception as e:  # any exporter/runtime failure: explicit asks fail, the default falls back
        if asked is not None:
            raise ModelConfigError(f"parameter 'runtime' is {asked.value!r}, but the ONNX export of "
                                   f"{settings.checkpoint} failed: {type(e).__name__}: {e}; use runtime 'torch'") from e
        log.warning("ONNX export of %s failed (%s: %s); serving with torch", settings.checkpoint, type(e).__name__, e)
        return Runtime.TORCH, torch_encoder(model)
    tolerance = INT8_SANITY_TOLERANCE if runtime is Runtime.ONNX_INT8 else PARITY_TOLERANCE
    if error > tolerance:
        if asked is not None:
            raise ModelConfigError(f"parameter 'runtime' is {asked.value!r}, but its graph of {settings.checkpoint} "
                                   f"differs from torch by {error:.2e} (> {tolerance:.0e}); use runtime 'torch'")
        log.warning("ONNX graph of %s differs from torch by %.2e; serving with torch", settings.checkpoint, error)
        return Runtime.TORCH, torch_encoder(model)
    log.info("runtime %s serves %s; hidden states differ from torch by %.2e (relative max-abs)",
             runtime.value, settings.checkpoint, error)
    return runtime, encoder
