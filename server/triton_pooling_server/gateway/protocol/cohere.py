"""Cohere's POST /v2/embed body (the cohere SDK's ClientV2.embed sends it): texts, or inputs whose content is
text; model; input_type; embedding_types; output_dimension; truncate; max_tokens.

input_type → the model's sentence-transformers prompt (its config's `prompts` parameter), the first of these
names the model has; a model with none of them gets its default prompt:

| input_type | prompt names tried, in order |
|---|---|
| search_query | query, search_query, queries |
| search_document | document, search_document, passage, corpus, documents |
| classification | classification |
| clustering | clustering |

truncate: NONE (a text over the model's limit is refused, 400), START (drop the start: keep the last
max_tokens tokens, else the model's maximum — exactly what the models here do), END (drop the end) is
refused by name: the models here truncate from the start only. Absent (Cohere's default END) means no
truncation: a text over the limit is refused rather than cut from the end.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from ..errors import invalid
from . import fields
from .inputs import _check_count, _text
from .quantize import EMBEDDING_TYPES

INPUT_TYPES = {
    "search_query": ("query", "search_query", "queries"),
    "search_document": ("document", "search_document", "passage", "corpus", "documents"),
    "classification": ("classification",),
    "clustering": ("clustering",),
}
TRUNCATES = ("NONE", "START", "END")


@dataclasses.dataclass(frozen=True)
class CohereEmbed:
    model: str | None
    texts: list[str]
    input_type: str | None
    embedding_types: tuple[str, ...]
    output_dimension: int | None
    truncate: str | None  # None, "NONE" or "START"
    max_tokens: int | None


def parse_embed(body: Mapping, max_inputs: int) -> CohereEmbed:
    if body.get("images"):
        raise invalid("images are not supported: this gateway serves text embedding models; send texts", "images")
    texts = _texts(body, max_inputs)
    input_type = body.get("input_type")
    if input_type is not None and input_type not in (*INPUT_TYPES, "image"):
        raise invalid(f"input_type must be one of {', '.join(map(repr, INPUT_TYPES))}; got "
                      f"{fields.describe(input_type)}", "input_type")
    if input_type == "image":
        raise invalid("input_type 'image' is not supported: this gateway serves text embedding models", "input_type")
    types = body.get("embedding_types")
    if types is None:
        types = ["float"]
    if not isinstance(types, list) or not types or any(t not in EMBEDDING_TYPES for t in types):
        raise invalid(f"embedding_types must be a non-empty list of {', '.join(map(repr, EMBEDDING_TYPES))}; got "
                      f"{fields.describe(types)}", "embedding_types")
    truncate = body.get("truncate")
    if truncate is not None and truncate not in TRUNCATES:
        raise invalid(f"truncate must be one of {', '.join(map(repr, TRUNCATES))}; got {fields.describe(truncate)}",
                      "truncate")
    if truncate == "END":
        raise invalid("truncate 'END' (drop the end of a long text) cannot be served exactly: the models here truncate "
                      "from the start (keep the last tokens); send 'START', or 'NONE' to be told when a text is too "
                      "long", "truncate")
    max_tokens = fields.optional_int(body, "max_tokens", 1)
    if max_tokens is not None and truncate != "START":
        raise invalid(f"max_tokens={max_tokens} needs truncate 'START' (the only truncation served here); got "
                      f"truncate {truncate!r}", "max_tokens")
    return CohereEmbed(fields.optional_str(body, "model"), texts, input_type, tuple(dict.fromkeys(types)),
                       fields.optional_int(body, "output_dimension", 1), truncate, max_tokens)


def prompt_name(input_type: str | None, prompt_names: Sequence[str]) -> str | None:
    if input_type is None:
        return None
    return next((name for name in INPUT_TYPES[input_type] if name in prompt_names), None)


def _texts(body: Mapping, max_inputs: int) -> list[str]:
    texts, inputs = body.get("texts"), body.get("inputs")
    if texts is not None and inputs is not None:
        raise invalid("give texts or inputs, not both", "inputs")
    if texts is not None:
        if not isinstance(texts, list) or not texts:
            raise invalid(f"texts must be a non-empty list of strings; got {fields.describe(texts)}", "texts")
        _check_count(texts, max_inputs, "texts")
        return [_text(t, f"texts[{i}]") for i, t in enumerate(texts)]
    if inputs is None:
        raise invalid("texts (a list of strings) or inputs (a list of {content: [{type: 'text', text}]}) is required",
                      "texts")
    if not isinstance(inputs, list) or not inputs:
        raise invalid(f"inputs must be a non-empty list of {{content: [...]}} objects; got {fields.describe(inputs)}",
                      "inputs")
    _check_count(inputs, max_inputs, "inputs")
    return [_input_text(item, f"inputs[{i}]") for i, item in enumerate(inputs)]


def _input_text(item: Any, where: str) -> str:
    """An EmbedInput's text: exactly one text content part (how Cohere joins several is not specified, and an
    image part cannot be served here)."""
    content = item.get("content") if isinstance(item, Mapping) else None
    if not isinstance(content, list) or len(content) != 1:
        raise invalid(f"{where} must be an object whose content list holds one {{type: 'text', text}} part; got "
                      f"{fields.describe(item)}", "inputs")
    parts = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, Mapping) else part
            raise invalid(f"{where}.content[{j}] must be {{type: 'text', text}}; got type {fields.describe(kind)} "
                          "(only text is served here)", "inputs")
        parts.append(_text(part.get("text"), f"{where}.content[{j}].text"))
    return "".join(parts)
