"""Drive the real perf_analyzer (the binary in the tritonclient 2.51 wheel) and read its CSV.

It needs Debian's libb64-0d and libcudart.so.12 (PyPI nvidia-cuda-runtime-cu12) even on CPU;
`bench.install` checks both.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .results import Measurement

SYSTEM = "triton (perf_analyzer)"


class PerfAnalyzerError(RuntimeError):
    pass


def find_perf_analyzer() -> Path:
    """The tritonclient wheel installs it beside this interpreter; else PATH."""
    beside = Path(sys.executable).parent / "perf_analyzer"
    found = beside if beside.is_file() else shutil.which("perf_analyzer")
    if not found:
        raise PerfAnalyzerError("perf_analyzer not found: pip install 'tritonclient[all]==2.51.0' into this venv "
                                "(its wheel ships the binary)")
    return Path(found)


def cuda_runtime_lib_dir() -> Path | None:
    try:
        import nvidia.cuda_runtime as cuda_runtime
    except ImportError:
        return None
    return Path(list(cuda_runtime.__path__)[0]) / "lib"


def perf_analyzer_env() -> dict[str, str]:
    env = dict(os.environ)
    lib = cuda_runtime_lib_dir()
    if lib is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(lib), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def perf_analyzer_command(binary: Path, model: str, url: str, protocol: str, data_file: Path, concurrency: int,
                          window_ms: int, csv_file: Path) -> list[str]:
    # A stability band this wide accepts the first 3 windows: the machine is shared, and a fixed
    # measuring time keeps a full sweep bounded.
    return [
        str(binary), "-m", model, "-u", url, "-i", protocol, "-b", "1",
        "--input-data", str(data_file), "--concurrency-range", f"{concurrency}:{concurrency}",
        "--measurement-mode", "time_windows", "--measurement-interval", str(window_ms),
        "--stability-percentage", "999", "--max-trials", "3", "-f", str(csv_file),
    ]


# A failed point (typically "No valid requests recorded" when a loaded machine finishes nothing
# within the window) is retried this many times, with a window twice as long each time.
WINDOW_RETRIES = 2


def measure(model: str, task: str, url: str, protocol: str, corpus: str, data_file: Path, concurrency: int,
            window_ms: int, work_dir: Path) -> Measurement:
    csv_file = work_dir / f"pa-{model}-{protocol}-{corpus}-c{concurrency}.csv"
    for attempt in range(WINDOW_RETRIES + 1):
        window = window_ms * 2 ** attempt
        command = perf_analyzer_command(find_perf_analyzer(), model, url, protocol, data_file, concurrency, window,
                                        csv_file)
        done = subprocess.run(command, env=perf_analyzer_env(), capture_output=True, text=True,
                              timeout=60 + 10 * window / 1000)
        if done.returncode == 0 and csv_file.is_file():
            break
        if attempt == WINDOW_RETRIES:
            raise PerfAnalyzerError(f"perf_analyzer failed ({done.returncode}): {' '.join(command)}\n"
                                    f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    row = read_csv_row(csv_file)
    return Measurement(SYSTEM, task, protocol, corpus, concurrency, throughput=float(row["Inferences/Second"]),
                       p50_ms=float(row["p50 latency"]) / 1000, p99_ms=float(row["p99 latency"]) / 1000)


def read_csv_row(csv_file: Path) -> dict[str, str]:
    """perf_analyzer's CSV: a header, then one row per concurrency (latencies in microseconds)."""
    with open(csv_file, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise PerfAnalyzerError(f"{csv_file} holds no measurement")
    return rows[0]
