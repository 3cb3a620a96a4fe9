"""A classifier's class names travel from its checkpoint through `build` into the config, where the gateway reads them."""

from __future__ import annotations

import json
import shutil

from triton_pooling_backend.settings import ModelSettings
from triton_pooling_server.builder import BuildRequest, inspect_checkpoint, resolve
from triton_pooling_server.gateway.triton.labels import labels_of


def test_build_writes_id2label_and_the_gateway_and_backend_read_it(checkpoints, tmp_path):
    checkpoint = shutil.copytree(checkpoints["bert-seq-3"], tmp_path / "sentiment")
    config = json.loads((checkpoint / "config.json").read_text())
    config["id2label"] = {"0": "negative", "1": "neutral", "2": "positive"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    model = resolve(BuildRequest(checkpoint), inspect_checkpoint(checkpoint))
    params = {k: {"string_value": v} for k, v in {**model.spec.parameters, "pooling_task": "seq_classify",
                                                    "checkpoint": str(checkpoint)}.items()}
    assert labels_of({"name": "sentiment", "parameters": params}) == ("negative", "neutral", "positive")
    settings = ModelSettings.from_model_config({"max_batch_size": 8, "parameters": params}, tmp_path)
    assert settings.task.value == "seq_classify"  # the backend accepts the parameter


def test_embedders_get_no_labels(checkpoints):
    model = resolve(BuildRequest(checkpoints["bert-embed"]), inspect_checkpoint(checkpoints["bert-embed"]))
    assert "id2label" not in model.spec.parameters
