"""The harness's pure parts: seeded corpus, perf_analyzer input and command, CSV reading,
repository knobs, and the table's ratios and target checks."""

from __future__ import annotations

import json

import pytest

from bench import corpus, perf_analyzer, report
from bench.results import Measurement
from bench.triton_repository import ServingKnobs, apply_knobs


def test_corpus_is_seeded_and_lengths_follow_the_class():
    assert corpus.make_corpus("mix", 50) == corpus.make_corpus("mix", 50)
    assert corpus.make_corpus("mix", 50, seed=1) != corpus.make_corpus("mix", 50)
    for name, (low, high) in corpus.LENGTHS.items():
        assert all(low <= len(t.split()) <= high for t in corpus.make_corpus(name, 40))
    mix_words = [len(t.split()) for t in corpus.make_corpus("mix", 400)]
    assert min(mix_words) < 13 and max(mix_words) > 79
    with pytest.raises(ValueError, match="corpus 'huge' is unknown; allowed: short, medium, long, mix"):
        corpus.make_corpus("huge", 1)


def test_perf_analyzer_input_is_one_single_text_request_per_entry(tmp_path):
    path = corpus.write_perf_analyzer_data(["a b", "c"], tmp_path / "in.json")
    assert json.loads(path.read_text()) == {"data": [{"TEXT": {"content": ["a b"], "shape": [1]}},
                                                     {"TEXT": {"content": ["c"], "shape": [1]}}]}


def test_perf_analyzer_command_and_csv(tmp_path):
    cmd = perf_analyzer.perf_analyzer_command(tmp_path / "pa", "embed", "h:1", "grpc", tmp_path / "d.json", 32, 2000,
                                              tmp_path / "o.csv")
    assert cmd[cmd.index("-m") + 1] == "embed" and cmd[cmd.index("--concurrency-range") + 1] == "32:32"
    assert cmd[cmd.index("--input-data") + 1] == str(tmp_path / "d.json")
    csv_file = tmp_path / "o.csv"
    csv_file.write_text("Concurrency,Inferences/Second,p50 latency,p99 latency\n32,250.5,120000,180000\n")
    row = perf_analyzer.read_csv_row(csv_file)
    assert float(row["Inferences/Second"]) == 250.5 and float(row["p99 latency"]) == 180000


def test_knobs_rewrite_the_shipped_config():
    config = "dynamic_batching {\n  max_queue_delay_microseconds: 2000\n}\ninstance_group [ { count: 1 kind: KIND_CPU } ]\n"
    out = apply_knobs(config, ServingKnobs(500, 2, (("runtime", "torch"),), response_cache=True))
    assert "max_queue_delay_microseconds: 500" in out and "count: 2 " in out
    assert 'parameters { key: "runtime" value { string_value: "torch" } }' in out
    assert "response_cache { enable: true }" in out
    assert apply_knobs(config, ServingKnobs()) == config


def _m(system, throughput, concurrency, protocol="grpc", task="embed", p50=10.0):
    return Measurement(system, task, protocol, "mix", concurrency, throughput, p50, p50 * 2)


def test_table_ratios_and_targets():
    from bench import engines
    from bench.footprint import Footprint

    rows = [_m("in-process sentence-transformers", 50, 1, "python", p50=20), _m("in-process sentence-transformers", 100, 32, "python"),
            _m(engines.SYSTEMS["onnx"], 120, 16, "python"), _m(engines.SYSTEMS["openvino"], 130, 16, "python"),
            _m(report.PERF_ANALYZER, 140, 32), _m(report.PERF_ANALYZER, 45, 1, p50=18.5),
            _m(report.PERF_ANALYZER, 100, 32, task="token_embed"),
            _m(report.TRITON_HTTP_LOADGEN, 120, 32, "http"), _m(report.INFINITY, 50, 32, "http")]
    text = report.table(rows)
    assert "| triton http (loadgen) | embed | http | mix | 32 | 120.0 | 10.0 | 20.0 | 1.20 | 0.92 | 2.40 |" in text
    serve = Footprint(ready_s=3.0, total_pss_mb=600, server_pss_mb=80, stubs={"embed": [190.0, 180.0]},
                      stub_pss_mb={"embed": [150.0, 140.0]}, libraries={"embed": ["onnxruntime", "tokenizers"]})
    results = {t.name: t for t in report.targets(rows, "mix", 32, serve)}
    assert results["served embed (gRPC, c=32) / in-process best batch"].value == pytest.approx(1.4)
    assert results["served embed (gRPC, c=32) / in-process best batch"].met
    engine = results["served embed (gRPC, c=32) / best in-process fp32 engine (in-process openvino fp32 (one session), batch 16)"]
    assert engine.value == pytest.approx(140 / 130) and engine.met
    assert results["served embed / Infinity (same HTTP load generator, c=32)"].value == pytest.approx(2.4)
    latency = results["served embed p50 at c=1 minus in-process batch-1 p50 (ms)"]
    assert latency.value == pytest.approx(-1.5) and latency.met
    share = results["token_embed / embed throughput (gRPC, c=32)"]
    assert share.value == pytest.approx(100 / 140) and not share.met
    assert "MISSED token_embed / embed throughput (gRPC, c=32): 0.71 (goal >= 0.80) (missed by 0.09)" in share.line()
    assert results["make serve: largest stub RSS (MB)"].value == 190 and results["make serve: total PSS after warm-up (MB)"].met
    assert "ready after 3.0 s" in report.render(rows, "mix", 32, "cmd", serve)


def test_knobs_become_build_flags_and_the_rest_config_lines():
    knobs = ServingKnobs(0, 3, (("runtime", "openvino"), ("max_batch_tokens", "1024")), preferred_batch_sizes=(8,))
    assert knobs.build_flags() == ["--queue-delay-us", "0", "--instances", "3", "--preferred-batch-sizes", "8",
                                   "--runtime", "openvino"]
    assert knobs.config_only() == ServingKnobs(parameters=(("max_batch_tokens", "1024"),))


def test_preferred_batch_sizes_knob_replaces_the_shipped_ones():
    config = "dynamic_batching {\n  preferred_batch_size: [ 4 ]\n  max_queue_delay_microseconds: 2000\n}\n"
    out = apply_knobs(config, ServingKnobs(preferred_batch_sizes=(8, 16)))
    assert out.count("preferred_batch_size") == 1 and "preferred_batch_size: [ 8, 16 ]" in out


def test_served_variants_side_by_side_with_fidelity_memory_and_the_bf16_targets():
    from bench import inprocess, variants

    rows = [_m(inprocess.SYSTEM, 150, 32, "python"), _m(inprocess.SYSTEM_BF16, 275, 32, "python"),
            _m(report.PERF_ANALYZER, 200, 32), _m(report.PERF_ANALYZER, 70, 1, p50=9.0),
            _m(variants.system_of("openvino_bf16"), 420, 32), _m(variants.system_of("openvino_bf16"), 120, 1, p50=7.0)]
    summaries = [variants.VariantSummary("default", "3 instances x 1 thread", 0.999999, 450.0, 3),
                 variants.VariantSummary("openvino_bf16", "2 instances x 1 thread; bf16 on AMX", 0.99990, 600.0, 2)]
    table = variants.render(summaries, rows, (1, 32), 150.0, 275.0, 32)
    assert "| openvino_bf16 | 120.0 | 420.0 | 7.0 | 2.80 | 1.53 | 0.999900 | 600 (2 stubs) |" in table
    assert "| default | 70.0 | 200.0 | 9.0 | 1.33 | 0.73 |" in table
    found = {t.name: t for t in report.targets(rows, "mix", 32, None, summaries)}
    assert found["served openvino_bf16 (gRPC, c=32) / in-process ST fp32 best batch"].value == pytest.approx(2.8)
    assert found["served openvino_bf16 (gRPC, c=32) / in-process ST bf16 best batch"].met
    cosine = found["served openvino_bf16: lowest cosine to ST fp32"]
    assert cosine.value == pytest.approx(0.9999) and cosine.met
    assert found["served openvino_bf16 p50 at c=1 minus the default's (ms)"].value == pytest.approx(-2.0)
    assert found["served embed (gRPC, c=32) / in-process best batch"].value == pytest.approx(200 / 150)  # fp32 only
    text = report.render(rows, "mix", 32, "cmd", None, summaries, (1, 32), "Xeon (amx_bf16)")
    assert text.startswith("Host: Xeon (amx_bf16)") and "Served embed variants" in text


def test_lowest_cosine_and_the_host_label(tmp_path):
    import numpy as np

    from bench import hostinfo, variants

    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert variants.lowest_cosine(a, a * 3) == pytest.approx(1.0)
    assert variants.lowest_cosine(a, np.array([[1.0, 1.0], [0.0, 1.0]])) == pytest.approx(2 ** -0.5)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 avx512f amx_bf16 avx512_bf16\n")
    label = hostinfo.host_label(cpuinfo)
    assert label.startswith("Intel(R) Xeon(R) Processor (amx_bf16, avx512_bf16, avx512f, avx2)")
