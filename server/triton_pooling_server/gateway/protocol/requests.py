"""The request bodies of each endpoint, parsed and checked (vLLM's schemas, field by field, for the
fields this gateway can honour; unknown fields are ignored as vLLM does)."""

from __future__ import annotations

import dataclasses
from typing import Mapping

from triton_pooling.batching import EncodeOptions
from triton_pooling.prompts import NormalizedPrompt
from triton_pooling_contract.tasks import PoolingTask, UnknownTaskError, parse_task

from ..errors import invalid
from . import fields
from .encoding import Encoding, parse_encoding
from .inputs import parse_input, parse_query, parse_texts

# vLLM accepts these field pairs for the two sides of a score request, in this order.
SCORE_FIELD_PAIRS = (("queries", "documents"), ("queries", "items"), ("text_1", "text_2"), ("data_1", "data_2"))


@dataclasses.dataclass(frozen=True)
class EncodeRequest:
    """/v1/embeddings, /pooling and /classify: prompts in, one output per prompt."""

    model: str | None
    prompts: list[NormalizedPrompt]
    options: EncodeOptions
    encoding: Encoding = Encoding()
    task: PoolingTask | None = None  # /pooling's optional task
    request_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ScoreRequest:
    """/score (pairs from the two sides) and the /rerank family (one query, N documents)."""

    model: str | None
    queries: list[str]
    documents: list[str]
    use_activation: bool | None
    truncate_prompt_tokens: int | None
    top_n: int | None = None  # rerank only; None or 0: all documents
    request_id: str | None = None


def parse_embeddings(body: Mapping, max_inputs: int) -> EncodeRequest:
    fields.optional_str(body, "user")
    return _encode_request(body, max_inputs, dimensions=True)


def parse_pooling(body: Mapping, max_inputs: int) -> EncodeRequest:
    task = body.get("task")
    if task is not None:
        try:
            task = parse_task(task) if isinstance(task, str) else _bad_task(task)
        except UnknownTaskError as e:
            raise invalid(str(e), "task") from None
    return dataclasses.replace(_encode_request(body, max_inputs, dimensions=True), task=task)


def parse_classify(body: Mapping, max_inputs: int) -> EncodeRequest:
    return _encode_request(body, max_inputs, dimensions=False)


def parse_score(body: Mapping, max_inputs: int) -> ScoreRequest:
    pair = next(((a, b) for a, b in SCORE_FIELD_PAIRS if a in body and b in body), None) or \
        next(((a, b) for a, b in SCORE_FIELD_PAIRS if a in body or b in body), SCORE_FIELD_PAIRS[0])
    for name in pair:
        fields.required(body, name)
    queries, documents = (parse_texts(body[name], max_inputs, name) for name in pair)
    if len(queries) != 1 and len(queries) != len(documents):
        raise invalid(f"score takes 1 {pair[0]} item and N {pair[1]} items, or N and N (pairwise); got "
                      f"{len(queries)} and {len(documents)}", pair[1])
    model, request_id = _common(body)
    return ScoreRequest(model, queries, documents, *_score_options(body), request_id=request_id)


def parse_rerank(body: Mapping, max_inputs: int) -> ScoreRequest:
    query = parse_query(body.get("query"))
    documents = parse_texts(fields.required(body, "documents"), max_inputs, "documents")
    top_n = fields.optional_int(body, "top_n", 0)
    model, request_id = _common(body)
    return ScoreRequest(model, [query], documents, *_score_options(body), top_n=top_n, request_id=request_id)


def _encode_request(body: Mapping, max_inputs: int, dimensions: bool) -> EncodeRequest:
    fields.refuse_removed_and_unsupported(body)
    prompts = parse_input(body.get("input"), max_inputs)
    options = EncodeOptions(
        dimensions=fields.optional_int(body, "dimensions", 1) if dimensions else None,
        use_activation=fields.optional_bool(body, "use_activation"),
        truncate_prompt_tokens=fields.truncate_prompt_tokens(body),
        prompt_name=fields.optional_str(body, "prompt_name"),  # TEI's and sentence-transformers' spelling
    )
    model, request_id = _common(body)
    return EncodeRequest(model, prompts, options, parse_encoding(body), request_id=request_id)


def _common(body: Mapping) -> tuple[str | None, str | None]:
    return fields.optional_str(body, "model"), fields.optional_str(body, "request_id")


def _score_options(body: Mapping) -> tuple[bool | None, int | None]:
    fields.refuse_removed_and_unsupported(body)
    return fields.optional_bool(body, "use_activation"), fields.truncate_prompt_tokens(body)


def _bad_task(task) -> PoolingTask:
    raise invalid(f"task must be a string naming a pooling task; got {fields.describe(task)}", "task")
