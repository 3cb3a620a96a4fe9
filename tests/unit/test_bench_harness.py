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
    rows = [_m("in-process sentence-transformers", 50, 1, "python", p50=20), _m("in-process sentence-transformers", 100, 32, "python"),
            _m(report.PERF_ANALYZER, 140, 32), _m(report.PERF_ANALYZER, 45, 1, p50=21.5),
            _m(report.PERF_ANALYZER, 100, 32, task="token_embed"),
            _m(report.TRITON_HTTP_LOADGEN, 120, 32, "http"), _m(report.INFINITY, 50, 32, "http")]
    text = report.table(rows)
    assert "| triton http (loadgen) | embed | http | mix | 32 | 120.0 | 10.0 | 20.0 | 1.20 | 2.40 |" in text
    results = {t.name: t for t in report.targets(rows, "mix", 32)}
    assert results["served embed (gRPC, c=32) / in-process best batch"].value == pytest.approx(1.4)
    assert results["served embed (gRPC, c=32) / in-process best batch"].met
    assert results["served embed / Infinity (same HTTP load generator, c=32)"].value == pytest.approx(2.4)
    latency = results["served embed p50 at c=1 minus in-process batch-1 p50 (ms)"]
    assert latency.value == pytest.approx(1.5) and latency.met
    share = results["token_embed / embed throughput (gRPC, c=32)"]
    assert share.value == pytest.approx(100 / 140) and not share.met
    assert "MISSED token_embed / embed throughput (gRPC, c=32): 0.71 (goal >= 0.80) (missed by 0.09)" in share.line()


def test_preferred_batch_sizes_knob_replaces_the_shipped_ones():
    config = "dynamic_batching {\n  preferred_batch_size: [ 4 ]\n  max_queue_delay_microseconds: 2000\n}\n"
    out = apply_knobs(config, ServingKnobs(preferred_batch_sizes=(8, 16)))
    assert out.count("preferred_batch_size") == 1 and "preferred_batch_size: [ 8, 16 ]" in out
