"""The Python-backend stub processes of a running tritonserver, read from Linux /proc.

Triton runs each Python model instance in a `triton_python_backend_stub` child process. Its command
line (python_backend 2.51) is: stub, model file (`<repository>/<model>/<version>/model.py`), shared-memory
region, shm default size, shm growth size, the server's pid, backend dir, IPC handle, the instance name
(`<model>_<group>_<index>`), runtime dir. A process counts as a stub only when it is a direct child of the
server *and* names that server's pid there: a child a stub forks (`ldconfig`, `lscpu`) keeps the stub's
command line until it execs, but its parent is the stub.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

STUB_NAME = "triton_python_backend_stub"


_SHM_ARG, _SERVER_PID_ARG, _INSTANCE_ARG = 2, 5, 8


@dataclasses.dataclass(frozen=True)
class Stub:
    pid: int
    model: str
    shm_region: str  # its shared-memory file in /dev/shm, left behind if the server is killed
    instance: str = ""  # Triton's instance name, e.g. embed_0_2


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def parent_pids() -> dict[int, int]:
    """pid → parent pid of every live process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren, ...)."""
    parents = parent_pids()
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent == frontier[-1]]
        frontier.pop()
        found.extend(children)
        frontier.extend(children)
    return found


def parse_stub(pid: int, parent: int, args: list[str], server_pid: int) -> Stub | None:
    """The stub this process is, or None (not a stub, or not one of this server's own)."""
    if parent != server_pid or len(args) <= _INSTANCE_ARG or not args[0].endswith(STUB_NAME):
        return None
    if args[_SERVER_PID_ARG] != str(server_pid):
        return None
    return Stub(pid, Path(args[1]).parent.parent.name, args[_SHM_ARG], args[_INSTANCE_ARG])


def stubs(server_pid: int) -> list[Stub]:
    found = []
    for pid, parent in parent_pids().items():
        if parent == server_pid:
            stub = parse_stub(pid, parent, command_line(pid), server_pid)
            if stub is not None:
                found.append(stub)
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
