"""Throughput of the fine-tuning engine (``nasoa_lib.finetune``), measured in one run.

1. ``finetune`` vs a textbook PyTorch loop (``DataLoader`` over a ``TensorDataset``,
   ``model.train()``, SGD step) on the same task, model, batch and step count: images/s and ratio.
2. Frozen stages ``k = 0..4``: images/s of ``finetune`` (frozen-prefix cache on "auto", and off),
   ratio to ``k = 0``.
3. Parallel runs on the CPU: 1 process x all threads vs ``cores`` processes x 1 thread, as
   fine-tuning runs finished per second (the choice behind ``finetune.worker_threads``).

Writes ``reports/benchmarks/finetune_throughput.csv``. Usage::

    python benchmarks/finetune_throughput.py [--model resnet18] [--iterations 40] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nasoa_lib.data import sample_task, to_tensor
from nasoa_lib.finetune import Regime, finetune, worker_threads
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.train import build_model

OUT = REPORT_DIR / "benchmarks" / "finetune_throughput.csv"


def reference_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, iterations: int, lr: float) -> float:
    """Textbook loop; returns training images/s (the same step count as ours)."""
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    done = 0
    start = time.perf_counter()
    while done < iterations:
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            done += 1
            if done == iterations:
                break
    return done * batch / (time.perf_counter() - start)


def ours(task, model_name: str, regime: Regime, cache="auto") -> float:
    result = finetune(None, task, regime, model=model_name, seed=0, cache_frozen=cache)
    return result.steps * min(regime.batch_size, len(task.y_train)) / result.train_seconds


def _worker(args: tuple) -> float:
    threads, model_name, runs, iterations, batch = args
    torch.set_num_threads(threads)
    task = sample_task("cifar10", 10, 50, seed=0, test_per_class=20)
    start = time.perf_counter()
    for seed in range(runs):
        finetune(None, task, Regime(lr=0.01, iterations=iterations, batch_size=batch), model=model_name, seed=seed)
    return time.perf_counter() - start


def parallel_throughput(model_name: str, processes: int, threads: int, runs_per_process: int, iterations: int, batch: int) -> float:
    """Fine-tuning runs finished per second with ``processes`` workers of ``threads`` threads."""
    ctx = mp.get_context("spawn")
    start = time.perf_counter()
    with ctx.Pool(processes) as pool:
        pool.map(_worker, [(threads, model_name, runs_per_process, iterations, batch)] * processes)
    return processes * runs_per_process / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer steps and runs (for a shared CPU)")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.repeats = 20, 2
    cores = os.cpu_count() or 1
    threads = worker_threads(1)
    torch.set_num_threads(threads)
    rows = []
    task = sample_task("cifar10", 10, 100, seed=0, test_per_class=20)
    regime = Regime(lr=0.01, iterations=args.iterations, batch_size=args.batch)

    x = to_tensor(task.x_train, 32)
    y = torch.as_tensor(task.y_train)
    ref, our = [], []
    for rep in range(args.repeats):
        torch.manual_seed(rep)
        ref.append(reference_loop(build_model(args.model, task.num_classes), x, y, args.batch, args.iterations, 0.01))
        our.append(ours(task, args.model, regime))
    ref_ips, our_ips = statistics.median(ref), statistics.median(our)
    rows += [
        {"benchmark": "loop", "setting": "reference DataLoader loop", "images_per_second": ref_ips, "ratio": 1.0},
        {"benchmark": "loop", "setting": "nasoa finetune (k=0)", "images_per_second": our_ips, "ratio": our_ips / ref_ips},
    ]
    print(f"loop: ours {our_ips:.0f} img/s vs reference {ref_ips:.0f} img/s -> ratio {our_ips / ref_ips:.2f}")

    base = None
    for k in range(5):
        for cache in ("auto", False):
            r = Regime(lr=0.01, iterations=args.iterations, batch_size=args.batch, frozen_stages=k)
            ips = statistics.median(ours(task, args.model, r, cache) for _ in range(args.repeats))
            if k == 0 and cache == "auto":
                base = ips
            if k == 0 and cache is False:
                continue
            rows.append({"benchmark": "frozen_stages", "setting": f"k={k} cache={cache}",
                         "images_per_second": ips, "ratio": ips / base})
            print(f"frozen k={k} cache={cache}: {ips:.0f} img/s, x{ips / base:.2f} vs k=0")

    runs, iters = (2, 15) if args.quick else (3, 25)
    one = parallel_throughput(args.model, 1, cores, runs * cores, iters, args.batch)
    many = parallel_throughput(args.model, cores, 1, runs, iters, args.batch)
    rows += [
        {"benchmark": "parallel", "setting": f"1 process x {cores} threads", "runs_per_second": one, "ratio": 1.0},
        {"benchmark": "parallel", "setting": f"{cores} processes x 1 thread", "runs_per_second": many, "ratio": many / one},
    ]
    print(f"parallel: 1x{cores} {one:.3f} runs/s, {cores}x1 {many:.3f} runs/s -> ratio {many / one:.2f}")

    frame = pd.DataFrame(rows)
    frame["model"], frame["batch"], frame["iterations"] = args.model, args.batch, args.iterations
    frame["cores"], frame["torch"] = cores, torch.__version__
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
