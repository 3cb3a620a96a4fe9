"""What a checkpoint may serve, decided from its JSON files only (no torch), by the contract's rules — the same
ones `triton-pooling build` applied — before a model loads anything."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_contract import rules
from triton_pooling_contract.checkpoint_info import CheckpointError, CheckpointInfo, inspect_checkpoint
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.tasks import PoolingType

from .errors import ModelConfigError


def read_checkpoint_info(checkpoint: Path) -> CheckpointInfo:
    """What the checkpoint's JSON files say (the same reader `triton-pooling build` uses)."""
    try:
        return inspect_checkpoint(checkpoint)
    except CheckpointError as e:
        raise ModelConfigError(str(e)) from e


def check_servable(definition: ModelDefinition) -> tuple[CheckpointInfo, PoolingType]:
    """Every refusal a model makes from the checkpoint's files, in the order a user should hear them."""
    info = read_checkpoint_info(definition.checkpoint_path)
    spell = rules.PARAMETERS
    try:
        rules.check_task(definition.task, info, spell, definition.classifier_from_token)
        rules.check_pipeline(info, definition.task)
        pooling = rules.pooling_for(definition.task, definition.pooling_type, info, definition.step_tag_id, spell,
                                    token_head=bool(definition.classifier_from_token)).value
        rules.check_step_options(definition.task, pooling, definition.step_tag_id, definition.returned_token_ids,
                                 info.num_labels, spell)
        rules.check_sparse(definition.task, pooling, info, definition.chunked_processing,
                           definition.matryoshka_dimensions, spell)
        rules.check_weights_and_code(info, definition.allow_unsafe_weights, definition.trust_remote_code, spell)
        rules.check_max_tokens(definition.max_tokens, "parameter 'max_tokens'", info)
    except rules.NotServable as e:
        raise ModelConfigError(str(e)) from None
    return info, pooling
