"""A pooling service in this process (tests, benchmarks): the built artifact from the shared cache, loaded the
way a stub loads its version folder."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.loading import Instance
from triton_pooling_backend.service import PoolingService
from triton_pooling_backend.settings import ModelSettings
from triton_pooling_contract.parameters import DEFAULT_CPU_RUNTIME, Runtime

from .request import ArtifactError, ArtifactRequest
from .store import cached_artifact


def load_service(settings: ModelSettings) -> PoolingService:
    runtime = settings.runtime or DEFAULT_CPU_RUNTIME
    if runtime is Runtime.TORCH:
        return PoolingService.load(settings, Instance(Path(settings.checkpoint) / "no-artifact"))
    try:
        entry = cached_artifact(ArtifactRequest.from_settings(settings, runtime), log=lambda message: None)[0]
    except ArtifactError as e:
        raise ModelConfigError(str(e)) from None
    return PoolingService.load(settings, Instance(entry))
