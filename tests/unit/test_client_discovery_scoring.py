"""Discovery, task verification messages and score rules (pure: no server)."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling.discovery import ModelCatalog, ModelInfo, model_info, ready_model_names
from triton_pooling.errors import InvalidRequestError, ModelNotFoundError, TaskNotServedError, UnknownTaskError
from triton_pooling.scoring import cosine, maxsim, pair_up, score_plan
from triton_pooling_contract.tasks import PoolingTask
from triton_pooling.transport import config_dict, index_rows

HTTP_CONFIG = {"name": "rm", "max_batch_size": 8, "input": [{"name": "TEXT"}],
               "parameters": {"pooling_task": {"string_value": "classify"}, "use_activation": {"string_value": "false"}}}


def catalog(**tasks) -> ModelCatalog:
    return ModelCatalog(ModelInfo(name, PoolingTask(task), 8, True, frozenset()) for name, task in tasks.items())


def test_model_info_from_http_and_grpc_json():
    for raw in (HTTP_CONFIG, {"config": HTTP_CONFIG}):
        info = model_info(config_dict(raw))
        assert info == ModelInfo("rm", PoolingTask.SEQ_CLASSIFY, 8, False, frozenset({"TEXT"}))
    assert model_info({"name": "other", "parameters": {}}) is None  # not a pooling model
    rows = [{"name": "b", "state": "READY"}, {"name": "a", "state": "UNAVAILABLE"}, {"name": "c"}]
    assert ready_model_names(index_rows({"models": rows})) == ready_model_names(rows) == ["b", "c"]


def test_resolve_by_task_prefers_model_named_like_the_task():
    cat = catalog(embed="embed", e5="embed", ner="token_classify")
    assert cat.resolve("embed", None).name == "embed"
    assert cat.resolve("token_classify", None).name == "ner"
    assert cat.resolve(None, "e5").task is PoolingTask.EMBED


def test_verification_messages():
    cat = catalog(embed="embed", cross="seq_classify")
    with pytest.raises(UnknownTaskError, match="valid tasks: 'embed', 'token_embed', 'seq_classify', 'token_classify', 'classify'"):
        cat.resolve("embedding", None)
    with pytest.raises(TaskNotServedError, match="'token_classify': no model on the server serves it; this server "
                                                  r"serves 'embed' \(models: embed\); 'seq_classify' \(models: cross\)"):
        cat.resolve("token_classify", None)
    with pytest.raises(TaskNotServedError, match="model 'cross' serves 'seq_classify', not 'embed'.*model serving 'embed': embed"):
        cat.resolve("embed", "cross")
    assert cat.resolve("classify", "cross").name == "cross"  # vLLM's alias
    with pytest.raises(ModelNotFoundError, match="model 'nope' is not a pooling model on this server; this server serves"):
        cat.resolve("embed", "nope")
    with pytest.raises(TaskNotServedError, match=r"several models serve 'embed' \(a, b\); choose one with model="):
        catalog(a="embed", b="embed").resolve("embed", None)


def test_pairing_rules():
    assert pair_up("q", ["a", "b"]) == [("q", "a"), ("q", "b")]
    assert pair_up(["q1", "q2"], ["a", "b"]) == [("q1", "a"), ("q2", "b")]
    with pytest.raises(InvalidRequestError, match="1 query and N documents, or N queries and N documents.*got 2 queries and 3"):
        pair_up(["q1", "q2"], ["a", "b", "c"])
    with pytest.raises(InvalidRequestError, match="serves 'token_classify'"):
        score_plan(ModelInfo("ner", PoolingTask.TOKEN_CLASSIFY, 8, True, frozenset()), "q", ["a"])


def test_similarities():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    assert cosine(a, b) == pytest.approx(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    q, d = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    brute = sum(max(float(qi @ dj) for dj in d) for qi in q)
    assert maxsim(q, d) == pytest.approx(brute)
