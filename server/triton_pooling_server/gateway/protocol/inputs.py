"""The prompt shapes the APIs take, checked and turned into the client's NormalizedPrompt.

`input` (OpenAI / vLLM): str | [str] | [int] | [[int]]. Score sides: str | [str] (vLLM's
ScoreInputs, text only). Rerank documents: strings or `{"text": ...}` objects (Jina / Cohere).
The shapes are the APIs'; the rules for one text or one list of token ids are the contract's, the
same the client's normalize_prompts applies.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from triton_pooling.prompts import NormalizedPrompt
from triton_pooling_contract.prompts import PromptError, check_text, check_token_ids, is_token_id

from ..errors import invalid
from .fields import describe

T = TypeVar("T")

INPUT_SHAPES = "a string, a list of strings, a list of token ids, or a list of lists of token ids"
INT64_MAX = 2**63 - 1  # INPUT_IDS is INT64; a larger id would fail converting to it


def parse_input(value: Any, max_items: int, name: str = "input") -> list[NormalizedPrompt]:
    if value is None:
        raise invalid(f"{name} is required: {INPUT_SHAPES}", name)
    if isinstance(value, str):
        return [NormalizedPrompt(value, text=_text(value, name))]
    if not isinstance(value, list) or not value:
        raise invalid(f"{name} must be {INPUT_SHAPES} (non-empty); got {describe(value)}", name)
    if all(is_token_id(v) for v in value):
        return [NormalizedPrompt(value, token_ids=_ids(value, name))]
    _check_count(value, max_items, name)
    if all(isinstance(v, str) for v in value):
        return [NormalizedPrompt(v, text=_text(v, f"{name}[{i}]")) for i, v in enumerate(value)]
    if all(isinstance(v, list) for v in value):
        return [NormalizedPrompt(v, token_ids=_ids(v, f"{name}[{i}]")) for i, v in enumerate(value)]
    bad = next((i for i, v in enumerate(value) if not isinstance(v, (str, list)) or isinstance(v, bool)), None)
    if bad is None:
        bad = next(i for i, v in enumerate(value) if type(v) is not type(value[0]))
    raise invalid(f"{name} must be {INPUT_SHAPES}, not a mix; {name}[{bad}] is {describe(value[bad])}", name)


def parse_texts(value: Any, max_items: int, name: str) -> list[str]:
    """One side of a score request: a string or a non-empty list of strings."""
    if isinstance(value, str):
        return [_text(value, name)]
    if not isinstance(value, list) or not value:
        raise invalid(f"{name} must be a string or a non-empty list of strings; got {describe(value)}", name)
    _check_count(value, max_items, name)
    return [_text(_document_text(v, f"{name}[{i}]"), f"{name}[{i}]") for i, v in enumerate(value)]


def parse_query(value: Any, name: str = "query") -> str:
    if value is None:
        raise invalid(f"{name} is required: a string", name)
    return _text(_document_text(value, name), name)


def _document_text(value: Any, where: str) -> Any:
    """A document given as {"text": ...} (Jina, Cohere) reads as its text."""
    if isinstance(value, dict):
        if "text" not in value:
            raise invalid(f"{where} must be a string or an object with a text field; got keys {sorted(value)}",
                          where.split("[")[0])
        return value["text"]
    return value


def _check_count(value: list, max_items: int, name: str) -> None:
    if len(value) > max_items:
        raise invalid(f"{name} has {len(value)} items; this gateway takes at most {max_items} per request "
                      "(--max-inputs): split the request", name)


def _text(value: Any, where: str) -> str:
    return _shared_rule(check_text, value, where)


def _ids(value: list, where: str) -> tuple[int, ...]:
    ids = _shared_rule(check_token_ids, value, where)
    too_big = next((i for i, v in enumerate(ids) if v > INT64_MAX), None)
    if too_big is not None:
        raise invalid(f"{where}[{too_big}] is {ids[too_big]}; token ids must be <= {INT64_MAX} (INT64)",
                      where.split("[")[0])
    return ids


def _shared_rule(check: Callable[[Any, str], T], value: Any, where: str) -> T:
    """A contract rule, its refusal answered as a 400 on the field (input[2][0] -> param input)."""
    try:
        return check(value, where)
    except PromptError as e:
        raise invalid(str(e), where.split("[")[0]) from e
    except RecursionError:  # the rule's message shows the value, and repr() gave up on its depth
        raise invalid(f"{where} is a {type(value).__name__} nested too deeply to show; see docs/http-api.md for the "
                      "shapes this field takes", where.split("[")[0]) from None
