"""The pooler, composed as vLLM composes it: a pooling method (how the encoder's token rows become the rows a head
sees) and a task head (what a row becomes). The engine and the TensorRT ensemble's head step both use it.

    pooler = pooler_for(task, pooling, graph_output, activation, step_tag_id, returned_token_ids)
    rows = pooler.pool(encoder_output, attention_mask, input_ids)     # one array per text
    pooler.finish(rows[i], dimensions, use_activation)                 # the task's output for text i
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from triton_pooling_contract.parameters import Activation
from triton_pooling_contract.serving import GraphOutput
from triton_pooling_contract.tasks import EMBEDDING_TASKS, TOKEN_LEVEL_TASKS, PoolingTask, PoolingType

from .heads import activate, embed_rows
from .pooling import pool_sequences, pool_tokens


@dataclasses.dataclass(frozen=True)
class SequencePooling:
    """CLS / MEAN / LAST over the mask: [B, T, X] -> one [X] row per text."""

    pooling: PoolingType

    def __call__(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
        return list(pool_sequences(out, mask, self.pooling))


@dataclasses.dataclass(frozen=True)
class HeadPooling:
    """The checkpoint's own head pooled already (the graph returns [B, L])."""

    def __call__(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
        return list(out)


@dataclasses.dataclass(frozen=True)
class TokenPooling:
    """ALL: every real token; STEP: the rows at the step tag. [B, T, X] -> one [rows, X] array per text."""

    pooling: PoolingType
    step_tag_id: int | None = None

    def __call__(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
        return pool_tokens(out, mask, ids, self.pooling, self.step_tag_id)


@dataclasses.dataclass(frozen=True)
class EmbeddingHead:
    """Matryoshka truncation, then L2 normalization (vLLM's embedding head)."""

    def __call__(self, rows: np.ndarray, dimensions: int | None, use_activation: bool) -> np.ndarray:
        return embed_rows(rows, dimensions, use_activation)


@dataclasses.dataclass(frozen=True)
class ClassifierHead:
    """The label columns a model returns (STEP's returned_token_ids), then the activation."""

    activation: Activation
    columns: tuple[int, ...] | None = None

    def __call__(self, rows: np.ndarray, dimensions: int | None, use_activation: bool) -> np.ndarray:
        if self.columns:
            rows = rows[..., list(self.columns)]
        return activate(rows, self.activation if use_activation else Activation.NONE)


@dataclasses.dataclass(frozen=True)
class Pooler:
    method: SequencePooling | HeadPooling | TokenPooling
    head: EmbeddingHead | ClassifierHead

    def pool(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
        return self.method(out, mask, ids)

    def finish(self, rows: np.ndarray, dimensions: int | None, use_activation: bool) -> np.ndarray:
        return self.head(np.asarray(rows, dtype=np.float32), dimensions, use_activation)


def pooler_for(task: PoolingTask, pooling: PoolingType, graph_output: GraphOutput, activation: Activation,
               step_tag_id: int | None = None, returned_token_ids: Sequence[int] | None = None) -> Pooler:
    """The task's pooler: the method its pooling names (the checkpoint's own head when the graph pooled already),
    the head its task names."""
    if graph_output is GraphOutput.SEQUENCE_LOGITS:
        method = HeadPooling()
    elif task in TOKEN_LEVEL_TASKS:
        method = TokenPooling(pooling, step_tag_id)
    else:
        method = SequencePooling(pooling)
    if task in EMBEDDING_TASKS:
        return Pooler(method, EmbeddingHead())
    return Pooler(method, ClassifierHead(activation, tuple(returned_token_ids) if returned_token_ids else None))
