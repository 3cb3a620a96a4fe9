"""The HTTP gateway: the endpoints OpenAI, vLLM, Jina and Cohere clients call, served over the Triton models.

Layout: `protocol/` (request parsing and validation, response bodies, vector encodings), `triton/`
(pooled asyncio gRPC client, discovery cache, encoding, health probe), `routes/` (one module per
endpoint family), `errors` (the closed set of error kinds and their statuses), `metrics`
(Prometheus), `app` (the aiohttp application), `command` (the `gateway` subcommand and `python -m`).
It imports the client package and the contract, never torch or transformers.
"""
