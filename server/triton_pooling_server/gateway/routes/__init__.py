"""The endpoints, one module per family."""

from __future__ import annotations

from aiohttp import web

from . import cohere, encode, scoring, service, tei, tokenize


def register(app: web.Application) -> None:
    app.router.add_post("/v1/embeddings", encode.embeddings)
    app.router.add_post("/pooling", encode.pooling)
    app.router.add_post("/classify", encode.classify)
    app.router.add_post("/score", scoring.score)
    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):  # /rerank also takes TEI's shape (routes/tei.py)
        app.router.add_post(path, scoring.rerank)
    app.router.add_post("/v2/embed", cohere.embed)
    # TEI (text-embeddings-inference): its paths, its bodies, its error convention (dialects.py)
    app.router.add_post("/", tei.root)
    app.router.add_post("/embed", tei.embed)
    app.router.add_post("/embed_all", tei.embed_all)
    app.router.add_post("/embed_sparse", tei.embed_sparse)
    app.router.add_post("/predict", tei.predict)
    app.router.add_post("/similarity", tei.similarity)
    app.router.add_get("/info", tei.info)
    # tokenization with each model's own tokenizer.json (--model-repository)
    app.router.add_post("/tokenize", tokenize.tokenize)  # vLLM's shape (prompt) or TEI's (inputs)
    app.router.add_post("/detokenize", tokenize.detokenize)
    app.router.add_post("/decode", tokenize.decode)
    app.router.add_get("/v1/models", service.models)
    app.router.add_get("/v1/models/{model}", service.model)
    app.router.add_get("/health", service.health)
    app.router.add_get("/metrics", service.metrics)
