"""Refuse to start on a port somebody else already holds.

tritonserver fails to bind a taken port only after its models load, and meanwhile a readiness poll
would be answered by whatever already listens there; so `serve` checks its ports before starting.
"""

from __future__ import annotations

import socket

from .errors import ServerError


def port_in_use(host: str, port: int) -> bool:
    """True when binding host:port fails (someone listens there, or the address is not ours)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as tritonserver sets it: a port in TIME_WAIT after our own restart is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError:
            return True
    return False


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """`ports` maps a flag (e.g. "--http-port") to its port; the error names every taken one."""
    taken = [f"{flag} {port}" for flag, port in ports.items() if port_in_use(host, port)]
    if taken:
        raise ServerError(
            f"port(s) already in use on {host}: {', '.join(taken)} (another server listens there); "
            "stop it or pick free ports with those flags"
        )
    duplicates = {p for p in ports.values() if list(ports.values()).count(p) > 1}
    if duplicates:
        raise ServerError(f"the same port is given twice: {', '.join(f'{f} {p}' for f, p in ports.items() if p in duplicates)}")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free on `host` right now (for tests, benchmarks and local replicas)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
