"""Result objects that read like vLLM's (`out.outputs.data`, `out.outputs.embedding`, ...)."""

from __future__ import annotations

import dataclasses
from typing import Union

import numpy as np

from triton_pooling_contract.tasks import PoolingTask

# What one prompt may be: a text, a (text, text_pair) pair, or pre-tokenized ids.
Prompt = Union[str, "tuple[str, str]", "list[int]"]


@dataclasses.dataclass(frozen=True)
class PoolingOutput:
    """The pooled data of one prompt, as vLLM's PoolingOutput.

    `data` is embed: [D]; token_embed: [T, D]; seq_classify: [L]; token_classify: [T, L]
    (token rows un-padded; STEP models return one row per step tag). A sparse embed model answers a
    SparseEmbeddingOutput instead (`data` a {token_id: weight} dict).
    """

    data: np.ndarray

    @property
    def embedding(self) -> list[float]:
        """vLLM's EmbeddingOutput.embedding."""
        return self.data.tolist()

    @property
    def probs(self) -> list[float]:
        """vLLM's ClassificationOutput.probs (activated scores unless use_activation=False)."""
        return self.data.tolist()

    @property
    def num_classes(self) -> int:
        return int(self.data.shape[-1])


@dataclasses.dataclass(frozen=True)
class SparseEmbeddingOutput(PoolingOutput):
    """A sparse (SPLADE) embed model's output for one prompt.

    `data` maps each vocabulary entry with a nonzero weight to that weight: `{token_id: weight}`, or
    `{token: weight}` when the tokens were asked for (`embed_sparse(..., return_tokens=True)`). `indices` (int32,
    ascending) and `values` (float32) are the same entries as arrays; `tokens` their tokens when asked for.
    """

    data: dict
    indices: np.ndarray
    values: np.ndarray
    tokens: tuple[str, ...] | None = None

    @property
    def embedding(self) -> dict:
        """The sparse vector as a dict (a dense list would be vocabulary-sized)."""
        return dict(self.data)

    @property
    def probs(self) -> list[float]:
        raise AttributeError("a sparse embedding has no probs: read .data ({token_id: weight})")

    @property
    def num_classes(self) -> int:
        raise AttributeError("a sparse embedding has no classes: read .data ({token_id: weight})")

    def to_dense(self, vocabulary_size: int) -> np.ndarray:
        """The vector as a dense float32 [vocabulary_size] array."""
        dense = np.zeros(vocabulary_size, dtype=np.float32)
        dense[self.indices] = self.values
        return dense


@dataclasses.dataclass(frozen=True)
class PoolingRequestOutput:
    """One prompt's result, as vLLM's PoolingRequestOutput.

    `num_tokens` is the server's NUM_TOKENS: the prompt's token count for embed / seq_classify, the
    number of rows in `outputs.data` for token-level tasks. `prompt_token_ids` is set when the
    prompt was given as token ids.
    """

    request_id: str
    prompt: Prompt
    outputs: PoolingOutput
    num_tokens: int
    task: PoolingTask
    model: str
    prompt_token_ids: list[int] | None = None
    finished: bool = True


@dataclasses.dataclass(frozen=True)
class ScoringOutput:
    """vLLM's ScoringOutput: one float per (query, document) pair."""

    score: float

    @property
    def data(self) -> np.ndarray:
        return np.asarray(self.score, dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class ScoringRequestOutput:
    """One pair's score, as vLLM's ScoringRequestOutput."""

    request_id: str
    query: Prompt
    document: Prompt
    outputs: ScoringOutput
    model: str
    finished: bool = True
