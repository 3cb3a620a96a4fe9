"""Batched tokenization of validated text inputs with the checkpoint's fast (Rust) tokenizer, grouped so
each tokenizer call is one batch. Only the `tokenizers` package: no transformers in the stub.

Matches `transformers` called as the references call it: special tokens added, no padding, and for
TRUNCATE_PROMPT_TOKENS `truncation=True, max_length=k` with `truncation_side="left"` (vLLM keeps the last
k tokens; the Rust tokenizer counts special tokens within k, as transformers does).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

from .request_parsing import TextInput
from .truncation import WHOLE_TEXT_CHARS, exceeds, last_tokens, special_token_count


@dataclasses.dataclass(frozen=True)
class EncodedText:
    input_ids: list[int]
    token_type_ids: list[int] | None = None
    pooling_start: int = 0  # leading tokens the pooling leaves out (a prompt with include_prompt false)
    attention: list[int] | None = None  # the encoder's attention mask where not all ones (ColBERT's expansion)
    keep: list[bool] | None = None  # token rows a token-level pooling returns, where not the attended ones

    def __len__(self) -> int:
        return len(self.input_ids)


def load_tokenizer(path: Path):
    """A tokenizer.json, with padding and truncation off whatever the file says (MiniLM's pads to 128)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class TextTokenizer:
    def __init__(self, tokenizer, with_token_types: bool):
        self._tokenizer = tokenizer  # tokenizers.Tokenizer
        self._with_token_types = with_token_types
        self._specials = {pair: special_token_count(tokenizer, pair) for pair in (False, True)}

    def prompt_length(self, prompt: str) -> int:
        """sentence-transformers' prompt length: the prompt tokenized alone, less a trailing special token."""
        encoding = self._tokenizer.encode(prompt, add_special_tokens=True)
        return len(encoding.ids) - (1 if encoding.special_tokens_mask and encoding.special_tokens_mask[-1] else 0)

    def too_long(self, text: str, limit: int) -> bool:
        """More than `limit` tokens, decided without tokenizing megabytes (truncation.exceeds)."""
        return len(text) > WHOLE_TEXT_CHARS and exceeds(self._tokenizer, text, limit)

    def encode_head(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Texts cut on the right to `max_length` tokens, special tokens counted (transformers' truncation=True)."""
        self._tokenizer.enable_truncation(max_length, strategy="longest_first", direction="right")
        try:
            return [e.ids for e in self._tokenizer.encode_batch(texts, add_special_tokens=True)]
        finally:
            self._tokenizer.no_truncation()

    def token_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str:
        return self._tokenizer.id_to_token(int(token_id)) or ""

    def minimum_truncation(self, pair: bool) -> int:
        """The smallest TRUNCATE_PROMPT_TOKENS that keeps any text: one more than the special tokens."""
        return self._specials[pair] + 1

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
            batch = [(inputs[i].text, inputs[i].text_pair) if has_pair else inputs[i].text for i in indices]
            for i, e in zip(indices, self._encode_batch(batch, truncate)):
                encoded[i] = EncodedText(e.ids, e.type_ids if self._with_token_types else None, inputs[i].pooling_start)
        return encoded  # type: ignore[return-value]

    def _encode_batch(self, batch: list, truncate: int | None):
        tokenizer = self._tokenizer
        if truncate is None:
            return tokenizer.encode_batch(batch, add_special_tokens=True)
        # A long single text keeps its last tokens from its tail alone (exact; see truncation.py).
        long = {j for j, text in enumerate(batch) if isinstance(text, str) and len(text) > WHOLE_TEXT_CHARS}
        short = [text for j, text in enumerate(batch) if j not in long]
        tokenizer.enable_truncation(truncate, strategy="longest_first", direction="left")
        try:
            done = iter(tokenizer.encode_batch(short, add_special_tokens=True) if short else [])
        finally:
            tokenizer.no_truncation()
        return [last_tokens(tokenizer, text, truncate) if j in long else next(done) for j, text in enumerate(batch)]


def register_prefix_tokens(tokenizer, prefixes) -> None:
    """MultiVectorEncoder's rule for a PyLate folder's markers ("[unused0]"): a marker in the vocabulary that the
    tokenizer would split becomes one special token, so a prefixed text is [CLS] <marker> ... as PyLate inserts it."""
    from tokenizers import AddedToken

    added = []
    for value in prefixes:
        for candidate in (value, value.split(None, 1)[0]):
            if tokenizer.token_to_id(candidate) is None:
                continue
            if tokenizer.encode(candidate, add_special_tokens=False).tokens != [candidate]:
                added.append(AddedToken(candidate, normalized=False, special=True))
            break
    if added:
        tokenizer.add_special_tokens(added)
