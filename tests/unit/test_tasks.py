import pytest

from triton_pooling_contract.tasks import (
    PoolingTask, PoolingType, UnknownTaskError, default_pooling, default_task, parse_task, supported_tasks,
)


def test_parse_task_accepts_names_and_vllm_alias():
    assert parse_task("embed") is PoolingTask.EMBED
    assert parse_task("classify") is PoolingTask.SEQ_CLASSIFY
    assert parse_task(PoolingTask.TOKEN_EMBED) is PoolingTask.TOKEN_EMBED


def test_unknown_task_lists_valid_names():
    with pytest.raises(UnknownTaskError) as e:
        parse_task("reward")
    assert "'reward'" in str(e.value)
    for name in ("embed", "token_embed", "seq_classify", "token_classify", "classify"):
        assert repr(name) in str(e.value)


@pytest.mark.parametrize("archs,task", [
    (["BertForTokenClassification"], PoolingTask.TOKEN_CLASSIFY),
    (["Qwen2ForSequenceClassification"], PoolingTask.SEQ_CLASSIFY),
    (["BertModel"], PoolingTask.EMBED),
    ([], PoolingTask.EMBED),
])
def test_default_task_follows_vllm(archs, task):
    assert default_task(archs) is task
    assert task in supported_tasks(archs)


def test_default_pooling_by_architecture():
    assert default_pooling(PoolingTask.EMBED, ["BertModel"]) is PoolingType.MEAN
    assert default_pooling(PoolingTask.EMBED, ["Qwen3Model"]) is PoolingType.LAST
    assert default_pooling(PoolingTask.SEQ_CLASSIFY, ["LlamaForSequenceClassification"]) is PoolingType.LAST
    assert default_pooling(PoolingTask.SEQ_CLASSIFY, ["BertForSequenceClassification"]) is PoolingType.NATIVE
    assert default_pooling(PoolingTask.TOKEN_CLASSIFY, ["BertForTokenClassification"]) is PoolingType.ALL
