"""`triton-pooling build`: turn a Hugging Face checkpoint directory into a per-task Triton model.

Pure Python (json + files): inspecting a checkpoint and writing the model folder never imports torch.
"""

from .errors import BuildError
from .inspection import CheckpointInfo, inspect_checkpoint
from .resolution import BuildRequest, ResolvedModel, resolve
from .writer import WriteResult, write_model_folder

__all__ = [
    "BuildError", "BuildRequest", "CheckpointInfo", "ResolvedModel", "WriteResult",
    "inspect_checkpoint", "resolve", "write_model_folder",
]
