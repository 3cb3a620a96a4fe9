"""/v1/models, /health (readiness proven by an inference per model) and /metrics (Prometheus)."""

from __future__ import annotations

from aiohttp import web

from ..context import gateway, json_response
from ..errors import ErrorKind, GatewayError
from ..protocol import responses
from ..triton.catalog import describe


async def models(request: web.Request) -> web.Response:
    state = gateway(request)
    served = await state.catalog.models()
    rows = [(m.name, m.task.value) for m in sorted(served.values(), key=lambda m: m.name)]
    return json_response(responses.models(rows, state.started))


async def model(request: web.Request) -> web.Response:
    state = gateway(request)
    name = request.match_info["model"]
    served = await state.catalog.models(refresh=name not in await state.catalog.models())
    if name not in served:
        raise GatewayError(ErrorKind.MODEL_NOT_FOUND, f"The model {name!r} does not exist; {describe(served)}", "model")
    return json_response(responses.models([(name, served[name].task.value)], state.started)["data"][0])


async def health(request: web.Request) -> web.Response:
    report = await gateway(request).health.check()
    if report.ready:
        return json_response({"status": "ready", "models": report.models})
    error = GatewayError(ErrorKind.UNAVAILABLE, f"not ready: {report.problem}")
    return json_response({**error.body(), "models": report.models}, error.kind.status, error.headers())


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=gateway(request).metrics.render().encode(),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
