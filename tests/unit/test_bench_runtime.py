"""The fast CPU path: `runtime` parsing, ONNX Runtime parity with torch on mixed-length batches,
the default choice, and refusals of an explicit onnx it cannot serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.settings import ModelSettings, Runtime

# Mixed lengths on purpose: the exported graph must not bake in one padding.
TEXTS = ["hi", "a considerably longer text with many more words than the others have", "mid length one", "x " * 60]


def _settings(checkpoint: Path, task: str = "embed", **params: str) -> ModelSettings:
    raw = {"pooling_task": task, "checkpoint": str(checkpoint), **params}
    return ModelSettings.from_model_config({"parameters": {k: {"string_value": v} for k, v in raw.items()},
                                            "max_batch_size": 8}, checkpoint)


def _service(settings: ModelSettings):
    from triton_pooling_backend.service import PoolingService

    return PoolingService.load(settings)


def _embed(service, texts: list[str], name: str) -> list[np.ndarray]:
    request = {"TEXT": np.array([[t.encode()] for t in texts], dtype=object)}
    answer = service.handle([request])[0]
    rows, counts = answer[name], answer["NUM_TOKENS"][:, 0]
    return [rows[i, : counts[i]] if rows.ndim == 3 else rows[i] for i in range(len(texts))]


def test_runtime_parameter_parses_and_names_allowed_values(checkpoints):
    assert _settings(checkpoints["bert-embed"], runtime="ONNX").runtime is Runtime.ONNX
    assert _settings(checkpoints["bert-embed"]).runtime is None
    with pytest.raises(ModelConfigError, match=r"parameter 'runtime' is 'fast'; allowed: torch, onnx, onnx_int8"):
        _settings(checkpoints["bert-embed"], runtime="fast")


@pytest.mark.parametrize("task,output", [("embed", "EMBEDDING"), ("token_embed", "TOKEN_EMBEDDINGS")])
def test_default_runtime_is_onnx_and_matches_torch_on_mixed_lengths(checkpoints, task, output):
    path = checkpoints["bert-embed"]
    fast, reference = _service(_settings(path, task)), _service(_settings(path, task, runtime="torch"))
    assert (fast.engine.runtime, reference.engine.runtime) == (Runtime.ONNX, Runtime.TORCH)
    for a, b in zip(_embed(fast, TEXTS, output), _embed(reference, TEXTS, output)):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) <= 1e-5


def test_explicit_onnx_on_a_classifier_is_refused(checkpoints):
    with pytest.raises(ModelConfigError, match=r"'runtime' is 'onnx', but task 'seq_classify' runs on torch only"):
        _service(_settings(checkpoints["bert-seq-3"], "seq_classify", runtime="onnx"))


def test_classifier_default_stays_on_torch(checkpoints):
    assert _service(_settings(checkpoints["bert-seq-3"], "seq_classify")).engine.runtime is Runtime.TORCH


def test_export_is_cached_by_content(checkpoints, tmp_path):
    from triton_pooling_backend.onnx_encoder import cache_file
    from triton_pooling_backend.runtimes import build_encoder

    service = _service(_settings(checkpoints["bert-embed"], runtime="torch"))
    settings = _settings(checkpoints["bert-embed"], runtime="onnx")
    runtime, _ = build_encoder(service.checkpoint, settings, cache_dir=tmp_path)
    path = cache_file(settings.checkpoint, tmp_path, with_token_types=True)
    assert runtime is Runtime.ONNX and path.is_file()
    stamp = path.stat().st_mtime_ns
    build_encoder(service.checkpoint, settings, cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == stamp, "a second load must reuse the cached export"


def test_threads_split_the_cpus_among_instances(checkpoints, monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    raw = {"pooling_task": {"string_value": "embed"}, "checkpoint": {"string_value": str(checkpoints["bert-embed"])}}
    two = ModelSettings.from_model_config({"parameters": raw, "instance_group": [{"count": 2, "kind": "KIND_CPU"}]},
                                          checkpoints["bert-embed"])
    assert (two.instance_count, two.threads) == (2, 2)
    assert ModelSettings.from_model_config({"parameters": raw}, checkpoints["bert-embed"]).threads == 4
    pinned = {**raw, "intra_op_threads": {"string_value": "3"}}
    assert ModelSettings.from_model_config({"parameters": pinned, "instance_group": [{"count": 2}]},
                                           checkpoints["bert-embed"]).threads == 3


def test_int8_is_opt_in_quantized_cached_and_close(checkpoints, tmp_path):
    from triton_pooling_backend.onnx_encoder import cache_file, int8_cache_file
    from triton_pooling_backend.runtimes import build_encoder

    path = checkpoints["bert-embed"]
    reference = _service(_settings(path, runtime="torch"))
    settings = _settings(path, runtime="onnx_int8")
    runtime, _ = build_encoder(reference.checkpoint, settings, cache_dir=tmp_path)
    fp32 = cache_file(settings.checkpoint, tmp_path, with_token_types=True)
    assert runtime is Runtime.ONNX_INT8 and int8_cache_file(fp32).is_file()
    assert _settings(path).runtime is None, "int8 is never the default"
    int8 = _service(_settings(path, runtime="onnx_int8"))
    assert int8.engine.runtime is Runtime.ONNX_INT8
    errors, cosines = [], []
    for a, b in zip(_embed(int8, TEXTS, "EMBEDDING"), _embed(reference, TEXTS, "EMBEDDING")):
        errors.append(float(np.max(np.abs(a - b))))
        cosines.append(float(a @ b))
    assert max(errors) > 1e-5, "int8 weights must actually change the outputs"
    assert min(cosines) > 0.95


def test_int8_on_a_classifier_is_refused_naming_what_serves(checkpoints):
    with pytest.raises(ModelConfigError, match=r"'runtime' is 'onnx_int8', but task 'seq_classify' runs on torch only"
                                               r".*allowed here: torch"):
        _service(_settings(checkpoints["bert-seq-3"], "seq_classify", runtime="onnx_int8"))
