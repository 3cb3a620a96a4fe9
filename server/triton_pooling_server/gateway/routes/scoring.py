"""/score (vLLM) and /rerank, /v1/rerank (Jina), /v2/rerank (Cohere): how the pair is scored follows
the model's task (embed → cosine, one-label seq_classify → the cross-encoder's score, token_embed →
MaxSim), as the client's score()."""

from __future__ import annotations

from aiohttp import web

from triton_pooling_contract.tasks import PoolingTask

from ..context import MODEL_KEY, gateway, json_response, read_json
from ..protocol import requests, responses

# The tasks a score can be computed with; the first is the default when no model is named (as the client).
SCORE_TASKS = (PoolingTask.EMBED, PoolingTask.SEQ_CLASSIFY, PoolingTask.TOKEN_EMBED)


async def score(request: web.Request) -> web.Response:
    state = gateway(request)
    req = requests.parse_score(await read_json(request), state.settings.max_inputs)
    model, values, tokens = await _scores(request, req, "/score")
    return json_response(responses.scores(values, model, tokens, req.request_id))


async def rerank(request: web.Request) -> web.Response:
    state = gateway(request)
    req = requests.parse_rerank(await read_json(request), state.settings.max_inputs)
    model, values, tokens = await _scores(request, req, request.path)
    return json_response(responses.rerank(values, req.documents, req.top_n, model, tokens, req.request_id))


async def _scores(request: web.Request, req: requests.ScoreRequest, endpoint: str) -> tuple[str, list[float], int]:
    state = gateway(request)
    model = await state.catalog.resolve(req.model, endpoint, SCORE_TASKS)
    request[MODEL_KEY] = model.name
    values, tokens = await state.encoder.score(model.info, req.queries, req.documents, req.use_activation,
                                               req.truncate_prompt_tokens, model.max_tokens)
    return model.name, values, tokens
