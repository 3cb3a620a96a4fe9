"""Keep a served tritonserver answering when one of its Python stubs dies.

Measured with Triton 2.51: when a model's stub process is killed (say, by the OOM killer), every
later request to that model fails with "Stub process '<model>_0_0' is not healthy" while the
server still reports the model ready; a stub killed during a model's first load (its config
auto-complete stub) leaves that load, and the server's startup, hung for good. Neither heals by
itself, so `serve` watches the stubs and restarts the server; clients retry through the restart
(they see UNAVAILABLE or "not healthy", both retried) and go on.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

from .triton import ServerError, TritonProcess, is_ready
from .stubs import remove_shm_regions, stubs

# How long a vanished stub may go unreplaced before it counts as dead (a reload replaces a stub
# within about 2 s here); also bounds how long a dead model fails requests before the restart.
DEFAULT_GRACE_S = 15.0
POLL_S = 0.5
# A graceful stop waits up to 30 s for open connections; clients retry anyway, so do not wait long.
RESTART_STOP_TIMEOUT_S = 5.0
# Restarts allowed while waiting to become ready, so a model that kills its stub on every load
# ends in an error instead of a restart loop.
MAX_STARTUP_RESTARTS = 2


class Supervisor:
    def __init__(self, server: TritonProcess, grace_s: float = DEFAULT_GRACE_S, startup_timeout: float = 600.0,
                 log=None):
        self.server = server
        self.grace_s = grace_s
        self.startup_timeout = startup_timeout
        self.restarts = 0
        self._log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self._stopping = False
        self._born: dict[int, tuple[str, float]] = {}  # live stub pid → (model, when first seen)
        self._latest_birth: dict[str, float] = {}  # model → when its newest stub was first seen
        self._vanished: list[tuple[str, float, float]] = []  # (model, first seen, gone since)
        self._regions: set[str] = set()  # shared-memory files of every stub seen since the last start

    def wait_ready(self, timeout: float) -> None:
        """Wait until the server is ready, restarting it if a stub dies while models load."""
        deadline = time.monotonic() + timeout
        startup_restarts = 0
        while not is_ready(self.server.options.http_url):
            if self.server.process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self.server.process.returncode} before it was "
                                  f"ready{self.server._log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"tritonserver was not ready after {timeout:.0f} s")
            dead = self.dead_models()
            if dead:
                if startup_restarts >= MAX_STARTUP_RESTARTS:
                    raise ServerError(f"the stub of model(s) {', '.join(dead)} died on every load")
                startup_restarts += 1
                self._restart(dead, wait=False)
            time.sleep(POLL_S)

    def watch(self) -> int:
        """Until the server exits (or stop()): restart it whenever a model's stub has died."""
        while self.server.process.poll() is None:
            time.sleep(POLL_S)
            dead = self.dead_models()
            if dead and not self._stopping:
                try:
                    self._restart(dead, wait=True)
                except ServerError as e:
                    self._log(f"triton-pooling: restart failed: {e}")
                    self.server.stop()
                    return 1
        return self.server.process.returncode

    def stop(self) -> None:
        self._stopping = True
        self.server.stop()

    def dead_models(self) -> list[str]:
        """Models with a stub that vanished, was not replaced by a newer one (as a reload or the
        load after config auto-complete do) and whose model was not unloaded, for over the grace period."""
        if self._stopping or self.server.process.poll() is not None:
            return []
        now = time.monotonic()
        found = stubs(self.server.process.pid)
        self._regions.update(s.shm_region for s in found)
        current = {s.pid: s.model for s in found}
        for pid, model in current.items():
            if pid not in self._born:
                self._born[pid] = (model, now)
                self._latest_birth[model] = now
        for pid in [p for p in self._born if p not in current]:
            model, born = self._born.pop(pid)
            self._vanished.append((model, born, now))
        loaded = self._loaded_models()
        self._vanished = [(m, born, gone) for m, born, gone in self._vanished
                          if self._latest_birth[m] <= born and (loaded is None or m in loaded)]
        return sorted({m for m, _, gone in self._vanished if now - gone > self.grace_s})

    def _loaded_models(self) -> set[str] | None:
        """Models the server has loaded or is loading; None while it cannot say (not serving yet)."""
        request = urllib.request.Request(f"http://{self.server.options.http_url}/v2/repository/index", data=b"{}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                index = json.load(response)
        except OSError:
            return None
        return {m["name"] for m in index if m.get("state") in ("READY", "LOADING")}

    def _restart(self, dead: list[str], wait: bool) -> None:
        self.restarts += 1
        self._log(f"triton-pooling: the Python stub of model(s) {', '.join(dead)} died; restarting tritonserver")
        self._born.clear()
        self._latest_birth.clear()
        self._vanished.clear()
        self.server.stop(timeout=RESTART_STOP_TIMEOUT_S)
        remove_shm_regions(self._regions)  # a killed server leaves them behind
        self._regions.clear()
        self.server.start()
        if wait:
            self.wait_ready(self.startup_timeout)
            self._log("triton-pooling: tritonserver restarted and ready")
