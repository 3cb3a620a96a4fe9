"""Linux /proc readings for exposure tests: the TCP sockets a process listens on."""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
from pathlib import Path

_LISTEN = "0A"  # TCP state code of a listening socket in /proc/net/tcp


@dataclasses.dataclass(frozen=True)
class Listener:
    address: str
    port: int


def listening_sockets(pid: int) -> list[Listener]:
    """TCP sockets `pid` listens on, with the address each is bound to."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listeners = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and inode in inodes:
                address, port = local.split(":")
                listeners.append(Listener(_address(address, family), int(port, 16)))
    return listeners


def _address(hex_address: str, family: int) -> str:
    """/proc/net/tcp* print addresses as native-endian 32-bit words in hex."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(struct.pack("=I", int.from_bytes(raw[i:i + 4], "big")) for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)
