import numpy as np
import pytest

from triton_pooling_contract.tasks import PoolingTask, Tensor
from triton_pooling_backend.errors import InvalidInputError
from triton_pooling_backend.request_parsing import InputLimits, parse_request

EMBED = InputLimits(PoolingTask.EMBED, max_tokens=256, hidden_size=384, vocab_size=1000)
CLASSIFY = InputLimits(PoolingTask.SEQ_CLASSIFY, max_tokens=256, hidden_size=32, vocab_size=1000)


def col(*values, dtype=object):
    return np.array([[v] for v in values], dtype=dtype)


def test_text_with_options():
    items = parse_request({Tensor.TEXT: col(b"a", b"b"), Tensor.DIMENSIONS: col(8, 8, dtype=np.int32),
                           Tensor.TRUNCATE_PROMPT_TOKENS: col(-1, 4, dtype=np.int32),
                           Tensor.USE_ACTIVATION: col(True, False, dtype=bool)}, EMBED)
    assert [i.text for i in items] == ["a", "b"]
    assert [i.dimensions for i in items] == [8, 8]
    assert [i.truncate for i in items] == [None, 4]
    assert [i.use_activation for i in items] == [True, False]


def test_input_ids_rows():
    items = parse_request({Tensor.INPUT_IDS: np.array([[1, 2, 3], [4, 5, 6]])}, EMBED)
    assert items[1].input_ids == (4, 5, 6) and items[1].text is None


@pytest.mark.parametrize("tensors,needle", [
    ({}, "TEXT is required"),
    ({Tensor.TEXT: col(b"")}, "TEXT[0] is empty"),
    ({Tensor.TEXT: col(b"ok", b"\xc3")}, "TEXT[1] is not valid UTF-8"),
    ({Tensor.TEXT: col(b"a"), Tensor.INPUT_IDS: np.array([[1]])}, "either TEXT or INPUT_IDS"),
    ({Tensor.INPUT_IDS: np.array([[1, 1000]])}, "INPUT_IDS[0][1] is 1000; token ids must be between 0 and 999"),
    ({Tensor.INPUT_IDS: np.array([[-1]])}, "INPUT_IDS[0][0] is -1"),
    ({Tensor.INPUT_IDS: np.zeros((1, 0), dtype=np.int64)}, "INPUT_IDS rows are empty"),
    ({Tensor.TEXT: col(b"a"), Tensor.DIMENSIONS: col(385, dtype=np.int32)}, "between 1 and 384 for this model"),
    ({Tensor.TEXT: col(b"a"), Tensor.DIMENSIONS: col(-2, dtype=np.int32)}, "got -2"),
    ({Tensor.TEXT: col(b"a", b"b"), Tensor.DIMENSIONS: col(8, 9, dtype=np.int32)}, "same for every text"),
    ({Tensor.TEXT: col(b"a"), Tensor.TRUNCATE_PROMPT_TOKENS: col(0, dtype=np.int32)}, "TRUNCATE_PROMPT_TOKENS must be"),
    ({Tensor.TEXT: col(b"a"), Tensor.TEXT_PAIR: col(b"")}, "TEXT_PAIR[0] is empty"),
    ({Tensor.TEXT: col(b"a", b"b"), Tensor.TEXT_PAIR: col(b"x")}, "TEXT_PAIR has 1 rows; the request has 2"),
])
def test_invalid_requests(tensors, needle):
    with pytest.raises(InvalidInputError) as e:
        parse_request(tensors, EMBED)
    assert needle in str(e.value)


def test_dimensions_refused_on_classifier_but_minus_one_allowed():
    with pytest.raises(InvalidInputError, match="embed and token_embed models only"):
        parse_request({Tensor.TEXT: col(b"a"), Tensor.DIMENSIONS: col(4, dtype=np.int32)}, CLASSIFY)
    assert parse_request({Tensor.TEXT: col(b"a"), Tensor.DIMENSIONS: col(-1, dtype=np.int32)}, CLASSIFY)[0].dimensions is None


def _dims(limits, value):
    return parse_request({"TEXT": np.array([[b"hello"]], dtype=object), "DIMENSIONS": np.array([[value]], dtype=np.int32)},
                         limits)[0].dimensions


def test_dimensions_only_for_models_declared_matryoshka():
    import dataclasses

    plain = dataclasses.replace(EMBED, matryoshka_dimensions=None)
    with pytest.raises(InvalidInputError, match=r"DIMENSIONS is 64, but this model is not declared Matryoshka.*send -1 "
                                                r"for the full 384, or build it with --matryoshka-dimensions"):
        _dims(plain, 64)
    assert _dims(plain, 384) == 384 and _dims(plain, -1) is None  # the full size is always fine
    listed = dataclasses.replace(EMBED, matryoshka_dimensions=(64, 128))
    assert _dims(listed, 128) == 128
    with pytest.raises(InvalidInputError, match=r"DIMENSIONS must be one of 64, 128 or 384 for this model; got 100"):
        _dims(listed, 100)
    assert _dims(EMBED, 100) == 100  # declared for every size


def test_input_ids_longer_than_the_model_takes_are_refused_before_conversion():
    ids = np.zeros((2, 257), dtype=np.int64)
    with pytest.raises(InvalidInputError, match=r"INPUT_IDS rows hold 257 ids; this model takes at most 256 per prompt"):
        parse_request({"INPUT_IDS": ids}, EMBED)
    assert len(parse_request({"INPUT_IDS": ids[:, :256]}, EMBED)) == 2
