"""config.pbtxt `parameters` keys a pooling model reads, and the allowed values of the enum-valued
ones. The builder writes them, the backend parses them (triton_pooling_backend.settings); both take
the names and allowed values from here so the two never drift."""

from __future__ import annotations

import enum

from .tasks import TASK_PARAMETER


class DType(str, enum.Enum):
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


class Runtime(str, enum.Enum):
    """What computes the encoder's hidden states in the Python backend."""

    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx_int8"  # opt-in: int8 weights, faster, lossy (docs/performance.md)


class Device(str, enum.Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


# Prefix of a `checkpoint` value that names an installed package exposing get_model_path().
PACKAGE_PREFIX = "package:"

KNOWN_PARAMETERS = (
    TASK_PARAMETER, "checkpoint", "pooling_type", "use_activation", "max_tokens", "dtype", "device",
    "trust_remote_code", "allow_unsafe_weights", "step_tag_id", "returned_token_ids",
    "max_batch_tokens", "intra_op_threads", "runtime", "max_text_bytes", "max_texts_per_request",
)
