"""Load a Hugging Face checkpoint for one pooling task, and resolve what the task needs from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


from triton_pooling_contract.checkpoint_info import NO_TOKENIZER_LIMIT, CheckpointError, CheckpointInfo, inspect_checkpoint
from triton_pooling_contract.tasks import (
    POOLING_TYPES,
    PoolingTask,
    PoolingType,
    default_pooling,
    supported_tasks,
)

from .errors import ModelConfigError, allowed
from .heads import Activation, classifier_activation
from .settings import Device, ModelSettings



@dataclasses.dataclass
class LoadedCheckpoint:
    model: Any  # torch.nn.Module in eval mode
    tokenizer: Any
    pooling: PoolingType
    max_tokens: int
    hidden_size: int
    num_labels: int
    vocab_size: int
    pad_token_id: int
    activation: Activation
    accepts_token_type_ids: bool
    device: Any


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


def load_checkpoint(settings: ModelSettings) -> LoadedCheckpoint:
    import inspect

    import torch
    import transformers

    path = settings.checkpoint
    info = read_checkpoint_info(path)
    architectures = list(info.architectures)
    check_task_supported(settings.task, architectures, path)
    pooling = resolve_pooling(settings, info)
    if not settings.allow_unsafe_weights and not info.has_safetensors:
        raise ModelConfigError(
            f"checkpoint {path} has no *.safetensors weights; pickled weights load only with "
            "parameter allow_unsafe_weights = true"
        )
    torch.set_num_threads(settings.threads)  # as set, else the CPUs split among the model's instances
    device = _pick_device(settings.device, torch)
    auto_class = {
        PoolingTask.EMBED: transformers.AutoModel,
        PoolingTask.TOKEN_EMBED: transformers.AutoModel,
        PoolingTask.SEQ_CLASSIFY: transformers.AutoModelForSequenceClassification,
        PoolingTask.TOKEN_CLASSIFY: transformers.AutoModelForTokenClassification,
    }[settings.task]
    model = auto_class.from_pretrained(
        str(path),
        dtype=getattr(torch, settings.dtype.value),
        trust_remote_code=settings.trust_remote_code,
        use_safetensors=not settings.allow_unsafe_weights,
    )
    model.eval().to(device)
    if pooling in (PoolingType.LAST, PoolingType.CLS, PoolingType.MEAN) and settings.task is PoolingTask.SEQ_CLASSIFY:
        if not hasattr(model, "score"):
            raise ModelConfigError(
                f"pooling {pooling.value} for seq_classify needs a per-token `score` head (decoder classifiers); "
                f"{architectures} pools inside its own head: use pooling_type NATIVE"
            )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), trust_remote_code=settings.trust_remote_code)
    tokenizer.truncation_side = "left"  # vLLM: truncate_prompt_tokens keeps the last k tokens
    config = model.config
    num_labels = int(getattr(config, "num_labels", 0) or 0)
    if settings.returned_token_ids and max(settings.returned_token_ids) >= num_labels:
        raise ModelConfigError(
            f"parameter 'returned_token_ids' is {list(settings.returned_token_ids)}; "
            f"this checkpoint has labels 0..{num_labels - 1}"
        )
    forward_params = inspect.signature(model.forward).parameters
    return LoadedCheckpoint(
        model=model,
        tokenizer=tokenizer,
        pooling=pooling,
        max_tokens=max_tokens_of(settings, info, config, tokenizer),
        hidden_size=int(config.hidden_size),
        num_labels=num_labels,
        vocab_size=int(config.vocab_size),
        pad_token_id=pad_token_id_of(tokenizer, config),
        activation=classifier_activation(getattr(config, "problem_type", None), num_labels),
        accepts_token_type_ids="token_type_ids" in forward_params,
        device=device,
    )


def max_tokens_of(settings: ModelSettings, info: CheckpointInfo, config, tokenizer) -> int:
    """Explicit max_tokens > sentence-transformers max_seq_length > position embeddings / tokenizer limit."""
    if settings.max_tokens is not None:
        return settings.max_tokens
    if info.sentence_transformers is not None and info.sentence_transformers.max_seq_length:
        return info.sentence_transformers.max_seq_length
    limits = [getattr(config, "max_position_embeddings", None)]
    if tokenizer.model_max_length and tokenizer.model_max_length < NO_TOKENIZER_LIMIT:
        limits.append(tokenizer.model_max_length)
    limits = [int(v) for v in limits if v]
    if not limits:
        raise ModelConfigError("cannot tell the checkpoint's token limit: set parameter 'max_tokens'")
    return min(limits)


def pad_token_id_of(tokenizer, config) -> int:
    for value in (tokenizer.pad_token_id, getattr(config, "pad_token_id", None), tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0  # padded positions are masked out, so any valid id serves


def _pick_device(device: Device, torch):
    if device is Device.CUDA or (device is Device.AUTO and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ModelConfigError("parameter 'device' is 'cuda' but no CUDA device is visible")
        return torch.device("cuda")
    return torch.device("cpu")
