"""One task per model, by structure: misconfigured models refuse to load and say why."""

from __future__ import annotations

import pytest
import tritonclient.http as httpclient

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_server.builder.config_text import ModelSpec, render_model_py
from triton_pooling_contract.tasks import PoolingTask

from support.triton import running_triton, write_model

pytestmark = pytest.mark.integration


def _broken_repository(repo, checkpoints):
    bert_embed = str(checkpoints["bert-embed"])
    write_model(repo, ModelSpec("good", ModelDefinition(PoolingTask.EMBED, bert_embed)))
    # config names embed, model.py serves seq_classify
    folder = write_model(repo, ModelSpec("wrong_task", ModelDefinition(PoolingTask.EMBED, bert_embed)))
    (folder / "1" / "model.py").write_text(render_model_py(PoolingTask.SEQ_CLASSIFY))
    # config names no task
    folder = write_model(repo, ModelSpec("no_task", ModelDefinition(PoolingTask.EMBED, bert_embed)))
    text = (folder / "config.pbtxt").read_text()
    (folder / "config.pbtxt").write_text("\n".join(l for l in text.splitlines() if '"pooling_task"' not in l))
    # config names several tasks
    folder = write_model(repo, ModelSpec("two_tasks", ModelDefinition(PoolingTask.EMBED, bert_embed)))
    text = (folder / "config.pbtxt").read_text()
    (folder / "config.pbtxt").write_text(text.replace('string_value: "embed"', 'string_value: "embed,token_embed"'))
    # a sequence classifier asked to embed
    write_model(repo, ModelSpec("classifier_as_embed", ModelDefinition(PoolingTask.EMBED, str(checkpoints["bert-seq-3"]))))
    # an unknown pooling type for the task
    folder = write_model(repo, ModelSpec("bad_pooling", ModelDefinition(PoolingTask.EMBED, bert_embed)))
    with open(folder / "config.pbtxt", "a") as config:
        config.write('parameters { key: "pooling_type" value { string_value: "STEP" } }\n')


EXPECTED_REASONS = {
    "wrong_task": ["serves task 'seq_classify'", "names 'embed'", "one model serves one task"],
    "no_task": ["names no task", "pooling_task", "embed, token_embed, seq_classify, token_classify"],
    "two_tasks": ["names 2 tasks", "exactly one"],
    "classifier_as_embed": ["parameter 'pooling_task' is 'embed'", "cannot serve it; supported tasks: 'seq_classify'"],
    "bad_pooling": ["'pooling_type' is 'STEP'", "allows MEAN, CLS, LAST"],
}


def test_misconfigured_models_refuse_to_load_with_reasons(tmp_path, checkpoints):
    repo = tmp_path / "repo"
    _broken_repository(repo, checkpoints)
    with running_triton(repo, tmp_path / "triton.log",
                        extra_args=("--exit-on-error=false", "--strict-readiness=false")) as server:
        client = httpclient.InferenceServerClient(server.options.http_url)
        index = {m["name"]: m for m in client.get_model_repository_index(headers=server.options.admin_headers)}
        assert index["good"]["state"] == "READY"
        for name, needles in EXPECTED_REASONS.items():
            assert index[name]["state"] == "UNAVAILABLE", index[name]
            for needle in needles:
                assert needle in index[name]["reason"], (name, index[name]["reason"])
