"""Reading a child process's output with a deadline, for tests that start real processes: a child
stuck while importing on a loaded CI machine fails the test instead of hanging the suite."""

from __future__ import annotations

import selectors
import subprocess


def read_line(proc: subprocess.Popen, timeout: float = 120.0) -> str:
    """The next line ``proc`` writes to its (text-mode) stdout, stripped; fails after ``timeout`` s."""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            raise AssertionError(f"no output from the child process within {timeout:g} s")
    return proc.stdout.readline().strip()
