"""Error classification and retries (pure: no server)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from tritonclient.utils import InferenceServerException

from triton_pooling.errors import (InvalidRequestError, PoolingTimeoutError, InternalServerError, ServerUnavailableError,
                                   classify_error)
from triton_pooling.retry import RetryPolicy, acall_with_retry, call_with_retry


@pytest.mark.parametrize("error, kind", [
    (InferenceServerException("bad DIMENSIONS", status="StatusCode.INVALID_ARGUMENT"), InvalidRequestError),
    (InferenceServerException("bad DIMENSIONS", status="400"), InvalidRequestError),
    (InferenceServerException("unknown model", status="StatusCode.NOT_FOUND"), InvalidRequestError),
    (InferenceServerException("down", status="StatusCode.UNAVAILABLE"), ServerUnavailableError),
    (InferenceServerException("down", status="503"), ServerUnavailableError),
    (InferenceServerException("slow", status="StatusCode.DEADLINE_EXCEEDED"), PoolingTimeoutError),
    (InferenceServerException("boom", status="StatusCode.INTERNAL"), InternalServerError),
    (ConnectionRefusedError(111, "Connection refused"), ServerUnavailableError),
    (TimeoutError("timed out"), PoolingTimeoutError),
])
def test_classify_error_keeps_server_message(error, kind):
    wrapped = classify_error(error, "model 'embed'")
    assert type(wrapped) is kind
    assert str(wrapped).startswith("model 'embed': ")
    if isinstance(error, InferenceServerException):
        assert wrapped.server_message == error.message() and error.message() in str(wrapped)


class Flaky:
    """Fails with `error` `failures` times, then answers."""

    def __init__(self, error, failures):
        self.error, self.failures, self.calls = error, failures, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


FAST = RetryPolicy(retries=3, backoff=0.0)


def test_retries_only_while_unavailable():
    flaky = Flaky(InferenceServerException("down", status="StatusCode.UNAVAILABLE"), 3)
    assert call_with_retry(flaky, FAST, "x") == "ok" and flaky.calls == 4
    flaky = Flaky(ConnectionRefusedError(111, "refused"), 4)
    with pytest.raises(ServerUnavailableError) as info:
        call_with_retry(flaky, FAST, "x")
    assert flaky.calls == 4 and isinstance(info.value.__cause__, ConnectionRefusedError)
    invalid = Flaky(InferenceServerException("bad", status="StatusCode.INVALID_ARGUMENT"), 1)
    with pytest.raises(InvalidRequestError) as info:
        call_with_retry(invalid, FAST, "x")
    assert invalid.calls == 1 and isinstance(info.value.__cause__, InferenceServerException)


def test_async_retry_matches_sync():
    flaky = Flaky(InferenceServerException("down", status="503"), 2)

    async def call():
        return flaky()

    assert asyncio.run(acall_with_retry(call, FAST, "x")) == "ok" and flaky.calls == 3


def test_backoff_doubles_up_to_the_cap():
    assert list(RetryPolicy(retries=5, backoff=0.5, max_backoff=3.0).delays()) == [0.5, 1.0, 2.0, 3.0, 3.0]
    with pytest.raises(InvalidRequestError, match="must be >= 0"):
        RetryPolicy(retries=-1)


def test_client_imports_without_torch():
    code = ("import sys; import triton_pooling, triton_pooling.client, triton_pooling.async_client; "
            "import triton_pooling.encode_command; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_package_root_stays_light():
    code = ("import sys, triton_pooling; assert 'numpy' not in sys.modules and 'tritonclient' not in sys.modules; "
            "from triton_pooling import PoolingClient, TaskNotServedError; assert PoolingClient.encode")
    subprocess.run([sys.executable, "-c", code], check=True)
