"""The parity check every built graph passes before it is written: the serving runtime's outputs against
transformers' on seeded batches of mixed lengths (each row padded differently), at real positions."""

from __future__ import annotations

import numpy as np

from triton_pooling_backend.encoders import Encoder, EncoderBatch

# Rows of each parity batch: mixed on purpose, so padding differs per row and between batches.
PARITY_LENGTHS = ((3, 17, 41), (29, 2, 11, 30))
# Max-abs (relative to the outputs' scale) a lean runtime may differ from transformers by.
PARITY_TOLERANCE = 1e-5
# int8 and bf16 are lossy by design: beyond this relative error the graph is taken as broken, not lossy.
LOSSY_SANITY_TOLERANCE = 0.5


def parity_batches(vocab_size: int, pad_token_id: int, max_tokens: int, with_token_types: bool) -> list[dict]:
    """Seeded, right-padded feeds (numpy int64) of mixed lengths, within the model's token limit."""
    rng = np.random.default_rng(0)
    low = min(5, vocab_size - 1)
    batches = []
    for lengths in PARITY_LENGTHS:
        lengths = [max(1, min(n, max_tokens)) for n in lengths]
        width = max(lengths)
        ids = np.full((len(lengths), width), pad_token_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, n in enumerate(lengths):
            ids[row, :n] = rng.integers(low, vocab_size, n)
            mask[row, :n] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if with_token_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        batches.append(feed)
    return batches


def parity_error(reference, encoder: Encoder, batches: list[dict]) -> float:
    """Max-abs difference over real positions, relative to max(1, the largest reference value)."""
    worst = 0.0
    for feed in batches:
        expected = reference(feed)
        actual = encoder.run(EncoderBatch(feed["input_ids"], feed["attention_mask"], feed.get("token_type_ids")))
        if actual.shape != expected.shape:
            raise ValueError(f"graph output shape {actual.shape} differs from transformers' {expected.shape}")
        if expected.ndim == 3:  # token rows: padded positions are in no answer
            real = feed["attention_mask"].astype(bool)
            expected, actual = expected[real], actual[real]
        scale = max(1.0, float(np.abs(expected).max()))
        worst = max(worst, float(np.abs(actual.astype(np.float64) - expected).max()) / scale)
    return worst
