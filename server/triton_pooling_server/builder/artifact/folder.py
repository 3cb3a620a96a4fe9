"""Build (or reuse) the artifact of a model folder from its config.pbtxt."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_contract.parameters import DEFAULT_CPU_RUNTIME, LEAN_RUNTIMES

from ..config_text import read_definition
from .request import ArtifactRequest
from .store import ensure_artifact

VERSION = "1"


def ensure_folder(model_dir: Path, cache_dir: Path | None = None, log=print) -> str:
    """Build (or reuse) the artifact a lean runtime needs in `model_dir/1`; 'not needed' for runtime torch."""
    definition = read_definition(model_dir)
    runtime = definition.runtime or DEFAULT_CPU_RUNTIME
    if runtime not in LEAN_RUNTIMES:
        return "not needed"
    return ensure_artifact(model_dir / VERSION, ArtifactRequest.from_definition(definition, runtime), cache_dir, log)[1]
