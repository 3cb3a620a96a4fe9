"""The one source of truth for pooling task names, tensor names, pooling types and defaults.

Shared by the client, the launcher, the model builder and the Triton backend, so it must stay
free of heavy imports (no numpy, torch or tritonclient here).
"""

from __future__ import annotations

import enum
from typing import Iterable


class PoolingTask(str, enum.Enum):
    """A pooling task; each Triton model serves exactly one (vLLM's one-task-per-model rule)."""

    EMBED = "embed"
    TOKEN_EMBED = "token_embed"
    SEQ_CLASSIFY = "seq_classify"
    TOKEN_CLASSIFY = "token_classify"

    def __str__(self) -> str:
        return self.value


class PoolingType(str, enum.Enum):
    """How token states become the rows a task head sees (vLLM's PoolingType)."""

    CLS = "CLS"
    MEAN = "MEAN"
    LAST = "LAST"
    ALL = "ALL"
    STEP = "STEP"
    # sentence-transformers' other Pooling modes (embed): max over tokens, sum / sqrt(tokens), position-weighted mean
    MAX = "MAX"
    MEAN_SQRT_LEN = "MEAN_SQRT_LEN"
    WEIGHTED_MEAN = "WEIGHTED_MEAN"
    # Sparse (SPLADE): a masked-LM head's logits -> log1p(relu(.)) -> max (or sum) over tokens, one weight per
    # vocabulary entry; the model answers SPARSE_* tensors instead of EMBEDDING (sparse.py)
    SPLADE = "SPLADE"
    # The checkpoint's own Hugging Face head does the pooling (e.g. BERT's pooler + classifier).
    NATIVE = "NATIVE"

    def __str__(self) -> str:
        return self.value


TASK_NAMES: tuple[str, ...] = tuple(t.value for t in PoolingTask)

# vLLM names accepted so that vLLM users can migrate without renaming.
TASK_ALIASES: dict[str, PoolingTask] = {"classify": PoolingTask.SEQ_CLASSIFY}

# Pooling types each task accepts; the first one is the task's default.
POOLING_TYPES: dict[PoolingTask, tuple[PoolingType, ...]] = {
    PoolingTask.EMBED: (PoolingType.MEAN, PoolingType.CLS, PoolingType.LAST, PoolingType.MAX, PoolingType.MEAN_SQRT_LEN,
                        PoolingType.WEIGHTED_MEAN, PoolingType.SPLADE),
    PoolingTask.TOKEN_EMBED: (PoolingType.ALL,),
    PoolingTask.SEQ_CLASSIFY: (PoolingType.NATIVE, PoolingType.LAST, PoolingType.CLS, PoolingType.MEAN),
    PoolingTask.TOKEN_CLASSIFY: (PoolingType.ALL, PoolingType.STEP),
}

# Tasks whose rows are tokens (padded to the longest text of a request).
TOKEN_LEVEL_TASKS = frozenset({PoolingTask.TOKEN_EMBED, PoolingTask.TOKEN_CLASSIFY})
# Tasks that accept Matryoshka DIMENSIONS.
EMBEDDING_TASKS = frozenset({PoolingTask.EMBED, PoolingTask.TOKEN_EMBED})


class Tensor:
    """Triton tensor names of the external contract."""

    TEXT = "TEXT"
    INPUT_IDS = "INPUT_IDS"
    TEXT_PAIR = "TEXT_PAIR"
    TRUNCATE_PROMPT_TOKENS = "TRUNCATE_PROMPT_TOKENS"
    DIMENSIONS = "DIMENSIONS"
    USE_ACTIVATION = "USE_ACTIVATION"
    PROMPT_NAME = "PROMPT_NAME"  # embed: one of the model's prompts, prepended to TEXT; "" = the model's default
    NUM_TOKENS = "NUM_TOKENS"
    EMBEDDING = "EMBEDDING"
    TOKEN_EMBEDDINGS = "TOKEN_EMBEDDINGS"
    SCORES = "SCORES"
    TOKEN_SCORES = "TOKEN_SCORES"
    # A sparse embed model's outputs, per text: the vocabulary ids with a nonzero weight (ascending), their weights,
    # and their tokens; a request's texts are padded to its longest with index -1, weight 0 and token ""
    SPARSE_INDICES = "SPARSE_INDICES"
    SPARSE_VALUES = "SPARSE_VALUES"
    SPARSE_TOKENS = "SPARSE_TOKENS"


OUTPUT_TENSOR: dict[PoolingTask, str] = {
    PoolingTask.EMBED: Tensor.EMBEDDING,
    PoolingTask.TOKEN_EMBED: Tensor.TOKEN_EMBEDDINGS,
    PoolingTask.SEQ_CLASSIFY: Tensor.SCORES,
    PoolingTask.TOKEN_CLASSIFY: Tensor.TOKEN_SCORES,
}

# What a sparse embed model answers instead of OUTPUT_TENSOR[EMBED] (with NUM_TOKENS).
SPARSE_OUTPUTS = (Tensor.SPARSE_INDICES, Tensor.SPARSE_VALUES, Tensor.SPARSE_TOKENS)
SPARSE_PADDING_INDEX = -1

# Options are input tensors (Triton's response cache keys on inputs); -1 / absent = default.
OPTION_UNSET = -1

# The config.pbtxt parameter that names the one task a model serves.
TASK_PARAMETER = "pooling_task"


class UnknownTaskError(ValueError):
    """A task name that is neither a task nor an accepted alias."""


def parse_task(name: str | PoolingTask) -> PoolingTask:
    """Return the task for a name or alias; the error lists the valid names."""
    if isinstance(name, PoolingTask):
        return name
    key = str(name).strip()
    if key in TASK_ALIASES:
        return TASK_ALIASES[key]
    try:
        return PoolingTask(key)
    except ValueError:
        valid = ", ".join(repr(t) for t in TASK_NAMES + tuple(TASK_ALIASES))
        raise UnknownTaskError(f"Unknown pooling task {key!r}; valid tasks: {valid}") from None


def supported_tasks(architectures: Iterable[str]) -> tuple[PoolingTask, ...]:
    """Tasks a checkpoint's architectures can serve, default first (vLLM's rule)."""
    archs = list(architectures)
    if any("ForTokenClassification" in a for a in archs):
        return (PoolingTask.TOKEN_CLASSIFY,)
    if any("ForSequenceClassification" in a for a in archs):
        return (PoolingTask.SEQ_CLASSIFY,)
    # A bare encoder / decoder: its hidden states pool into embeddings.
    return (PoolingTask.EMBED, PoolingTask.TOKEN_EMBED)


def default_task(architectures: Iterable[str]) -> PoolingTask:
    """vLLM's default: ForTokenClassification → token_classify, ForSequenceClassification →
    seq_classify, otherwise embed."""
    return supported_tasks(architectures)[0]


def default_pooling(task: PoolingTask, architectures: Iterable[str] = ()) -> PoolingType:
    """Architecture default pooling for a task: decoders pool their LAST token."""
    decoder = any(_is_decoder_name(a) for a in architectures)
    if task is PoolingTask.EMBED:
        if is_masked_lm(architectures):
            return PoolingType.SPLADE  # a masked-LM head: SPLADE's sparse weights (as vLLM's SPLADE models)
        return PoolingType.LAST if decoder else PoolingType.MEAN
    if task is PoolingTask.SEQ_CLASSIFY:
        return PoolingType.LAST if decoder else PoolingType.NATIVE
    return POOLING_TYPES[task][0]


# Decoder-only families whose classification heads read the last token.
_DECODER_FAMILIES = ("Llama", "Qwen", "Mistral", "Gemma", "Phi", "GPT", "Falcon", "InternLM", "Olmo")


def is_masked_lm(architectures: Iterable[str]) -> bool:
    return any(a.endswith("ForMaskedLM") for a in architectures)


def _is_decoder_name(architecture: str) -> bool:
    return architecture.startswith(_DECODER_FAMILIES)
