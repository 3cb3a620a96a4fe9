"""Pack per-text results into one request's contract outputs (shared by the backend and the ensemble head)."""

from __future__ import annotations

import numpy as np

from triton_pooling_contract.tasks import OUTPUT_TENSOR, TOKEN_LEVEL_TASKS, PoolingTask, Tensor


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
