"""Keep a served tritonserver answering when one of its Python stubs dies.

Measured with Triton 2.51: when a model instance's stub process dies (the OOM killer, a segfault in
a native library), every request routed to that instance fails with "Stub process '<instance>' is
not healthy" while the server still reports the model ready. It never heals by itself.

The supervisor knows each stub by identity (its instance name, and the server pid it was started
for; see stubs.py) — never by guessing from process ages. An instance whose stub is gone, with no
other stub of that name alive, is dead once the server confirms its model is READY and has fewer
live instances than its config asks for. The cure is to reload just that model through the
repository API (Triton starts a fresh set of instances and swaps them in while the survivors keep
serving); only if that fails is the whole server restarted. Clients retry meanwhile ("not healthy"
and UNAVAILABLE are both retried by triton_pooling's client).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Iterable

from .errors import ServerError
from .repository import RepositoryAPI
from .stubs import Stub, remove_shm_regions, stubs
from .triton import TritonProcess

POLL_S = 0.25
# A stub missing this long with no namesake alive counts as gone (a reload starts the new
# instance's stub before the old one exits, so a reload never leaves a name missing).
DEFAULT_GRACE_S = 0.75
RELOAD_TIMEOUT_S = 300.0
# A graceful stop waits for open connections; clients retry anyway, so a restart does not wait long.
RESTART_STOP_TIMEOUT_S = 5.0


class InstanceTracker:
    """Which model instances have lost their stub: pure bookkeeping over successive /proc readings."""

    def __init__(self, grace_s: float = DEFAULT_GRACE_S):
        self.grace_s = grace_s
        self._model_of: dict[str, str] = {}  # instance name → model, for every instance seen alive
        self._missing_since: dict[str, float] = {}

    def update(self, found: Iterable[Stub], now: float) -> dict[str, list[str]]:
        """model → its instances missing for longer than the grace period."""
        alive = {s.instance: s.model for s in found if s.instance}
        self._model_of.update(alive)
        for name in alive:
            self._missing_since.pop(name, None)
        for name in self._model_of:
            if name not in alive:
                self._missing_since.setdefault(name, now)
        gone: dict[str, list[str]] = {}
        for name, since in self._missing_since.items():
            if now - since > self.grace_s:
                gone.setdefault(self._model_of[name], []).append(name)
        return {model: sorted(names) for model, names in gone.items()}

    def live_count(self, found: Iterable[Stub], model: str) -> int:
        return len({s.instance for s in found if s.model == model})

    def forget(self, model: str) -> None:
        """Drop a model's instances (unloaded on purpose, or reloaded: its new stubs are seen afresh)."""
        for name in [n for n, m in self._model_of.items() if m == model]:
            del self._model_of[name]
            self._missing_since.pop(name, None)

    def reset(self) -> None:
        self._model_of.clear()
        self._missing_since.clear()


class Supervisor:
    def __init__(self, server: TritonProcess, should_stop: Callable[[], bool] = lambda: False,
                 grace_s: float = DEFAULT_GRACE_S, startup_timeout: float = 600.0, log=None):
        self.server = server
        self.should_stop = should_stop
        self.startup_timeout = startup_timeout
        self.repository = RepositoryAPI(server.options)
        self.tracker = InstanceTracker(grace_s)
        self.reloads = 0
        self.restarts = 0
        self._log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self._regions: set[str] = set()  # shared-memory files of every stub seen since the last start

    def wait_ready(self) -> None:
        """Until the server is ready; a server that exits first raises with its own words. The stubs alive
        at that moment are the instances to keep alive (one that dies before the first watch is still seen)."""
        self.server.wait_ready(self.startup_timeout, self.should_stop)
        if self.server.running():
            self.tracker.update(stubs(self.server.process.pid), time.monotonic())

    def watch(self, also: Callable[[], None] = lambda: None) -> int:
        """Until the server exits or a stop is asked for: heal any model whose instance died. `also` runs on
        every poll (serve's gateway keeper); a ServerError it raises ends the watch."""
        while not self.should_stop():
            also()
            if not self.server.running():
                self._log(f"triton-pooling: tritonserver exited with code {self.server.process.returncode}"
                          f"{self.server.output.failure_summary()}")
                return self.server.process.returncode or 1
            for model, instances in self.dead_instances().items():
                self.heal(model, instances)
            time.sleep(POLL_S)
        return 0

    def dead_instances(self) -> dict[str, list[str]]:
        found = stubs(self.server.process.pid)
        self._regions.update(s.shm_region for s in found)
        gone = self.tracker.update(found, time.monotonic())
        if not gone:
            return {}
        states = self.repository.states()
        if states is None:
            return {}
        dead = {}
        for model, instances in gone.items():
            expected = self.repository.configured_instances(model)
            if states.get(model) == "READY" and expected is not None and self.tracker.live_count(found, model) < expected:
                dead[model] = instances
            elif states.get(model) != "LOADING":  # unloaded or reloaded on purpose: not ours to heal
                self.tracker.forget(model)
        return dead

    def heal(self, model: str, instances: list[str]) -> None:
        started = time.monotonic()
        self._log(f"triton-pooling: the Python stub of {', '.join(instances)} (model {model!r}) died; "
                  f"reloading {model!r}")
        self.tracker.forget(model)
        error = self._unless_stopped(lambda: self.repository.load(model, RELOAD_TIMEOUT_S))
        if error is None:
            self.reloads += 1
            self._log(f"triton-pooling: model {model!r} reloaded in {time.monotonic() - started:.1f} s")
            return
        if self.should_stop():
            return
        self._log(f"triton-pooling: {error}; restarting tritonserver")
        self.restart()

    def restart(self) -> None:
        self.restarts += 1
        self.tracker.reset()
        self.server.stop(timeout=RESTART_STOP_TIMEOUT_S)
        self.cleanup_shared_memory()
        self.server.start()
        self.wait_ready()
        self._log("triton-pooling: tritonserver restarted and ready")

    def stop(self) -> None:
        if self.server.process is not None and self.server.running():
            self._regions.update(s.shm_region for s in stubs(self.server.process.pid))
        self.server.stop()
        self.cleanup_shared_memory()

    def cleanup_shared_memory(self) -> None:
        """A killed server leaves its stubs' regions in /dev/shm (a graceful stop removes them)."""
        remove_shm_regions(self._regions)
        self._regions.clear()

    def _unless_stopped(self, call: Callable[[], None]) -> Exception | None:
        """Run a blocking call in a thread so a stop request is not held up by it; its error, if any."""
        outcome: dict[str, Exception | None] = {}

        def target():
            try:
                call()
                outcome["error"] = None
            except Exception as e:  # noqa: BLE001  (reported to the caller)
                outcome["error"] = e

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        while thread.is_alive() and not self.should_stop():
            thread.join(POLL_S)
        if thread.is_alive():
            return ServerError("stopped while reloading")
        return outcome["error"]
