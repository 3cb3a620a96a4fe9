"""Quantized embeddings, as sentence-transformers' `quantize_embeddings` defines them (util/quantization.py),
in the types Cohere's embed API returns.

- int8 / uint8: `quantize_embeddings(x, precision, ranges=R)` with the fixed calibration R = [-1, 1] for every
  dimension: starts = -1, steps = 2/255, q = clip(floor((x - starts) / steps), 0, 255); uint8 = q,
  int8 = q - 128. Fixed, not calibrated on the request's own vectors (quantize_embeddings' default, which makes
  a vector's codes depend on the other texts sent with it and refuses a single text): every component of an
  L2-normalized embedding lies in [-1, 1], so this range covers all of it, and values outside it (a model
  answering unnormalized vectors) are clipped, as quantize_embeddings clips.
- binary / ubinary: one sign bit per dimension (x > 0 → 1), packed 8 per byte, most significant first
  (numpy.packbits); ubinary is the packed byte, binary the byte - 128 (Cohere's and sentence-transformers'
  signed binary).
- base64: Cohere's base64 type, the float32 values little-endian, base64-encoded.
"""

from __future__ import annotations

import base64

import numpy as np

EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
RANGE = (-1.0, 1.0)


def calibration(dimensions: int) -> np.ndarray:
    """The `ranges` passed to quantize_embeddings: [[-1] * D, [1] * D]."""
    return np.array([[RANGE[0]] * dimensions, [RANGE[1]] * dimensions], dtype=np.float32)


def quantize(embeddings: np.ndarray, embedding_type: str):
    """One JSON value per row: lists of floats / ints, or base64 strings."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embedding_type == "float":
        return list(x)
    if embedding_type == "base64":
        return [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in x]
    if embedding_type in ("int8", "uint8"):
        ranges = calibration(x.shape[-1])
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((x - starts) / steps), 0, 255)
        return (q.astype(np.uint8) if embedding_type == "uint8" else (q - 128).astype(np.int8)).tolist()
    if embedding_type in ("binary", "ubinary"):
        packed = np.packbits(x > 0, axis=-1)
        return (packed if embedding_type == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)).tolist()
    raise ValueError(f"embedding type {embedding_type!r} is not one of {EMBEDDING_TYPES}")
