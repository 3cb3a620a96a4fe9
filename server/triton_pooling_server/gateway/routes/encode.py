"""/v1/embeddings (OpenAI), /pooling (vLLM) and /classify (vLLM): prompts in, one output per prompt. A sparse
(SPLADE) embed model answers /pooling only ({indices, values} per input: protocol/sparse.py)."""

from __future__ import annotations

from aiohttp import web

from triton_pooling_contract.tasks import PoolingTask

from ..context import MODEL_KEY, gateway, json_response, read_json
from ..errors import invalid
from ..protocol import requests, responses, sparse
from ..protocol.truncation import resolve_options


async def embeddings(request: web.Request) -> web.Response:
    state = gateway(request)
    req = requests.parse_embeddings(await read_json(request), state.settings.max_inputs)
    model = await state.catalog.resolve(req.model, "/v1/embeddings", (PoolingTask.EMBED,), sparse=False)
    request[MODEL_KEY] = model.name
    outputs = await state.encoder.encode(model.info, req.prompts, resolve_options(req.options, model),
                                          model.max_tokens)
    return json_response(responses.embeddings(outputs, model.name, req.encoding, req.request_id))


async def pooling(request: web.Request) -> web.Response:
    state = gateway(request)
    body = await read_json(request)
    req = requests.parse_pooling(body, state.settings.max_inputs)
    if req.model is None and req.task is None:
        raise invalid("/pooling needs model (or task, to pick the model serving it)", "model")
    model = await state.catalog.resolve(req.model, "/pooling", tuple(PoolingTask), task=req.task)
    request[MODEL_KEY] = model.name
    return_tokens = sparse.parse_return_tokens(body, model.sparse)
    if model.sparse:
        sparse.check_encoding(req.encoding, model.name)
    outputs = await state.encoder.encode(model.info, req.prompts, resolve_options(req.options, model),
                                          model.max_tokens, return_tokens)
    return json_response(responses.pooling(outputs, model.name, req.encoding, req.request_id))


async def classify(request: web.Request) -> web.Response:
    state = gateway(request)
    req = requests.parse_classify(await read_json(request), state.settings.max_inputs)
    model = await state.catalog.resolve(req.model, "/classify", (PoolingTask.SEQ_CLASSIFY,))
    request[MODEL_KEY] = model.name
    outputs = await state.encoder.encode(model.info, req.prompts, resolve_options(req.options, model),
                                          model.max_tokens)
    return json_response(responses.classification(outputs, model.name, model.labels, req.request_id))
