"""Run a loaded model over many texts: length-sorted micro-batches bounded by a token budget, then the task
head per text. numpy only: the encoder is whatever runtime the model was loaded with (encoders/)."""

from __future__ import annotations

import numpy as np


from .encoders import Encoder, EncoderBatch
from .model_facts import ModelFacts
from .pooler import Pooler, pooler_for
from .request_parsing import TextInput
from triton_pooling_contract.definition import ModelDefinition
from .tokenization import EncodedText

# Rows per forward pass, whatever the token budget allows (bounds activation memory of tiny texts).
MAX_ROWS_PER_PASS = 256
# Padding a CPU pass may carry per row: max(tokens, fraction of the pass's width). On CPU a padded
# token costs as much as a real one and batching barely helps (ONNX Runtime, 1 thread: 67-69 texts/s
# for medium texts at batch 1, 2 and 4), so passes join only near-equal lengths: on the mix corpus
# this took 16-text batches from 58 to 81 texts/s (docs/performance.md).
CPU_PAD_SLACK_TOKENS = 2
CPU_PAD_SLACK_FRACTION = 0.05
# Runtimes that compile kernels per pass shape (OpenVINO: a first-seen shape cost ~2x a known one, bf16 on AMX;
# docs/performance.md) say so with `Encoder.pass_width_multiple`: a pass's width is rounded up to that multiple
# (length buckets), rows of one bucket share a pass, and a served model meets a few dozen shapes, not thousands.


class PoolingEngine:
    def __init__(self, facts: ModelFacts, encoder: Encoder, definition: ModelDefinition):
        self.facts = facts
        self.encoder = encoder
        self.definition = definition
        self.task = definition.task
        self.runtime = encoder.runtime
        self.pad_slack = cpu_pad_slack if encoder.on_cpu else None  # GPUs: budget only
        self.width_multiple = encoder.pass_width_multiple
        self.pooler: Pooler = pooler_for(definition.task, facts.pooling, facts.graph_output, facts.activation,
                                         definition.step_tag_id, definition.returned_token_ids, facts.head)

    def run(self, encoded: list[EncodedText]) -> list[np.ndarray]:
        """Raw per-text rows (pooled states or logits), in input order."""
        results: list[np.ndarray | None] = [None] * len(encoded)
        for chunk in self.micro_batches([len(e) for e in encoded]):
            for i, rows in zip(chunk, self._forward([encoded[i] for i in chunk])):
                results[i] = rows
        return results  # type: ignore[return-value]

    def micro_batches(self, lengths: list[int]) -> list[list[int]]:
        return micro_batches(lengths, self.definition.max_batch_tokens, self.pad_slack, self.width_multiple,
                             self.facts.max_tokens)

    def finish(self, rows: np.ndarray, item: TextInput) -> np.ndarray:
        """Apply the task head with the text's own options."""
        use_activation = self.definition.use_activation if item.use_activation is None else item.use_activation
        return self.pooler.finish(rows, item.dimensions, use_activation)

    def _forward(self, batch: list[EncodedText]) -> list[np.ndarray]:
        facts = self.facts
        width = padded_width(max(len(e) for e in batch), self.width_multiple, self.facts.max_tokens)
        ids = np.full((len(batch), width), facts.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        types = np.zeros((len(batch), width), dtype=np.int64) if facts.with_token_types else None
        for row, e in enumerate(batch):
            ids[row, : len(e)] = e.input_ids
            mask[row, : len(e)] = 1 if e.attention is None else e.attention
            if types is not None and e.token_type_ids is not None:
                types[row, : len(e)] = e.token_type_ids
        out = self.encoder.run(EncoderBatch(ids, mask, types))
        if not any(e.pooling_start or e.keep is not None for e in batch):
            return self.pooler.pool(out, mask, ids)
        pooled = mask.copy()  # a prompt's tokens are encoded with the text but left out of its pooling
        for row, e in enumerate(batch):
            if e.keep is not None:  # ColBERT: expansion rows kept though not attended to, skiplist rows left out
                pooled[row, : len(e)] = e.keep
            pooled[row, : e.pooling_start] = 0
        return self.pooler.pool(out, mask, ids, pooled)


def cpu_pad_slack(width: int) -> int:
    return max(CPU_PAD_SLACK_TOKENS, int(CPU_PAD_SLACK_FRACTION * width))


def padded_width(width: int, multiple: int = 1, limit: int | None = None) -> int:
    """A pass's width rounded up to `multiple` tokens, never past the model's position limit (nor below `width`)."""
    rounded = -(-width // multiple) * multiple
    return max(width, min(rounded, limit)) if limit else rounded


def micro_batches(lengths: list[int], max_tokens: int, pad_slack=None, width_multiple: int = 1,
                  limit: int | None = None) -> list[list[int]]:
    """Indices sorted longest first, cut so rows x the pass's width stays within `max_tokens` and, with
    `pad_slack(width)`, no row is padded by more than that many tokens. With `width_multiple` > 1 the width is the
    longest row rounded up to that multiple (capped at `limit`), and rows of one bucket always share a pass."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    chunks: list[list[int]] = []
    for i in order:
        if chunks:
            chunk = chunks[-1]
            width = padded_width(lengths[chunk[0]], width_multiple, limit)
            fits = len(chunk) < MAX_ROWS_PER_PASS and (len(chunk) + 1) * width <= max_tokens
            slack = None if pad_slack is None else max(pad_slack(width), width_multiple - 1)
            if fits and (slack is None or width - lengths[i] <= slack):
                chunk.append(i)
                continue
        chunks.append([i])
    return chunks
