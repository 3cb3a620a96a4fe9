"""vLLM's chunked processing for embed models (`enable_chunked_processing`).

A prompt longer than the model's window (`max_tokens`) is not refused: its token ids — as the tokenizer
made them, special tokens included — are cut into consecutive chunks of at most `max_tokens`; each chunk
is encoded on its own and pooled with the model's pooling and its head (Matryoshka DIMENSIONS, then
L2-normalization unless USE_ACTIVATION is false), exactly as vLLM runs each chunk as its own request;
the chunk vectors are then averaged weighted by their token counts (vLLM's cross-chunk MEAN). Like
vLLM, the average is not normalized again. Prompts that fit the window are untouched.
"""

from __future__ import annotations

import numpy as np

from .tokenization import EncodedText


def split_chunks(encoded: EncodedText, size: int) -> list[EncodedText]:
    ids, types = encoded.input_ids, encoded.token_type_ids
    return [EncodedText(ids[i:i + size], types[i:i + size] if types is not None else None,
                        max(0, min(encoded.pooling_start - i, size)))  # a left-out prompt lies in the first chunks
            for i in range(0, len(ids), size)]


def combine_chunks(vectors: list[np.ndarray], lengths: list[int]) -> np.ndarray:
    """Token-count-weighted mean of the chunks' finished vectors."""
    weights = np.asarray(lengths, dtype=np.float64)
    stacked = np.stack([np.asarray(v, dtype=np.float64) for v in vectors])
    return (weights @ stacked / weights.sum()).astype(np.float32)
