"""Normalize what users pass as prompts (vLLM's shapes) into one checked form per prompt.

The shapes are the client's; the rules for one text or one list of token ids are the contract's
(shared with the gateway), their PromptError re-raised as InvalidRequestError."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from triton_pooling_contract.prompts import PromptError, check_text, check_token_ids, describe, is_token_ids

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
    if isinstance(prompts, (str, Mapping)) or is_token_ids(prompts):
        prompts = [prompts]
    if not isinstance(prompts, Sequence):
        raise InvalidRequestError(f"prompts must be {ALLOWED}; got {type(prompts).__name__}")
    try:
        return [_one(p, i) for i, p in enumerate(prompts)]
    except PromptError as e:
        raise InvalidRequestError(str(e)) from e


def _one(prompt: Any, index: int) -> NormalizedPrompt:
    where = f"prompts[{index}]"
    if hasattr(prompt, "tolist"):
        prompt = prompt.tolist()
    if isinstance(prompt, str):
        return NormalizedPrompt(prompt, text=check_text(prompt, where))
    if isinstance(prompt, Mapping):
        return _from_dict(prompt, where)
    if is_token_ids(prompt):
        return NormalizedPrompt(prompt, token_ids=check_token_ids(prompt, where))
    if isinstance(prompt, (tuple, list)) and len(prompt) == 2 and all(isinstance(p, str) for p in prompt):
        return NormalizedPrompt(tuple(prompt), text=check_text(prompt[0], where + "[0]"),
                                text_pair=check_text(prompt[1], where + "[1]"))
    raise InvalidRequestError(f"{where} must be {ALLOWED}; got {describe(prompt)}")


def _from_dict(prompt: Mapping, where: str) -> NormalizedPrompt:
    if "prompt_token_ids" in prompt:
        ids = check_token_ids(prompt["prompt_token_ids"], where + "['prompt_token_ids']")
        return NormalizedPrompt(prompt, token_ids=ids)
    if "prompt" in prompt:
        text = check_text(prompt["prompt"], where + "['prompt']")
        pair = prompt.get("text_pair")
        pair = None if pair is None else check_text(pair, where + "['text_pair']")
        return NormalizedPrompt(prompt, text=text, text_pair=pair)
    raise InvalidRequestError(f"{where} is a dict without 'prompt' or 'prompt_token_ids'; keys: {sorted(prompt)}")

