"""The model's definition as a stub reads it: the contract's ModelDefinition, parsed once from the model config
Triton hands the stub, its refusals raised as ModelConfigError (the model does not load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from triton_pooling_contract.definition import ModelDefinition, declared_task
from triton_pooling_contract.parameters import DefinitionError
from triton_pooling_contract.tasks import PoolingTask

from .errors import ModelConfigError


def read_definition(config: Mapping[str, Any], model_dir: Path) -> ModelDefinition:
    try:
        return ModelDefinition.from_model_config(config, model_dir)
    except DefinitionError as e:
        raise ModelConfigError(str(e)) from None


def read_declared_task(config: Mapping[str, Any]) -> PoolingTask:
    try:
        return declared_task(config)
    except DefinitionError as e:
        raise ModelConfigError(str(e)) from None
