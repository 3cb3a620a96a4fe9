"""The served variants side by side: each a plain `triton-pooling build` of all-MiniLM-L6-v2 with one `--runtime` (or
none: the default), served alone, swept with perf_analyzer; then its lowest cosine to in-process
sentence-transformers fp32 over corpus texts, the PSS of its stubs, and the tuning line build wrote."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from .results import Measurement

# variant name -> build parameters (bench.triton_repository turns runtime into --runtime)
VARIANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "default": (),
    "openvino_bf16": (("runtime", "openvino_bf16"),),
    "onnx_int8": (("runtime", "onnx_int8"),),
}
PERF_ANALYZER = "triton (perf_analyzer)"


def system_of(variant: str) -> str:
    """The default keeps the plain name (the targets and earlier tables read it); the others say their runtime."""
    return PERF_ANALYZER if variant == "default" else f"{PERF_ANALYZER} {variant}"


@dataclasses.dataclass
class VariantSummary:
    variant: str
    tuning: str  # the config's `# tuning:` line
    lowest_cosine: float
    stub_pss_mb: float  # all stubs of the model, after the sweep
    instances: int


def tuning_line(repository: Path, model: str = "embed") -> str:
    for line in (repository / model / "config.pbtxt").read_text().splitlines():
        if line.startswith("# tuning:"):
            return line[len("# tuning:"):].strip()
    return ""


def served_embeddings(grpc_url: str, texts: list[str], model: str = "embed") -> np.ndarray:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(grpc_url)
    try:
        rows = []
        for text in texts:
            item = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
            item.set_data_from_numpy(np.array([[text.encode()]], dtype=object))
            rows.append(client.infer(model, [item]).as_numpy("EMBEDDING")[0])
        return np.stack(rows)
    finally:
        client.close()


def lowest_cosine(got: np.ndarray, reference: np.ndarray) -> float:
    got = got / np.linalg.norm(got, axis=1, keepdims=True)
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    return float(np.min(np.sum(got * reference, axis=1)))


def stub_pss_mb(server_pid: int) -> tuple[float, int]:
    from triton_pooling_server.launch.stubs import stubs

    from .footprint import pss_mb

    found = stubs(server_pid)
    return sum(pss_mb(s.pid) for s in found), len(found)


def render(summaries: list[VariantSummary], rows: list[Measurement], concurrencies: tuple[int, ...],
           st_fp32: float | None, st_bf16: float | None, high: int) -> str:
    """One line per variant: texts/s at each concurrency (gRPC), p50 at c=1, ratios to in-process ST at `high`,
    fidelity and memory."""
    head = ["variant"] + [f"c={c}" for c in concurrencies] + ["p50 c=1 ms", f"x ST fp32 (c={high})",
                                                              f"x ST bf16 (c={high})", "lowest cosine", "stub PSS MB",
                                                              "plan (# tuning:)"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for s in summaries:
        found = {m.concurrency: m for m in rows if m.system == system_of(s.variant) and m.protocol == "grpc"}
        top = found.get(high)
        cells = [s.variant] + [f"{found[c].throughput:.1f}" if c in found else "-" for c in concurrencies]
        cells.append(f"{found[1].p50_ms:.1f}" if 1 in found else "-")
        for peer in (st_fp32, st_bf16):
            cells.append(f"{top.throughput / peer:.2f}" if top and peer else "-")
        cells += ["-" if math.isnan(s.lowest_cosine) else f"{s.lowest_cosine:.6f}", f"{s.stub_pss_mb:.0f} ({s.instances} stubs)",
                  s.tuning]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
