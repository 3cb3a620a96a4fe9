"""Pooling methods: how a padded batch of token states becomes the rows a task head sees.

Every method reads the attention mask, never the padding side, so left- and right-padded
batches give the same rows.
"""

from __future__ import annotations

import torch

from triton_pooling_contract.tasks import PoolingType


def pool_sequences(hidden: torch.Tensor, mask: torch.Tensor, pooling: PoolingType) -> torch.Tensor:
    """[B, T, H] states + [B, T] mask → [B, H] (CLS / MEAN / LAST)."""
    if pooling is PoolingType.CLS:
        first = _first_index(mask)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    if pooling is PoolingType.LAST:
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_index(mask)]
    if pooling is PoolingType.MEAN:
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    raise ValueError(f"{pooling} is not a sequence pooling method")


def pool_tokens(
    hidden: torch.Tensor, mask: torch.Tensor, input_ids: torch.Tensor, pooling: PoolingType, step_tag_id: int | None
) -> list[torch.Tensor]:
    """[B, T, H] states → one [rows, H] tensor per text (ALL: every token; STEP: step tags)."""
    keep = mask.bool()
    if pooling is PoolingType.STEP:
        keep = keep & (input_ids == step_tag_id)
    elif pooling is not PoolingType.ALL:
        raise ValueError(f"{pooling} is not a token pooling method")
    return [hidden[i][keep[i]] for i in range(hidden.shape[0])]


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row, for left or right padding."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return (positions * mask.long()).argmax(dim=1)


def _first_index(mask: torch.Tensor) -> torch.Tensor:
    return mask.long().argmax(dim=1)
