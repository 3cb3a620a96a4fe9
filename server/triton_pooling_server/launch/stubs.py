"""The Python-backend stub processes of a running tritonserver, read from Linux /proc.

Triton runs each Python model instance in a `triton_python_backend_stub` child process; its
command line holds the model file (`<repository>/<model>/<version>/model.py`), so a stub can be
told apart by model without asking the server.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

STUB_NAME = "triton_python_backend_stub"


@dataclasses.dataclass(frozen=True)
class Stub:
    pid: int
    model: str
    shm_region: str  # its shared-memory file in /dev/shm, left behind if the server is killed


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent == frontier[-1]]
        frontier.pop()
        found.extend(children)
        frontier.extend(children)
    return found


def stubs(server_pid: int) -> list[Stub]:
    found = []
    for pid in descendants(server_pid):
        args = command_line(pid)
        if len(args) > 1 and args[0].endswith(STUB_NAME):
            found.append(Stub(pid, Path(args[1]).parent.parent.name, args[2] if len(args) > 2 else ""))
    return found


def stub_pids(server_pid: int, model: str | None = None) -> list[int]:
    return [s.pid for s in stubs(server_pid) if model is None or s.model == model]


def rss_bytes(pid: int) -> int:
    """Resident set size; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def remove_shm_regions(names) -> None:
    """Delete the shared-memory files of stubs whose server was killed (a graceful stop deletes them)."""
    for name in names:
        if name and "/" not in name:
            Path("/dev/shm", name).unlink(missing_ok=True)
