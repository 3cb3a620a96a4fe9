"""`python -m bench.gateway`: the HTTP gateway against direct Triton HTTP, same load generator, same
single-text embed requests, at concurrency 1 and 32 (throughput, p50, p99 and the gateway/direct ratio),
with the CPU each process spent per request: the gateway, tritonserver's front end, the model stubs.

    flock /tmp/heavy.lock python -m bench.gateway                 # the shipped embed model
    flock /tmp/heavy.lock python -m bench.gateway --instances 2   # one instance per core: the CPU saturated
    python -m bench.gateway --seconds 3 --concurrency 4           # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import statistics
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from . import loadgen, processes
from .corpus import CORPORA, make_corpus
from .triton_repository import ServingKnobs, build_repository

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORK_DIR = ROOT / ".bench" / "gateway"
TARGET_RATIO = 0.9  # gateway throughput / direct Triton HTTP throughput at the highest concurrency


def gateway_request(model: str, encoding_format: str) -> loadgen.RequestMaker:
    """OpenAI /v1/embeddings with one input."""
    return lambda text: ("/v1/embeddings", {"model": model, "input": text, "encoding_format": encoding_format})


@contextlib.contextmanager
def gateway(triton_grpc_url: str, log_path: Path) -> Iterator[tuple[str, int]]:
    """The gateway as its own process (as `serve --gateway-port` runs it); yields its base URL and pid."""
    port = processes.free_port()
    command = [sys.executable, "-m", "triton_pooling_server.gateway", "--triton-url", triton_grpc_url,
               "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            processes._wait_http(f"{url}/health", process, 120, log_path)
            yield url, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


@dataclasses.dataclass
class Row:
    system: str
    concurrency: int
    throughput: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_ms: dict[str, float] = dataclasses.field(default_factory=dict)  # CPU ms per request, by process


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def cpu_by_process(gateway_pid: int, triton_pid: int) -> dict[str, float]:
    stubs = children(triton_pid)
    return {"gateway": cpu_seconds(gateway_pid), "tritonserver": cpu_seconds(triton_pid),
            "model stubs": sum(cpu_seconds(p) for p in stubs), "load generator": cpu_seconds(os.getpid())}


def measure(concurrencies: tuple[int, ...], seconds: float, corpus: str, size: int, encoding_format: str,
            work_dir: Path, repeats: int = 1, instances: int | None = None) -> list[Row]:
    """Every point `repeats` times, the two systems taking turns, so a burst of other work on a shared
    machine hits both; `median_rows` reduces them."""
    texts = make_corpus(corpus, size)
    repository = build_repository(work_dir / "repository", ("embed",), ServingKnobs(instance_count=instances))
    rows = []
    with processes.triton(repository, work_dir / "tritonserver.log") as server, \
            gateway(server.options.grpc_url, work_dir / "gateway.log") as (gateway_url, gateway_pid):
        systems = [
            ("triton HTTP (direct)", f"http://{server.options.http_url}", loadgen.triton_http_request("embed")),
            (f"gateway /v1/embeddings ({encoding_format})", gateway_url, gateway_request("embed", encoding_format)),
        ]
        for c, _, (name, url, maker) in itertools.product(concurrencies, range(repeats), systems):
            loadgen.run_load(url, maker, texts, c, 1.0, warmup_seconds=0.0)  # warm up, not counted
            before = cpu_by_process(gateway_pid, server.process.pid)
            r = loadgen.run_load(url, maker, texts, c, seconds, warmup_seconds=0.0)
            after = cpu_by_process(gateway_pid, server.process.pid)
            if r.errors:
                raise RuntimeError(f"{name} c={c}: {r.errors} failed requests, first: {r.first_error}")
            cpu = {k: (after[k] - before[k]) * 1000 / max(1, r.requests) for k in after}
            rows.append(Row(name, c, r.throughput, r.p50_ms, r.p99_ms, r.requests, cpu))
            print(f"[bench.gateway {time.strftime('%H:%M:%S')}] {name} c={c}: {r.throughput:.1f}/s "
                  f"p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms", file=sys.stderr, flush=True)
    return rows


def median_rows(rows: list[Row]) -> list[Row]:
    """One row per (system, concurrency): the median of each column over the repeats."""
    groups: dict[tuple[str, int], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.system, r.concurrency), []).append(r)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][1], "direct" not in kv[0][0]))
    med = statistics.median
    return [Row(name, c, med(r.throughput for r in rs), med(r.p50_ms for r in rs), med(r.p99_ms for r in rs),
                sum(r.requests for r in rs), {k: med(r.cpu_ms[k] for r in rs) for k in rs[0].cpu_ms})
            for (name, c), rs in ordered]


def render(rows: list[Row], command: str, corpus: str, repeats: int = 1) -> str:
    direct = {r.concurrency: r.throughput for r in rows if "direct" in r.system}
    processes_ = list(rows[0].cpu_ms) if rows else []
    lines = [f"`{command}` — all-MiniLM-L6-v2 `embed`, one text per request ({corpus} corpus), closed loop; "
             f"median of {repeats} runs per point taken in turns; CPU ms per request by process", "",
             "| system | concurrency | texts/s | p50 ms | p99 ms | vs direct | " + " | ".join(processes_) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(processes_)]
    for r in rows:
        ratio = r.throughput / direct[r.concurrency] if direct.get(r.concurrency) else float("nan")
        cpu = " | ".join(f"{r.cpu_ms[p]:.2f}" for p in processes_)
        lines.append(f"| {r.system} | {r.concurrency} | {r.throughput:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                     f"{ratio:.2f}x | {cpu} |")
    high = max(direct) if direct else None
    gateway_high = next((r.throughput for r in rows if r.concurrency == high and "direct" not in r.system), None)
    if high and gateway_high:
        ratio = gateway_high / direct[high]
        verdict = "meets" if ratio >= TARGET_RATIO else "misses"
        lines += ["", f"At concurrency {high} the gateway runs at {ratio:.2f}x direct Triton HTTP: {verdict} the "
                  f"{TARGET_RATIO}x target."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,32", help="comma-separated closed-loop concurrencies")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--corpus", choices=CORPORA, default="mix")
    parser.add_argument("--corpus-size", type=int, default=512)
    parser.add_argument("--instances", type=int, help="embed model instances (default: as shipped)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per point (the table shows medians)")
    parser.add_argument("--encoding-format", choices=("float", "base64"), default="float")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    concurrencies = tuple(int(c) for c in args.concurrency.split(",") if c)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.gateway " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    runs = measure(concurrencies, args.seconds, args.corpus, args.corpus_size, args.encoding_format, args.work_dir,
                   args.repeats, args.instances)
    (args.work_dir / "results.json").write_text(json.dumps([dataclasses.asdict(r) for r in runs], indent=1))
    text = render(median_rows(runs), command.strip(), args.corpus, args.repeats)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
