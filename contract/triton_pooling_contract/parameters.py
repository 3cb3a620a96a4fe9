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
    """What computes the encoder's outputs in the Python backend.

    The lean runtimes run the graph `triton-pooling build` exported (the stub imports numpy, tokenizers
    and that runtime only); torch loads the Hugging Face checkpoint itself (GPU hosts, other dtypes)."""

    TORCH = "torch"
    ONNX = "onnx"  # ONNX Runtime, fp32
    OPENVINO = "openvino"  # OpenVINO, fp32, the same ONNX graph with dynamic [-1, -1] inputs
    ONNX_INT8 = "onnx_int8"  # opt-in: int8 weights, faster, lossy (docs/performance.md)
    # opt-in: OpenVINO computing in bf16 on CPUs with bf16 instructions (AMX / AVX512_BF16); faster, with a
    # small measured error (docs/performance.md)
    OPENVINO_BF16 = "openvino_bf16"
    # Not a Python-backend runtime: an ensemble of Python steps around a TensorRT engine (builder.tensorrt).
    TENSORRT = "tensorrt"


# Runtimes the Python backend itself computes the encoder with.
BACKEND_RUNTIMES = tuple(r for r in Runtime if r is not Runtime.TENSORRT)
# Runtimes that serve a built graph without torch in the stub.
LEAN_RUNTIMES = (Runtime.ONNX, Runtime.OPENVINO, Runtime.ONNX_INT8, Runtime.OPENVINO_BF16)
# Runtimes that trade exactness for speed: never a default; their measured error is logged at build.
LOSSY_RUNTIMES = (Runtime.ONNX_INT8, Runtime.OPENVINO_BF16)
# What `triton-pooling build` picks for CPU serving when no --runtime is given (measured: docs/performance.md).
DEFAULT_CPU_RUNTIME = Runtime.ONNX


class Activation(str, enum.Enum):
    """A classifier's activation (vLLM's rule from num_labels + problem_type: rules.classifier_activation)."""

    NONE = "none"
    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"


class ClassifierMethod(str, enum.Enum):
    """How an LLM reranker's label-token logits become its scores (vLLM's `method` with `classifier_from_token`)."""

    FROM_2_WAY_SOFTMAX = "from_2_way_softmax"  # tokens [false, true]: one label, logit_true - logit_false (sigmoid'ed)
    NO_POST_PROCESSING = "no_post_processing"  # each token's logit is a label


class InstanceKind(str, enum.Enum):
    """Where Triton runs a model's instances, spelled as config.pbtxt spells it."""

    CPU = "KIND_CPU"
    GPU = "KIND_GPU"

    @classmethod
    def parse(cls, value: str) -> "InstanceKind":
        """config.pbtxt's KIND_GPU, or the Python backend's model_instance_kind (GPU)."""
        text = str(value or "CPU").upper()
        return cls(text if text.startswith("KIND_") else f"KIND_{text}")


class Device(str, enum.Enum):
    AUTO = "auto"  # follow the instance's kind: KIND_GPU instances run on their own GPU, KIND_CPU on the CPU
    CPU = "cpu"
    CUDA = "cuda"


# Prefix of a `checkpoint` value that names an installed package exposing get_model_path().
PACKAGE_PREFIX = "package:"

# Written by `triton-pooling build` for the record: the tuning flags a model was built with, which a
# later build into the same repository keeps while it re-divides the host among the models.
TUNING_FLAGS_PARAMETER = "tuning_flags"

# vLLM's `enable_chunked_processing`: an embed model encodes a prompt longer than its window in
# consecutive chunks and averages them (triton_pooling_backend.chunking; docs/backend.md).
CHUNKED_PROCESSING_PARAMETER = "enable_chunked_processing"
# A classifier's class names (the checkpoint's id2label as JSON), written by `build` for clients such as the
# HTTP gateway, which cannot read the checkpoint; the backend itself does not need them.
ID2LABEL_PARAMETER = "id2label"

class DefinitionError(ValueError):
    """A model definition that cannot be: the message names the parameter, the value and what is allowed. The
    builder and the backend each wrap it in their own error type."""


def allowed(values) -> str:
    return ", ".join(str(getattr(v, "value", v)) for v in values)


KNOWN_PARAMETERS = (
    TASK_PARAMETER, "checkpoint", "pooling_type", "use_activation", "max_tokens", "dtype", "device",
    "trust_remote_code", "allow_unsafe_weights", "step_tag_id", "returned_token_ids",
    "max_batch_tokens", "intra_op_threads", "runtime", "max_text_bytes", "max_texts_per_request",
    TUNING_FLAGS_PARAMETER, CHUNKED_PROCESSING_PARAMETER, ID2LABEL_PARAMETER, "activation", "matryoshka_dimensions", "prompts",
    "default_prompt_name", "include_prompt", "max_embed_len", "classifier_from_token", "classifier_method",
    "score_template",
)
