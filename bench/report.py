"""Side-by-side table (markdown) with ratios to the in-process ceiling and to Infinity, and the
issue's targets checked against numbers from the same run."""

from __future__ import annotations

import dataclasses
import math

from . import engines, inprocess, variants
from .results import Measurement

INFINITY = "infinity (loadgen)"
TRITON_HTTP_LOADGEN = "triton http (loadgen)"
PERF_ANALYZER = "triton (perf_analyzer)"


@dataclasses.dataclass
class Target:
    name: str
    value: float
    goal: float
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal

    def line(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        gap = "" if self.met or math.isnan(self.value) else f" (missed by {abs(self.goal - self.value):.2f})"
        digits = 6 if 0.99 < self.goal <= 1.0 else 2  # cosines: 1.00 would hide a miss
        return (f"- {'MET ' if self.met else 'MISSED'} {self.name}: {self.value:.{digits}f} "
                f"(goal {op} {self.goal:.{digits}f}){gap}")


def _find(rows, system, task="embed", protocol=None, concurrency=None, corpus=None) -> Measurement | None:
    for m in rows:
        if m.system == system and m.task == task and (protocol is None or m.protocol == protocol) and \
                (concurrency is None or m.concurrency == concurrency) and (corpus is None or m.corpus == corpus):
            return m
    return None


def ceiling(rows: list[Measurement], corpus: str) -> Measurement | None:
    candidates = [m for m in rows if m.system == inprocess.SYSTEM and m.corpus == corpus]
    return inprocess.best(candidates) if candidates else None


def ceiling_bf16(rows: list[Measurement], corpus: str) -> Measurement | None:
    candidates = [m for m in rows if m.system == inprocess.SYSTEM_BF16 and m.corpus == corpus]
    return inprocess.best(candidates) if candidates else None


def engine_ceiling(rows: list[Measurement], corpus: str) -> Measurement | None:
    """The best in-process fp32 engine (ONNX Runtime or OpenVINO, one session, any batch size)."""
    candidates = [m for m in rows if m.system in engines.FP32_SYSTEMS and m.corpus == corpus]
    return max(candidates, key=lambda m: m.throughput) if candidates else None


def table(rows: list[Measurement]) -> str:
    lines = ["| system | task | protocol | corpus | concurrency / batch | texts/s | p50 ms | p99 ms | x ceiling | x engine "
             "| x Infinity |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in rows:
        top, engine = ceiling(rows, m.corpus), engine_ceiling(rows, m.corpus)
        infinity = _find(rows, INFINITY, concurrency=m.concurrency, corpus=m.corpus)
        x_ceiling = f"{m.throughput / top.throughput:.2f}" if top else "-"
        x_engine = f"{m.throughput / engine.throughput:.2f}" if engine and m.task == "embed" else "-"
        served = not m.system.startswith("in-process") and m.task == "embed"
        x_infinity = f"{m.throughput / infinity.throughput:.2f}" if infinity and served else "-"
        note = f" ({m.note})" if m.note else ""
        lines.append(f"| {m.system}{note} | {m.task} | {m.protocol} | {m.corpus} | {m.concurrency} | "
                     f"{m.throughput:.1f} | {_ms(m.p50_ms)} | {_ms(m.p99_ms)} | {x_ceiling} | {x_engine} | {x_infinity} |")
    return "\n".join(lines)


def variant_targets(rows: list[Measurement], corpus: str, high: int, summaries) -> list[Target]:
    """Issue 22: the plain openvino_bf16 build against in-process sentence-transformers fp32 and bf16, its fidelity,
    and its latency at c=1 against the default build's; the default's parity."""
    found: list[Target] = []
    top, top_bf16 = ceiling(rows, corpus), ceiling_bf16(rows, corpus)
    bf16 = _find(rows, variants.system_of("openvino_bf16"), "embed", "grpc", high, corpus)
    if bf16 and top:
        found.append(Target(f"served openvino_bf16 (gRPC, c={high}) / in-process ST fp32 best batch",
                            bf16.throughput / top.throughput, 2.0))
    if bf16 and top_bf16:
        found.append(Target(f"served openvino_bf16 (gRPC, c={high}) / in-process ST bf16 best batch",
                            bf16.throughput / top_bf16.throughput, 1.1))
    by_variant = {s.variant: s for s in summaries or ()}
    if "openvino_bf16" in by_variant:
        found.append(Target("served openvino_bf16: lowest cosine to ST fp32", by_variant["openvino_bf16"].lowest_cosine,
                            0.9995))
    if "default" in by_variant:
        found.append(Target("served default: lowest cosine to ST fp32 (parity)", by_variant["default"].lowest_cosine,
                            0.99999))
    bf16_1 = _find(rows, variants.system_of("openvino_bf16"), "embed", "grpc", 1, corpus)
    default_1 = _find(rows, PERF_ANALYZER, "embed", "grpc", 1, corpus)
    if bf16_1 and default_1:
        found.append(Target("served openvino_bf16 p50 at c=1 minus the default's (ms)", bf16_1.p50_ms - default_1.p50_ms,
                            0.0, higher_is_better=False))
    return found


def targets(rows: list[Measurement], corpus: str, high: int, serve=None, summaries=None) -> list[Target]:
    """The issue's targets, each from this run's rows (skipped when a row is missing); `serve` is the default
    repository's footprint (bench.footprint.Footprint), `summaries` the served variants' (bench.variants)."""
    found: list[Target] = variant_targets(rows, corpus, high, summaries)
    top, engine = ceiling(rows, corpus), engine_ceiling(rows, corpus)
    embed_high = _find(rows, PERF_ANALYZER, "embed", "grpc", high, corpus)
    if top and embed_high:
        found.append(Target(f"served embed (gRPC, c={high}) / in-process best batch", embed_high.throughput / top.throughput, 1.3))
    if engine and embed_high:
        found.append(Target(f"served embed (gRPC, c={high}) / best in-process fp32 engine ({engine.system}, batch "
                            f"{engine.concurrency})", embed_high.throughput / engine.throughput, 0.95))
    ours = _find(rows, TRITON_HTTP_LOADGEN, "embed", "http", high, corpus)
    theirs = _find(rows, INFINITY, "embed", "http", high, corpus)
    if ours and theirs:
        found.append(Target(f"served embed / Infinity (same HTTP load generator, c={high})", ours.throughput / theirs.throughput, 2.0))
    batch1 = _find(rows, inprocess.SYSTEM, "embed", concurrency=1, corpus=corpus)
    served1 = _find(rows, PERF_ANALYZER, "embed", "grpc", 1, corpus)
    if batch1 and served1:
        found.append(Target("served embed p50 at c=1 minus in-process batch-1 p50 (ms)",
                            served1.p50_ms - batch1.p50_ms, 0.0, higher_is_better=False))
    token_high = _find(rows, PERF_ANALYZER, "token_embed", "grpc", high, corpus)
    if token_high and embed_high:
        found.append(Target(f"token_embed / embed throughput (gRPC, c={high})", token_high.throughput / embed_high.throughput, 0.8))
    if serve is not None:
        found += [Target("make serve: total PSS after warm-up (MB)", serve.total_pss_mb, 1500, higher_is_better=False),
                  Target("make serve: largest stub RSS (MB)", serve.largest_stub_rss_mb, 350, higher_is_better=False),
                  Target("make serve: seconds until ready", serve.ready_s, 15, higher_is_better=False)]
    return found


def render(rows: list[Measurement], corpus: str, high: int, command: str, serve=None, summaries=None,
           variant_concurrencies: tuple[int, ...] = (1, 8, 32, 64), host: str = "") -> str:
    checked = "\n".join(t.line() for t in targets(rows, corpus, high, serve, summaries)) or "- (no target rows in this run)"
    footprint = "" if serve is None else "\n`make serve` (default repository):\n" + "\n".join(f"- {line}" for line in serve.lines()) + "\n"
    side = ""
    if summaries:
        top, top_bf16 = ceiling(rows, corpus), ceiling_bf16(rows, corpus)
        side = ("\nServed embed variants (plain builds, gRPC, single-text requests):\n\n" +
                variants.render(summaries, rows, variant_concurrencies, top.throughput if top else None,
                                top_bf16.throughput if top_bf16 else None, high) + "\n")
    where = f"Host: {host}\n" if host else ""
    return (f"{where}Command: `{command}`\n\n{table(rows)}\n{side}{footprint}\n"
            f"Targets (ratios from this one run):\n{checked}\n")


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"
