"""The rules one prompt must follow, shared by the client's normalize_prompts and the gateway's
request parsing so both refuse the same prompts with the same words.

Standard library only. Each check names the offending prompt by `where` (prompts[1], input[0]) and
raises PromptError; callers turn it into their own error (the client's InvalidRequestError, the
gateway's 400) and pick the shapes they accept around it.
"""

from __future__ import annotations

from typing import Any


class PromptError(ValueError):
    """A prompt that breaks one of the rules below; the message names it and what is allowed."""


def describe(value: Any) -> str:
    """A value for an error message: its type and a repr cut short (prompts can be long)."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def is_token_id(value: Any) -> bool:
    # bool is an int subclass; True is not a token id.
    return isinstance(value, int) and not isinstance(value, bool)


def is_token_ids(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(is_token_id(v) for v in value)


def check_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PromptError(f"{where} must be a string; got {describe(value)}")
    if not value:
        raise PromptError(f"{where} is an empty string; give at least one character")
    return value


def check_token_ids(value: Any, where: str) -> tuple[int, ...]:
    if not is_token_ids(value):
        raise PromptError(f"{where} must be a non-empty list of integer token ids; got {describe(value)}")
    negative = next((i for i, v in enumerate(value) if v < 0), None)
    if negative is not None:
        raise PromptError(f"{where}[{negative}] is {value[negative]}; token ids must be >= 0")
    return tuple(int(v) for v in value)
