"""A text's result alone equals its result inside a batch of texts of other lengths."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from triton_pooling_contract.tasks import OUTPUT_TENSOR, Tensor

from support.raw import infer

pytestmark = pytest.mark.integration

TARGET = "A text of middling length whose result must not depend on its batch-mates."
OTHERS = ["x", "a rather longer text " * 12, "two words", "medium sized sentence here " * 3]
MODELS = ["embed", "token_embed", "seq_classify", "token_classify", "bert_classifier", "bert_ner", "qwen2_reward"]


def _rows(out: dict, model_output: str, i: int) -> np.ndarray:
    value = out[model_output][i]
    if value.ndim == 2:  # token-level: drop padding rows
        value = value[: out[Tensor.NUM_TOKENS][i, 0]]
    return value


@pytest.mark.parametrize("model", MODELS)
def test_result_alone_equals_result_in_mixed_batch(triton_server, model):
    name = OUTPUT_TENSOR[_task(triton_server, model)]
    alone = _rows(infer("grpc", triton_server, model, [TARGET]), name, 0)
    for position in (0, 2, 4):
        batch = OTHERS[:position] + [TARGET] + OTHERS[position:]
        inside = _rows(infer("grpc", triton_server, model, batch), name, position)
        assert inside.shape == alone.shape
        assert np.max(np.abs(inside - alone), initial=0.0) <= 1e-5


def test_concurrent_requests_batched_by_triton_keep_their_own_results(triton_server):
    texts = [OTHERS[i % len(OTHERS)] + f" #{i}" for i in range(24)]
    alone = [infer("grpc", triton_server, "embed", [t])[Tensor.EMBEDDING][0] for t in texts]
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda t: infer("grpc", triton_server, "embed", [t])[Tensor.EMBEDDING][0], texts))
    for a, b in zip(alone, together):
        assert np.max(np.abs(a - b)) <= 1e-5


def _task(server, model):
    from support.raw import client
    from triton_pooling_contract.tasks import TASK_PARAMETER, parse_task

    config = client("http", server).get_model_config(model)
    return parse_task(config["parameters"][TASK_PARAMETER]["string_value"])
