"""`python -m bench.gateway`: the HTTP gateway against direct Triton HTTP, same load generator, same
single-text embed requests, at concurrency 1 and 32 (throughput, p50, p99 and the gateway/direct ratio).

    flock /tmp/heavy.lock python -m bench.gateway                 # the numbers in docs/http-api.md
    python -m bench.gateway --seconds 3 --concurrency 4           # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from . import loadgen, processes
from .corpus import CORPORA, make_corpus
from .triton_repository import build_repository

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORK_DIR = ROOT / ".bench" / "gateway"
TARGET_RATIO = 0.9  # gateway throughput / direct Triton HTTP throughput at the highest concurrency


def gateway_request(model: str, encoding_format: str) -> loadgen.RequestMaker:
    """OpenAI /v1/embeddings with one input."""
    return lambda text: ("/v1/embeddings", {"model": model, "input": text, "encoding_format": encoding_format})


@contextlib.contextmanager
def gateway(triton_grpc_url: str, log_path: Path) -> Iterator[str]:
    """The gateway as its own process (as `serve --gateway-port` runs it); yields its base URL."""
    port = processes.free_port()
    command = [sys.executable, "-m", "triton_pooling_server.gateway", "--triton-url", triton_grpc_url,
               "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            processes._wait_http(f"{url}/health", process, 120, log_path)
            yield url
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


def measure(concurrencies: tuple[int, ...], seconds: float, corpus: str, size: int, encoding_format: str,
            work_dir: Path) -> list[Row]:
    texts = make_corpus(corpus, size)
    repository = build_repository(work_dir / "repository", ("embed",))
    rows = []
    with processes.triton(repository, work_dir / "tritonserver.log") as server, \
            gateway(server.options.grpc_url, work_dir / "gateway.log") as gateway_url:
        systems = [
            ("triton HTTP (direct)", f"http://{server.options.http_url}", loadgen.triton_http_request("embed")),
            (f"gateway /v1/embeddings ({encoding_format})", gateway_url, gateway_request("embed", encoding_format)),
        ]
        for c in concurrencies:
            for name, url, maker in systems:
                r = loadgen.run_load(url, maker, texts, c, seconds)
                if r.errors:
                    raise RuntimeError(f"{name} c={c}: {r.errors} failed requests, first: {r.first_error}")
                rows.append(Row(name, c, r.throughput, r.p50_ms, r.p99_ms, r.requests))
                print(f"[bench.gateway {time.strftime('%H:%M:%S')}] {name} c={c}: {r.throughput:.1f}/s "
                      f"p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms", file=sys.stderr, flush=True)
    return rows


def render(rows: list[Row], command: str, corpus: str) -> str:
    direct = {r.concurrency: r.throughput for r in rows if "direct" in r.system}
    lines = [f"`{command}` — all-MiniLM-L6-v2 `embed`, one text per request ({corpus} corpus), closed loop", "",
             "| system | concurrency | texts/s | p50 ms | p99 ms | vs direct |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r.throughput / direct[r.concurrency] if direct.get(r.concurrency) else float("nan")
        lines.append(f"| {r.system} | {r.concurrency} | {r.throughput:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                     f"{ratio:.2f}x |")
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
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per point")
    parser.add_argument("--corpus", choices=CORPORA, default="mix")
    parser.add_argument("--corpus-size", type=int, default=512)
    parser.add_argument("--encoding-format", choices=("float", "base64"), default="float")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    concurrencies = tuple(int(c) for c in args.concurrency.split(",") if c)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.gateway " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rows = measure(concurrencies, args.seconds, args.corpus, args.corpus_size, args.encoding_format, args.work_dir)
    (args.work_dir / "results.json").write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    text = render(rows, command.strip(), args.corpus)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
