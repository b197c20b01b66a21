"""One way to run independent training jobs in parallel: in-process, a local pool, or Ray.

The NAS search (proxy trainings) and the meta-dataset collector (fine-tuning runs) both hand
out many independent, CPU-bound torch jobs. :class:`WorkerPool` runs them and yields
``(index, result)`` as each finishes:

* ``"serial"``: in this process with ``threads`` torch threads (restored afterwards);
* ``"process"``: ``workers`` *spawned* processes (a forked torch runtime can deadlock), each
  pinned to ``threads`` torch threads so the pool never oversubscribes the cores; the pool is
  kept between calls, so a search pays the interpreter start-up once, not every generation.
  Workers die with their parent, even one killed by ``kill -9`` (a thread in each worker polls
  its parent's pid; not ``PR_SET_PDEATHSIG``, which fires when the *thread* that started the
  worker exits, so a pool used from a non-main thread would lose healthy workers), so an
  interrupted notebook never leaves ~1 GB workers running;
* ``"ray"``: Ray tasks with ``num_cpus=threads``. ``address`` goes to ``ray.init``; ``"local"``
  starts a one-machine instance (Ray 2.x removed ``local_mode``; this runs the same code path
  without a cluster). Ray is imported only here (the optional ``cluster`` extra).

Job functions must be importable top-level functions (they are pickled by reference).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence

from nasoa_lib.device import pinned_threads, set_threads
from nasoa_lib.errors import InvalidParallelSetup, NasoaError

KINDS = ("serial", "process", "ray")


def init_worker(threads: int) -> None:
    """Start-up of a pool process or Ray task: pin torch threads, keep worker logs quiet."""
    set_threads(threads)
    logging.basicConfig(level=logging.WARNING)


PARENT_POLL_S = 1.0


def _die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` does (the parent's death is otherwise unnoticed
    by an idle worker, which is re-parented and lives on): a daemon thread polls the parent pid
    every :data:`PARENT_POLL_S` seconds, also when the parent died before the thread started."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="nasoa-parent-watch", daemon=True).start()


def _init_pool_worker(threads: int, parent_pid: int) -> None:
    """Start-up of a local pool process: die with the parent, then :func:`init_worker`."""
    _die_with_parent(parent_pid)
    init_worker(threads)


def _in_worker(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    init_worker(threads)
    return fn(*args)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise NasoaError(
            "running on a Ray cluster needs the 'ray' package",
            hint="pip install -e '.[cluster]' (or pip install ray), or leave the cluster address unset "
            "to use the local process pool",
        ) from err
    return ray


class WorkerPool:
    """Runs ``fn(*job)`` for each job; see the module docstring for the three kinds."""

    def __init__(self, kind: str, workers: int, threads: int, address: str | None = None) -> None:
        if address is not None:
            kind = "ray"
        if kind not in KINDS:
            raise InvalidParallelSetup(f"unknown pool kind {kind!r}; use one of {', '.join(KINDS)}",
                                       hint="pass kind='serial', 'process' or 'ray' (or a Ray address)")
        if workers < 1 or threads < 1:
            raise InvalidParallelSetup(f"workers and threads must be >= 1, got {workers} and {threads}",
                                       hint="set workers and threads (per worker) to 1 or more, e.g. in the profile")
        self.kind, self.workers, self.threads = kind, workers, threads
        self.address = (address or "local") if kind == "ray" else None
        self._pool: ProcessPoolExecutor | None = None
        self._ray: Any = None
        self._started_ray = False
        if kind == "ray":
            self._ray = _import_ray()

    def _started(self) -> Any:
        """Ray, initialised on first use (connecting to a cluster costs seconds; no jobs, no cost)."""
        ray = self._ray
        if not ray.is_initialized():
            if self.address == "local":
                ray.init(num_cpus=self.workers * self.threads, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
            self._started_ray = True
        return ray

    def map_unordered(self, fn: Callable[..., Any], jobs: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, fn(*jobs[i]))`` in completion order (job order for ``"serial"``)."""
        if not jobs:
            return
        if self.kind == "serial":
            with pinned_threads(self.threads):
                for i, args in enumerate(jobs):
                    yield i, fn(*args)
        elif self.kind == "process":
            pool = self._executor()
            futures = {pool.submit(fn, *args): i for i, args in enumerate(jobs)}
            for future in as_completed(futures):
                yield futures[future], future.result()
        else:
            ray = self._started()
            remote = ray.remote(num_cpus=self.threads)(_in_worker)
            refs = {remote.remote(self.threads, fn, *args): i for i, args in enumerate(jobs)}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield refs[ref], ray.get(ref)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_pool_worker, initargs=(self.threads, os.getpid()),
            )
        return self._pool

    def close(self) -> None:
        """Stop the pool's processes (waiting for none that is not yet started) or our Ray instance."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
