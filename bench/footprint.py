"""Start-up and memory of a served repository, as `make serve` runs it: the real `triton-pooling serve` command,
seconds until /v2/health/ready answers, then warm-up requests to every model, then the proportional set size
(PSS, shared pages split among the processes sharing them) of the whole process tree and the largest stub's RSS.
Also which heavy libraries each stub has mapped (a lean stub maps no libtorch).

    python -m bench.footprint [--repository model_repository]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .processes import free_port

ROOT = Path(__file__).resolve().parent.parent
# Shared libraries whose presence in a stub's memory map says which stack it imported.
LIBRARY_MARKERS = {"torch": "libtorch", "onnxruntime": "onnxruntime_pybind11_state", "openvino": "libopenvino.so",
                   "tokenizers": "tokenizers.abi3", "onnx": "onnx_cpp2py_export"}


@dataclasses.dataclass
class Footprint:
    ready_s: float
    total_pss_mb: float
    server_pss_mb: float
    stubs: dict[str, list[float]]  # model → each stub's RSS in MB
    stub_pss_mb: dict[str, list[float]]
    libraries: dict[str, list[str]]  # model → heavy libraries mapped by its stubs

    @property
    def largest_stub_rss_mb(self) -> float:
        return max((r for rs in self.stubs.values() for r in rs), default=0.0)

    def lines(self) -> list[str]:
        per_model = ", ".join(f"{m} {len(r)} x {max(r):.0f} MB" for m, r in sorted(self.stubs.items()))
        return [f"ready after {self.ready_s:.1f} s",
                f"total PSS {self.total_pss_mb:.0f} MB (tritonserver and launcher {self.server_pss_mb:.0f} MB)",
                f"largest stub RSS {self.largest_stub_rss_mb:.0f} MB; stubs (RSS): {per_model}",
                "stub libraries: " + "; ".join(f"{m}: {', '.join(libs) or '-'}" for m, libs in sorted(self.libraries.items()))]


def kb_field(path: Path, field: str) -> float:
    for line in path.read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return 0.0


def pss_mb(pid: int) -> float:
    return kb_field(Path(f"/proc/{pid}/smaps_rollup"), "Pss") / 1024


def rss_mb(pid: int) -> float:
    return kb_field(Path(f"/proc/{pid}/status"), "VmRSS") / 1024


def mapped_libraries(pid: int) -> list[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return [name for name, marker in LIBRARY_MARKERS.items() if marker in maps]


def measure(process: subprocess.Popen, http_url: str, warm_up, ready_timeout: float = 300.0) -> Footprint:
    """`process` was just started; waits for readiness, warms every model up, reads /proc."""
    from triton_pooling_server.launch.stubs import descendants, stubs

    started = time.monotonic()
    while not _ready(http_url):
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode} before it was ready")
        if time.monotonic() - started > ready_timeout:
            raise RuntimeError(f"not ready after {ready_timeout:.0f} s")
        time.sleep(0.1)
    ready = time.monotonic() - started
    warm_up()
    time.sleep(1.0)
    tree = [process.pid, *descendants(process.pid)]
    servers = [p for p in tree if not any(s.pid == p for s in _all_stubs(tree, stubs))]
    found = _all_stubs(tree, stubs)
    by_model: dict[str, list[float]] = {}
    pss: dict[str, list[float]] = {}
    libraries: dict[str, set[str]] = {}
    for s in found:
        by_model.setdefault(s.model, []).append(rss_mb(s.pid))
        pss.setdefault(s.model, []).append(pss_mb(s.pid))
        libraries.setdefault(s.model, set()).update(mapped_libraries(s.pid))
    server_pss = sum(pss_mb(p) for p in servers)
    total = server_pss + sum(v for vs in pss.values() for v in vs)
    return Footprint(ready, total, server_pss, by_model, pss, {m: sorted(v) for m, v in libraries.items()})


def _all_stubs(tree: list[int], stubs):
    found = []
    for pid in tree:
        found.extend(s for s in stubs(pid) if s not in found)
    return found


def _ready(http_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{http_url}/v2/health/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serving(repository: Path, log_path: Path):
    """`triton-pooling serve` on free ports; yields (process, http_url, grpc_url)."""
    http, grpc, metrics = free_port(), free_port(), free_port()
    cli = Path(sys.executable).parent / "triton-pooling"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(cli), "serve", "--model-repository", str(repository), "--http-port", str(http),
                                    "--grpc-port", str(grpc), "--metrics-port", str(metrics)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process, f"127.0.0.1:{http}", f"127.0.0.1:{grpc}"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def warm_up_every_model(grpc_url: str, models: list[str], texts: list[str], rounds: int = 8):
    def run():
        import numpy as np
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(grpc_url)
        try:
            for model in models:
                for i in range(rounds):
                    text = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
                    text.set_data_from_numpy(np.array([[texts[i % len(texts)].encode()]], dtype=object))
                    cut = grpcclient.InferInput("TRUNCATE_PROMPT_TOKENS", [1, 1], "INT32")
                    cut.set_data_from_numpy(np.array([[128]], dtype=np.int32))
                    client.infer(model, [text, cut])
        finally:
            client.close()
    return run


def main(argv=None) -> None:
    from .corpus import make_corpus

    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    parser.add_argument("--log", type=Path, default=ROOT / ".bench" / "footprint-serve.log")
    args = parser.parse_args(argv)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with serving(args.repository, args.log) as (process, http_url, grpc_url):
        models = sorted(p.parent.name for p in args.repository.glob("*/config.pbtxt"))
        result = measure(process, http_url, warm_up_every_model(grpc_url, models, make_corpus("mix", 16)))
    print("\n".join(result.lines()))
    print(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()
