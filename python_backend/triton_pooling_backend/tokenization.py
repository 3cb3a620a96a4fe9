"""Batched tokenization of validated text inputs, grouped so each tokenizer call is one batch."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from .request_parsing import TextInput


@dataclasses.dataclass(frozen=True)
class EncodedText:
    input_ids: list[int]
    token_type_ids: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


class TextTokenizer:
    def __init__(self, tokenizer, with_token_types: bool):
        self._tokenizer = tokenizer
        self._with_token_types = with_token_types

    def encode(self, inputs: list[TextInput]) -> list[EncodedText]:
        """Tokenize every text input (special tokens added, left truncation to `truncate`);
        pre-tokenized ids pass through, truncated to their last k."""
        encoded: list[EncodedText | None] = [None] * len(inputs)
        groups: dict[tuple[bool, int | None], list[int]] = defaultdict(list)
        for i, item in enumerate(inputs):
            if item.input_ids is not None:
                ids = list(item.input_ids)
                encoded[i] = EncodedText(ids[-item.truncate:] if item.truncate else ids)
            else:
                groups[(item.text_pair is not None, item.truncate)].append(i)
        for (has_pair, truncate), indices in groups.items():
            batch = self._tokenizer(
                [inputs[i].text for i in indices],
                text_pair=[inputs[i].text_pair for i in indices] if has_pair else None,
                truncation=truncate is not None,
                max_length=truncate,
                return_attention_mask=False,
                return_token_type_ids=self._with_token_types,
            )
            types = batch.get("token_type_ids") if self._with_token_types else None
            for j, i in enumerate(indices):
                encoded[i] = EncodedText(batch["input_ids"][j], types[j] if types is not None else None)
        return encoded  # type: ignore[return-value]
