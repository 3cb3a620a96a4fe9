"""Keep `serve`'s gateway child listening. A gateway that exits (a crash, the OOM killer, `kill -9`) is
started again after a backoff that doubles with each exit; one that keeps exiting — MAX_EXITS exits within
WINDOW_S — is given up on with a ServerError, so `serve` stops everything and exits 1. Either way the port
never stays dead while `serve` says it is ready."""

from __future__ import annotations

import time
from typing import Callable

from .errors import ServerError
from .gateway_process import GatewayProcess

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)
MAX_EXITS = 5
WINDOW_S = 60.0


class GatewayKeeper:
    def __init__(self, gateway: GatewayProcess, log: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
                 backoff: tuple[float, ...] = BACKOFF_S, max_exits: int = MAX_EXITS, window_s: float = WINDOW_S):
        self.gateway = gateway
        self._log, self._clock = log, clock
        self._backoff, self._max_exits, self._window = backoff, max_exits, window_s
        self._exits: list[float] = []
        self._restart_at: float | None = None
        self.restarts = 0

    def check(self) -> None:
        """Called from the supervisor's loop; never blocks (a due restart only starts the process)."""
        now = self._clock()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                self.gateway.start()
                self.restarts += 1
                self._log(f"triton-pooling: gateway restarted (pid {self.gateway.process.pid}) at {self.gateway.url}")
            return
        code = self.gateway.process.poll()
        if code is None:
            return
        self._exits = [t for t in self._exits if now - t < self._window] + [now]
        if len(self._exits) >= self._max_exits:
            raise ServerError(f"the gateway at {self.gateway.url} exited {len(self._exits)} times within "
                              f"{self._window:.0f} s (last exit code {code}); giving up")
        delay = self._backoff[min(len(self._exits) - 1, len(self._backoff) - 1)]
        self._log(f"triton-pooling: the gateway at {self.gateway.url} exited with code {code}; "
                  f"restarting it in {delay:g} s")
        self._restart_at = now + delay
