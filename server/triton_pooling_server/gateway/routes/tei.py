"""TEI's routes (text-embeddings-inference's router/src/http/server.rs): /embed, /embed_all, /embed_sparse,
/predict, TEI's shape of /rerank, /similarity, /info, and POST / routed by the model's kind as TEI routes it
(what huggingface_hub.InferenceClient(base_url) posts to). A model is named by an optional `model` field
(TEI serves one model; this gateway several): without it, the model named after the route's task. Errors are
TEI's (dialects.py)."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
from aiohttp import web

from triton_pooling.batching import EncodeOptions
from triton_pooling.scoring import SCORE_TASKS
from triton_pooling_contract.tasks import PoolingTask

from ..context import MODEL_KEY, gateway, json_response, read_json
from ..dialects import mark_tei
from ..errors import invalid
from ..protocol import fields, sparse, tei
from ..protocol.truncation import model_max
from ..triton.catalog import ServedModel

async def embed(request: web.Request) -> web.Response:
    return json_response(await _embed(request, await read_json(request), "/embed"))


async def embed_all(request: web.Request) -> web.Response:
    return json_response(await _embed_all(request, await read_json(request), "/embed_all"))


async def embed_sparse(request: web.Request) -> web.Response:
    return json_response(await _embed_sparse(request, await read_json(request), "/embed_sparse"))


async def predict(request: web.Request) -> web.Response:
    return json_response(await _predict(request, await read_json(request), "/predict"))


async def similarity(request: web.Request) -> web.Response:
    return json_response(await _similarity(request, await read_json(request), "/similarity"))


def is_tei_rerank(body: Mapping) -> bool:
    """TEI's RerankRequest has `texts`; vLLM's / Jina's / Cohere's has `documents`."""
    return "texts" in body and "documents" not in body


async def rerank(request: web.Request, body: Mapping) -> web.Response:
    mark_tei(request)
    return json_response(await _rerank(request, body, request.path))


async def root(request: web.Request) -> web.Response:
    """POST /: TEI routes it by the model's kind — a classifier to predict, a reranker to rerank, an embedding
    model to embed (similarity when TEI runs with TASK=sentence-similarity: here, when the body is a
    similarity request). token_embed models answer as /embed_all."""
    body = await read_json(request)
    model = await _model(request, body, "/", tuple(PoolingTask))
    if model.sparse:  # TEI routes a SPLADE model's requests to embed_sparse
        return json_response(await _embed_sparse(request, body, "/"))
    if model.task is PoolingTask.EMBED:
        inputs = body.get("inputs")
        if isinstance(inputs, Mapping) and "source_sentence" in inputs:
            return json_response(await _similarity(request, body, "/"))
        return json_response(await _embed(request, body, "/"))
    if model.task is PoolingTask.TOKEN_EMBED:
        return json_response(await _embed_all(request, body, "/"))
    if model.task is PoolingTask.SEQ_CLASSIFY:
        if "query" in body and "texts" in body:
            return json_response(await _rerank(request, body, "/"))
        return json_response(await _predict(request, body, "/"))
    raise invalid(f"POST / has no TEI route for model {model.name!r}, which serves {model.task.value!r}: TEI serves "
                  "embedding, classifier and reranker models; use POST /pooling for token_classify", "model")


async def info(request: web.Request) -> web.Response:
    state = gateway(request)
    model = await state.catalog.resolve(request.query.get("model"), "/info", tuple(PoolingTask))
    request[MODEL_KEY] = model.name
    labels = model.labels or ()
    if model.task in (PoolingTask.EMBED, PoolingTask.TOKEN_EMBED):
        pooling = "splade" if model.sparse else (model.parameter("pooling_type") or "mean").lower()
        kind = {"embedding": {"pooling": pooling}}  # TEI's ModelType::Embedding, "splade" for a sparse model
    else:
        width = len(labels) or (1 if model.task is PoolingTask.SEQ_CLASSIFY else 0)
        id2label = {str(i): labels[i] if i < len(labels) else f"LABEL_{i}" for i in range(width)}
        classes = {"id2label": id2label, "label2id": {v: int(k) for k, v in id2label.items()}}
        kind = {"reranker" if width == 1 else "classifier": classes}
    settings = state.settings
    return json_response({
        "model_id": model.parameter("checkpoint") or model.name, "model_sha": None,
        "model_dtype": model.parameter("dtype") or "float32", "served_model_name": model.name, "model_type": kind,
        "max_concurrent_requests": settings.max_concurrent_requests, "max_input_length": model.max_tokens,
        "max_batch_tokens": None, "max_batch_requests": model.info.max_batch_size,
        "max_client_batch_size": settings.max_inputs, "auto_truncate": False, "tokenization_workers": None,
        "version": _version(), "sha": None, "docker_label": None, "task": model.task.value,
    })


async def _model(request: web.Request, body: Mapping, endpoint: str, serves: tuple[PoolingTask, ...],
                 sparse: bool | None = None, name: str | None = None) -> ServedModel:
    """`sparse`: True for a sparse (SPLADE) model only, False for a dense one only, None for any."""
    name = name if name is not None else fields.optional_str(body, "model")
    model = await gateway(request).catalog.resolve(name, endpoint, serves, sparse=sparse)
    request[MODEL_KEY] = model.name
    return model


def _truncation(model: ServedModel, truncate: bool) -> int | None:
    return model_max(model, "truncate", True) if truncate else None


async def _encode(request, model: ServedModel, req: tei.TeiEncode):
    options = dataclasses.replace(req.options, truncate_prompt_tokens=_truncation(model, req.truncate))
    return await gateway(request).encoder.encode(model.info, req.prompts, options, model.max_tokens)


async def _embed(request: web.Request, body: Mapping, endpoint: str) -> list:
    req = tei.parse_embed(body, gateway(request).settings.max_inputs)
    model = await _model(request, body, endpoint, (PoolingTask.EMBED,), sparse=False)
    return [o.outputs.data for o in await _encode(request, model, req)]


async def _embed_sparse(request: web.Request, body: Mapping, endpoint: str) -> list:
    """TEI's EmbedSparseResponse: per input its nonzero entries [{index, value}], from the sparse model named by
    `?model=` or the body's `model`, else the one sparse model served (TEI's 424 Backend when there is none)."""
    req = tei.parse_embed_sparse(body, gateway(request).settings.max_inputs)
    model = await _model(request, body, endpoint, (PoolingTask.EMBED,), sparse=True,
                         name=request.query.get("model"))
    return [sparse.tei_values(o.outputs) for o in await _encode(request, model, req)]


async def _embed_all(request: web.Request, body: Mapping, endpoint: str) -> list:
    """Every token's embedding, unnormalized as TEI's (its EmbedAllRequest has no normalize)."""
    req = tei.parse_embed(body, gateway(request).settings.max_inputs, dimensions=False)
    req = dataclasses.replace(req, options=dataclasses.replace(req.options, use_activation=False))
    model = await _model(request, body, endpoint, (PoolingTask.TOKEN_EMBED,))
    return [o.outputs.data for o in await _encode(request, model, req)]


async def _predict(request: web.Request, body: Mapping, endpoint: str) -> list:
    prompts, batched = tei.parse_predict(body.get("inputs"), gateway(request).settings.max_inputs)
    truncate = tei.parse_truncation(body)
    raw_scores = fields.optional_bool(body, "raw_scores") or False
    model = await _model(request, body, endpoint, (PoolingTask.SEQ_CLASSIFY,))
    req = tei.TeiEncode(None, prompts, truncate, EncodeOptions(use_activation=not raw_scores))
    rows = []
    for output in await _encode(request, model, req):
        scores = output.outputs.data
        labels = [model.labels[i] if i < len(model.labels) else f"LABEL_{i}" for i in range(len(scores))]
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        rows.append([{"score": float(scores[i]), "label": labels[i]} for i in order])
    return rows if batched else rows[0]


async def _rerank(request: web.Request, body: Mapping, endpoint: str) -> list:
    max_inputs = gateway(request).settings.max_inputs
    query = tei.parse_string(body.get("query"), "query")
    texts = tei.parse_strings(body.get("texts"), max_inputs, "texts")
    truncate = tei.parse_truncation(body)
    raw_scores = fields.optional_bool(body, "raw_scores") or False
    return_text = fields.optional_bool(body, "return_text") or False
    model = await _model(request, body, endpoint, SCORE_TASKS)
    use_activation = (not raw_scores) if model.task is PoolingTask.SEQ_CLASSIFY else None
    values, _ = await gateway(request).encoder.score(model.info, [query], texts, use_activation,
                                                     _truncation(model, truncate), model.max_tokens)
    order = sorted(range(len(values)), key=lambda i: values[i], reverse=True)
    return [{"index": i, **({"text": texts[i]} if return_text else {}), "score": float(values[i])} for i in order]


async def _similarity(request: web.Request, body: Mapping, endpoint: str) -> list:
    inputs = body.get("inputs")
    if not isinstance(inputs, Mapping):
        raise invalid(f"inputs must be an object {{source_sentence, sentences}}; got {fields.describe(inputs)}",
                      "inputs")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise invalid(f"parameters must be an object or null; got {fields.describe(parameters)}", "parameters")
    source = tei.parse_string(inputs.get("source_sentence"), "inputs.source_sentence")
    sentences = tei.parse_strings(inputs.get("sentences"), gateway(request).settings.max_inputs - 1,
                                  "inputs.sentences")
    texts = [source, *sentences]
    req = tei.TeiEncode(None, tei.parse_inputs(texts, len(texts)), tei.parse_truncation(parameters, "parameters."),
                        EncodeOptions(use_activation=False,
                                          prompt_name=fields.optional_str(parameters, "prompt_name")))
    model = await _model(request, body, endpoint, (PoolingTask.EMBED,), sparse=False)
    vectors = [np.asarray(o.outputs.data, dtype=np.float64) for o in await _encode(request, model, req)]
    return [cosine(vectors[0], v) for v in vectors[1:]]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norms) if norms else 0.0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("triton-pooling-server")
    except PackageNotFoundError:
        return "0"
