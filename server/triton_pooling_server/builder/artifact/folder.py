"""Build (or reuse) the artifact of a model folder from its config.pbtxt."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_contract.parameters import DEFAULT_CPU_RUNTIME, LEAN_RUNTIMES

from triton_pooling_backend.settings import ModelSettings
from .pbtxt import read_model_config
from .request import ArtifactRequest
from .store import ensure_artifact

VERSION = "1"


def ensure_folder(model_dir: Path, cache_dir: Path | None = None, log=print) -> str:
    """Build (or reuse) the artifact a lean runtime needs in `model_dir/1`; 'not needed' for runtime torch."""
    config = read_model_config(model_dir)
    settings = ModelSettings.from_model_config(config, model_dir)
    runtime = settings.runtime or DEFAULT_CPU_RUNTIME
    if runtime not in LEAN_RUNTIMES:
        return "not needed"
    checkpoint_ref = config["parameters"]["checkpoint"]["string_value"]
    request = ArtifactRequest.from_settings(settings, runtime, checkpoint_ref)
    return ensure_artifact(model_dir / VERSION, request, cache_dir, log)[1]
