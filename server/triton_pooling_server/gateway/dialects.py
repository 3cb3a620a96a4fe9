"""Which API's error convention a request is answered in. OpenAI's / vLLM's `{"error": {...}}` everywhere,
except TEI's routes (text-embeddings-inference's router): `{"error": str, "error_type": str}` with TEI's
statuses — 422 validation, 413 size, 429 overloaded, 424 backend, 503 unhealthy, 400 empty batch. Paths only
TEI has are TEI's; the paths TEI shares with vLLM (/rerank, /tokenize) are TEI's once the handler has told
the body's shape apart (`mark_tei`)."""

from __future__ import annotations

from aiohttp import web

from .errors import ErrorKind, GatewayError

TEI = "tei"
DIALECT_KEY = web.RequestKey("dialect", str) if hasattr(web, "RequestKey") else "triton_pooling.dialect"
TEI_PATHS = frozenset({"/", "/embed", "/embed_all", "/embed_sparse", "/predict", "/similarity", "/info", "/decode"})
# Triton's words for its own queue refusing a request: TEI's "overloaded" (429), not "unhealthy".
QUEUE_FULL = "Exceeds maximum queue size"

# ErrorKind -> (status, TEI error_type). TEI's enum: Unhealthy, Backend, Overloaded, Validation, Tokenizer, Empty
# (serialized as written: serde without a rename).
_TEI = {
    ErrorKind.INVALID_REQUEST: (422, "Validation"),
    ErrorKind.UNAUTHORIZED: (401, "Unauthorized"),  # TEI answers a bare 401; the body names the header
    ErrorKind.MODEL_NOT_FOUND: (422, "Validation"),
    ErrorKind.ROUTE_NOT_FOUND: (404, "Validation"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "Validation"),
    ErrorKind.BODY_TIMEOUT: (408, "Validation"),
    ErrorKind.TOO_LARGE: (413, "Validation"),
    ErrorKind.OVERLOADED: (429, "Overloaded"),
    ErrorKind.UNAVAILABLE: (503, "Unhealthy"),
    ErrorKind.TIMEOUT: (424, "Backend"),
    ErrorKind.INTERNAL: (424, "Backend"),
    ErrorKind.NOT_IMPLEMENTED: (501, "Backend"),
}
_TEI_TYPE_STATUS = {"Empty": 400, "Validation": 422, "Tokenizer": 422, "Backend": 424, "Overloaded": 429,
                    "Unhealthy": 503}


def mark_tei(request: web.Request) -> None:
    request[DIALECT_KEY] = TEI


def is_tei(request: web.Request) -> bool:
    return request.get(DIALECT_KEY) == TEI or request.path in TEI_PATHS


def empty(message: str, param: str) -> GatewayError:
    """TEI's "Empty" (400): an empty batch; a 400 BadRequestError in the other conventions."""
    error = GatewayError(ErrorKind.INVALID_REQUEST, message, param)
    error.tei_type = "Empty"
    return error


def tei_answer(error: GatewayError) -> tuple[int, dict]:
    status, error_type = _TEI[error.kind]
    if error.tei_type is not None:
        error_type, status = error.tei_type, _TEI_TYPE_STATUS[error.tei_type]
    elif error.kind is ErrorKind.UNAVAILABLE and QUEUE_FULL in error.message:
        status, error_type = 429, "Overloaded"
    return status, {"error": error.message, "error_type": error_type}
