"""Processes by identity: a pid with its start time, so that a pid the system gave to another
process since is never taken for the one recorded (the runner's kernels, a run folder's lock)."""

from __future__ import annotations

import os

__all__ = ["process_started", "same_process", "pid_alive"]


def process_started(pid: int | None) -> float | None:
    """A process's start time (with its pid, its identity), or None where psutil cannot say."""
    if not pid:
        return None
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def same_process(pid: int, started: float | None) -> bool:
    """Whether `pid` is still the process recorded with start time `started`."""
    now = process_started(pid)
    return now is not None and started is not None and abs(now - started) < 0.01


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` runs (whichever it is)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
