"""Pooling and heads in numpy (what the lean stubs run), checked against hand-computed rows and torch's own ops."""

import numpy as np
import pytest

from triton_pooling_contract.tasks import PoolingType
from triton_pooling_backend.heads import activate, embed_rows
from triton_pooling_contract.parameters import Activation
from triton_pooling_contract.rules import classifier_activation
from triton_pooling_backend.pooling import last_index, pool_sequences, pool_tokens

STATES = np.random.default_rng(0).standard_normal((1, 3, 4)).astype(np.float32)  # one text of 3 tokens


def _padded(left: bool):
    """The same 3-token text padded to 5 on the left or right."""
    hidden = np.random.default_rng(1).standard_normal((1, 5, 4)).astype(np.float32)
    mask = np.array([[0, 0, 1, 1, 1]] if left else [[1, 1, 1, 0, 0]])
    positions = slice(2, 5) if left else slice(0, 3)
    hidden[0, positions] = STATES[0]
    return hidden, mask


@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("pooling,expected", [
    (PoolingType.LAST, STATES[0, -1]), (PoolingType.CLS, STATES[0, 0]), (PoolingType.MEAN, STATES[0].mean(0)),
])
def test_sequence_pooling_is_right_for_left_and_right_padding(left, pooling, expected):
    hidden, mask = _padded(left)
    np.testing.assert_allclose(pool_sequences(hidden, mask, pooling)[0], expected, atol=1e-6)


def test_last_index_mixed_padding_in_one_batch():
    mask = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]])
    assert last_index(mask).tolist() == [1, 3, 3]


def test_token_pooling_all_and_step():
    hidden, mask = _padded(left=False)
    ids = np.array([[5, 9, 5, 0, 5]])  # id 5 at a padded position must not count
    np.testing.assert_array_equal(pool_tokens(hidden, mask, ids, PoolingType.ALL, None)[0], STATES[0])
    np.testing.assert_array_equal(pool_tokens(hidden, mask, ids, PoolingType.STEP, 5)[0], STATES[0, [0, 2]])


@pytest.mark.parametrize("problem_type,labels,activation", [
    (None, 1, Activation.SIGMOID), (None, 3, Activation.SOFTMAX), ("regression", 1, Activation.NONE),
    ("multi_label_classification", 4, Activation.SIGMOID), ("single_label_classification", 1, Activation.SOFTMAX),
])
def test_classifier_activation_rules(problem_type, labels, activation):
    assert classifier_activation(problem_type, labels) is activation


def test_activate_and_embed_rows():
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(activate(x, Activation.SOFTMAX).sum(-1), [1.0], atol=1e-6)
    np.testing.assert_array_equal(activate(x, Activation.NONE), x)
    np.testing.assert_allclose(embed_rows(np.array([[3.0, 4.0, 12.0]]), dimensions=2, normalize=True), [[0.6, 0.8]])
    np.testing.assert_array_equal(embed_rows(x, None, False), x)
    np.testing.assert_array_equal(embed_rows(np.zeros((1, 3)), None, True), np.zeros((1, 3)))  # no NaN for zeros


def test_heads_equal_torch_ops_within_float32_rounding():
    import torch

    rows = np.random.default_rng(2).standard_normal((6, 5)).astype(np.float32) * 8
    t = torch.from_numpy(rows)
    np.testing.assert_allclose(activate(rows, Activation.SOFTMAX), torch.softmax(t, -1).numpy(), atol=1e-7)
    np.testing.assert_allclose(activate(rows, Activation.SIGMOID), torch.sigmoid(t).numpy(), atol=1e-7)
    np.testing.assert_allclose(embed_rows(rows, None, True), torch.nn.functional.normalize(t, dim=-1).numpy(),
                               atol=1e-7)
