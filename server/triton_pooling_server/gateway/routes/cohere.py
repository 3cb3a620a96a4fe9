"""Cohere's POST /v2/embed (what the cohere SDK's ClientV2.embed posts): embeddings by type — float, int8,
uint8, binary, ubinary, base64 (protocol/quantize.py) — from an embed model."""

from __future__ import annotations

import uuid

import numpy as np
from aiohttp import web

from triton_pooling.batching import EncodeOptions
from triton_pooling.prompts import NormalizedPrompt
from triton_pooling_contract.tasks import PoolingTask

from ..context import MODEL_KEY, gateway, json_response, read_json
from ..protocol import cohere
from ..protocol.quantize import quantize
from ..protocol.truncation import model_max


async def embed(request: web.Request) -> web.Response:
    state = gateway(request)
    req = cohere.parse_embed(await read_json(request), state.settings.max_inputs)
    model = await state.catalog.resolve(req.model, "/v2/embed", (PoolingTask.EMBED,), sparse=False)
    request[MODEL_KEY] = model.name
    keep = None
    if req.truncate == "START":
        keep = req.max_tokens or model_max(model, "truncate", "START")
    options = EncodeOptions(dimensions=req.output_dimension, truncate_prompt_tokens=keep,
                            prompt_name=cohere.prompt_name(req.input_type, model.prompt_names))
    prompts = [NormalizedPrompt(t, text=t) for t in req.texts]
    outputs = await state.encoder.encode(model.info, prompts, options, model.max_tokens)
    vectors = np.stack([o.outputs.data for o in outputs])
    tokens = sum(o.num_tokens for o in outputs)
    return json_response({
        "id": uuid.uuid4().hex, "response_type": "embeddings_by_type",
        "embeddings": {t: quantize(vectors, t) for t in req.embedding_types}, "texts": req.texts,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
    })
