"""After the export: the graph's weights in one external-data file beside it, each tensor at a page-aligned offset.

Why: every Triton instance of a model is its own stub process. A graph whose weights sit inside the protobuf is
parsed into each process's private memory (3 instances = 3 copies); weights in a separate file at page-aligned
offsets can be memory-mapped, so the page cache holds one copy that all instances share
(docs/performance.md "Memory"). The graph's contents do not change, only where its bytes live.
"""

from __future__ import annotations

import os
from pathlib import Path

from triton_pooling_contract.serving import external_data_name

PAGE = 4096  # mmap offsets must be page-aligned; 4 KiB pages on x86-64 and most aarch64 kernels
MIN_EXTERNAL_BYTES = 1024  # smaller tensors stay inline (shapes, scalars): mapping them would save nothing
LAYOUT_VERSION = 1  # in the graph key: graphs cached before this layout are exported again


def data_file_name(graph: Path) -> str:
    return external_data_name(graph.name)


def externalize_weights(graph: Path, align: int = PAGE, min_bytes: int = MIN_EXTERNAL_BYTES) -> int:
    """Rewrite `graph` so its initializers of `min_bytes` or more live in `<graph>.data` at `align`-aligned
    offsets; returns the bytes moved. A graph already in that layout is rewritten the same way."""
    import onnx

    # Tensors are copied one at a time from wherever they are (the exporter's external file or the graph itself),
    # so the step holds one tensor at a time, not the model (a 0.6B graph is 2.4 GB).
    model = onnx.load(str(graph), load_external_data=False)
    before = {entry.value for t in model.graph.initializer for entry in t.external_data if entry.key == "location"}
    data_path = graph.with_name(data_file_name(graph))
    tmp_data = data_path.with_name(f"{data_path.name}.tmp-{os.getpid()}")
    moved = 0
    with open(tmp_data, "wb") as out:
        for tensor in model.graph.initializer:
            raw = _tensor_bytes(tensor, graph.parent)
            if len(raw) < min_bytes:
                if tensor.data_location == onnx.TensorProto.EXTERNAL:  # small but external: bring it inline
                    del tensor.external_data[:]
                    tensor.data_location = onnx.TensorProto.DEFAULT
                    tensor.raw_data = raw
                continue
            out.write(b"\0" * (-out.tell() % align))
            offset = out.tell()
            out.write(raw)
            _point_to(tensor, data_path.name, offset, len(raw))
            moved += len(raw)
    tmp_graph = graph.with_name(f"{graph.name}.tmp-{os.getpid()}")
    onnx.save_model(model, str(tmp_graph))
    os.replace(tmp_data, data_path)
    os.replace(tmp_graph, graph)
    for name in before - {data_path.name}:  # the exporter's own external-data files, now copied into ours
        graph.with_name(name).unlink(missing_ok=True)
    return moved


def _tensor_bytes(tensor, folder: Path) -> bytes:
    """A tensor's raw little-endian bytes, read from its external file (offset, length) or from the proto."""
    from onnx import TensorProto, numpy_helper

    if tensor.data_location != TensorProto.EXTERNAL:
        return tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.to_array(tensor).tobytes()
    entries = {e.key: e.value for e in tensor.external_data}
    with open(folder / entries["location"], "rb") as f:
        f.seek(int(entries.get("offset", 0)))
        length = entries.get("length")
        return f.read(int(length)) if length is not None else f.read()


def _point_to(tensor, location: str, offset: int, length: int) -> None:
    from onnx import TensorProto

    for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"):
        tensor.ClearField(field)
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = TensorProto.EXTERNAL


def external_files(graph: Path) -> list[Path]:
    """The graph and the weight file beside it (what a model's version folder must hold)."""
    data = graph.with_name(data_file_name(graph))
    return [graph, data] if data.is_file() else [graph]
