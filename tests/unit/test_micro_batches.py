"""The engine's forward passes: every text once, longest first, within the token budget, and on
CPU without padding a row by more than the slack."""

from hypothesis import given
from hypothesis import strategies as st

from triton_pooling_backend.engine import MAX_ROWS_PER_PASS, cpu_pad_slack, micro_batches


def test_near_equal_lengths_share_a_pass_and_others_do_not():
    lengths = [120, 11, 34, 12, 33, 11]
    chunks = micro_batches(lengths, max_tokens=4096, pad_slack=cpu_pad_slack)
    assert chunks == [[0], [2, 4], [3, 1, 5]]


def test_without_slack_only_the_budget_cuts():
    chunks = micro_batches([120, 11, 34, 12], max_tokens=512)
    assert chunks == [[0, 2, 3, 1]]  # 4 rows x 120 = 480 <= 512
    assert micro_batches([120, 11, 34, 12], max_tokens=300) == [[0, 2], [3, 1]]


@given(st.lists(st.integers(1, 600), min_size=1, max_size=300), st.integers(1, 8192), st.booleans())
def test_every_text_once_within_budget_and_slack(lengths, max_tokens, cpu):
    slack = cpu_pad_slack if cpu else None
    chunks = micro_batches(lengths, max_tokens, slack)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    for chunk in chunks:
        width = lengths[chunk[0]]
        assert all(lengths[i] <= width for i in chunk)
        assert len(chunk) <= MAX_ROWS_PER_PASS
        assert len(chunk) == 1 or len(chunk) * width <= max_tokens
        if cpu:
            assert all(width - lengths[i] <= slack(width) for i in chunk)


def test_width_buckets_round_passes_up_and_join_rows_of_one_bucket():
    from triton_pooling_backend.engine import padded_width

    assert [padded_width(w, 16) for w in (1, 16, 17, 33)] == [16, 16, 32, 48]
    assert padded_width(500, 16, limit=512) == 512 and padded_width(510, 16, limit=512) == 512
    assert padded_width(30, 16, limit=20) == 30  # never below the row itself
    lengths = [30, 18, 17, 16, 9, 40]
    assert micro_batches(lengths, 4096, cpu_pad_slack) == [[5], [0], [1, 2, 3], [4]]
    assert micro_batches(lengths, 4096, cpu_pad_slack, width_multiple=16) == [[5], [0, 1, 2], [3, 4]]
    assert micro_batches(lengths, 64, cpu_pad_slack, width_multiple=16) == [[5], [0, 1], [2], [3, 4]]  # 32-wide


@given(st.lists(st.integers(1, 600), min_size=1, max_size=200), st.integers(1, 8192), st.sampled_from([8, 16, 32]))
def test_buckets_keep_every_text_once_and_the_budget(lengths, max_tokens, multiple):
    from triton_pooling_backend.engine import padded_width

    chunks = micro_batches(lengths, max_tokens, cpu_pad_slack, multiple, limit=512)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    for chunk in chunks:
        width = padded_width(lengths[chunk[0]], multiple, 512)
        assert all(lengths[i] <= width for i in chunk)
        assert len(chunk) == 1 or len(chunk) * width <= max_tokens
