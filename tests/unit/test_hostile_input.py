"""Hostile input, property-based: random bytes, shapes, dtypes and option values.

The parser must either refuse a request with InvalidInputError or return exactly what the
request said; the service must answer every request of a batch on its own terms, so a hostile
batch-mate never changes (or breaks) a neighbour's answer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from triton_pooling_contract.tasks import EMBEDDING_TASKS, OPTION_UNSET, PoolingTask, Tensor

from triton_pooling_backend.errors import ErrorKind, InvalidInputError, PoolingError
from triton_pooling_backend.limits import RequestLimits
from triton_pooling_backend.request_parsing import InputLimits, parse_request

MAX_TOKENS, HIDDEN, VOCAB = 16, 8, 50
LIMITS = InputLimits(PoolingTask.EMBED, MAX_TOKENS, HIDDEN, VOCAB, RequestLimits(max_text_bytes=24, max_texts_per_request=3))
INPUT_NAMES = (Tensor.TEXT, Tensor.INPUT_IDS, Tensor.TEXT_PAIR, Tensor.TRUNCATE_PROMPT_TOKENS,
               Tensor.DIMENSIONS, Tensor.USE_ACTIVATION)
NUMERIC_DTYPES = (np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float32, np.float64, np.bool_)

utf8_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
text_bytes = st.one_of(utf8_texts.map(str.encode), st.binary(max_size=30))
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
scalars = st.one_of(st.binary(max_size=30), st.text(max_size=10), st.integers(), st.none(), st.floats())


@st.composite
def object_arrays(draw, shape=None):
    """What a BYTES tensor may hold — and what a broken client may put there instead."""
    shape = draw(shapes) if shape is None else shape
    count = int(np.prod(shape))
    items = draw(st.lists(st.one_of(st.binary(max_size=30), scalars), min_size=count, max_size=count))
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)


def any_array():
    numeric = st.sampled_from(NUMERIC_DTYPES).flatmap(lambda dt: hnp.arrays(dt, shapes))
    return st.one_of(object_arrays(), numeric)


@st.composite
def column(draw, batch: int, values):
    """A well-shaped [batch, 1] column (most of the time) of drawn values."""
    items = draw(st.lists(values, min_size=batch, max_size=batch))
    array = np.empty((batch, 1), dtype=object if any(isinstance(v, (bytes, str)) for v in items) else np.int64)
    array[:, 0] = items
    return array


@st.composite
def plausible_requests(draw):
    """Near-valid requests: right shapes, random contents and option values, so checks deep in
    the parser are reached, not just the first shape check."""
    batch = draw(st.one_of(st.integers(1, 3), st.integers(0, 4)))
    tensors = {}
    if draw(st.booleans()):
        tensors[Tensor.TEXT] = draw(column(batch, text_bytes))
        if draw(st.booleans()):
            tensors[Tensor.TEXT_PAIR] = draw(column(batch, text_bytes))
    else:
        width = draw(st.one_of(st.integers(1, 6), st.just(0)))
        tensors[Tensor.INPUT_IDS] = draw(hnp.arrays(np.int64, (batch, width), elements=st.integers(-1, VOCAB)))
    option = st.one_of(st.integers(-1, 20), st.integers(-2**40, 2**40))
    for name in (Tensor.TRUNCATE_PROMPT_TOKENS, Tensor.DIMENSIONS):
        if draw(st.booleans()):
            tensors[name] = draw(column(batch, option))
    if draw(st.booleans()):
        tensors[Tensor.USE_ACTIVATION] = draw(hnp.arrays(np.bool_, (batch, 1)))
    return tensors


@st.composite
def random_requests(draw):
    names = draw(st.lists(st.sampled_from(INPUT_NAMES), unique=True, max_size=len(INPUT_NAMES)))
    return {name: draw(any_array()) for name in names}


def _check_faithful(tensors, inputs, limits) -> None:
    """A parsed request says exactly what its tensors said, within every limit."""
    if limits.task not in EMBEDDING_TASKS:
        assert all(item.dimensions is None for item in inputs)
    assert 1 <= len(inputs) <= LIMITS.request.max_texts_per_request
    for row, item in enumerate(inputs):
        assert (item.text is None) != (item.input_ids is None)
        if item.text is not None:
            raw = np.asarray(tensors[Tensor.TEXT]).reshape(len(inputs), -1)[row, 0]
            assert item.text == (raw if isinstance(raw, str) else bytes(raw).decode("utf-8"))
            assert 0 < len(item.text.encode("utf-8", "surrogatepass")) <= LIMITS.request.max_text_bytes
        else:
            ids = np.atleast_2d(tensors[Tensor.INPUT_IDS])[row]
            assert item.input_ids == tuple(int(v) for v in ids)
            assert all(0 <= v < VOCAB for v in item.input_ids)
        for name, value, high in ((Tensor.TRUNCATE_PROMPT_TOKENS, item.truncate, MAX_TOKENS),
                                  (Tensor.DIMENSIONS, item.dimensions, HIDDEN)):
            if name not in tensors:
                assert value is None
                continue
            given_value = int(np.asarray(tensors[name]).reshape(len(inputs), -1)[row, 0])
            assert value == (None if given_value == OPTION_UNSET else given_value)
            assert value is None or 1 <= value <= high


def _parse_or_refuse(tensors, task=PoolingTask.EMBED):
    limits = dataclasses.replace(LIMITS, task=task)
    try:
        inputs = parse_request(tensors, limits)
    except InvalidInputError as e:
        assert str(e), "an error must say what is wrong"
        return None
    _check_faithful(tensors, inputs, limits)
    return inputs


@settings(max_examples=300, deadline=None)
@given(random_requests(), st.sampled_from(PoolingTask))
def test_random_tensors_are_parsed_faithfully_or_refused(tensors, task):
    _parse_or_refuse(tensors, task)


@settings(max_examples=300, deadline=None)
@given(plausible_requests(), st.sampled_from(PoolingTask))
def test_plausible_requests_are_parsed_faithfully_or_refused(tensors, task):
    _parse_or_refuse(tensors, task)


@settings(max_examples=100, deadline=None)
@given(st.integers(-2**63, 2**63 - 1))
def test_an_option_is_accepted_exactly_when_unset_or_in_range(value):
    tensors = {Tensor.TEXT: np.array([[b"hi"]], dtype=object), Tensor.DIMENSIONS: np.array([[value]], dtype=np.int64)}
    accepted = _parse_or_refuse(tensors) is not None
    assert accepted == (value == OPTION_UNSET or 1 <= value <= HIDDEN)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=60).filter(lambda b: b.isascii()), st.integers(1, 6))
def test_byte_and_count_limits_refuse_with_the_limit_named(text, count):
    tensors = {Tensor.TEXT: np.array([[text]] * count, dtype=object)}
    try:
        parse_request(tensors, LIMITS)
        refused = None
    except InvalidInputError as e:
        refused = str(e)
    if count > 3:
        assert refused and "max_texts_per_request" in refused and f"{count} texts" in refused
    elif len(text) > 24:
        assert refused and "max_text_bytes" in refused and f"{len(text)} bytes" in refused
    else:
        assert refused is None


# --- service level: a real (tiny, seeded) model in this process ---------------------------------

@pytest.fixture(scope="module")
def token_service(checkpoints):
    """A token_classify service: its padded [B, T, L] outputs are where a neighbour could leak in."""
    from triton_pooling_server.builder.artifact import load_service
    from triton_pooling_contract.definition import ModelDefinition

    return load_service(ModelDefinition(PoolingTask.TOKEN_CLASSIFY, str(checkpoints["bert-token-5"]), max_text_bytes=200,
                                        max_batch_size=8).located())


@st.composite
def service_requests(draw):
    """A good request, a plausible one or a random one."""
    kind = draw(st.sampled_from(["good", "plausible", "random"]))
    if kind == "good":
        batch = draw(st.integers(1, 3))
        texts = draw(st.lists(utf8_texts, min_size=batch, max_size=batch))
        tensors = {Tensor.TEXT: np.array([[t.encode()] for t in texts], dtype=object)}
        if draw(st.booleans()):
            tensors[Tensor.USE_ACTIVATION] = draw(hnp.arrays(np.bool_, (batch, 1)))
        if draw(st.booleans()):
            tensors[Tensor.TRUNCATE_PROMPT_TOKENS] = draw(column(batch, st.integers(1, 12)))
        return tensors
    return draw(plausible_requests() if kind == "plausible" else random_requests())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(service_requests(), min_size=2, max_size=5))
def test_every_request_of_a_hostile_batch_gets_its_own_answer(token_service, requests):
    answers = token_service.handle(requests)
    assert len(answers) == len(requests)
    for tensors, answer in zip(requests, answers):
        if isinstance(answer, PoolingError):
            assert answer.kind is not ErrorKind.INTERNAL, f"internal error on hostile input: {answer}"
            continue
        (alone,) = token_service.handle([tensors])
        assert not isinstance(alone, PoolingError), "accepted in a batch, refused alone"
        assert alone.keys() == answer.keys()
        counts = alone[Tensor.NUM_TOKENS][:, 0]
        np.testing.assert_array_equal(answer[Tensor.NUM_TOKENS], alone[Tensor.NUM_TOKENS])
        for row, n in enumerate(counts):
            np.testing.assert_allclose(answer[Tensor.TOKEN_SCORES][row, :n], alone[Tensor.TOKEN_SCORES][row, :n],
                                       atol=1e-5, rtol=0)


def test_an_engine_failure_fails_only_the_request_that_caused_it():
    """The batch fails inside the engine: each request is retried alone, and only the culprit hears INTERNAL."""
    from triton_pooling_backend.errors import ErrorKind
    from triton_pooling_backend.triton_model import answer_each

    class Service:
        def handle(self, batch):
            if any(t.get("poison") for t in batch):
                raise RuntimeError("[ONNXRuntimeError] INVALID_ARGUMENT: out-of-range position")
            return [{"ok": t["n"]} for t in batch]

    answers = answer_each(Service(), [{"n": 1}, {"n": 2, "poison": True}, {"n": 3}])
    assert answers[0] == {"ok": 1} and answers[2] == {"ok": 3}
    assert answers[1].kind is ErrorKind.INTERNAL and "out-of-range position" in str(answers[1])
