"""The benchmark harness end to end on the session server (~30 s of measuring): real perf_analyzer
over gRPC and HTTP, the shared HTTP load generator, the client's offline job, the in-process
ceiling, and the table with its ratios. Infinity is left to `make bench` (its own venv)."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.integration


def test_bench_smoke_measures_every_driver_and_prints_the_table(triton_server, tmp_path):
    from bench import report
    from bench.run import SMOKE, run

    urls = (triton_server.options.http_url, triton_server.options.grpc_url)
    rows = run(SMOKE, tmp_path, server_urls=urls)
    systems = {(m.system, m.protocol) for m in rows}
    assert {("triton (perf_analyzer)", "grpc"), ("triton (perf_analyzer)", "http"), (report.TRITON_HTTP_LOADGEN, "http"),
            ("triton (PoolingClient offline job)", "grpc"), ("in-process sentence-transformers", "python")} <= systems
    for m in rows:
        assert m.throughput > 0 and m.errors == 0, m
        assert math.isnan(m.p50_ms) or math.isnan(m.p99_ms) or 0 < m.p50_ms <= m.p99_ms, m  # NaN: not measured
    assert {m.concurrency for m in rows if m.system == "triton (perf_analyzer)"} == set(SMOKE.concurrencies)
    text = report.render(rows, SMOKE.corpus, SMOKE.high, "python -m bench.run --smoke")
    assert "| triton (perf_analyzer) | embed | grpc | mix | 8 |" in text
    assert "served embed (gRPC, c=8) / in-process best batch" in text
