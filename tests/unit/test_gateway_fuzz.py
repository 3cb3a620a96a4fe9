"""Hostile bodies, no server: the request parsers fuzzed with hypothesis (random JSON, and near-valid bodies
whose fields take any JSON value, ints over the whole 64-bit range and past it, deep nesting). Every body
either parses into a request Triton's tensors can carry, or is refused as a 400 naming the field at fault
(one the body has, or a required one it lacks) — never another exception (which the app would answer 500).
The regressions that were 500s are pinned by name, through the app too; and the bodies that were too costly:
an output past --max-output-bytes, and token ids of hundreds of lengths (one Triton request each), sent at
most --max-calls-per-request at once."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from triton_pooling.batching import plan_requests
from triton_pooling.discovery import ModelInfo
from triton_pooling.errors import InvalidRequestError
from triton_pooling_contract.tasks import PoolingTask, Tensor
from triton_pooling_server.gateway.errors import ErrorKind, GatewayError
from triton_pooling_server.gateway.protocol import requests

from test_gateway_app import FakeTriton, _error, _vector, answer, call, serving

PARSERS = {"/v1/embeddings": requests.parse_embeddings, "/pooling": requests.parse_pooling,
           "/classify": requests.parse_classify, "/score": requests.parse_score, "/rerank": requests.parse_rerank}
FIELDS = ("input", "model", "task", "dimensions", "use_activation", "truncate_prompt_tokens", "encoding_format",
          "embed_dtype", "endianness", "user", "request_id", "normalize", "messages", "add_special_tokens",
          "truncation_side", "queries", "documents", "items", "text_1", "text_2", "data_1", "data_2", "query",
          "top_n")
MODEL = ModelInfo("m", PoolingTask.EMBED, 4, True, frozenset((Tensor.TEXT, Tensor.INPUT_IDS, Tensor.TEXT_PAIR,
                                                              Tensor.TRUNCATE_PROMPT_TOKENS, Tensor.DIMENSIONS,
                                                              Tensor.USE_ACTIVATION)))

edge_ints = st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), -(2**63) - 1])
ints = st.one_of(edge_ints, st.integers(min_value=-(2**65), max_value=2**65))
scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8), st.sampled_from(["embed", "float", "base64", "classify", "left", ""]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                           max_leaves=30)
# Fields as a client would get them slightly wrong: right names, any values, the shapes input takes.
input_like = st.one_of(json_values, st.lists(ints, min_size=1, max_size=6),
                       st.lists(st.lists(ints, max_size=4), max_size=4),
                       st.lists(st.one_of(st.text(max_size=6), st.dictionaries(st.just("text"), json_values)),
                                max_size=4))
texts = st.text(min_size=1, max_size=12)
ids = st.lists(st.one_of(st.integers(0, 30000), edge_ints), min_size=1, max_size=5)
valid_input = st.one_of(texts, st.lists(texts, min_size=1, max_size=4), ids, st.lists(ids, min_size=1, max_size=4))
# Mostly right: valid prompts with each option either absent, a plausible value, or any JSON value.
plausible = {"dimensions": st.one_of(st.integers(1, 64), ints),
             "truncate_prompt_tokens": st.one_of(st.just(-1), ints),
             "use_activation": st.booleans(), "encoding_format": st.sampled_from(["float", "base64"]),
             "task": st.sampled_from(["embed", "classify", "token_embed"]), "model": st.sampled_from(["m", "embed"]),
             "top_n": st.one_of(st.integers(0, 5), ints), "query": texts, "queries": valid_input,
             "documents": st.one_of(st.lists(texts, min_size=1, max_size=3), valid_input), "text_1": texts,
             "text_2": st.lists(texts, min_size=1, max_size=3)}
near_valid = st.fixed_dictionaries({"input": valid_input}, optional={
    name: st.one_of(value, json_values) for name, value in plausible.items()})
bodies = st.one_of(near_valid, json_values,
                   st.dictionaries(st.sampled_from(FIELDS), st.one_of(input_like, json_values), max_size=6))


def _parse_or_refuse(parser, body) -> None:
    """The property: a request whose tensors can be planned, or a 400 naming the field at fault."""
    if not isinstance(body, dict):
        return  # read_json refuses it before any parser (test_gateway_app)
    try:
        req = parser(body, 16)
    except GatewayError as e:
        assert e.kind is ErrorKind.INVALID_REQUEST, e.body()
        assert e.param is None or e.param in body or e.param in FIELDS, (e.param, body)
        json.dumps(e.body())  # the answer itself can be written
        return
    if isinstance(req, requests.EncodeRequest):
        try:
            plan_requests(req.prompts, MODEL, req.options)  # ints that parse must fit INT32 / INT64 tensors
        except InvalidRequestError:
            pass  # the client's own refusal, answered 400 by the app


@pytest.mark.parametrize("path", sorted(PARSERS))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_every_body_parses_or_is_a_400_naming_a_field(path, body):
    _parse_or_refuse(PARSERS[path], body)


def _nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("body,param,needle", [
    ({"input": [9223372036854775808]}, "input", "<= 9223372036854775807"),  # was OverflowError
    ({"input": [[1, 2], [18446744073709551615]]}, "input", "input[1][0]"),
    ({"input": _nested(1000)}, "input", "nested too deeply"),  # was RecursionError
    ({"input": ["a", _nested(990)]}, "input", "nested too deeply"),
    ({"input": "a", "dimensions": 2**40}, "dimensions", "<= 2147483647"),  # was OverflowError in the INT32 tensor
    ({"input": "a", "truncate_prompt_tokens": 2**31}, "truncate_prompt_tokens", "2147483647"),
    ({"input": "a", "model": _nested(995)}, "model", "nested too deeply"),
])
def test_the_bodies_that_answered_500_are_400s_naming_the_field(body, param, needle):
    with pytest.raises(GatewayError) as info:
        requests.parse_embeddings(body, 16)
    assert info.value.param == param and needle in info.value.message, info.value.body()


def test_through_the_app_hostile_bodies_are_400_never_500():
    raws = [b'{"input": [9223372036854775808]}', b'{"input": ' + b"[" * 1000 + b"]" * 1000 + b"}",
            b'{"input": ' + b"[" * 1100 + b"]" * 1100 + b"}", b'{"input": [1e400]}', b'{"input": "\\ud800"}',
            b'{"input": [18446744073709551616]}', orjson.dumps({"input": [{}] * 3000}), b"\xff\xfe", b"",
            b'{"input": "a", "dimensions": 99999999999}']

    async def go():
        async with serving(FakeTriton()) as client:
            return [await answer(client, "POST", "/v1/embeddings", raw=raw) for raw in raws]

    for raw, (status, _, body) in zip(raws, asyncio.run(go())):
        assert status == 400 and body["error"]["type"] == "BadRequestError", (raw[:40], status, body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(sorted(PARSERS)), body=bodies)
def test_through_the_app_no_body_is_a_500(path, body):
    async def go():
        async with serving(FakeTriton()) as client:
            return await answer(client, "POST", path, raw=json.dumps(body).encode())  # json: ints past 64 bits too

    status, _, payload = asyncio.run(go())
    assert status in (200, 400, 404), (status, payload)


def test_output_too_large_is_413_before_triton_computes_it_once_the_width_is_known():
    fake = FakeTriton()
    texts = ["w " * 200] * 64  # 64 texts x 202 rows x 4 values x 4 bytes = 207 KB > 100 KB
    fake.configs["token_embed"]["parameters"]["max_tokens"] = {"string_value": "512"}

    async def go():
        async with serving(fake, max_output_bytes=100_000) as client:
            first = await answer(client, "POST", "/pooling", {"model": "token_embed", "input": texts})  # width unknown
            calls_first = len(fake.requests)
            assert (await answer(client, "POST", "/pooling", {"model": "token_embed", "input": "a b"}))[0] == 200
            sent = len(fake.requests)
            second = await answer(client, "POST", "/pooling", {"model": "token_embed", "input": texts})
            return first, calls_first, second, len(fake.requests) - sent

    (status, _, body), calls_first, (status2, _, body2), calls_second = asyncio.run(go())
    assert status == 413 and calls_first < 16, calls_first  # stopped as the answers passed the limit
    _error(body, 413, "input", "passed 100000 bytes", "--max-output-bytes")
    assert status2 == 413 and calls_second == 0, "refused from the estimate, nothing sent"
    _error(body2, 413, "input", "would be up to", "64 inputs", "--max-output-bytes")


def test_token_id_lists_of_many_lengths_go_at_most_max_calls_at_once():
    fake = FakeTriton()
    ids = [list(range(1, n + 1)) for n in range(1, 301)]  # 300 lengths: 300 Triton requests
    status, _, body = call(fake, "POST", "/v1/embeddings", {"model": "embed", "input": ids}, max_calls_per_request=8)
    assert status == 200 and len(fake.requests) == 300 and fake.most_in_flight <= 8, fake.most_in_flight
    for row, one in zip(body["data"], ids):
        assert np.allclose(row["embedding"], _vector(" ".join(map(str, one))), atol=1e-7)


def test_the_output_estimate_caps_each_text_by_its_bytes_the_model_limit_and_truncation():
    from triton_pooling.batching import EncodeOptions
    from triton_pooling.prompts import NormalizedPrompt
    from triton_pooling_server.gateway.triton.output_budget import estimated_bytes

    token_embed = ModelInfo("t", PoolingTask.TOKEN_EMBED, 4, True, MODEL.inputs)
    prompts = [NormalizedPrompt("abc", text="abc"), NormalizedPrompt([1] * 50, token_ids=(1,) * 50)]
    assert estimated_bytes(token_embed, prompts, EncodeOptions(), None, None) is None, "width not known yet"
    assert estimated_bytes(token_embed, prompts, EncodeOptions(), None, 8) == ((7 + 50) * 8 * 4, 57)
    assert estimated_bytes(token_embed, prompts, EncodeOptions(), 20, 8)[1] == 7 + 20
    assert estimated_bytes(token_embed, prompts, EncodeOptions(truncate_prompt_tokens=5), None, 8)[1] == 5 + 5
    assert estimated_bytes(token_embed, prompts, EncodeOptions(dimensions=2), None, 8)[0] == 57 * 2 * 4
    assert estimated_bytes(MODEL, prompts, EncodeOptions(), None, 384) == (2 * 384 * 4, 2)


def _containers(value) -> int:
    if isinstance(value, list):
        return 1 + sum(map(_containers, value))
    if isinstance(value, dict):
        return 1 + sum(map(_containers, value.values()))
    return 0


tricky_text = st.text(alphabet=st.sampled_from('ab{}[]"\\\n\u00e9\u2028'), max_size=12)


@settings(max_examples=300, deadline=None)
@given(value=st.recursive(st.one_of(tricky_text, st.integers(), st.none()),
                          lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(tricky_text, inner, max_size=3)), max_leaves=40),
       ascii_only=st.booleans())
def test_the_structure_check_counts_objects_and_arrays_outside_strings_exactly(value, ascii_only):
    from unittest import mock

    from triton_pooling_server.gateway.protocol import structure

    raw = json.dumps({"input": value}, ensure_ascii=ascii_only).encode()
    count = 1 + _containers(value)
    with mock.patch.object(structure, "PER_INPUT", 1), mock.patch.object(structure, "SLACK", 0):  # limit = max_inputs
        structure.check_structure(raw, count)
        with pytest.raises(GatewayError, match=f"holds {count} JSON objects and arrays"):
            structure.check_structure(raw, count - 1)


def test_a_body_of_millions_of_empty_objects_is_refused_unparsed_and_brackets_in_texts_are_not_counted():
    from triton_pooling_server.gateway.protocol.structure import check_structure

    with pytest.raises(GatewayError, match=r"holds 100002 JSON objects and arrays; .* at most 9216"):
        check_structure(orjson.dumps({"input": [{}] * 100_000}), 2048)
    check_structure(orjson.dumps({"input": ['{"a": [1, {"b": "\\"]"}]} ' * 5000]}), 2048)  # one text, full of brackets
