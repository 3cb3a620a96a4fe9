"""The builder's view of a checkpoint: the shared reader, with its errors as build errors."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_contract.checkpoint_info import CheckpointError, CheckpointInfo
from triton_pooling_contract.checkpoint_info import inspect_checkpoint as _read_checkpoint

from .errors import BuildError

__all__ = ["CheckpointInfo", "inspect_checkpoint"]


def inspect_checkpoint(path: Path) -> CheckpointInfo:
    try:
        return _read_checkpoint(path)
    except CheckpointError as e:
        raise BuildError(str(e)) from e
