"""The endpoints, one module per family."""

from __future__ import annotations

from aiohttp import web

from . import encode, scoring, service


def register(app: web.Application) -> None:
    app.router.add_post("/v1/embeddings", encode.embeddings)
    app.router.add_post("/pooling", encode.pooling)
    app.router.add_post("/classify", encode.classify)
    app.router.add_post("/score", scoring.score)
    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
        app.router.add_post(path, scoring.rerank)
    app.router.add_get("/v1/models", service.models)
    app.router.add_get("/v1/models/{model}", service.model)
    app.router.add_get("/health", service.health)
    app.router.add_get("/metrics", service.metrics)
