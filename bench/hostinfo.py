"""The label every table carries: CPU model, the flags that change the cost curve, cores and memory."""

from __future__ import annotations

import os
from pathlib import Path

CURVE_FLAGS = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def host_label(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> str:
    try:
        text = cpuinfo_path.read_text()
    except OSError:
        return "unknown host"
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    shown = [f for f in CURVE_FLAGS if f in flags] or ["no AVX-512"]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cpu_model(text)} ({', '.join(shown)}), {cpus} cores{mem}"
