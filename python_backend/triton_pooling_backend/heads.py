"""Task heads applied after pooling: embedding normalization and classifier activations (vLLM's rules)."""

from __future__ import annotations

import enum

import torch

from triton_pooling_contract.tasks import EMBEDDING_TASKS, PoolingTask


class Activation(enum.Enum):
    NONE = "none"
    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"


def classifier_activation(problem_type: str | None, num_labels: int) -> Activation:
    """HF `problem_type` wins; otherwise sigmoid for one label, softmax for several."""
    if problem_type == "regression":
        return Activation.NONE
    if problem_type == "multi_label_classification":
        return Activation.SIGMOID
    if problem_type == "single_label_classification":
        return Activation.SOFTMAX
    return Activation.SIGMOID if num_labels == 1 else Activation.SOFTMAX


def activate(scores: torch.Tensor, activation: Activation) -> torch.Tensor:
    """Apply along the last (label) axis."""
    if activation is Activation.SIGMOID:
        return torch.sigmoid(scores)
    if activation is Activation.SOFTMAX:
        return torch.softmax(scores, dim=-1)
    return scores


def embed_rows(rows: torch.Tensor, dimensions: int | None, normalize: bool) -> torch.Tensor:
    """Matryoshka truncation first, then L2 normalization (as vLLM's embedding head)."""
    if dimensions is not None:
        rows = rows[..., :dimensions]
    if normalize:
        rows = torch.nn.functional.normalize(rows, p=2.0, dim=-1)
    return rows


def apply_head(task: PoolingTask, rows: torch.Tensor, dimensions: int | None, use_activation: bool,
               activation: Activation) -> torch.Tensor:
    """The task's head for one text: embeddings are truncated/normalized, scores activated."""
    if task in EMBEDDING_TASKS:
        return embed_rows(rows, dimensions, use_activation)
    return activate(rows, activation if use_activation else Activation.NONE)
