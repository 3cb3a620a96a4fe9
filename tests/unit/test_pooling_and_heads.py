import pytest
import torch

from triton_pooling_contract.tasks import PoolingType
from triton_pooling_backend.heads import Activation, activate, classifier_activation, embed_rows
from triton_pooling_backend.pooling import last_index, pool_sequences, pool_tokens

torch.manual_seed(0)
STATES = torch.randn(1, 3, 4)  # one text of 3 tokens


def _padded(left: bool):
    """The same 3-token text padded to 5 on the left or right."""
    hidden = torch.randn(1, 5, 4)
    mask = torch.tensor([[0, 0, 1, 1, 1]] if left else [[1, 1, 1, 0, 0]])
    positions = slice(2, 5) if left else slice(0, 3)
    hidden[0, positions] = STATES[0]
    return hidden, mask


@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("pooling,expected", [
    (PoolingType.LAST, STATES[0, -1]), (PoolingType.CLS, STATES[0, 0]), (PoolingType.MEAN, STATES[0].mean(0)),
])
def test_sequence_pooling_is_right_for_left_and_right_padding(left, pooling, expected):
    hidden, mask = _padded(left)
    assert torch.allclose(pool_sequences(hidden, mask, pooling)[0], expected, atol=1e-6)


def test_last_index_mixed_padding_in_one_batch():
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]])
    assert last_index(mask).tolist() == [1, 3, 3]


def test_token_pooling_all_and_step():
    hidden, mask = _padded(left=False)
    ids = torch.tensor([[5, 9, 5, 0, 5]])  # id 5 at a padded position must not count
    assert torch.equal(pool_tokens(hidden, mask, ids, PoolingType.ALL, None)[0], STATES[0])
    steps = pool_tokens(hidden, mask, ids, PoolingType.STEP, 5)[0]
    assert torch.equal(steps, STATES[0, [0, 2]])


@pytest.mark.parametrize("problem_type,labels,activation", [
    (None, 1, Activation.SIGMOID), (None, 3, Activation.SOFTMAX), ("regression", 1, Activation.NONE),
    ("multi_label_classification", 4, Activation.SIGMOID), ("single_label_classification", 1, Activation.SOFTMAX),
])
def test_classifier_activation_rules(problem_type, labels, activation):
    assert classifier_activation(problem_type, labels) is activation


def test_activate_and_embed_rows():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(activate(x, Activation.SOFTMAX).sum(-1), torch.ones(1))
    assert torch.equal(activate(x, Activation.NONE), x)
    rows = embed_rows(torch.tensor([[3.0, 4.0, 12.0]]), dimensions=2, normalize=True)
    assert torch.allclose(rows, torch.tensor([[0.6, 0.8]]))
    assert torch.equal(embed_rows(x, None, False), x)
