"""Task heads in numpy, applied after pooling: embedding normalization and classifier activations
(vLLM's rules). Computed in float32, as transformers computes them."""

from __future__ import annotations

import enum

import numpy as np

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


def activate(scores: np.ndarray, activation: Activation) -> np.ndarray:
    """Apply along the last (label) axis."""
    if activation is Activation.SIGMOID:
        return 1.0 / (1.0 + np.exp(-scores))
    if activation is Activation.SOFTMAX:
        shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    return scores


def embed_rows(rows: np.ndarray, dimensions: int | None, normalize: bool) -> np.ndarray:
    """Matryoshka truncation first, then L2 normalization (as vLLM's embedding head; eps as torch's)."""
    if dimensions is not None:
        rows = rows[..., :dimensions]
    if normalize:
        norm = np.sqrt((rows * rows).sum(axis=-1, keepdims=True))
        rows = rows / np.maximum(norm, 1e-12)
    return rows


def apply_head(task: PoolingTask, rows: np.ndarray, dimensions: int | None, use_activation: bool,
               activation: Activation) -> np.ndarray:
    """The task's head for one text: embeddings are truncated/normalized, scores activated."""
    rows = np.asarray(rows, dtype=np.float32)
    if task in EMBEDDING_TASKS:
        return embed_rows(rows, dimensions, use_activation)
    return activate(rows, activation if use_activation else Activation.NONE)
