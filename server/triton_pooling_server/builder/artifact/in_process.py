"""A pooling service in this process (tests, benchmarks): the built artifact from the shared cache, loaded the
way a stub loads its version folder."""

from __future__ import annotations


from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.loading import Instance
from triton_pooling_backend.service import PoolingService
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.parameters import DEFAULT_CPU_RUNTIME, Runtime

from .request import ArtifactError, ArtifactRequest
from .store import cached_artifact


def load_service(definition: ModelDefinition) -> PoolingService:
    runtime = definition.runtime or DEFAULT_CPU_RUNTIME
    if runtime is Runtime.TORCH:
        return PoolingService.load(definition, Instance(definition.checkpoint_path / "no-artifact"))
    try:
        entry = cached_artifact(ArtifactRequest.from_definition(definition, runtime), log=lambda message: None)[0]
    except ArtifactError as e:
        raise ModelConfigError(str(e)) from None
    return PoolingService.load(definition, Instance(entry))
