"""The aiohttp application: one middleware that answers every request exactly once (the API key, then
admission, then the route; results, mapped errors, metrics), and startup / cleanup. The state and JSON
helpers the routes share are in context.py."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from triton_pooling.errors import PoolingClientError

from . import routes
from .admission import Admission
from .auth import ApiKey
from .context import MODEL_KEY, STATE, Gateway, gateway, json_response, too_large
from .dialects import is_tei, tei_answer
from .errors import ErrorKind, GatewayError, from_client_error
from .metrics import Metrics
from .settings import GatewaySettings
from .tokenizer_files import TokenizerFiles
from .triton.catalog import Catalog
from .triton.encoder import TritonEncoder
from .triton.health import Health
from .triton.pool import TritonPool

log = logging.getLogger(__name__)
# After an answer given before the body was read (401, 429, 408, 413), aiohttp reads and drops what is left
# of it for this long before closing, so the client reads the answer instead of a connection reset.
LINGER_S = 2.0


def create_app(settings: GatewaySettings, pool: TritonPool | None = None) -> web.Application:
    """The application; `pool` replaces the Triton connection (tests pass a fake one)."""
    pool = pool or TritonPool(settings.triton_url, settings.pool_size, settings.timeout)
    catalog = Catalog(pool)
    encoder = TritonEncoder(pool, settings.max_output_bytes, settings.max_calls_per_request)
    health = Health(pool, catalog, encoder, settings.health_ttl, settings.probe_timeout, settings.probe_queue_timeout)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[answer_once])
    app[STATE] = Gateway(settings, pool, catalog, encoder, health, Metrics(), int(time.time()),
                         ApiKey(settings.api_key), Admission(settings), TokenizerFiles(settings.model_repository))
    routes.register(app)
    app.on_cleanup.append(_close)
    return app


def runner_options(settings: GatewaySettings) -> dict:
    """What the server side of aiohttp takes (AppRunner, and the tests' TestServer): idle connections close
    after --keepalive-timeout, which also ends a client that never finishes sending its headers."""
    return {"keepalive_timeout": settings.keepalive_timeout, "lingering_time": LINGER_S}


async def _close(app: web.Application) -> None:
    await app[STATE].pool.close()


def error_response(error: GatewayError, request: web.Request | None = None) -> web.Response:
    """The error in the convention of the request's API: TEI's on TEI's routes, OpenAI's / vLLM's elsewhere."""
    if request is not None and is_tei(request):
        status, body = tei_answer(error)
        return json_response(body, status, error.headers())
    return json_response(error.body(), error.kind.status, error.headers())


@web.middleware
async def answer_once(request: web.Request, handler) -> web.StreamResponse:
    state = gateway(request)
    started = time.perf_counter()
    state.metrics.in_flight += 1
    error: GatewayError | None = None
    try:
        state.api_key.check(request)
        with state.admission.admit(request):
            response = await handler(request)
    except GatewayError as e:
        error = e
    except PoolingClientError as e:
        error = from_client_error(e)
    except web.HTTPException as e:  # aiohttp's own: unknown route, wrong method, body too large
        error = _from_http_exception(request, e)
    except asyncio.CancelledError:  # the caller went away; nobody is left to answer
        raise
    except Exception as e:  # noqa: BLE001  (answered 500, logged with its traceback)
        log.exception("unexpected error answering %s %s", request.method, request.path)
        error = GatewayError(ErrorKind.INTERNAL, f"internal error in the gateway: {type(e).__name__}: {e}")
    finally:
        state.metrics.in_flight -= 1
    if error is not None:
        response = error_response(error, request)
        if not request.content.is_eof():
            response.force_close()  # "Connection: close": the unread rest of the body is not worth reading
    resource = request.match_info.route.resource
    endpoint = resource.canonical if resource is not None else "other"
    state.metrics.observe(endpoint, request.get(MODEL_KEY, ""), response.status, time.perf_counter() - started,
                          None if error is None else error.kind.type_name)
    return response


def _from_http_exception(request: web.Request, e: web.HTTPException) -> GatewayError:
    if e.status == 404:
        return GatewayError(ErrorKind.ROUTE_NOT_FOUND, f"no endpoint {request.method} {request.path}; see "
                            "docs/http-api.md for the endpoints")
    if e.status == 405:
        return GatewayError(ErrorKind.METHOD_NOT_ALLOWED, f"{request.path} does not take {request.method}")
    if e.status == 413:
        return too_large(None, gateway(request).settings.max_body_bytes)
    return GatewayError(ErrorKind.INVALID_REQUEST if e.status < 500 else ErrorKind.INTERNAL, e.reason)
