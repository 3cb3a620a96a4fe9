"""The gateway's one closed set of error kinds, each answered with one HTTP status, and the mapping
from the client package's errors (which classify tritonclient's) onto it.

Every error body is OpenAI's / vLLM's: `{"error": {"message", "type", "param", "code"}}`, except on TEI's
routes, which answer TEI's `{"error", "error_type"}` with TEI's statuses (dialects.py).
"""

from __future__ import annotations

import enum
import re

from triton_pooling.errors import (
    InvalidRequestError, ModelNotFoundError, PoolingClientError, PoolingTimeoutError, ServerUnavailableError,
    UnknownTaskError,
)
from triton_pooling_contract.tasks import Tensor

RETRY_AFTER_SECONDS = 1


class ErrorKind(enum.Enum):
    """(HTTP status, the `type` in the body). The only statuses the gateway answers errors with."""

    INVALID_REQUEST = (400, "BadRequestError")
    UNAUTHORIZED = (401, "AuthenticationError")  # no or a wrong API key (the OpenAI SDK's class name)
    # Same status and type, distinct kinds (a third field, or Enum would make them one member): TEI answers 422 for
    # an unknown model but 404 for an unknown route (dialects.py).
    MODEL_NOT_FOUND = (404, "NotFoundError", "model")
    ROUTE_NOT_FOUND = (404, "NotFoundError", "route")
    METHOD_NOT_ALLOWED = (405, "MethodNotAllowedError")
    BODY_TIMEOUT = (408, "RequestTimeoutError")  # the body did not arrive in time (--body-timeout)
    TOO_LARGE = (413, "RequestTooLargeError")
    OVERLOADED = (429, "RateLimitError")  # past the gateway's own bounds: requests or body bytes in flight
    UNAVAILABLE = (503, "ServiceUnavailableError")  # Triton overloaded, restarting or not ready
    TIMEOUT = (504, "GatewayTimeoutError")  # Triton did not answer within the gateway's timeout
    INTERNAL = (500, "InternalServerError")
    NOT_IMPLEMENTED = (501, "NotImplementedError")  # a route this gateway cannot serve (yet, or without a flag)

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def type_name(self) -> str:
        return self.value[1]

    @property
    def retry_after(self) -> int | None:
        return RETRY_AFTER_SECONDS if self in (ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED) else None


class GatewayError(Exception):
    """An answer the gateway gives instead of a result; `param` names the request field at fault."""

    def __init__(self, kind: ErrorKind, message: str, param: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.tei_type: str | None = None  # TEI's error_type when it is not the kind's (dialects.py: "Empty")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind.type_name, "param": self.param,
                          "code": self.kind.status}}

    def headers(self) -> dict[str, str]:
        headers = {} if self.kind.retry_after is None else {"Retry-After": str(self.kind.retry_after)}
        if self.kind is ErrorKind.UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Bearer realm="triton-pooling"'
        return headers


def invalid(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(ErrorKind.INVALID_REQUEST, message, param)


# A Triton INVALID_ARG message starts with the tensor at fault; this is the request field it came from.
_TENSOR_FIELDS = {
    Tensor.DIMENSIONS: "dimensions", Tensor.TRUNCATE_PROMPT_TOKENS: "truncate_prompt_tokens",
    Tensor.USE_ACTIVATION: "use_activation", Tensor.TEXT: "input", Tensor.TEXT_PAIR: "input",
    Tensor.INPUT_IDS: "input",
}


def from_client_error(error: PoolingClientError, param: str | None = None) -> GatewayError:
    """The gateway's answer for an error the client package raised or classified (Triton's own text kept)."""
    if isinstance(error, GatewayError):
        return error
    message = error.server_message or str(error)
    if isinstance(error, ModelNotFoundError) or error.status in ("StatusCode.NOT_FOUND", "404"):
        # Triton's NOT_FOUND: the model went away after the catalog was read (unloaded).
        return GatewayError(ErrorKind.MODEL_NOT_FOUND, message, "model")
    if isinstance(error, UnknownTaskError):
        return GatewayError(ErrorKind.INVALID_REQUEST, message, "task")
    if isinstance(error, InvalidRequestError):
        return GatewayError(ErrorKind.INVALID_REQUEST, message, param or _field_of(message))
    if isinstance(error, ServerUnavailableError):
        return GatewayError(ErrorKind.UNAVAILABLE, f"Triton is unavailable, retry later: {message}")
    if isinstance(error, PoolingTimeoutError):
        return GatewayError(ErrorKind.TIMEOUT, f"Triton did not answer in time: {message}")
    return GatewayError(ErrorKind.INTERNAL, message)


_NAMES = sorted({*_TENSOR_FIELDS, *_TENSOR_FIELDS.values()}, key=len, reverse=True)
_FIELD_PATTERN = re.compile(r"\b(" + "|".join(_NAMES) + r")\b")


def _field_of(message: str) -> str | None:
    """The request field a message is about: the first tensor or field name it mentions."""
    found = _FIELD_PATTERN.search(message)
    if found is None:
        return None
    return _TENSOR_FIELDS.get(found.group(1), found.group(1))
