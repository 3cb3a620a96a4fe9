"""Side-by-side table (markdown) with ratios to the in-process ceiling and to Infinity, and the
issue's targets checked against numbers from the same run."""

from __future__ import annotations

import dataclasses
import math

from . import inprocess
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
        return f"- {'MET ' if self.met else 'MISSED'} {self.name}: {self.value:.2f} (goal {op} {self.goal:.2f}){gap}"


def _find(rows, system, task="embed", protocol=None, concurrency=None, corpus=None) -> Measurement | None:
    for m in rows:
        if m.system == system and m.task == task and (protocol is None or m.protocol == protocol) and \
                (concurrency is None or m.concurrency == concurrency) and (corpus is None or m.corpus == corpus):
            return m
    return None


def ceiling(rows: list[Measurement], corpus: str) -> Measurement | None:
    candidates = [m for m in rows if m.system == inprocess.SYSTEM and m.corpus == corpus]
    return inprocess.best(candidates) if candidates else None


def table(rows: list[Measurement]) -> str:
    lines = ["| system | task | protocol | corpus | concurrency / batch | texts/s | p50 ms | p99 ms | x ceiling | x Infinity |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for m in rows:
        top = ceiling(rows, m.corpus)
        infinity = _find(rows, INFINITY, concurrency=m.concurrency, corpus=m.corpus)
        x_ceiling = f"{m.throughput / top.throughput:.2f}" if top else "-"
        served = m.system != inprocess.SYSTEM and m.task == "embed"
        x_infinity = f"{m.throughput / infinity.throughput:.2f}" if infinity and served else "-"
        note = f" ({m.note})" if m.note else ""
        lines.append(f"| {m.system}{note} | {m.task} | {m.protocol} | {m.corpus} | {m.concurrency} | "
                     f"{m.throughput:.1f} | {_ms(m.p50_ms)} | {_ms(m.p99_ms)} | {x_ceiling} | {x_infinity} |")
    return "\n".join(lines)


def targets(rows: list[Measurement], corpus: str, high: int) -> list[Target]:
    """The issue's four targets, each from this run's rows (skipped when a row is missing)."""
    found: list[Target] = []
    top = ceiling(rows, corpus)
    embed_high = _find(rows, PERF_ANALYZER, "embed", "grpc", high, corpus)
    if top and embed_high:
        found.append(Target(f"served embed (gRPC, c={high}) / in-process best batch", embed_high.throughput / top.throughput, 1.3))
    ours = _find(rows, TRITON_HTTP_LOADGEN, "embed", "http", high, corpus)
    theirs = _find(rows, INFINITY, "embed", "http", high, corpus)
    if ours and theirs:
        found.append(Target(f"served embed / Infinity (same HTTP load generator, c={high})", ours.throughput / theirs.throughput, 2.0))
    batch1 = _find(rows, inprocess.SYSTEM, "embed", concurrency=1, corpus=corpus)
    served1 = _find(rows, PERF_ANALYZER, "embed", "grpc", 1, corpus)
    if batch1 and served1:
        found.append(Target("served embed p50 at c=1 minus in-process batch-1 p50 (ms)",
                            served1.p50_ms - batch1.p50_ms, 2.0, higher_is_better=False))
    token_high = _find(rows, PERF_ANALYZER, "token_embed", "grpc", high, corpus)
    if token_high and embed_high:
        found.append(Target(f"token_embed / embed throughput (gRPC, c={high})", token_high.throughput / embed_high.throughput, 0.8))
    return found


def render(rows: list[Measurement], corpus: str, high: int, command: str) -> str:
    checked = "\n".join(t.line() for t in targets(rows, corpus, high)) or "- (no target rows in this run)"
    return f"Command: `{command}`\n\n{table(rows)}\n\nTargets (ratios from this one run):\n{checked}\n"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"
