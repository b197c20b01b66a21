"""Throughput of the NAS evaluators (``nasoa_lib.search.evaluate_codes``): the search's worker pool
against serial evaluation, in one run (issue 17).

The same architectures (``--archs`` distinct codes of the profile's block space on its skeleton,
drawn with a fixed seed) are evaluated by two settings, each time into a fresh store, interleaved
in one process in ABBA order (``--repeats`` rounds; the median per setting is reported, so a
warm-up or a drift of the machine does not favour one setting):

* **serial**: one process using every core (``make_backend("serial", 1, cores)``);
* **search pool**: the profile's evaluators (``workers`` x ``threads_per_worker``), as notebooks
  02-03 run them.

Each evaluation is what the search does: the parent measures the step time (the pool idle), then
the feasible candidates proxy-train on the profile's proxy. Reported per setting: architectures
evaluated per hour (wall-clock, pool start-up included), the CPU utilisation of this process and
its workers (CPU seconds / (wall x cores); 1.0 = every core busy with our work) and the mean busy
share of each core during the run (system-wide, ``psutil``: another program on the machine counts
too, so run it on an idle machine), and the ratio to serial. Writes
``reports/benchmarks/search_throughput.csv``. Usage::

    python benchmarks/search_throughput.py [--profile laptop] [--archs 8] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch

from nasoa_lib import search
from nasoa_lib.measure import process_cpu_seconds
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.search.stages import block_space
from nasoa_lib.store import ArtifactStore

OUT = REPORT_DIR / "benchmarks" / "search_throughput.csv"


class CoreSampler:
    """Mean busy share of every core while it runs (``psutil.cpu_percent`` each ``period`` s)."""

    def __init__(self, period: float = 1.0) -> None:
        self.period, self.samples = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        psutil.cpu_percent(percpu=True)
        while not self._stop.wait(self.period):
            self.samples.append(psutil.cpu_percent(percpu=True))

    def __enter__(self) -> "CoreSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def per_core(self) -> list[float]:
        return list(np.mean(self.samples, axis=0) / 100) if self.samples else []


def evaluate(ctx: search.SearchContext, codes: list[str], root: Path, kind: str, workers: int, threads: int) -> dict:
    store = ArtifactStore(root)
    cfg = ctx.config
    wall0, cpu0 = time.perf_counter(), process_cpu_seconds()
    with CoreSampler() as sampler:
        backend = search.make_backend(kind, workers, threads)
        try:
            records, _ = search.evaluate_codes(codes, profile=ctx.profile, proxy=cfg.proxy, step=ctx.step,
                                               t_max_ms=cfg.t_max_ms, store=store, backend=backend,
                                               num_classes=ctx.num_classes, seed=0)
        finally:
            backend.close()
    wall, cpu = time.perf_counter() - wall0, process_cpu_seconds() - cpu0
    store.close()
    trained = [r for r in records if r["proxy_top1"] is not None]
    cores = os.cpu_count() or 1
    busy = sampler.per_core()
    return {"setting": f"{kind}: {workers} worker(s) x {threads} thread(s)", "kind": kind, "workers": workers,
            "threads_per_worker": threads, "architectures": len(records), "trained": len(trained),
            "wall_seconds": wall, "archs_per_hour": 3600 * len(records) / wall,
            "trained_per_hour": 3600 * len(trained) / wall, "cpu_utilisation": cpu / (wall * cores),
            "core_busy": " ".join(f"{b:.2f}" for b in busy), "min_core_busy": min(busy) if busy else np.nan,
            "mean_proxy_top1": float(np.mean([r["proxy_top1"] for r in trained])) if trained else np.nan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="laptop")
    parser.add_argument("--archs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2, help="ABBA rounds (each evaluates both settings)")
    parser.add_argument("--quick", action="store_true", help="4 architectures (for a shared CPU)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    n = 4 if args.quick else args.archs
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        ctx = search.SearchContext.create(args.profile, store=ArtifactStore(Path(tmp) / "codes"))
        codes = search.sample_distinct(block_space(ctx), n, np.random.default_rng(0), set())
        settings = [("serial", 1, cores), ("process", ctx.config.workers, ctx.config.threads_per_worker)]
        runs = []
        for round_ in range(args.repeats):
            for kind, workers, threads in (settings if round_ % 2 == 0 else settings[::-1]):
                runs.append({"round": round_, **evaluate(ctx, codes, Path(tmp) / f"{kind}{round_}", kind, workers,
                                                         threads)})
                r = runs[-1]
                print(f"round {round_} {r['setting']}: {r['architectures']} architectures ({r['trained']} trained) "
                      f"in {r['wall_seconds']:.0f} s -> {r['archs_per_hour']:.0f}/h, CPU utilisation "
                      f"{r['cpu_utilisation']:.0%}, cores busy {r['core_busy']}")
    every = pd.DataFrame(runs)
    numeric = ["wall_seconds", "archs_per_hour", "trained_per_hour", "cpu_utilisation", "min_core_busy", "mean_proxy_top1"]
    frame = every.groupby(["setting", "kind", "workers", "threads_per_worker", "architectures", "trained"],
                          sort=False)[numeric].median().reset_index()
    frame["rounds"] = args.repeats
    frame["archs_per_hour_each_round"] = [" ".join(f"{v:.0f}" for v in every[every.setting == s].archs_per_hour)
                                          for s in frame.setting]
    frame["ratio_to_serial"] = frame.archs_per_hour / frame.archs_per_hour.iloc[0]
    frame["profile"], frame["cores"], frame["torch"] = args.profile, cores, torch.__version__
    frame["codes"] = " ".join(codes)
    print(f"search pool / serial: {frame.ratio_to_serial.iloc[-1]:.2f}x architectures per hour")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
