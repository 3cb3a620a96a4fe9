"""Build time: turn a checkpoint into what a lean stub serves — the exported graph (dynamo exporter), the fast
tokenizer and serving.json — checked against transformers on mixed-length batches, cached by content.

Imports torch, transformers and onnxscript (inside the functions that need them); the serving path never
imports this package. `triton-pooling build` calls `ensure_artifact`; so does
`python -m triton_pooling_server.builder.artifact MODEL_FOLDER...` for folders written by hand.
"""

from .request import ArtifactError, ArtifactRequest, CheckpointRefused
from .in_process import load_service
from .store import cached_artifact, default_cache_dir, ensure_artifact

__all__ = ["ArtifactError", "ArtifactRequest", "CheckpointRefused", "cached_artifact", "default_cache_dir",
           "ensure_artifact", "load_service"]
