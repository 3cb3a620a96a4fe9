"""What a checkpoint may serve, decided from its JSON files only (no torch): the task, the pooling, and the
refusals (pickled weights, remote code) a model makes before it loads anything."""

from __future__ import annotations

import json
from pathlib import Path

from triton_pooling_contract.checkpoint_info import CheckpointError, CheckpointInfo, inspect_checkpoint
from triton_pooling_contract.tasks import POOLING_TYPES, PoolingTask, PoolingType, default_pooling, supported_tasks

from .errors import ModelConfigError, allowed
from .settings import ModelSettings


def read_checkpoint_info(checkpoint: Path) -> CheckpointInfo:
    """What the checkpoint's JSON files say (the same reader `triton-pooling build` uses)."""
    try:
        return inspect_checkpoint(checkpoint)
    except CheckpointError as e:
        raise ModelConfigError(str(e)) from e


def sentence_transformers_pooling(info: CheckpointInfo) -> PoolingType | None:
    """Pooling named by a sentence-transformers folder; refuses a mode we cannot serve (e.g. max)
    rather than silently pooling differently from sentence-transformers."""
    st = info.sentence_transformers
    if st is None or (st.pooling is None and st.pooling_mode == "none"):
        return None
    if st.pooling is None:
        raise ModelConfigError(
            f"checkpoint {info.path} pools with sentence-transformers mode {st.pooling_mode!r}, which is not served; "
            f"set parameter 'pooling_type' to one of {allowed(POOLING_TYPES[PoolingTask.EMBED])}"
        )
    return st.pooling


def check_task_supported(task: PoolingTask, architectures: list[str], checkpoint: Path) -> None:
    tasks = supported_tasks(architectures)
    if task not in tasks:
        raise ModelConfigError(
            f"checkpoint {checkpoint} (architectures {architectures}) cannot serve task {task.value!r}; "
            f"it serves: {allowed(t.value for t in tasks)}"
        )


def resolve_pooling(settings: ModelSettings, info: CheckpointInfo) -> PoolingType:
    """Explicit setting > sentence-transformers config > architecture default."""
    task = settings.task
    pooling = settings.pooling_type
    if pooling is None and task is PoolingTask.EMBED:
        pooling = sentence_transformers_pooling(info)
    if pooling is None:
        pooling = default_pooling(task, info.architectures)
    if pooling not in POOLING_TYPES[task]:
        raise ModelConfigError(f"pooling {pooling.value} is not valid for {task.value}; allowed: {allowed(POOLING_TYPES[task])}")
    if pooling is PoolingType.STEP and settings.step_tag_id is None:
        raise ModelConfigError("pooling_type STEP needs parameter 'step_tag_id' (the token id that ends a step)")
    return pooling


def check_weights_and_code(settings: ModelSettings, info: CheckpointInfo) -> None:
    """Nothing of the checkpoint's executes unless the config allows it: pickled weights, remote code."""
    if not settings.allow_unsafe_weights and not info.has_safetensors:
        raise ModelConfigError(
            f"checkpoint {info.path} has no *.safetensors weights; pickled weights load only with "
            "parameter allow_unsafe_weights = true"
        )
    auto_map = _config_json(info.path).get("auto_map")
    if auto_map and not settings.trust_remote_code:
        raise ModelConfigError(
            f"checkpoint {info.path} brings its own code (config.json auto_map {sorted(auto_map)}); it runs only "
            "with parameter trust_remote_code = true"
        )


def check_servable(settings: ModelSettings) -> tuple[CheckpointInfo, PoolingType]:
    """Every refusal a model makes from the checkpoint's files, in the order a user should hear them."""
    info = read_checkpoint_info(settings.checkpoint)
    check_task_supported(settings.task, list(info.architectures), settings.checkpoint)
    pooling = resolve_pooling(settings, info)
    check_weights_and_code(settings, info)
    return info, pooling


def _config_json(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
