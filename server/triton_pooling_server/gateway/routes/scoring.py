"""/score (vLLM) and /rerank, /v1/rerank (Jina), /v2/rerank (Cohere): how the pair is scored follows
the model's task (embed → cosine, one-label seq_classify → the cross-encoder's score, token_embed →
MaxSim), as the client's score()."""

from __future__ import annotations

from aiohttp import web

from triton_pooling.scoring import SCORE_TASKS

from ..context import MODEL_KEY, gateway, json_response, read_json
from ..protocol import requests, responses
from ..protocol.truncation import resolve
from . import tei

# The tasks a score can be computed with; the first is the default when no model is named (as the client).


async def score(request: web.Request) -> web.Response:
    state = gateway(request)
    req = requests.parse_score(await read_json(request), state.settings.max_inputs)
    model, values, tokens = await _scores(request, req, "/score")
    return json_response(responses.scores(values, model, tokens, req.request_id))


async def rerank(request: web.Request) -> web.Response:
    """vLLM's / Jina's / Cohere's shape (query, documents); on /rerank also TEI's (query, texts: routes/tei.py)."""
    state = gateway(request)
    body = await read_json(request)
    if request.path == "/rerank":
        if tei.is_tei_rerank(body):
            return await tei.rerank(request, body)
    req = requests.parse_rerank(body, state.settings.max_inputs)
    model, values, tokens = await _scores(request, req, request.path)
    return json_response(responses.rerank(values, req.documents, req.top_n, model, tokens, req.request_id))


async def _scores(request: web.Request, req: requests.ScoreRequest, endpoint: str) -> tuple[str, list[float], int]:
    state = gateway(request)
    model = await state.catalog.resolve(req.model, endpoint, SCORE_TASKS)
    request[MODEL_KEY] = model.name
    values, tokens = await state.encoder.score(model.info, req.queries, req.documents, req.use_activation,
                                               resolve(req.truncate_prompt_tokens, model), model.max_tokens)
    return model.name, values, tokens
