"""Response bodies, as vLLM / OpenAI / Jina / Cohere clients read them."""

from __future__ import annotations

import time
import uuid
from typing import Sequence

import numpy as np

from triton_pooling.outputs import PoolingRequestOutput, SparseEmbeddingOutput

from . import sparse
from .encoding import Encoding


def usage(prompt_tokens: int) -> dict:
    return {"prompt_tokens": int(prompt_tokens), "total_tokens": int(prompt_tokens)}


def _envelope(prefix: str, request_id: str | None, model: str, data: list, tokens: int) -> dict:
    return {"id": f"{prefix}-{request_id or uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
            "model": model, "data": data, "usage": usage(tokens)}


def embeddings(outputs: Sequence[PoolingRequestOutput], model: str, encoding: Encoding,
               request_id: str | None) -> dict:
    data = [{"index": i, "object": "embedding", "embedding": encoding.encode(o.outputs.data)}
            for i, o in enumerate(outputs)]
    return _envelope("embd", request_id, model, data, _tokens(outputs))


def pooling(outputs: Sequence[PoolingRequestOutput], model: str, encoding: Encoding, request_id: str | None) -> dict:
    """data[i].data: the output as a (nested) list, or for a sparse model {indices, values[, tokens]} (sparse.py)."""
    data = [{"index": i, "object": "pooling", "data": sparse.pooling_data(o.outputs)
             if isinstance(o.outputs, SparseEmbeddingOutput) else encoding.encode(o.outputs.data)}
            for i, o in enumerate(outputs)]
    return _envelope("pool", request_id, model, data, _tokens(outputs))


def classification(outputs: Sequence[PoolingRequestOutput], model: str, labels: Sequence[str],
                   request_id: str | None) -> dict:
    data = []
    for i, o in enumerate(outputs):
        probs = o.outputs.data
        best = int(np.argmax(probs))
        data.append({"index": i, "label": labels[best] if best < len(labels) else f"LABEL_{best}",
                     "probs": probs.tolist(), "num_classes": int(probs.shape[-1])})
    return _envelope("classify", request_id, model, data, _tokens(outputs))


def scores(values: Sequence[float], model: str, tokens: int, request_id: str | None) -> dict:
    data = [{"index": i, "object": "score", "score": float(s)} for i, s in enumerate(values)]
    return _envelope("score", request_id, model, data, tokens)


def rerank(values: Sequence[float], documents: Sequence[str], top_n: int | None, model: str, tokens: int,
           request_id: str | None) -> dict:
    order = sorted(range(len(values)), key=lambda i: values[i], reverse=True)
    if top_n:
        order = order[:top_n]
    results = [{"index": i, "document": {"text": documents[i]}, "relevance_score": float(values[i])} for i in order]
    return {"id": f"rerank-{request_id or uuid.uuid4().hex}", "model": model, "usage": usage(tokens),
            "results": results}


def models(names_and_tasks: Sequence[tuple[str, str]], created: int) -> dict:
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": created, "owned_by": "triton-pooling", "root": name,
         "parent": None, "task": task} for name, task in names_and_tasks]}


def _tokens(outputs: Sequence[PoolingRequestOutput]) -> int:
    return sum(o.num_tokens for o in outputs)
