"""A bound on the model output one request may hold (--max-output-bytes), checked twice: before anything
is sent, from what the request itself says (inputs x the most rows each can have x the row width), and as
Triton's answers arrive (their real sizes), so memory stays bounded even when the estimate cannot be made.

/pooling on a token_embed model for 2,048 texts of 256 tokens is 805 MB of float32; as JSON it would be
several GB. The estimate refuses it in microseconds, before the stub spends minutes computing it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from triton_pooling.batching import EncodeOptions
from triton_pooling.discovery import ModelInfo
from triton_pooling.prompts import NormalizedPrompt
from triton_pooling_contract.tasks import OUTPUT_TENSOR, TOKEN_LEVEL_TASKS, Tensor

from ..errors import ErrorKind, GatewayError

FLOAT32_BYTES = 4
# Tokens beyond a text's UTF-8 bytes: the special tokens a tokenizer adds ([CLS], [SEP], a BOS/EOS pair).
SPECIAL_TOKENS = 4


def estimated_bytes(model: ModelInfo, prompts: Sequence[NormalizedPrompt], options: EncodeOptions,
                    max_tokens: int | None, width: int | None) -> tuple[int, int] | None:
    """(float32 bytes, rows) the output can reach, or None when it cannot be told before asking Triton (the
    row width is not known until the model has answered once: its /health probe or a request)."""
    width = options.dimensions or width
    if width is None or model.sparse:
        # A sparse text's nonzeros are bounded by the vocabulary, not by its length (one token's logits can weigh
        # thousands of entries): no useful bound before asking; the check on Triton's answers holds it.
        return None
    if model.task not in TOKEN_LEVEL_TASKS:
        return len(prompts) * width * FLOAT32_BYTES, len(prompts)
    rows = 0
    for prompt in prompts:
        caps = [c for c in (max_tokens, options.truncate_prompt_tokens) if c]
        if prompt.token_ids is not None:
            caps.append(len(prompt.token_ids))
        else:
            # A token covers at least one byte for the tokenizers served here; a normalizer that expands
            # text could beat this, which the check on Triton's answers still catches.
            text = prompt.text + (prompt.text_pair or "")
            caps.append(len(text.encode("utf-8")) + SPECIAL_TOKENS)
        rows += min(caps)
    return rows * width * FLOAT32_BYTES, rows


class OutputTally:
    """The output held so far for one request; raises 413 once it passes the limit."""

    def __init__(self, model: ModelInfo, limit: int, calls: int):
        self.model, self.limit, self.calls = model, limit, calls
        self.bytes = 0
        self.answers = 0

    def check_estimate(self, estimate: tuple[int, int] | None, inputs: int) -> None:
        if estimate is not None and estimate[0] > self.limit:
            size, rows = estimate
            per_row = size // max(rows, 1) // FLOAT32_BYTES
            raise GatewayError(ErrorKind.TOO_LARGE, f"this request's output would be up to {size} bytes ({inputs} "
                               f"inputs, up to {rows} rows of {per_row} float32 values); this gateway holds at most "
                               f"{self.limit} bytes of output per request (--max-output-bytes): send fewer inputs, or "
                               "shorter ones (truncate_prompt_tokens, dimensions)", "input")

    def add(self, response: Mapping[str, np.ndarray]) -> None:
        if self.model.sparse:
            self._count(sparse_bytes(response))
            return
        data = response[OUTPUT_TENSOR[self.model.task]]
        if self.model.task in TOKEN_LEVEL_TASKS:
            values = int(response[Tensor.NUM_TOKENS].sum()) * int(data.shape[-1])
        else:
            values = int(data.size)
        self._count(values * FLOAT32_BYTES)

    def _count(self, size: int) -> None:
        self.bytes += size
        self.answers += 1
        if self.bytes > self.limit:
            raise GatewayError(ErrorKind.TOO_LARGE, f"this request's output passed {self.limit} bytes after "
                               f"{self.answers} of its {self.calls} Triton answers; this gateway holds at most "
                               f"{self.limit} bytes of output per request (--max-output-bytes): send fewer inputs, or "
                               "shorter ones (truncate_prompt_tokens, dimensions)", "input")


def sparse_bytes(response: Mapping[str, np.ndarray]) -> int:
    """A sparse answer's size: its index and weight arrays (padding included, as held) and its tokens' UTF-8."""
    size = int(response[Tensor.SPARSE_INDICES].nbytes) + int(response[Tensor.SPARSE_VALUES].nbytes)
    tokens = response.get(Tensor.SPARSE_TOKENS)
    if tokens is not None:
        size += sum(len(t) for t in np.asarray(tokens).reshape(-1))
    return size
