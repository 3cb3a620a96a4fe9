"""Typed readers for the fields of a JSON request body; every refusal names the field, the value
given and what is allowed (a 400 with `param` set to the field)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from triton_pooling_contract.prompts import describe as _describe

from ..errors import invalid

_MISSING = object()
INT32_MAX = 2**31 - 1  # the option tensors (DIMENSIONS, TRUNCATE_PROMPT_TOKENS) are INT32


def describe(value: Any) -> str:
    """The prompt rules' describe, so every 400 shows the value given the same way (inputs.py and
    requests.py use it too) — except that a value nested too deeply for repr() is named, not shown."""
    try:
        return _describe(value)
    except RecursionError:
        return f"{type(value).__name__} nested too deeply to show"


def required(body: Mapping, name: str) -> Any:
    if body.get(name) is None:
        raise invalid(f"{name} is required", name)
    return body[name]


def optional_str(body: Mapping, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{name} must be a string; got {describe(value)}", name)
    return value


def optional_bool(body: Mapping, name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid(f"{name} must be true, false or null; got {describe(value)}", name)
    return value


def optional_int(body: Mapping, name: str, minimum: int, maximum: int = INT32_MAX) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} must be an integer >= {minimum}; got {describe(value)}", name)
    if value < minimum:
        raise invalid(f"{name} must be >= {minimum}; got {value}", name)
    if value > maximum:
        raise invalid(f"{name} must be <= {maximum}; got {value}", name)
    return value


def choice(body: Mapping, name: str, allowed: Sequence[str], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(map(repr, allowed))}; got {describe(value)}", name)
    return value


def truncate_prompt_tokens(body: Mapping) -> int | None:
    """vLLM's field: k >= 1 keeps the last k tokens; -1 truncates to the model's maximum (returned as -1, which
    the route resolves with the model: protocol/truncation.py); null leaves the model's default."""
    value = body.get("truncate_prompt_tokens")
    if value is None:
        return None
    if value == -1 and not isinstance(value, bool):
        return -1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT32_MAX:
        raise invalid(f"truncate_prompt_tokens must be an integer from 1 to {INT32_MAX} (keep the last k tokens), "
                      f"-1 (the model's maximum) or null (no truncation); got {describe(value)}",
                      "truncate_prompt_tokens")
    return value


def refuse_removed_and_unsupported(body: Mapping) -> None:
    """vLLM's removed `normalize`, and the vLLM options this gateway cannot honour, refused by name."""
    if "normalize" in body:
        raise invalid("Parameter `normalize` was removed; use `use_activation` instead.", "normalize")
    if body.get("messages") is not None:
        raise invalid("chat input (messages) is not supported: send the text in input", "messages")
    if body.get("add_special_tokens") is False:
        raise invalid("add_special_tokens=false is not supported for text: send token ids in input instead",
                      "add_special_tokens")
    if body.get("truncation_side") not in (None, "left"):
        raise invalid(f"truncation_side must be 'left' (truncate_prompt_tokens keeps the last tokens); "
                      f"got {describe(body['truncation_side'])}", "truncation_side")
