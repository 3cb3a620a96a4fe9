"""The client's exception hierarchy, and the one place that classifies tritonclient's errors.

Every error the client raises is a `PoolingClientError`; the server's own message is kept in
`server_message`, and the tritonclient / transport error is chained (`raise ... from e`).
"""

from __future__ import annotations


class PoolingClientError(Exception):
    """Base of every error the triton-pooling client raises."""

    def __init__(self, message: str, *, server_message: str | None = None, status: str | None = None):
        super().__init__(message)
        self.server_message = server_message
        self.status = status


class InvalidRequestError(PoolingClientError, ValueError):
    """The request is wrong (bad prompt, option or task); retrying it cannot help."""


class UnknownTaskError(InvalidRequestError):
    """A task name that is neither a pooling task nor an accepted alias."""


class TaskNotServedError(InvalidRequestError):
    """No model on the server serves the task, or the chosen model serves another task."""


class ModelNotFoundError(InvalidRequestError):
    """`model=` names no pooling model on the server."""


class ServerUnavailableError(PoolingClientError, ConnectionError):
    """The server cannot be reached or is not ready (e.g. during a restart); retried with backoff."""


class PoolingTimeoutError(PoolingClientError, TimeoutError):
    """A request took longer than the client's `timeout`."""


class InternalServerError(PoolingClientError):
    """The server failed to answer a valid request (an internal error on its side)."""


# tritonclient statuses: gRPC gives "StatusCode.X", HTTP gives the status code as text.
_UNAVAILABLE = {"StatusCode.UNAVAILABLE", "502", "503", "504"}
_TIMEOUT = {"StatusCode.DEADLINE_EXCEEDED", "408"}
# Server messages that mean "not right now" whatever their status: a model between versions
# (loading, unloading, server shutting down) or a Python stub that died (serve restarts the server).
_TRANSIENT = ("has no available versions", "is not healthy")
_INVALID = {"StatusCode.INVALID_ARGUMENT", "StatusCode.NOT_FOUND", "StatusCode.UNIMPLEMENTED",
            "StatusCode.FAILED_PRECONDITION", "StatusCode.OUT_OF_RANGE", "400", "404"}


def classify_error(error: BaseException, context: str) -> PoolingClientError:
    """Map a tritonclient / transport exception to the client's hierarchy; `context` says what was asked."""
    if isinstance(error, PoolingClientError):
        return error
    if isinstance(error, TimeoutError):  # socket.timeout, asyncio.TimeoutError, aiohttp's ServerTimeoutError
        return PoolingTimeoutError(f"{context}: timed out ({error or type(error).__name__})")
    if isinstance(error, OSError):  # connection refused / reset: the server is not (yet) there
        return ServerUnavailableError(f"{context}: server unavailable ({error})")
    status, message = _status_and_message(error)
    if status in _UNAVAILABLE or (status is None and "unavailable" in message.lower()) or \
            any(t in message for t in _TRANSIENT):
        return ServerUnavailableError(f"{context}: server unavailable: {message}", server_message=message, status=status)
    if status in _TIMEOUT:
        return PoolingTimeoutError(f"{context}: timed out: {message}", server_message=message, status=status)
    if status in _INVALID:
        return InvalidRequestError(f"{context}: {message}", server_message=message, status=status)
    return InternalServerError(f"{context}: {message}", server_message=message, status=status)


def is_retryable(error: PoolingClientError) -> bool:
    """Only an unavailable server is worth retrying; an invalid request fails the same way again."""
    return isinstance(error, ServerUnavailableError)


def _status_and_message(error: BaseException) -> tuple[str | None, str]:
    status = error.status() if callable(getattr(error, "status", None)) else None
    message = error.message() if callable(getattr(error, "message", None)) else str(error)
    return (str(status) if status is not None else None), str(message or error)

