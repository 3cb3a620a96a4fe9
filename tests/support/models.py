"""Write a model folder for a test: config.pbtxt and model.py rendered as `triton-pooling build` renders them, from
a ModelSpec the test states (no checkpoint inspection, no tuning), plus the built artifact its runtime serves.

Unlike `build`, a checkpoint the served model would refuse (pickled weights, remote code, a task it cannot
serve) still gets its folder, without an artifact: the tests that load it check the refusal the stub gives."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_server.builder.artifact import CheckpointRefused
from triton_pooling_server.builder.artifact.folder import ensure_folder
from triton_pooling_server.builder.config_text import ModelSpec, render_config, render_model_py


def write_model(repository: Path, spec: ModelSpec, artifact: bool = True) -> Path:
    folder = Path(repository) / spec.name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(render_config(spec))
    (folder / "1" / "model.py").write_text(render_model_py(spec.task))
    if artifact:
        try:
            ensure_folder(folder, log=lambda message: None)
        except (CheckpointRefused, ModelConfigError):
            pass  # the served model refuses it with the same message when it loads
    return folder


def json_model_config(text: str) -> dict:
    """A rendered config.pbtxt as Triton hands it to a stub and serves it over its API: parsed by Triton's own
    protobuf schema, then its JSON form."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    return json_format.MessageToDict(config, preserving_proto_field_name=True)
