"""Keep the last k tokens of a long text, or tell it is longer than k tokens, without tokenizing all of it.

vLLM's `truncate_prompt_tokens=k` keeps a prompt's last k tokens, special tokens counted within k
(as `transformers` does with `truncation_side="left", max_length=k`). Tokenizing a 1 MB text to keep
16 tokens costs ~1 s and tens of MB; only its tail matters. Every tokenizer the backend serves
splits words at white space before it splits them into tokens (WordPiece, byte-level BPE, Metaspace
/ SentencePiece), so the tokens after a white-space boundary do not depend on the text before it.
`last_tokens` therefore tokenizes a tail window that starts at white space, and keeps it only when it
holds comfortably more tokens than asked for — the window's first word, the one place a boundary
could matter, is always among the tokens dropped; otherwise the window doubles, up to the whole text.
The result is exactly the full tokenization's; tests compare the two on several tokenizers.
"""

from __future__ import annotations

# Characters of tail per kept token to try first (tokens are rarely longer), and the extra tokens a
# window must hold beyond those kept so that its first, possibly cut, word is dropped.
CHARS_PER_TOKEN = 12
SPARE_TOKENS = 8
# Shorter texts are tokenized whole: windows would save nothing.
WHOLE_TEXT_CHARS = 4096


def special_token_count(tokenizer, pair: bool = False) -> int:
    """Special tokens the tokenizer adds around one text (or a pair): [CLS] + [SEP] = 2 for BERT."""
    processor = tokenizer.post_processor
    return processor.num_special_tokens_to_add(pair) if processor is not None else 0


def last_tokens(tokenizer, text: str, keep: int):
    """`tokenizer.encode(text)` left-truncated to `keep` tokens (special tokens included), reading only
    as much of the text's tail as that needs. `tokenizer` is a `tokenizers.Tokenizer`."""
    window = min(len(text), max(WHOLE_TEXT_CHARS, keep * CHARS_PER_TOKEN))
    while True:
        start = _word_start(text, len(text) - window)
        encoding = _encode_truncated(tokenizer, text[start:], keep)
        if start == 0:
            return encoding
        # Without truncation the window holds `content + specials` tokens; enough when it has
        # more content tokens than kept, by a margin that swallows the first word.
        full = tokenizer.encode(text[start:], add_special_tokens=False)
        if len(full.ids) >= keep + SPARE_TOKENS:
            return encoding
        window = min(len(text), window * 2)


def _word_start(text: str, position: int) -> int:
    """The first white-space character at or after `position` (0 for the start of the text)."""
    if position <= 0:
        return 0
    for i in range(position, len(text)):
        if text[i].isspace():
            return i
    return 0  # one unbroken run of text: tokenize it whole


def _encode_truncated(tokenizer, text: str, keep: int):
    tokenizer.enable_truncation(keep, strategy="longest_first", direction="left")
    try:
        return tokenizer.encode(text, add_special_tokens=True)
    finally:
        tokenizer.no_truncation()


def exceeds(tokenizer, text: str, limit: int) -> bool:
    """Whether `tokenizer.encode(text)` (special tokens added) has more than `limit` tokens, reading only as much of
    the text's head as that needs: the tokens of a head that ends at white space are the full text's first tokens
    (the same white-space rule as `last_tokens`), so a head already over the limit decides it."""
    specials = special_token_count(tokenizer)
    window = min(len(text), max(WHOLE_TEXT_CHARS, (limit + SPARE_TOKENS) * CHARS_PER_TOKEN))
    while window < len(text):
        end = _word_end(text, window)
        if end >= len(text):
            break
        if len(tokenizer.encode(text[:end], add_special_tokens=False).ids) + specials > limit:
            return True
        window *= 2
    return len(tokenizer.encode(text, add_special_tokens=True).ids) > limit


def _word_end(text: str, position: int) -> int:
    """The first white-space character at or after `position` (the text's end without one)."""
    for i in range(position, len(text)):
        if text[i].isspace():
            return i
    return len(text)
