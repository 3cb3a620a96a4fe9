"""The gateway's wire formats without a server: request parsing and its 400s, vector encodings, the
error mapping, labels and the Prometheus text."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from triton_pooling.errors import (InternalServerError, InvalidRequestError, ModelNotFoundError,
                                   PoolingTimeoutError, ServerUnavailableError, UnknownTaskError)
from triton_pooling_contract.tasks import PoolingTask
from triton_pooling_server.gateway.errors import ErrorKind, GatewayError, from_client_error
from triton_pooling_server.gateway.metrics import Metrics
from triton_pooling_server.gateway.protocol import requests
from triton_pooling_server.gateway.protocol.encoding import Encoding, bfloat16_bits, parse_encoding
from triton_pooling_server.gateway.settings import GatewaySettings, SettingsError
from triton_pooling_server.gateway.triton.labels import labels_of, parse_id2label


def _refused(parse, body, param, *needles):
    with pytest.raises(GatewayError) as info:
        parse(body, 16)
    error = info.value
    assert error.kind is ErrorKind.INVALID_REQUEST and error.param == param, error.body()
    for needle in needles:
        assert needle in error.message, error.message
    return error


@pytest.mark.parametrize("value,expected", [
    ("hello", [("hello", None)]),
    (["a", "b"], [("a", None), ("b", None)]),
    ([1, 2, 3], [(None, (1, 2, 3))]),
    ([[1, 2], [3]], [(None, (1, 2)), (None, (3,))]),
])
def test_input_shapes(value, expected):
    req = requests.parse_embeddings({"input": value, "model": "m"}, 16)
    assert [(p.text, p.token_ids) for p in req.prompts] == expected
    assert req.model == "m" and req.encoding == Encoding()


@pytest.mark.parametrize("body,param,needle", [
    ({}, "input", "input is required"),
    ({"input": []}, "input", "non-empty"),
    ({"input": ""}, "input", "empty string"),
    ({"input": ["a", 1]}, "input", "input[1]"),
    ({"input": [[1], "a"]}, "input", "not a mix"),
    ({"input": [{"x": 1}]}, "input", "input[0]"),
    ({"input": [[1, -2]]}, "input", "input[0][1] is -2"),
    ({"input": [True, False]}, "input", "input"),
    ({"input": ["a"] * 17}, "input", "at most 16"),
    ({"input": "a", "model": 3}, "model", "model must be a string"),
    ({"input": "a", "dimensions": 0}, "dimensions", ">= 1"),
    ({"input": "a", "dimensions": "8"}, "dimensions", "integer"),
    ({"input": "a", "encoding_format": "bytes"}, "encoding_format", "'float', 'base64'"),
    ({"input": "a", "embed_dtype": "fp8_e4m3"}, "embed_dtype", "float32"),
    ({"input": "a", "use_activation": "yes"}, "use_activation", "true, false"),
    ({"input": "a", "truncate_prompt_tokens": 0}, "truncate_prompt_tokens", "-1"),
    ({"input": "a", "normalize": True}, "normalize", "use_activation"),
    ({"input": "a", "messages": [{"role": "user"}]}, "messages", "not supported"),
    ({"input": "a", "user": 5}, "user", "string"),
])
def test_invalid_fields_are_named(body, param, needle):
    _refused(requests.parse_embeddings, body, param, needle)


@pytest.mark.parametrize("gateway_input,client_prompts", [
    ([""], [""]), ([[1, -2]], [[1, -2]]),
])
def test_gateway_and_client_refuse_a_prompt_with_the_same_words(gateway_input, client_prompts):
    from triton_pooling.prompts import normalize_prompts

    error = _refused(requests.parse_embeddings, {"input": gateway_input}, "input")
    with pytest.raises(InvalidRequestError) as client:
        normalize_prompts(client_prompts)
    assert error.message.replace("input", "prompts") == str(client.value), (error.message, str(client.value))


def test_truncate_minus_one_means_the_models_maximum_and_null_none():
    """vLLM's semantics: -1 truncates to the model's max_tokens (resolved per model when sent), null keeps all."""
    parse = requests.parse_embeddings
    assert parse({"input": "a", "truncate_prompt_tokens": -1}, 4).options.truncate_prompt_tokens == -1
    assert parse({"input": "a", "truncate_prompt_tokens": None}, 4).options.truncate_prompt_tokens is None
    assert parse({"input": "a", "truncate_prompt_tokens": 7}, 4).options.truncate_prompt_tokens == 7


def test_pooling_task_and_alias():
    assert requests.parse_pooling({"input": "a", "task": "classify"}, 4).task is PoolingTask.SEQ_CLASSIFY
    assert requests.parse_pooling({"input": "a", "task": "token_embed"}, 4).task is PoolingTask.TOKEN_EMBED
    assert requests.parse_pooling({"input": "a"}, 4).task is None
    _refused(requests.parse_pooling, {"input": "a", "task": "reward"}, "task", "'embed'", "'token_classify'")
    _refused(requests.parse_pooling, {"input": "a", "task": 1}, "task", "string")


def test_classify_takes_no_dimensions():
    assert requests.parse_classify({"input": "a", "dimensions": 4}, 4).options.dimensions is None


@pytest.mark.parametrize("first,second", requests.SCORE_FIELD_PAIRS)
def test_score_field_pairs(first, second):
    req = requests.parse_score({first: "q", second: ["d1", "d2"]}, 4)
    assert req.queries == ["q"] and req.documents == ["d1", "d2"]


def test_score_refusals():
    _refused(requests.parse_score, {"queries": "q"}, "documents", "required")
    _refused(requests.parse_score, {}, "queries", "required")
    _refused(requests.parse_score, {"text_1": ["a", "b"], "text_2": ["c", "d", "e"]}, "text_2", "pairwise")
    _refused(requests.parse_score, {"queries": "q", "documents": [""]}, "documents", "empty")


def test_rerank_documents_as_strings_or_objects():
    req = requests.parse_rerank({"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1}, 4)
    assert req.queries == ["q"] and req.documents == ["a", "b"] and req.top_n == 1
    _refused(requests.parse_rerank, {"documents": ["a"]}, "query", "required")
    _refused(requests.parse_rerank, {"query": "q", "documents": [{"title": "x"}]}, "documents", "text field")
    _refused(requests.parse_rerank, {"query": "q", "documents": ["a"], "top_n": -1}, "top_n", ">= 0")


def test_base64_is_little_endian_float32_as_the_openai_sdk_reads_it():
    data = np.array([0.25, -1.5, 3.0e-8], dtype=np.float32)
    text = parse_encoding({"encoding_format": "base64"}).encode(data)
    assert np.array_equal(np.frombuffer(base64.b64decode(text), dtype="<f4"), data)
    big = Encoding("base64", "float32", "big").encode(data)
    assert np.array_equal(np.frombuffer(base64.b64decode(big), dtype=">f4"), data)
    half = Encoding("base64", "float16", "little").encode(data)
    assert np.array_equal(np.frombuffer(base64.b64decode(half), dtype="<f2"), data.astype(np.float16))
    grid = np.arange(6, dtype=np.float32).reshape(2, 3)  # token-level data: row-major bytes
    assert np.array_equal(np.frombuffer(base64.b64decode(Encoding("base64").encode(grid)), "<f4"), grid.ravel())
    assert orjson.loads(orjson.dumps(Encoding().encode(grid), option=orjson.OPT_SERIALIZE_NUMPY)) == \
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_bfloat16_rounds_to_nearest_even():
    values = np.array([1.0, 1.00390625, 1.01171875, -2.5, 3.1415927], dtype=np.float32)
    bits = bfloat16_bits(values)
    back = (bits.astype(np.uint32) << 16).view(np.float32)
    assert back.tolist() == [1.0, 1.0, 1.015625, -2.5, 3.140625]


@pytest.mark.parametrize("error,kind,param", [
    (ModelNotFoundError("no such model"), ErrorKind.MODEL_NOT_FOUND, "model"),
    (UnknownTaskError("bad task"), ErrorKind.INVALID_REQUEST, "task"),
    (InvalidRequestError("x", server_message="DIMENSIONS must be between 1 and 384; got 999"),
     ErrorKind.INVALID_REQUEST, "dimensions"),
    (InvalidRequestError("x", server_message="TEXT[0] has 600 tokens; send TRUNCATE_PROMPT_TOKENS"),
     ErrorKind.INVALID_REQUEST, "input"),
    (InvalidRequestError("x", server_message="Request for unknown model: 'gone' is not found",
                         status="StatusCode.NOT_FOUND"), ErrorKind.MODEL_NOT_FOUND, "model"),
    (ServerUnavailableError("down"), ErrorKind.UNAVAILABLE, None),
    (PoolingTimeoutError("slow"), ErrorKind.TIMEOUT, None),
    (InternalServerError("boom"), ErrorKind.INTERNAL, None),
])
def test_client_errors_map_to_one_kind_each(error, kind, param):
    mapped = from_client_error(error)
    assert mapped.kind is kind and mapped.param == param
    body = mapped.body()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["code"] == kind.status
    if isinstance(error, InvalidRequestError) and error.server_message:
        assert body["message"] == error.server_message  # Triton's own text, passed through
    assert ("Retry-After" in mapped.headers()) == (kind is ErrorKind.UNAVAILABLE)


def test_labels_from_config_parameter():
    config = {"name": "c", "parameters": {"id2label": {"string_value": '{"1": "pos", "0": "neg"}'}}}
    assert labels_of(config) == ("neg", "pos")
    assert parse_id2label('["a", "b"]') == ("a", "b")
    assert labels_of({"name": "c", "parameters": {}}) == ()
    assert labels_of({"name": "c", "parameters": {"id2label": {"string_value": '{"x": "a"}'}}}) == ()
    with pytest.raises(ValueError, match="0..1"):
        parse_id2label('{"0": "a", "2": "b"}')


def test_metrics_text():
    metrics = Metrics()
    metrics.observe("/v1/embeddings", "embed", 200, 0.012)
    metrics.observe("/v1/embeddings", "embed", 400, 0.001, "BadRequestError")
    text = metrics.render()
    assert 'triton_pooling_gateway_requests_total{endpoint="/v1/embeddings",model="embed",status="200"} 1' in text
    assert 'triton_pooling_gateway_errors_total{endpoint="/v1/embeddings",model="embed",type="BadRequestError"} 1' in text
    assert 'triton_pooling_gateway_request_duration_seconds_bucket{endpoint="/v1/embeddings",model="embed",le="0.025"} 2' in text
    assert 'triton_pooling_gateway_request_duration_seconds_count{endpoint="/v1/embeddings",model="embed"} 2' in text


@pytest.mark.parametrize("change,needle", [
    (dict(triton_url="nohost"), "HOST:GRPC_PORT"), (dict(port=70000), "port"), (dict(timeout=0), "timeout"),
    (dict(max_inputs=0), "max_inputs"),
])
def test_settings_are_checked(change, needle):
    with pytest.raises(SettingsError, match=needle):
        GatewaySettings(**{"triton_url": "localhost:8001", **change})


def test_the_api_key_comes_from_its_flag_else_the_environment_and_never_shows():
    import argparse

    from triton_pooling_server.gateway.command import add_arguments, settings_from
    from triton_pooling_server.gateway.settings import API_KEY_ENV

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--triton-url", "h:1"])
    assert settings_from(args, {API_KEY_ENV: "from-env"}).api_key == "from-env"
    assert settings_from(args, {API_KEY_ENV: ""}).api_key is None, "an empty variable means no key"
    flagged = settings_from(parser.parse_args(["--triton-url", "h:1", "--api-key", "from-flag"]), {API_KEY_ENV: "e"})
    assert flagged.api_key == "from-flag" and "from-flag" not in repr(flagged)
    for bad in ("", "has space", "tab\tkey", "caf\u00e9"):
        with pytest.raises(SettingsError, match="printable ASCII"):
            GatewaySettings("h:1", api_key=bad)
    with pytest.raises(SettingsError, match="max_body_bytes_in_flight"):
        GatewaySettings("h:1", max_body_bytes=1000, max_body_bytes_in_flight=999)
