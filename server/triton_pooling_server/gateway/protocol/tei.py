"""TEI's request bodies (text-embeddings-inference's router/src/http/types.rs), field by field.

`inputs`: a string, a token-id list, or a batch of strings and id lists (TEI's untagged Input / InputType).
`truncate`: null (the server's auto-truncate: off here, as `/info` says), false (a text over the model's
limit is refused) or true (cut to the model's maximum). `truncation_direction`: TEI's default is Right (keep
the first tokens); the models here truncate from the left only (they keep the last tokens, vLLM's rule), so
truncate=true is served with `Left` and refused (422, naming the field) with `Right`. A direction without
truncate=true changes nothing and is accepted.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from triton_pooling.batching import EncodeOptions
from triton_pooling.prompts import NormalizedPrompt
from triton_pooling_contract.prompts import is_token_id

from ..dialects import empty
from ..errors import invalid
from . import fields
from .inputs import _check_count, _ids, _text

DIRECTIONS = {"left": "Left", "Left": "Left", "right": "Right", "Right": "Right"}  # TEI's serde aliases


@dataclasses.dataclass(frozen=True)
class TeiEncode:
    model: str | None
    prompts: list[NormalizedPrompt]
    truncate: bool  # cut to the model's maximum (from the left)
    options: EncodeOptions  # without truncate_prompt_tokens: the route sets it from the model's max_tokens


def parse_inputs(value: Any, max_items: int, name: str = "inputs") -> list[NormalizedPrompt]:
    if value is None:
        raise invalid(f"{name} is required: a string, a list of token ids, or a list of strings and token-id lists",
                      name)
    if isinstance(value, str):
        return [NormalizedPrompt(value, text=_text(value, name))]
    if not isinstance(value, list):
        raise invalid(f"{name} must be a string, a list of token ids, or a list of strings and token-id lists; got "
                      f"{fields.describe(value)}", name)
    if not value:
        raise empty(f"`{name}` cannot be empty", name)
    if all(is_token_id(v) for v in value):
        return [NormalizedPrompt(value, token_ids=_ids(value, name))]
    _check_count(value, max_items, name)
    prompts = []
    for i, item in enumerate(value):
        where = f"{name}[{i}]"
        if isinstance(item, str):
            prompts.append(NormalizedPrompt(item, text=_text(item, where)))
        elif isinstance(item, list):
            prompts.append(NormalizedPrompt(item, token_ids=_ids(item, where)))
        else:
            raise invalid(f"{where} must be a string or a list of token ids; got {fields.describe(item)}", name)
    return prompts


def parse_truncation(body: Mapping, where: str = "") -> bool:
    """True when the texts are to be cut to the model's maximum (Left); refuses what cannot be served exactly."""
    truncate = fields.optional_bool(body, "truncate")
    raw = body.get("truncation_direction")
    if raw is not None and raw not in DIRECTIONS:
        raise invalid(f"{where}truncation_direction must be 'Left' or 'Right' (or 'left' / 'right'); got "
                      f"{fields.describe(raw)}", "truncation_direction")
    direction = DIRECTIONS.get(raw, "Right")
    if truncate and direction == "Right":
        shown = "TEI's default, Right" if raw is None else repr(raw)
        raise invalid(f"{where}truncate=true with truncation_direction {shown} (keep the first tokens) cannot be served "
                      "exactly: the models here truncate from the left (keep the last tokens); send "
                      "truncation_direction 'Left', or truncate false to be told when a text is too long",
                      "truncation_direction")
    return bool(truncate)


def parse_embed(body: Mapping, max_items: int, dimensions: bool = True) -> TeiEncode:
    normalize = fields.optional_bool(body, "normalize")
    options = EncodeOptions(
        dimensions=fields.optional_int(body, "dimensions", 1) if dimensions else None,
        use_activation=True if normalize is None else normalize,  # TEI: normalize defaults to true
        prompt_name=fields.optional_str(body, "prompt_name"),
    )
    prompts = parse_inputs(body.get("inputs"), max_items)
    return TeiEncode(fields.optional_str(body, "model"), prompts, parse_truncation(body), options)


def parse_embed_sparse(body: Mapping, max_items: int) -> TeiEncode:
    """TEI's EmbedSparseRequest: inputs, truncate, truncation_direction, prompt_name (no normalize: the weights are
    served as the model computes them, the model's own use_activation)."""
    options = EncodeOptions(prompt_name=fields.optional_str(body, "prompt_name"))
    prompts = parse_inputs(body.get("inputs"), max_items)
    return TeiEncode(fields.optional_str(body, "model"), prompts, parse_truncation(body), options)


def parse_predict(value: Any, max_items: int) -> tuple[list[NormalizedPrompt], bool]:
    """TEI's PredictInput: a string, a pair [a, b], or a batch of [a] / [a, b]. Returns (prompts, batched)."""
    shapes = "a string, a pair of strings [string, string], or a batch of [string] / [string, string] lists"
    if value is None:
        raise invalid(f"inputs is required: {shapes}", "inputs")
    if isinstance(value, str):
        return [NormalizedPrompt(value, text=_text(value, "inputs"))], False
    if not isinstance(value, list) or not value:
        if isinstance(value, list):
            raise empty("`inputs` cannot be empty", "inputs")
        raise invalid(f"inputs must be {shapes}; got {fields.describe(value)}", "inputs")
    if isinstance(value[0], str):
        return [_sequence(value, "inputs", shapes)], False
    _check_count(value, max_items, "inputs")
    return [_sequence(item, f"inputs[{i}]", shapes) for i, item in enumerate(value)], True


def _sequence(item: Any, where: str, shapes: str) -> NormalizedPrompt:
    if not isinstance(item, list) or not 1 <= len(item) <= 2 or not all(isinstance(v, str) for v in item):
        raise invalid(f"{where} must be [string] or [string, string] (inputs is {shapes}); got "
                      f"{fields.describe(item)}", "inputs")
    if len(item) == 1:
        return NormalizedPrompt(item, text=_text(item[0], f"{where}[0]"))
    return NormalizedPrompt(tuple(item), text=_text(item[0], f"{where}[0]"), text_pair=_text(item[1], f"{where}[1]"))


def parse_strings(value: Any, max_items: int, name: str) -> list[str]:
    """A list of strings TEI requires non-empty (rerank `texts`, similarity `sentences`)."""
    if not isinstance(value, list):
        raise invalid(f"{name} must be a list of strings; got {fields.describe(value)}", name)
    if not value:
        raise empty(f"`{name}` cannot be empty", name)
    _check_count(value, max_items, name)
    return [_text(v, f"{name}[{i}]") for i, v in enumerate(value)]


def parse_string(value: Any, name: str) -> str:
    if value is None:
        raise invalid(f"{name} is required: a string", name)
    return _text(value, name)
