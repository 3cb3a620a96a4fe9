"""Stopping a child the launcher started in its own session (tritonserver, the gateway)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(process: subprocess.Popen, graceful: signal.Signals, timeout: float) -> None:
    """Ask `process` to stop with `graceful`, wait up to `timeout`, then SIGKILL its whole process group:
    whatever it started (Triton's Python stubs) may not outlive it."""
    if process.poll() is None:
        process.send_signal(graceful)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
