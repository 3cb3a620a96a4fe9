"""The pooler, composed as vLLM composes it: a pooling method (how the encoder's token rows become the rows a head
sees) and a task head (what a row becomes). The engine and the TensorRT ensemble's head step both use it.

    pooler = pooler_for(task, pooling, graph_output, activation, step_tag_id, returned_token_ids)
    rows = pooler.pool(encoder_output, attention_mask, input_ids)     # one array per text
    pooler.finish(rows[i], dimensions, use_activation)                 # the task's output for text i
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Mapping, Sequence

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

    def __call__(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray,
                 pooled: np.ndarray | None = None) -> list[np.ndarray]:
        return list(pool_sequences(out, mask if pooled is None else pooled, self.pooling, mask))


@dataclasses.dataclass(frozen=True)
class HeadPooling:
    """The checkpoint's own head pooled already (the graph returns [B, L])."""

    def __call__(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray, pooled=None) -> list[np.ndarray]:
        return list(out)


@dataclasses.dataclass(frozen=True)
class TokenPooling:
    """ALL: every real token; STEP: the rows at the step tag. [B, T, X] -> one [rows, X] array per text."""

    pooling: PoolingType
    step_tag_id: int | None = None

    def __call__(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray, pooled=None) -> list[np.ndarray]:
        return pool_tokens(out, mask if pooled is None else pooled, ids, self.pooling, self.step_tag_id)


@dataclasses.dataclass(frozen=True, eq=False)
class DenseStep:
    """sentence-transformers' Dense: activation(x @ W.T + b), in float32 as torch computes it."""

    weight: np.ndarray  # [out, in]
    bias: np.ndarray | None
    activation: str  # a torch.nn class name (st_pipeline.SERVED_ACTIVATIONS)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        out = rows @ self.weight.T
        return ACTIVATIONS[self.activation](out if self.bias is None else out + self.bias)


@dataclasses.dataclass(frozen=True, eq=False)
class LayerNormStep:
    """sentence-transformers' LayerNorm (torch.nn.LayerNorm over the last axis)."""

    weight: np.ndarray
    bias: np.ndarray
    eps: float = 1e-5

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        mean = rows.mean(axis=-1, keepdims=True)
        var = ((rows - mean) ** 2).mean(axis=-1, keepdims=True)
        return (rows - mean) / np.sqrt(var + self.eps) * self.weight + self.bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """torch.nn.GELU's exact form (erf), not the tanh approximation."""
    erf = np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2.0)).astype(x.dtype)
    return 0.5 * x * (1.0 + erf)


ACTIVATIONS = {
    "Identity": lambda x: x,
    "Tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "GELU": _gelu,
    "SiLU": lambda x: x / (1.0 + np.exp(-x)),
}


@dataclasses.dataclass(frozen=True)
class EmbeddingHead:
    """The checkpoint's own modules after pooling (sentence-transformers' Dense / LayerNorm), then Matryoshka
    truncation, then L2 normalization (vLLM's embedding head; the pipeline's Normalize)."""

    steps: tuple[DenseStep | LayerNormStep, ...] = ()

    def __call__(self, rows: np.ndarray, dimensions: int | None, use_activation: bool) -> np.ndarray:
        for step in self.steps:
            rows = step(rows).astype(np.float32)
        return embed_rows(rows, dimensions, use_activation)


@dataclasses.dataclass(frozen=True)
class SparseHead:
    """SPLADE: the graph pooled one weight per vocabulary entry; served as computed, L2-normalized only when asked
    (outputs.pack_sparse keeps the nonzero ones)."""

    def __call__(self, rows: np.ndarray, dimensions: int | None, use_activation: bool) -> np.ndarray:
        return embed_rows(rows, None, use_activation)


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
    head: EmbeddingHead | SparseHead | ClassifierHead

    @property
    def sparse(self) -> bool:
        return isinstance(self.head, SparseHead)

    def pool(self, out: np.ndarray, mask: np.ndarray, ids: np.ndarray,
             pooled: np.ndarray | None = None) -> list[np.ndarray]:
        """`pooled`: the tokens the pooling reads, where it reads fewer than the mask holds (a left-out prompt)."""
        return self.method(out, mask, ids, pooled)

    def finish(self, rows: np.ndarray, dimensions: int | None, use_activation: bool) -> np.ndarray:
        return self.head(np.asarray(rows, dtype=np.float32), dimensions, use_activation)


def pooler_for(task: PoolingTask, pooling: PoolingType, graph_output: GraphOutput, activation: Activation,
               step_tag_id: int | None = None, returned_token_ids: Sequence[int] | None = None,
               head_steps: tuple = ()) -> Pooler:
    """The task's pooler: the method its pooling names (the checkpoint's own head when the graph pooled already),
    the head its task names."""
    if graph_output is GraphOutput.SPARSE_WEIGHTS:
        return Pooler(HeadPooling(), SparseHead())
    if graph_output is GraphOutput.SEQUENCE_LOGITS:
        method = HeadPooling()
    elif task in TOKEN_LEVEL_TASKS:
        method = TokenPooling(pooling, step_tag_id)
    else:
        method = SequencePooling(pooling)
    if task in EMBEDDING_TASKS:
        return Pooler(method, EmbeddingHead(tuple(head_steps)))
    return Pooler(method, ClassifierHead(activation, tuple(returned_token_ids) if returned_token_ids else None))


def load_head(npz: Path, steps: Sequence[Mapping]) -> tuple[DenseStep | LayerNormStep, ...]:
    """The head steps a built model's serving.json lists, with their weights from its head.npz."""
    if not steps:
        return ()
    with np.load(npz, allow_pickle=False) as arrays:
        loaded = []
        for i, step in enumerate(steps):
            bias = arrays[f"{i}.bias"].astype(np.float32) if f"{i}.bias" in arrays else None
            weight = arrays[f"{i}.weight"].astype(np.float32)
            if step["kind"] == "Dense":
                loaded.append(DenseStep(weight, bias, str(step["activation"])))
            else:
                loaded.append(LayerNormStep(weight, bias, float(step.get("eps", 1e-5))))
    return tuple(loaded)
