"""Task heads' arithmetic in numpy, applied after pooling: embedding normalization and classifier activations
(vLLM's rules). Computed in float32, as transformers computes them. `pooler.py` composes them."""

from __future__ import annotations

import numpy as np

from triton_pooling_contract.parameters import Activation


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
