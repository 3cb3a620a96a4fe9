"""Typed model settings, parsed once from the `parameters` of a model's config.pbtxt."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from triton_pooling_contract.parameters import CHUNKED_PROCESSING_PARAMETER, KNOWN_PARAMETERS, PACKAGE_PREFIX, Device, DType, Runtime
from triton_pooling_contract.serving import PackageCheckpointError, package_checkpoint
from triton_pooling_contract.tasks import POOLING_TYPES, TASK_NAMES, TASK_PARAMETER, PoolingTask, PoolingType, parse_task

from .errors import ModelConfigError, allowed


# Micro-batch bound: padded tokens (rows x longest row) per forward pass. Small on purpose: on CPU,
# cutting a length-sorted batch into short passes wastes little on padding; 512 ran a mixed-length
# batch of 32 ~2.4x faster than one 16384-token pass (docs/performance.md). GPUs want it larger.
DEFAULT_MAX_BATCH_TOKENS = 512
@dataclasses.dataclass(frozen=True)
class ModelSettings:
    task: PoolingTask
    checkpoint: Path
    pooling_type: PoolingType | None  # None: from the checkpoint, then the architecture
    use_activation: bool  # embed: L2-normalize; classify: sigmoid/softmax
    max_tokens: int | None  # None: from the checkpoint
    dtype: DType
    device: Device
    trust_remote_code: bool
    allow_unsafe_weights: bool  # pickled .bin weights; safetensors only unless set
    step_tag_id: int | None
    returned_token_ids: tuple[int, ...] | None
    max_batch_tokens: int
    intra_op_threads: int  # 0: the CPUs split among the instances (threads below)
    max_batch_size: int
    runtime: Runtime | None = None  # None: the runtime the built artifact was checked with (serving.json)
    instance_count: int = 1  # the model's instances (instance_group; per GPU listed), which share the CPUs
    max_text_bytes: int | None = None  # None: limits.DEFAULT_MAX_TEXT_BYTES
    max_texts_per_request: int | None = None  # None: max_batch_size
    chunked_processing: bool = False  # embed only: prompts longer than max_tokens are encoded in chunks

    @classmethod
    def from_model_config(cls, config: Mapping[str, Any], model_dir: Path) -> "ModelSettings":
        """Parse Triton's model config (the JSON form the Python backend receives)."""
        raw = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        unknown = sorted(set(raw) - set(KNOWN_PARAMETERS))
        if unknown:
            raise ModelConfigError(
                f"unknown parameter(s) {allowed(unknown)} in config.pbtxt; known: {allowed(KNOWN_PARAMETERS)}"
            )
        task = _parse_single_task(raw.get(TASK_PARAMETER))
        pooling = raw.get("pooling_type", "").strip().upper() or None
        if pooling is not None:
            valid = POOLING_TYPES[task]
            if pooling not in {p.value for p in valid}:
                raise ModelConfigError(
                    f"parameter 'pooling_type' is {pooling!r}; task {task.value!r} allows {allowed(valid)}"
                )
        if "checkpoint" not in raw or not raw["checkpoint"].strip():
            raise ModelConfigError("parameter 'checkpoint' is missing: give a Hugging Face checkpoint directory")
        returned = raw.get("returned_token_ids", "").strip()
        chunked = _parse_bool(raw, CHUNKED_PROCESSING_PARAMETER, False)
        if chunked and task is not PoolingTask.EMBED:
            raise ModelConfigError(
                f"parameter {CHUNKED_PROCESSING_PARAMETER!r} is true, but it applies to task 'embed' only (one vector "
                f"averaged over a long prompt's chunks, as vLLM); this model serves {task.value!r}: remove it, and "
                "send TRUNCATE_PROMPT_TOKENS to fit long texts"
            )
        return cls(
            task=task,
            checkpoint=resolve_checkpoint(raw["checkpoint"].strip(), model_dir),
            pooling_type=PoolingType(pooling) if pooling else None,
            use_activation=_parse_bool(raw, "use_activation", True),
            max_tokens=_parse_int(raw, "max_tokens", None, minimum=1),
            dtype=_parse_enum(raw, "dtype", DType, DType.FLOAT32),
            device=_parse_enum(raw, "device", Device, Device.AUTO),
            trust_remote_code=_parse_bool(raw, "trust_remote_code", False),
            allow_unsafe_weights=_parse_bool(raw, "allow_unsafe_weights", False),
            step_tag_id=_parse_int(raw, "step_tag_id", None, minimum=0),
            returned_token_ids=tuple(_int_list(returned, "returned_token_ids")) if returned else None,
            max_batch_tokens=_parse_int(raw, "max_batch_tokens", DEFAULT_MAX_BATCH_TOKENS, minimum=1),
            intra_op_threads=_parse_int(raw, "intra_op_threads", 0, minimum=0),
            max_batch_size=int(config.get("max_batch_size", 0)),
            runtime=_parse_enum(raw, "runtime", Runtime, None),
            instance_count=instance_count(config),
            max_text_bytes=_parse_int(raw, "max_text_bytes", None, minimum=1),
            max_texts_per_request=_parse_int(raw, "max_texts_per_request", None, minimum=1),
            chunked_processing=chunked,
        )


    @property
    def threads(self) -> int:
        """Intra-op threads per instance: as set, else the CPUs split among the instances (more
        threads than cores stalled ONNX Runtime's pool on 2 cores, docs/performance.md)."""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return self.intra_op_threads or max(1, cpus // max(1, self.instance_count))


def resolve_checkpoint(value: str, model_dir: Path) -> Path:
    """A checkpoint is a directory (absolute, or relative to the model's folder) or
    `package:<module>` for an installed package with `get_model_path()`."""
    if value.startswith(PACKAGE_PREFIX):
        try:
            return package_checkpoint(value)
        except PackageCheckpointError as e:
            raise ModelConfigError(f"parameter 'checkpoint': {e}") from None
    path = Path(value)
    path = path if path.is_absolute() else (model_dir / path)
    if not (path / "config.json").is_file():
        raise ModelConfigError(
            f"parameter 'checkpoint' is {value!r}: {path} is not a Hugging Face checkpoint (no config.json)"
        )
    return path.resolve()


def instance_count(config: Mapping[str, Any]) -> int:
    """Instances of a model: each group's count, times its GPUs where it lists some."""
    return sum(int(g.get("count", 1)) * max(1, len(g.get("gpus") or [])) for g in config.get("instance_group") or [{}])


def declared_task(config: Mapping[str, Any]) -> PoolingTask:
    """The one task a model config names (its `pooling_task` parameter), checked on its own."""
    return _parse_single_task(((config.get("parameters") or {}).get(TASK_PARAMETER) or {}).get("string_value"))


def _parse_single_task(value: str | None) -> PoolingTask:
    if value is None or not value.strip():
        raise ModelConfigError(
            f"config.pbtxt names no task: add parameters {{ key: \"{TASK_PARAMETER}\" "
            f"value {{ string_value: \"<task>\" }} }} with one of {allowed(TASK_NAMES)}"
        )
    names = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    if len(names) != 1:
        raise ModelConfigError(
            f"parameter '{TASK_PARAMETER}' names {len(names)} tasks ({value!r}); a model serves exactly one "
            f"of {allowed(TASK_NAMES)} (vLLM's one-task-per-model rule): build one model per task"
        )
    try:
        return parse_task(names[0])
    except ValueError as e:
        raise ModelConfigError(f"parameter '{TASK_PARAMETER}': {e}") from None


def _parse_bool(raw: Mapping[str, str], key: str, default: bool) -> bool:
    value = raw.get(key, "").strip().lower()
    if not value:
        return default
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ModelConfigError(f"parameter {key!r} is {raw[key]!r}; allowed: true, false")


def _parse_int(raw: Mapping[str, str], key: str, default, minimum: int):
    value = raw.get(key, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ModelConfigError(f"parameter {key!r} is {value!r}; expected an integer >= {minimum}") from None
    if number < minimum:
        raise ModelConfigError(f"parameter {key!r} is {number}; expected an integer >= {minimum}")
    return number


def _parse_enum(raw: Mapping[str, str], key: str, enum_type, default):
    value = raw.get(key, "").strip().lower()
    if not value:
        return default
    try:
        return enum_type(value)
    except ValueError:
        raise ModelConfigError(
            f"parameter {key!r} is {value!r}; allowed: {allowed(m.value for m in enum_type)}"
        ) from None


def _int_list(value: str, key: str) -> list[int]:
    try:
        return [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise ModelConfigError(f"parameter {key!r} is {value!r}; expected comma-separated integers") from None
