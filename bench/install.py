"""Prepare a machine for `make bench`: Infinity in its own venv, and a check that perf_analyzer
runs (its shared libraries resolve).

    python -m bench.install            # both
    python -m bench.install --check    # only report what is missing
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .perf_analyzer import PerfAnalyzerError, find_perf_analyzer, perf_analyzer_env
from .processes import INFINITY_VENV

REQUIREMENTS = Path(__file__).resolve().parent / "requirements-infinity.txt"


def missing_perf_analyzer_libraries() -> list[str]:
    """Shared libraries perf_analyzer cannot resolve (ldd), e.g. libb64.so.0d or libcudart.so.12."""
    done = subprocess.run(["ldd", str(find_perf_analyzer())], env=perf_analyzer_env(), capture_output=True, text=True)
    return [line.split()[0] for line in done.stdout.splitlines() if "not found" in line]


def install_infinity(venv: Path = INFINITY_VENV) -> None:
    if not (venv / "bin" / "python").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not (venv / "bin" / "infinity_emb").is_file():
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.install", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, install nothing")
    args = parser.parse_args(argv)
    try:
        missing = missing_perf_analyzer_libraries()
    except PerfAnalyzerError as e:
        sys.exit(str(e))
    if missing:
        sys.exit(f"perf_analyzer cannot load {', '.join(missing)}: apt-get install libb64-0d and "
                 "pip install -r requirements-bench.txt (nvidia-cuda-runtime-cu12)")
    if not args.check:
        install_infinity()
    print("bench prerequisites: ok" + ("" if args.check else f"; Infinity in {INFINITY_VENV}"))


if __name__ == "__main__":
    main()
