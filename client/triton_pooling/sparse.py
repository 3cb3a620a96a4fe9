"""Sparse (SPLADE) embed models: how one is told from its config, which outputs it is asked for, how a row of its
padded [N, K] answer becomes one {token_id: weight} per text, and the dot product that scores two of them.

A sparse model is an `embed` model whose config answers SPARSE_INDICES / SPARSE_VALUES / SPARSE_TOKENS instead of
EMBEDDING (or names pooling_type SPLADE). K is the most nonzeros among one request's texts, so it differs from
request to request; shorter rows are padded with index -1, weight 0, token "".
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from triton_pooling_contract.tasks import OUTPUT_TENSOR, SPARSE_PADDING_INDEX, PoolingType, Tensor

from .errors import InvalidRequestError
from .outputs import SparseEmbeddingOutput

POOLING_TYPE_PARAMETER = "pooling_type"


def is_sparse_config(config: Mapping, pooling_type: str | None) -> bool:
    """A sparse model: its outputs hold SPARSE_INDICES, or its pooling_type parameter is SPLADE."""
    outputs = {str(o.get("name")) for o in config.get("output") or () if isinstance(o, Mapping)}
    return Tensor.SPARSE_INDICES in outputs or (pooling_type or "").strip().upper() == PoolingType.SPLADE.value


def output_names(model, return_tokens: bool = False) -> tuple[str, ...]:
    """What to ask the model for: SPARSE_TOKENS only when the tokens are wanted (strings cost the most bytes)."""
    if not model.sparse:
        if return_tokens:
            raise InvalidRequestError(f"return_tokens=True needs a sparse (SPLADE) embed model; model {model.name!r} "
                                      f"serves dense {model.task.value!r} outputs (leave return_tokens False)")
        return OUTPUT_TENSOR[model.task], Tensor.NUM_TOKENS
    tokens = (Tensor.SPARSE_TOKENS,) if return_tokens else ()
    return (Tensor.SPARSE_INDICES, Tensor.SPARSE_VALUES, *tokens, Tensor.NUM_TOKENS)


def sparse_row(response: Mapping[str, np.ndarray], row: int, return_tokens: bool) -> SparseEmbeddingOutput:
    """One text's entries of a padded answer, padding dropped."""
    indices = np.asarray(response[Tensor.SPARSE_INDICES][row]).reshape(-1)
    keep = indices != SPARSE_PADDING_INDEX
    ids = indices[keep].astype(np.int32)
    values = np.asarray(response[Tensor.SPARSE_VALUES][row]).reshape(-1)[keep].astype(np.float32)
    tokens = None
    if return_tokens:
        raw = np.asarray(response[Tensor.SPARSE_TOKENS][row]).reshape(-1)[keep]
        tokens = tuple(t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in raw)
    keys = tokens if tokens is not None else ids.tolist()
    return SparseEmbeddingOutput(dict(zip(keys, values.tolist())), ids, values, tokens)


def sparse_dot(a: SparseEmbeddingOutput, b: SparseEmbeddingOutput) -> float:
    """The dot product of two sparse vectors (SparseEncoder's similarity), over the ids both hold."""
    _, ia, ib = np.intersect1d(a.indices, b.indices, assume_unique=True, return_indices=True)
    return float(np.asarray(a.values[ia], dtype=np.float64) @ np.asarray(b.values[ib], dtype=np.float64))
