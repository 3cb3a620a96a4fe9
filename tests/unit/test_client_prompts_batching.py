"""Prompt normalization and request planning (pure: no server)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from triton_pooling.batching import EncodeOptions, plan_requests
from triton_pooling.discovery import ModelInfo
from triton_pooling.errors import InvalidRequestError
from triton_pooling.prompts import normalize_prompts
from triton_pooling_contract.tasks import OPTION_UNSET, PoolingTask, Tensor

ALL_INPUTS = frozenset({Tensor.TEXT, Tensor.INPUT_IDS, Tensor.TEXT_PAIR, Tensor.TRUNCATE_PROMPT_TOKENS,
                        Tensor.DIMENSIONS, Tensor.USE_ACTIVATION})


def model(task=PoolingTask.EMBED, max_batch_size=4, use_activation=True, inputs=ALL_INPUTS):
    return ModelInfo("m", task, max_batch_size, use_activation, inputs)


def test_prompt_shapes():
    assert [p.text for p in normalize_prompts("hi")] == ["hi"]
    assert [p.token_ids for p in normalize_prompts([1, 2, 3])] == [(1, 2, 3)]
    assert [p.token_ids for p in normalize_prompts([[1, 2], [3]])] == [(1, 2), (3,)]
    assert [p.token_ids for p in normalize_prompts(np.array([[5, 6]]))] == [(5, 6)]
    pair = normalize_prompts([("q", "d")])[0]
    assert (pair.text, pair.text_pair) == ("q", "d")
    dicts = normalize_prompts([{"prompt": "a"}, {"prompt_token_ids": [9]}])
    assert (dicts[0].text, dicts[1].token_ids) == ("a", (9,))
    assert normalize_prompts([]) == []


@pytest.mark.parametrize("prompts, message", [
    (["ok", ""], "prompts[1] is an empty string"),
    (["ok", 3.5], "prompts[1] must be"),
    ([[1, -2]], "prompts[0][1] is -2"),
    ([("q", 4)], "prompts[0] must be"),
    ([{"text": "a"}], "without 'prompt' or 'prompt_token_ids'"),
    (42, "prompts must be"),
])
def test_bad_prompts_name_the_prompt(prompts, message):
    with pytest.raises(InvalidRequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        normalize_prompts(prompts)


def test_prompt_rules_come_from_the_stdlib_contract():
    from triton_pooling_contract.prompts import PromptError

    with pytest.raises(InvalidRequestError, match=r"prompts\[0\]\[1\] is -2; token ids must be >= 0") as info:
        normalize_prompts([[1, -2]])
    assert isinstance(info.value.__cause__, PromptError)  # the shared rule, re-raised as the client's error
    code = ("import sys, triton_pooling_contract.prompts; "
            "print(sorted(m for m in ('numpy', 'tritonclient') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_plan_groups_ids_by_length_chunks_and_sends_every_option():
    prompts = normalize_prompts([[1, 2], "a", [3, 4, 5], [6, 7], "b", ("q", "d")] + ["t"] * 5)
    plan = plan_requests(prompts, model(max_batch_size=4), EncodeOptions())
    groups = [r.indices for r in plan.requests]
    # ids of one length share a request; texts are cut at max_batch_size; pairs travel apart
    assert sorted(groups) == [(0, 3), (1, 4, 6, 7), (2,), (5,), (8, 9, 10)]
    for request in plan.requests:
        names = [name for name, _, _ in request.tensors]
        assert {Tensor.TRUNCATE_PROMPT_TOKENS, Tensor.DIMENSIONS, Tensor.USE_ACTIVATION} <= set(names)
        tensors = {name: array for name, array, _ in request.tensors}
        assert all(a.shape[0] == len(request.indices) for a in tensors.values())
        assert (tensors[Tensor.DIMENSIONS] == OPTION_UNSET).all() and tensors[Tensor.USE_ACTIVATION].all()
    ids = next(r for r in plan.requests if r.indices == (0, 3))
    assert dict((n, a) for n, a, _ in ids.tensors)[Tensor.INPUT_IDS].tolist() == [[1, 2], [6, 7]]


def test_plan_uses_model_activation_default_and_request_size_cap():
    plan = plan_requests(normalize_prompts(["a"] * 5), model(PoolingTask.SEQ_CLASSIFY, 64, use_activation=False),
                         EncodeOptions(truncate_prompt_tokens=7), max_request_size=2)
    assert [len(r.indices) for r in plan.requests] == [2, 2, 1]
    tensors = {n: a for n, a, _ in plan.requests[0].tensors}
    assert not tensors[Tensor.USE_ACTIVATION].any() and (tensors[Tensor.TRUNCATE_PROMPT_TOKENS] == 7).all()


def test_plan_refuses_dimensions_for_classifiers_and_bad_values():
    with pytest.raises(InvalidRequestError, match="dimensions applies to embed and token_embed"):
        plan_requests(normalize_prompts("a"), model(PoolingTask.SEQ_CLASSIFY), EncodeOptions(dimensions=8))
    with pytest.raises(InvalidRequestError, match="truncate_prompt_tokens must be a positive int"):
        plan_requests(normalize_prompts("a"), model(), EncodeOptions(truncate_prompt_tokens=0))
    with pytest.raises(InvalidRequestError, match="has no DIMENSIONS input"):
        plan_requests(normalize_prompts("a"), model(inputs=ALL_INPUTS - {Tensor.DIMENSIONS}), EncodeOptions(dimensions=8))


def test_assemble_restores_order_and_unpads_token_rows():
    prompts = normalize_prompts([[1, 2, 3], "x", [4, 5, 6]])
    plan = plan_requests(prompts, model(PoolingTask.TOKEN_EMBED), EncodeOptions())
    responses = []
    for request in plan.requests:  # fake server: row i of prompt p is p's index, padded to 4 rows
        data = np.zeros((len(request.indices), 4, 2), dtype=np.float32)
        counts = np.array([[2 + i] for i in request.indices], dtype=np.int32)
        for row, index in enumerate(request.indices):
            data[row, : counts[row, 0]] = index
        responses.append({Tensor.TOKEN_EMBEDDINGS: data, Tensor.NUM_TOKENS: counts})
    outputs = plan.assemble(list(responses))
    assert [o.request_id for o in outputs] == ["0", "1", "2"]
    assert [o.outputs.data.shape for o in outputs] == [(2, 2), (3, 2), (4, 2)]
    assert [float(o.outputs.data.mean()) for o in outputs] == [0.0, 1.0, 2.0]
    assert outputs[0].prompt_token_ids == [1, 2, 3] and outputs[1].prompt_token_ids is None


def test_progress_bar_only_when_asked_or_large():
    from triton_pooling.progress import AUTO_PROGRESS_MIN_PROMPTS, progress_bar

    assert type(progress_bar(None, 10, "x")).__name__ == "_NoBar"
    assert type(progress_bar(False, 10**6, "x")).__name__ == "_NoBar"
    bar = progress_bar(None, AUTO_PROGRESS_MIN_PROMPTS, "x")
    assert bar.total == AUTO_PROGRESS_MIN_PROMPTS
    bar.close()
