from pathlib import Path

import pytest

from triton_pooling_server.build.defaults import DEFAULT_MODELS
from triton_pooling_server.build.model_config import ModelSpec, render_config, render_model_py
from triton_pooling_contract.tasks import PoolingTask

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", DEFAULT_MODELS, ids=lambda s: s.name)
def test_default_repository_is_what_the_renderer_writes(spec):
    folder = ROOT / "model_repository" / spec.name
    assert (folder / "config.pbtxt").read_text() == render_config(spec)
    assert (folder / "1" / "model.py").read_text() == render_model_py(spec.task)


def test_config_has_contract_essentials():
    text = render_config(ModelSpec("m", PoolingTask.TOKEN_EMBED, "/ckpt", {"pooling_type": "ALL"}))
    for needle in ['name: "m"', "max_batch_size: 64", "dynamic_batching", 'name: "TOKEN_EMBEDDINGS"',
                   "dims: [ -1, -1 ]", 'key: "pooling_task" value { string_value: "token_embed" }',
                   'name: "INPUT_IDS" data_type: TYPE_INT64 dims: [ -1 ] optional: true allow_ragged_batch: true']:
        assert needle in text


def test_preferred_batch_sizes_are_rendered_into_the_batcher():
    text = render_config(ModelSpec("m", PoolingTask.EMBED, "/ckpt", preferred_batch_sizes=(8, 16)))
    assert "dynamic_batching {\n  preferred_batch_size: [ 8, 16 ]\n  max_queue_delay_microseconds: 2000\n" in text
    assert "preferred_batch_size" not in render_config(ModelSpec("m", PoolingTask.EMBED, "/ckpt"))
