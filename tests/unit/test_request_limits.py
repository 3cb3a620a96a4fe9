"""Limit definition: safe defaults, config errors that name the parameter, the rendered queue policy."""

from __future__ import annotations

import pytest

from triton_pooling_server.builder.config_text import DEFAULT_MAX_QUEUE_SIZE, ModelSpec, render_config
from triton_pooling_contract.tasks import PoolingTask

from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.limits import DEFAULT_MAX_TEXT_BYTES, RequestLimits
from triton_pooling_backend.definition_reader import read_definition
from triton_pooling_contract.definition import ModelDefinition


def _settings(tmp_path, **parameters) -> ModelDefinition:
    (tmp_path / "config.json").write_text("{}")
    params = {"pooling_task": "embed", "checkpoint": str(tmp_path), **parameters}  # as config.pbtxt spells them
    return read_definition({"max_batch_size": 64, "parameters": {k: {"string_value": v} for k, v in params.items()}},
                           tmp_path)


def test_unset_limits_get_safe_defaults(tmp_path):
    definition = _settings(tmp_path)
    limits = RequestLimits.resolve(definition.max_text_bytes, definition.max_texts_per_request, definition.max_batch_size)
    assert limits == RequestLimits(DEFAULT_MAX_TEXT_BYTES, 64)


def test_configured_limits_are_read(tmp_path):
    definition = _settings(tmp_path, max_text_bytes="1000", max_texts_per_request="8")
    assert RequestLimits.resolve(definition.max_text_bytes, definition.max_texts_per_request, 64) == RequestLimits(1000, 8)


@pytest.mark.parametrize("key,value", [("max_text_bytes", "0"), ("max_texts_per_request", "lots")])
def test_a_bad_limit_names_the_parameter_and_value(tmp_path, key, value):
    with pytest.raises(ModelConfigError, match=f"parameter '{key}' is '?{value}'?"):
        _settings(tmp_path, **{key: value})


def test_texts_per_request_above_max_batch_size_is_a_config_error():
    with pytest.raises(ModelConfigError, match="'max_texts_per_request' is 65; it cannot exceed max_batch_size \\(64\\)"):
        RequestLimits.resolve(None, 65, 64)


def test_rendered_config_bounds_the_queue_and_rejects_on_timeout():
    text = render_config(ModelSpec("m", ModelDefinition(PoolingTask.EMBED, "ckpt"), max_queue_size=7, queue_timeout_us=5))
    policy = text[text.index("default_queue_policy"):]
    assert "max_queue_size: 7" in policy and "default_timeout_microseconds: 5" in policy
    assert "timeout_action: REJECT" in policy
    assert f"max_queue_size: {DEFAULT_MAX_QUEUE_SIZE}" in render_config(ModelSpec("m", ModelDefinition(PoolingTask.EMBED, "ckpt")))
