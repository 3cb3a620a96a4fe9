"""What the host offers the tuner beyond its core count: the CPU's matrix instructions (which decide a runtime's cost
curve) and the memory this process may use (its cgroup limit, else the host's). Pure parsers over the files' text,
so tests feed them any host; `read_*` do the reading."""

from __future__ import annotations

import dataclasses
from pathlib import Path

# Flags that change how a runtime's throughput grows with the pass (docs/performance.md "Serving tuning").
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")
CGROUP_V2_MAX = Path("/sys/fs/cgroup/memory.max")
CGROUP_V1_LIMIT = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")
MEMINFO = Path("/proc/meminfo")
CPUINFO = Path("/proc/cpuinfo")
UNLIMITED_V1 = 1 << 60  # cgroup v1 writes ~2^63 rounded to pages for "no limit"


@dataclasses.dataclass(frozen=True)
class CpuFeatures:
    flags: frozenset[str] = frozenset()

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags or "amx_int8" in self.flags

    @property
    def bf16(self) -> bool:
        return any(f in self.flags for f in BF16_FLAGS)

    @property
    def int8(self) -> bool:
        return any(f in self.flags for f in INT8_FLAGS)

    def describe(self) -> str:
        shown = [f for f in (*BF16_FLAGS, *INT8_FLAGS) if f in self.flags]
        return ", ".join(shown) if shown else "no bf16/int8 matrix instructions"


def parse_cpu_flags(cpuinfo: str) -> CpuFeatures:
    """The first `flags` line of /proc/cpuinfo (every core of a host has the same)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return CpuFeatures(frozenset(line.split(":", 1)[1].split()))
    return CpuFeatures()


def parse_memory_limit(cgroup_v2: str | None, cgroup_v1: str | None, meminfo: str) -> int:
    """Bytes this process may use: the cgroup limit when one is set (containers, Kubernetes), capped by the host's
    MemTotal."""
    total = _meminfo_total(meminfo)
    for text in (cgroup_v2, cgroup_v1):
        value = (text or "").strip()
        if value.isdigit() and int(value) < UNLIMITED_V1:
            return min(int(value), total) if total else int(value)
    return total


def _meminfo_total(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def read_cpu_features(path: Path = CPUINFO) -> CpuFeatures:
    return parse_cpu_flags(_read(path) or "")


def read_memory_limit() -> int:
    return parse_memory_limit(_read(CGROUP_V2_MAX), _read(CGROUP_V1_LIMIT), _read(MEMINFO) or "")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
