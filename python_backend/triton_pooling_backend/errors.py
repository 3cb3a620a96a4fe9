"""The closed set of errors the backend raises, each mapped to one Triton status code."""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    INVALID_INPUT = "INVALID_ARG"  # the request is wrong; its batch-mates are unaffected
    INTERNAL = "INTERNAL"  # our fault; reported, never swallowed


class PoolingError(Exception):
    kind = ErrorKind.INTERNAL


class InvalidInputError(PoolingError):
    kind = ErrorKind.INVALID_INPUT


class ModelConfigError(PoolingError):
    """A model's config.pbtxt or checkpoint is unusable: the model refuses to load."""

    kind = ErrorKind.INVALID_INPUT


def allowed(values) -> str:
    return ", ".join(str(v) for v in values)
