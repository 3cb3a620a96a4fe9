"""Request limits and overload on a real server: each limit refuses with its name and the value,
and a full queue is refused at once (UNAVAILABLE / 503, like TEI's 429), never left to grow."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_server.builder.config_text import DEFAULT_MAX_QUEUE_SIZE, DEFAULT_QUEUE_TIMEOUT_US, ModelSpec
from triton_pooling_contract.tasks import PoolingTask, Tensor
from triton_pooling_backend.limits import DEFAULT_MAX_TEXT_BYTES

from support.raw import PROTOCOLS, client, infer, make_inputs
from support.triton import running_triton, write_model

pytestmark = pytest.mark.integration

TIGHT = {"max_text_bytes": 64, "max_texts_per_request": 4, "max_tokens": 16}
QUEUE_FULL = "Exceeds maximum queue size"


@pytest.fixture(scope="module")
def limits_server(checkpoints, tmp_path_factory):
    """Tiny models with tight limits, and one whose batcher holds requests long enough to fill its queue."""
    repo = tmp_path_factory.mktemp("limits_repository")
    classifier = str(checkpoints["bert-seq-3"])
    write_model(repo, ModelSpec("tight", ModelDefinition(PoolingTask.SEQ_CLASSIFY, classifier, **TIGHT, max_batch_size=8)))
    # A 1 s batching window keeps requests queued, so 2 slots fill with a handful of concurrent requests.
    write_model(repo, ModelSpec("small_queue", ModelDefinition(PoolingTask.SEQ_CLASSIFY, classifier), max_queue_size=2,
                                queue_delay_us=1_000_000))
    with running_triton(repo, repo / "tritonserver.log") as server:
        yield server


def _error(protocol, server, model, texts, **kwargs) -> str:
    connection = client(protocol, server)
    try:
        with pytest.raises(InferenceServerException) as excinfo:
            connection.infer(model, make_inputs(protocol, texts, **kwargs))
    finally:
        connection.close()  # open connections hold the server's graceful stop
    return str(excinfo.value)


# --- defaults, on the shared session server -------------------------------------------------------

def test_default_models_carry_a_bounded_rejecting_queue(triton_server):
    for model in ("embed", "token_embed", "seq_classify", "token_classify"):
        policy = client("http", triton_server).get_model_config(model)["dynamic_batching"]["default_queue_policy"]
        assert int(policy["max_queue_size"]) == DEFAULT_MAX_QUEUE_SIZE
        assert int(policy["default_timeout_microseconds"]) == DEFAULT_QUEUE_TIMEOUT_US
        assert policy["timeout_action"] == "REJECT"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_text_over_the_default_byte_limit_is_refused_before_tokenizing(triton_server, protocol):
    size = DEFAULT_MAX_TEXT_BYTES + 1
    message = _error(protocol, triton_server, "embed", [b"a" * size])
    assert f"TEXT[0] is {size} bytes" in message
    assert f"at most {DEFAULT_MAX_TEXT_BYTES} bytes" in message and "max_text_bytes" in message


def test_text_at_the_byte_limit_passes_it_and_meets_the_token_limit(triton_server):
    message = _error("grpc", triton_server, "embed", [b"a " * (DEFAULT_MAX_TEXT_BYTES // 2)])
    assert "bytes" not in message and "tokens; this model takes at most 256" in message


def test_more_texts_than_max_batch_size_are_refused_by_triton(triton_server):
    message = _error("grpc", triton_server, "embed", ["x"] * 65)
    assert "batch-size must be <= 64" in message


# --- configured limits ------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_configured_limits_name_the_limit_and_the_value(limits_server, protocol):
    texts = _error(protocol, limits_server, "tight", ["hi"] * 5)
    assert "TEXT carries 5 texts" in texts and "at most 4" in texts and "max_texts_per_request" in texts
    ids = _error(protocol, limits_server, "tight", None, input_ids=[[101, 102]] * 5)
    assert "INPUT_IDS carries 5 texts" in ids and "max_texts_per_request" in ids
    size = _error(protocol, limits_server, "tight", ["ok", "é" * 33])
    assert "TEXT[1] is 66 bytes" in size and "at most 64" in size and "max_text_bytes" in size
    pair = _error(protocol, limits_server, "tight", ["ok"], pairs=["p" * 65])
    assert "TEXT_PAIR[0] is 65 bytes" in pair
    tokens = _error(protocol, limits_server, "tight", ["a b c d e f g h i j k l m n o p q r s t"])
    assert "has 22 tokens; this model takes at most 16" in tokens


def test_requests_within_the_configured_limits_are_answered(limits_server):
    out = infer("grpc", limits_server, "tight", ["hi", "a sentence of a few words", "a b c", "d"])
    assert out[Tensor.SCORES].shape == (4, 3)
    np.testing.assert_allclose(out[Tensor.SCORES].sum(axis=1), 1.0, atol=1e-5)


# --- overload ---------------------------------------------------------------------------------------

def _burst(server, count: int) -> list[tuple[str, float]]:
    """`count` concurrent single-text requests; each ends as ('ok' | its error, seconds taken)."""
    def one(i):
        started = time.monotonic()
        connection = client("grpc", server)
        try:
            connection.infer("small_queue", make_inputs("grpc", [f"text {i}"]), client_timeout=60)
            return "ok", time.monotonic() - started
        except InferenceServerException as e:
            return str(e), time.monotonic() - started
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_a_full_queue_refuses_at_once_with_unavailable(limits_server):
    outcomes = _burst(limits_server, 12)
    refused = [(m, t) for m, t in outcomes if m != "ok"]
    assert refused, "12 concurrent requests should overflow a 2-slot queue"
    assert all(QUEUE_FULL in m and "UNAVAILABLE" in m for m, _ in refused), refused
    assert all(t < 1.0 for _, t in refused), "refusal must not wait for the batching window"
    assert len(refused) < len(outcomes), "the queued requests are still answered"
    assert "ok" == _burst(limits_server, 1)[0][0], "service goes on after the overload"


def test_the_client_retries_through_overload(limits_server):
    from triton_pooling import PoolingClient

    with PoolingClient(limits_server.options.grpc_url, retries=8, backoff=0.2, max_concurrency=6,
                       max_request_size=1) as pooling:
        outputs = pooling.classify([f"text {i}" for i in range(6)], model="small_queue")
    assert len(outputs) == 6
    assert all(abs(float(np.sum(o.outputs.probs)) - 1.0) < 1e-5 for o in outputs)
