"""tritonserver's own words: its output is read from a pipe, passed on (to stderr, or to --log-file)
and its tail kept, so a failed start can say which model failed and why."""

from __future__ import annotations

import collections
import re
import sys
import threading
from pathlib import Path
from typing import IO

TAIL_LINES = 400
# Lines that carry a load failure: Triton's lifecycle error and its final model status table.
_FAILURE = re.compile(r"failed to load|UNAVAILABLE:|failed to|error:", re.IGNORECASE)


class ServerOutput:
    def __init__(self, log_path: Path | None = None, echo: IO[str] | None = None):
        self.log_path = log_path
        self._echo = echo if echo is not None else (None if log_path else sys.stderr)
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def follow(self, pipe: IO[bytes]) -> None:
        """Start reading one server process's output (a new one after each restart)."""
        thread = threading.Thread(target=self._pump, args=(pipe,), name="tritonserver-output", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _pump(self, pipe: IO[bytes]) -> None:
        sink = open(self.log_path, "a", encoding="utf-8", errors="replace") if self.log_path else None
        try:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._lock:
                    self._tail.append(line)
                if sink is not None:
                    sink.write(line + "\n")
                    sink.flush()
                elif self._echo is not None:
                    print(line, file=self._echo, flush=True)
        except (OSError, ValueError):  # pipe closed under us at shutdown
            pass
        finally:
            if sink is not None:
                sink.close()

    def drain(self, timeout: float = 2.0) -> None:
        """Wait (briefly) until the output of exited servers has been read."""
        for thread in self._threads:
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._tail)

    def failure_summary(self, max_lines: int = 40) -> str:
        """The server's lines that name a failure (each failed model and its reason), else its last lines."""
        self.drain()
        lines = self.lines()
        failures = [line for line in lines if _FAILURE.search(line)]
        chosen = (failures or lines)[-max_lines:]
        if not chosen:
            return ""
        where = f" (full log: {self.log_path})" if self.log_path else ""
        return f"; tritonserver said{where}:\n" + "\n".join(chosen)
