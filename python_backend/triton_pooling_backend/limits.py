"""Per-request limits that protect the model process: bytes per text and texts per request.

Checked before any decoding or tokenization, so a hostile request costs the process next to
nothing. (Tokens per text is the model's `max_tokens`, checked after tokenization; queued
requests are bounded by Triton's queue policy in config.pbtxt.)
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from .errors import InvalidInputError, ModelConfigError

# TEI's payload scale (2 MB): a long document still fits, to be truncated (TRUNCATE_PROMPT_TOKENS reads
# only its tail, see truncation.py) or chunked (enable_chunked_processing); checked before decoding.
DEFAULT_MAX_TEXT_BYTES = 2 * 1024 * 1024
# Used only when the model does no batching (max_batch_size 0); else max_batch_size is the default.
DEFAULT_MAX_TEXTS_PER_REQUEST = 64

MAX_TEXT_BYTES = "max_text_bytes"
MAX_TEXTS_PER_REQUEST = "max_texts_per_request"


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    max_texts_per_request: int = DEFAULT_MAX_TEXTS_PER_REQUEST

    @classmethod
    def resolve(cls, max_text_bytes: int | None, max_texts_per_request: int | None,
                max_batch_size: int) -> "RequestLimits":
        """Fill unset limits with safe defaults; a texts-per-request limit above max_batch_size
        could never be reached (Triton refuses larger requests first), so it is a config error."""
        texts = max_texts_per_request or max_batch_size or DEFAULT_MAX_TEXTS_PER_REQUEST
        if max_batch_size and texts > max_batch_size:
            raise ModelConfigError(
                f"parameter {MAX_TEXTS_PER_REQUEST!r} is {texts}; it cannot exceed max_batch_size "
                f"({max_batch_size}), which Triton enforces first: lower it or raise max_batch_size"
            )
        return cls(max_text_bytes or DEFAULT_MAX_TEXT_BYTES, texts)

    def check_count(self, count: int, name: str) -> None:
        if count > self.max_texts_per_request:
            raise InvalidInputError(
                f"{name} carries {count} texts; this model takes at most {self.max_texts_per_request} per "
                f"request (parameter {MAX_TEXTS_PER_REQUEST}): split the request"
            )

    def check_bytes(self, rows: Iterable, name: str) -> None:
        """Refuse any row longer than the byte limit, measured before decoding."""
        for row, value in enumerate(rows):
            size = _byte_size(value)
            if size > self.max_text_bytes:
                raise InvalidInputError(
                    f"{name}[{row}] is {size} bytes; this model takes at most {self.max_text_bytes} bytes per "
                    f"text (parameter {MAX_TEXT_BYTES}): shorten or split it"
                )


def _byte_size(value) -> int:
    if isinstance(value, (bytes, bytearray)):  # np.bytes_ is a bytes subclass
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", errors="surrogatepass"))
    return 0  # not text at all: the parser refuses it with its own message
