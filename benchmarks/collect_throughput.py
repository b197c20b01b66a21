"""Throughput of the meta-dataset collector (``nasoa_lib.metadata.collect``), 1 vs 2 workers in one run.

The same runs (indices ``0 .. N-1`` of one collection, the laptop profile's sampling ranges and
fine-tuning batch) are collected twice into two fresh stores: once by one in-process worker using
every core, once by a pool of ``cores`` spawned workers with one thread each (the profile default).
Reported per setting: runs per hour (wall-clock, pool start-up included), CPU utilisation (worker
CPU seconds / (wall x cores)), and the ratio to the single worker.

Models are pretrained with the smoke recipe (a few seconds; fine-tuning cost does not depend on the
weights), so the benchmark needs no laptop store. Writes ``reports/benchmarks/collect_throughput.csv``.
Usage::

    python benchmarks/collect_throughput.py [--runs 30] [--models resnet18 mobilenet_v3_small] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd
import torch

from nasoa_lib import metadata as md
from nasoa_lib import metafeatures as mf
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.profiles import load_profile
from nasoa_lib.store import ArtifactStore
from nasoa_lib.train import pretrain

OUT = REPORT_DIR / "benchmarks" / "collect_throughput.csv"


def benchmark_profile():
    """The smoke profile (fast pretraining, same name in spawned workers) with the laptop profile's
    fine-tuning batch and meta-dataset sampling ranges."""
    smoke, laptop = load_profile("smoke"), load_profile("laptop")
    return smoke.with_sections_from(laptop, "finetune", "metadata")


def prepared_store(root: Path, prof, models: list[str]) -> ArtifactStore:
    store = ArtifactStore(root)
    reference = pretrain(mf.MetaFeatureConfig.from_profile(prof).reference_model, profile=prof, store=store,
                         progress=False)
    for name in models:
        pretrain(name, profile=prof, store=store, progress=False)
    for name in (prof.source_dataset, *prof.meta_train):
        mf.dataset_class_features(name, prof, store, reference=reference)
    store.close()
    conn = sqlite3.connect(store.db_path)
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    conn.close()
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--models", nargs="+", default=["resnet18", "mobilenet_v3_small", "regnet_y_400mf"])
    parser.add_argument("--quick", action="store_true", help="12 runs (for a shared CPU)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    runs = 12 if args.quick else args.runs
    cores = os.cpu_count() or 1
    prof = benchmark_profile()
    config = dataclasses.replace(md.MetaDatasetConfig.from_profile(prof), baselines=tuple(args.models), zoo=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="collect-bench-") as tmp:
        base = prepared_store(Path(tmp) / "base", prof, args.models)
        for workers in (1, cores):
            root = Path(tmp) / f"workers{workers}"
            shutil.copytree(base.root, root)
            summary = md.collect(prof, runs, store=ArtifactStore(root), config=config, workers=workers, progress=False)
            rows.append({"setting": f"{workers} worker(s) x {summary.threads_per_worker} thread(s)",
                         "workers": workers, "threads_per_worker": summary.threads_per_worker,
                         "runs": summary.collected, "wall_seconds": summary.wall_seconds,
                         "runs_per_hour": summary.runs_per_hour, "cpu_utilisation": summary.cpu_utilisation})
            print(f"{rows[-1]['setting']}: {summary.collected} runs in {summary.wall_seconds:.1f} s -> "
                  f"{summary.runs_per_hour:.0f} runs/h, CPU utilisation {summary.cpu_utilisation:.0%}")
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame.runs_per_hour / frame.runs_per_hour.iloc[0]
    frame["models"], frame["cores"], frame["torch"] = " ".join(args.models), cores, torch.__version__
    print(f"ratio {cores} workers / 1 worker: {frame.ratio.iloc[-1]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
