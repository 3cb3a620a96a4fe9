"""Pooling methods in numpy: how a padded batch of token rows becomes the rows a task head sees.

Every method reads the attention mask, never the padding side, so left- and right-padded
batches give the same rows.
"""

from __future__ import annotations

import numpy as np

from triton_pooling_contract.tasks import PoolingType


def pool_sequences(hidden: np.ndarray, mask: np.ndarray, pooling: PoolingType,
                   positions_mask: np.ndarray | None = None) -> np.ndarray:
    """[B, T, H] rows + [B, T] mask → [B, H] (CLS / MEAN / LAST, and sentence-transformers' MAX / MEAN_SQRT_LEN /
    WEIGHTED_MEAN). `positions_mask`: the encoded tokens, where `mask` (what is pooled) leaves a prompt out —
    weightedmean counts positions from the first encoded token, as sentence-transformers does."""
    rows = np.arange(hidden.shape[0])
    if pooling is PoolingType.CLS:
        return hidden[rows, first_index(mask)]
    if pooling is PoolingType.LAST:
        return hidden[rows, last_index(mask)]
    weights = mask.astype(hidden.dtype)[..., None]
    if pooling is PoolingType.MEAN:
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    if pooling is PoolingType.MEAN_SQRT_LEN:  # sentence-transformers' mean_sqrt_len_tokens
        return (hidden * weights).sum(axis=1) / np.sqrt(np.maximum(weights.sum(axis=1), 1e-9))
    if pooling is PoolingType.MAX:  # padded positions never win
        return np.where(weights > 0, hidden, -np.inf).max(axis=1)
    if pooling is PoolingType.WEIGHTED_MEAN:  # sentence-transformers' weightedmean: weight = position from 1
        start = first_index(mask if positions_mask is None else positions_mask)
        positions = np.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype)[None, :] - start[:, None]
        weighted = weights * positions[..., None]
        return (hidden * weighted).sum(axis=1) / np.maximum(weighted.sum(axis=1), 1e-9)
    raise ValueError(f"{pooling} is not a sequence pooling method")


def pool_tokens(hidden: np.ndarray, mask: np.ndarray, input_ids: np.ndarray, pooling: PoolingType,
                step_tag_id: int | None) -> list[np.ndarray]:
    """[B, T, H] rows → one [rows, H] array per text (ALL: every token; STEP: the step tags)."""
    keep = mask.astype(bool)
    if pooling is PoolingType.STEP:
        keep = keep & (input_ids == step_tag_id)
    elif pooling is not PoolingType.ALL:
        raise ValueError(f"{pooling} is not a token pooling method")
    return [hidden[i][keep[i]] for i in range(hidden.shape[0])]


def last_index(mask: np.ndarray) -> np.ndarray:
    """Index of the last real token of each row, for left or right padding."""
    positions = np.arange(mask.shape[1])[None, :] * (mask != 0)
    return positions.argmax(axis=1)


def first_index(mask: np.ndarray) -> np.ndarray:
    return (mask != 0).argmax(axis=1)
