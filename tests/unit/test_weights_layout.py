"""The post-export step: weights move into one external-data file at page-aligned offsets (so instances can map one
shared copy), the graph computes the same, and a graph already in that layout is rewritten the same way."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from triton_pooling_server.builder.artifact.weights_layout import PAGE, externalize_weights, external_files  # noqa: E402


def _graph(path, exporter_data: str | None = None):
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((8, 300)).astype(np.float32), rng.standard_normal((300, 5)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
                               numpy_helper.from_array(np.ones(3, np.float32), "tiny")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if exporter_data:
        onnx.save_model(model, str(path), save_as_external_data=True, location=exporter_data, size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return w1, w2


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("exporter_data", [None, "weights.bin"])
def test_weights_move_to_aligned_external_data_and_the_graph_computes_the_same(tmp_path, exporter_data):
    path = tmp_path / "encoder.onnx"
    w1, w2 = _graph(path, exporter_data)
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    expected = _run(path, x)
    moved = externalize_weights(path)
    assert moved == w1.nbytes + w2.nbytes  # the 12-byte tensor stays inline
    assert [p.name for p in external_files(path)] == ["encoder.onnx", "encoder.onnx.data"]
    assert not (tmp_path / "weights.bin").exists()  # the exporter's own file is gone, not shipped twice
    offsets = {}
    for t in onnx.load(str(path), load_external_data=False).graph.initializer:
        entries = {e.key: e.value for e in t.external_data}
        if entries:
            offsets[t.name] = int(entries["offset"])
            assert entries["location"] == "encoder.onnx.data"
    assert set(offsets) == {"w1", "w2"} and all(o % PAGE == 0 for o in offsets.values())
    np.testing.assert_array_equal(_run(path, x), expected)
    assert externalize_weights(path) == moved  # idempotent
    np.testing.assert_array_equal(_run(path, x), expected)


def test_onnx_runtime_uses_large_external_weights_in_place(tmp_path):
    from triton_pooling_backend.encoders.ort_encoder import SHARE_WEIGHTS_MIN_BYTES
    from triton_pooling_backend.encoders.ort_encoder import shares_weights

    graph = tmp_path / "encoder.onnx"
    graph.write_bytes(b"")
    assert not shares_weights(graph)  # weights inside the graph: nothing to map
    with open(tmp_path / "encoder.onnx.data", "wb") as f:
        f.truncate(SHARE_WEIGHTS_MIN_BYTES - 1)  # sparse: no disk used
    assert not shares_weights(graph)  # a small model keeps its faster prepacked copy
    with open(tmp_path / "encoder.onnx.data", "wb") as f:
        f.truncate(SHARE_WEIGHTS_MIN_BYTES)
    assert shares_weights(graph)
