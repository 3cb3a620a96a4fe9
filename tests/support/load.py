"""A closed-loop load generator that accounts for every request: answered, errored, mismatched or lost.

Each worker thread sends one request at a time; `check` compares an answer with the one known
to be right (a single-request answer taken beforehand). A request whose worker has not come
back by the time the run is joined is *lost* (it hung).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections import Counter
from typing import Callable

# A request: given its sequence number, send it and return True if the answer was right,
# False if it was wrong; raise if the server answered with an error.
Request = Callable[[int], bool]


@dataclasses.dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    errored: int = 0
    mismatched: int = 0
    lost: int = 0
    errors: Counter = dataclasses.field(default_factory=Counter)
    # (seconds since start, True if answered right) per finished request, in finishing order
    timeline: list[tuple[float, bool]] = dataclasses.field(default_factory=list)

    def first_success_after(self, t: float) -> float | None:
        return next((at for at, ok in self.timeline if at >= t and ok), None)

    def summary(self) -> str:
        top = "; ".join(f"{n} x {m[:120]}" for m, n in self.errors.most_common(3))
        return (f"sent {self.sent}, answered {self.answered}, errored {self.errored}, lost {self.lost}, "
                f"mismatched {self.mismatched}" + (f" (errors: {top})" if top else ""))


class Load:
    """`threads` workers sending `request` back to back until stop()."""

    def __init__(self, request: Request, threads: int, classify_error: Callable[[Exception], str] = str):
        self._request = request
        self._classify_error = classify_error
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]
        self.tally = Tally()
        self.started = 0.0

    def start(self) -> "Load":
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stop(self, join_timeout: float = 120.0) -> Tally:
        """Stop sending; every request still out gets `join_timeout` seconds to end, else it is lost."""
        self._stop.set()
        deadline = time.monotonic() + join_timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            finished = self.tally.answered + self.tally.errored + self.tally.mismatched
            self.tally.lost = self.tally.sent - finished
            return self.tally

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                number = next(self._numbers)
                self.tally.sent += 1
            try:
                right = self._request(number)
                error = None
            except Exception as e:  # noqa: BLE001  (every failure is counted, by message)
                right, error = False, self._classify_error(e)
            with self._lock:
                if error is not None:
                    self.tally.errored += 1
                    self.tally.errors[error] += 1
                elif right:
                    self.tally.answered += 1
                else:
                    self.tally.mismatched += 1
                self.tally.timeline.append((self.elapsed(), error is None and right))
