"""Normalize what users pass as prompts (vLLM's shapes) into one checked form per prompt."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from .errors import InvalidRequestError

ALLOWED = (
    "a str, a list of str, a list of (text, text_pair) pairs, token ids (list[int] or list[list[int]]), "
    "or vLLM-style dicts {'prompt': str} / {'prompt_token_ids': list[int]}"
)


@dataclasses.dataclass(frozen=True)
class NormalizedPrompt:
    """Exactly one of `text` / `token_ids` is set; `text_pair` only with `text`."""

    original: Any
    text: str | None = None
    text_pair: str | None = None
    token_ids: tuple[int, ...] | None = None


def normalize_prompts(prompts: Any) -> list[NormalizedPrompt]:
    """One NormalizedPrompt per prompt, in input order; errors name the prompt's index."""
    if hasattr(prompts, "tolist"):  # numpy ids
        prompts = prompts.tolist()
    if isinstance(prompts, (str, Mapping)) or _is_token_ids(prompts):
        prompts = [prompts]
    if not isinstance(prompts, Sequence):
        raise InvalidRequestError(f"prompts must be {ALLOWED}; got {type(prompts).__name__}")
    return [_one(p, i) for i, p in enumerate(prompts)]


def _one(prompt: Any, index: int) -> NormalizedPrompt:
    where = f"prompts[{index}]"
    if hasattr(prompt, "tolist"):
        prompt = prompt.tolist()
    if isinstance(prompt, str):
        return NormalizedPrompt(prompt, text=_text(prompt, where))
    if isinstance(prompt, Mapping):
        return _from_dict(prompt, where)
    if _is_token_ids(prompt):
        return NormalizedPrompt(prompt, token_ids=_token_ids(prompt, where))
    if isinstance(prompt, (tuple, list)) and len(prompt) == 2 and all(isinstance(p, str) for p in prompt):
        return NormalizedPrompt(tuple(prompt), text=_text(prompt[0], where + "[0]"),
                                text_pair=_text(prompt[1], where + "[1]"))
    raise InvalidRequestError(f"{where} must be {ALLOWED}; got {_describe(prompt)}")


def _from_dict(prompt: Mapping, where: str) -> NormalizedPrompt:
    if "prompt_token_ids" in prompt:
        return NormalizedPrompt(prompt, token_ids=_token_ids(prompt["prompt_token_ids"], where + "['prompt_token_ids']"))
    if "prompt" in prompt:
        text = _text(prompt["prompt"], where + "['prompt']")
        pair = prompt.get("text_pair")
        return NormalizedPrompt(prompt, text=text, text_pair=None if pair is None else _text(pair, where + "['text_pair']"))
    raise InvalidRequestError(f"{where} is a dict without 'prompt' or 'prompt_token_ids'; keys: {sorted(prompt)}")


def _is_token_ids(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where} must be a str; got {_describe(value)}")
    if not value:
        raise InvalidRequestError(f"{where} is an empty string; give at least one character")
    return value


def _token_ids(value: Any, where: str) -> tuple[int, ...]:
    if not _is_token_ids(value):
        raise InvalidRequestError(f"{where} must be a non-empty list of int token ids; got {_describe(value)}")
    negative = next((i for i, v in enumerate(value) if v < 0), None)
    if negative is not None:
        raise InvalidRequestError(f"{where}[{negative}] is {value[negative]}; token ids must be >= 0")
    return tuple(int(v) for v in value)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"
