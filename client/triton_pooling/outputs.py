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
    (token rows un-padded; STEP models return one row per step tag).
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
