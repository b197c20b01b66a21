"""WorkerPool: every job's result comes back once, under its index, with the threads asked for."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch

from nasoa_lib.errors import NasoaError
from nasoa_lib.parallel import WorkerPool

JOBS = [(3, 9), (7, 2), (5, 5), (1, 4)]


def _collect(pool: WorkerPool, fn, jobs) -> dict[int, object]:
    out: dict[int, object] = {}
    for i, result in pool.map_unordered(fn, jobs):
        assert i not in out, "an index came back twice"
        out[i] = result
    return out


def test_serial_pool_runs_in_order_with_pinned_threads_and_restores_them():
    before = torch.get_num_threads()
    threads = 1 if before != 1 else 2
    with WorkerPool("serial", workers=1, threads=threads) as pool:
        assert list(pool.map_unordered(max, JOBS)) == [(0, 9), (1, 7), (2, 5), (3, 4)]
        assert _collect(pool, torch.get_num_threads, [()] * 2) == {0: threads, 1: threads}
        assert list(pool.map_unordered(max, [])) == []
    assert torch.get_num_threads() == before


def test_process_pool_returns_every_result_from_spawned_workers():
    with WorkerPool("process", workers=2, threads=1) as pool:
        assert _collect(pool, max, JOBS) == {0: 9, 1: 7, 2: 5, 3: 4}
        pids = set(_collect(pool, os.getpid, [()] * 4).values())
        assert os.getpid() not in pids and 1 <= len(pids) <= 2
        assert set(_collect(pool, torch.get_num_threads, [()] * 2).values()) == {1}
    assert pool._pool is None  # closed on leaving the block


def test_bad_pool_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown pool kind"):
        WorkerPool("threads", 1, 1)
    with pytest.raises(ValueError, match=">= 1"):
        WorkerPool("process", 0, 1)


def test_ray_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(NasoaError, match="ray") as err:
        WorkerPool("process", 2, 1, address="local")
    assert "cluster" in err.value.hint


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed (the optional 'cluster' extra)")
def test_local_ray_pool_returns_every_result():
    with WorkerPool("ray", workers=2, threads=1) as pool:
        assert pool.address == "local"
        assert _collect(pool, max, JOBS) == {0: 9, 1: 7, 2: 5, 3: 4}
        assert set(_collect(pool, torch.get_num_threads, [()] * 2).values()) == {1}
    import ray

    assert not ray.is_initialized()  # the pool stops the instance it started


PARENT = """
import os, sys, time
from nasoa_lib.parallel import WorkerPool
pool = WorkerPool("process", workers=2, threads=1)
pids = sorted({pid for _, pid in pool.map_unordered(os.getpid, [()] * 4)})
print(" ".join(map(str, pids)), flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def _read_line(stream, timeout: float) -> str:
    """One line of ``stream``, or a test failure after ``timeout`` seconds (not a hung test)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        assert selector.select(timeout), f"no line within {timeout:g} s"
    return stream.readline()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_when_their_parent_is_killed_with_sigkill():
    import signal
    import subprocess
    import time

    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        workers = [int(p) for p in _read_line(parent.stdout, 120).split()]
        assert workers and all(_running(p) for p in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_running(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(p) for p in workers), "pool workers outlived their parent"
    finally:
        parent.kill()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
