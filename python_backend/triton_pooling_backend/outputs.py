"""Pack per-text results into one request's contract outputs (shared by the backend and the ensemble head)."""

from __future__ import annotations

import numpy as np

from typing import Callable

from triton_pooling_contract.tasks import OUTPUT_TENSOR, SPARSE_PADDING_INDEX, TOKEN_LEVEL_TASKS, PoolingTask, Tensor


def pack_outputs(task: PoolingTask, results: list[np.ndarray], token_counts: list[int]) -> dict[str, np.ndarray]:
    """Stack the texts of a request; token-level rows are zero-padded to the longest and
    NUM_TOKENS then counts each text's valid rows (tokens, or steps under STEP pooling)."""
    if task in TOKEN_LEVEL_TASKS:
        stacked = np.zeros((len(results), max(r.shape[0] for r in results), results[0].shape[-1]), dtype=np.float32)
        for i, r in enumerate(results):
            stacked[i, : r.shape[0]] = r
        token_counts = [r.shape[0] for r in results]
    else:
        stacked = np.stack(results).astype(np.float32, copy=False)
    return {OUTPUT_TENSOR[task]: stacked, Tensor.NUM_TOKENS: np.asarray(token_counts, dtype=np.int32).reshape(-1, 1)}


def pack_sparse(results: list[np.ndarray], token_counts: list[int], id_to_token: Callable[[int], str]) -> dict:
    """Each text's nonzero weights (ids ascending), padded to the request's longest with index -1, weight 0, token ""."""
    nonzero = [np.flatnonzero(r) for r in results]
    width = max(1, max(len(n) for n in nonzero))
    indices = np.full((len(results), width), SPARSE_PADDING_INDEX, dtype=np.int32)
    values = np.zeros((len(results), width), dtype=np.float32)
    tokens = np.full((len(results), width), b"", dtype=object)
    for row, (ids, weights) in enumerate(zip(nonzero, results)):
        indices[row, : len(ids)] = ids
        values[row, : len(ids)] = weights[ids]
        tokens[row, : len(ids)] = [id_to_token(i).encode("utf-8") for i in ids]
    return {Tensor.SPARSE_INDICES: indices, Tensor.SPARSE_VALUES: values, Tensor.SPARSE_TOKENS: tokens,
            Tensor.NUM_TOKENS: np.asarray(token_counts, dtype=np.int32).reshape(-1, 1)}
