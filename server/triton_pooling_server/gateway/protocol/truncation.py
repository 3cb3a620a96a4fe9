"""Truncation to the model's maximum, shared by the APIs that ask for it: vLLM's `truncate_prompt_tokens: -1`,
TEI's `truncate: true`, Cohere's `truncate: START`. The maximum is the model config's `max_tokens` parameter
(what `build` writes: the checkpoint's limit), sent as TRUNCATE_PROMPT_TOKENS = max_tokens: keep the last
max_tokens tokens, special tokens counted, exactly vLLM's rule."""

from __future__ import annotations

import dataclasses

from triton_pooling.batching import EncodeOptions

from ..errors import invalid
from ..triton.catalog import ServedModel

MODEL_MAX = -1  # vLLM's spelling of "truncate to the model's maximum"


def model_max(model: ServedModel, field: str, value: object) -> int:
    if model.max_tokens is None:
        raise invalid(f"{field}={value!r} asks to truncate to model {model.name!r}'s maximum, which its config does "
                      "not state (no max_tokens parameter): give the number of tokens to keep instead", field)
    return model.max_tokens


def resolve(value: int | None, model: ServedModel, field: str = "truncate_prompt_tokens") -> int | None:
    """-1 → the model's maximum; k ≥ 1 and None pass through."""
    return model_max(model, field, value) if value == MODEL_MAX else value


def resolve_options(options: EncodeOptions, model: ServedModel) -> EncodeOptions:
    if options.truncate_prompt_tokens != MODEL_MAX:
        return options
    return dataclasses.replace(options, truncate_prompt_tokens=resolve(MODEL_MAX, model))
