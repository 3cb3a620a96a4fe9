"""A classifier's class names travel from its checkpoint through `build` into the config, where the gateway reads them."""

from __future__ import annotations

import json
import shutil

from support.models import json_model_config
from triton_pooling_backend.definition_reader import read_definition
from triton_pooling_server.builder.config_text import render_config
from triton_pooling_server.builder import BuildRequest, inspect_checkpoint, resolve
from triton_pooling_server.gateway.triton.labels import labels_of


def test_build_writes_id2label_and_the_gateway_and_backend_read_it(checkpoints, tmp_path):
    checkpoint = shutil.copytree(checkpoints["bert-seq-3"], tmp_path / "sentiment")
    config = json.loads((checkpoint / "config.json").read_text())
    config["id2label"] = {"0": "negative", "1": "neutral", "2": "positive"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    model = resolve(BuildRequest(checkpoint), inspect_checkpoint(checkpoint))
    # the gateway and the backend read the config Triton serves: the JSON form of what build renders
    config = json_model_config(render_config(model.spec))
    assert labels_of({"name": "sentiment", **config}) == ("negative", "neutral", "positive")
    definition = read_definition(config, tmp_path)
    assert (definition.task.value, definition.id2label) == ("seq_classify", ("negative", "neutral", "positive"))


def test_embedders_get_no_labels(checkpoints):
    model = resolve(BuildRequest(checkpoints["bert-embed"]), inspect_checkpoint(checkpoints["bert-embed"]))
    assert "id2label" not in model.definition.to_parameters()
