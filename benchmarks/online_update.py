"""Speed of the online accuracy predictor (``nasoa_lib.online``), measured in one run.

1. Online updates per second (predict, then one Hedge Backpropagation step) of the adaptive MLP
   (L = 10, a head per layer) vs a fixed L = 10 MLP, on the same rows, interleaved repeats; ratio
   (the issue's bar: the adaptive one costs at most ~2x). The other fixed depths for reference, and
   a textbook PyTorch per-sample SGD step of the fixed L = 10 MLP (autograd) as the baseline that
   motivated the hand-written numpy backward pass.
2. Prediction latency of the adaptive predictor for a generator grid of candidates (encoding
   included): several hundred to a few thousand rows, the bar is well under a second.

Inputs are valid meta-feature rows drawn at random (the cost does not depend on the values).
Writes ``reports/benchmarks/online_update.csv``. Usage::

    python benchmarks/online_update.py [--updates 2000] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from nasoa_lib.online import make_predictor
from nasoa_lib.paths import REPORT_DIR

OUT = REPORT_DIR / "benchmarks" / "online_update.csv"
MODELS = [f"model_{i}" for i in range(12)]


def random_rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "model": rng.choice(MODELS, n), "domain_similarity": rng.uniform(0.05, 1, n),
        "images_per_class": rng.integers(5, 500, n), "num_classes": rng.integers(2, 50, n),
        "source_accuracy": rng.uniform(0.2, 0.8, n), "iterations": rng.integers(10, 5000, n),
        "lr": 10 ** rng.uniform(-3, -1, n), "frozen_stages": rng.integers(0, 5, n),
    })


def ours(kind: str, depth: int, x: np.ndarray, y: np.ndarray) -> float:
    """Online updates per second of our predictor (encoded rows, as the stream evaluation feeds them)."""
    predictor = make_predictor(kind, MODELS, seed=0, depth=depth)
    start = time.perf_counter()
    for t in range(len(y)):
        predictor.learn_encoded(x[t], float(y[t]))
    return len(y) / (time.perf_counter() - start)


def torch_reference(depth: int, x: np.ndarray, y: np.ndarray) -> float:
    """Per-sample predict + SGD step of a fixed-depth MLP with autograd (float32, default init)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = x.shape[1]
    for _ in range(depth):
        layers += [nn.Linear(width, 64), nn.ReLU()]
        width = 64
    net = nn.Sequential(*layers, nn.Linear(64, 1))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    start = time.perf_counter()
    for t in range(len(y)):
        optimizer.zero_grad()
        loss = (net(xt[t:t + 1])[0, 0] - yt[t]).abs()
        loss.backward()
        optimizer.step()
    return len(y) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grid", type=int, nargs="+", default=[300, 600, 3000])
    parser.add_argument("--quick", action="store_true", help="fewer updates and repeats (for a shared CPU)")
    args = parser.parse_args()
    if args.quick:
        args.updates, args.repeats = 500, 3
    torch.set_num_threads(1)
    rows = random_rows(args.updates)
    encoder_probe = make_predictor("fixed", MODELS)
    x = encoder_probe.encoder.encode(rows)
    y = np.random.default_rng(1).uniform(0, 1, args.updates)

    settings = [("adaptive", 10), ("fixed", 10), ("fixed", 3), ("fixed", 6), ("fixed", 14)]
    rates: dict[str, list[float]] = {f"{k} L={d}": [] for k, d in settings}
    rates["torch autograd fixed L=10"] = []
    for _ in range(args.repeats):
        for kind, depth in settings:
            rates[f"{kind} L={depth}"].append(ours(kind, depth, x, y))
        rates["torch autograd fixed L=10"].append(torch_reference(10, x, y))
    base = statistics.median(rates["fixed L=10"])
    out = []
    for name, values in rates.items():
        rate = statistics.median(values)
        out.append({"benchmark": "online_update", "setting": name, "updates_per_second": rate,
                    "ratio_to_fixed_L10": rate / base, "seconds_per_update": 1.0 / rate})
        print(f"{name:>28}: {rate:8.0f} updates/s  (x{rate / base:.2f} of fixed L=10)")
    adaptive = statistics.median(rates["adaptive L=10"])
    print(f"adaptive L=10 costs {base / adaptive:.2f}x a fixed L=10 update (bar: <= ~2x)")

    predictor = make_predictor("adaptive", MODELS, seed=0)
    for n in args.grid:
        grid = random_rows(n, seed=n)
        times = []
        for _ in range(max(3, args.repeats)):
            start = time.perf_counter()
            predictor.predict(grid)
            times.append(time.perf_counter() - start)
        latency = statistics.median(times)
        out.append({"benchmark": "predict_grid", "setting": f"adaptive L=10, {n} candidates", "grid_rows": n,
                    "latency_seconds": latency})
        print(f"predict a grid of {n} candidates: {latency * 1000:.1f} ms")

    frame = pd.DataFrame(out)
    frame["updates"], frame["repeats"], frame["cores"] = args.updates, args.repeats, os.cpu_count()
    frame["torch"], frame["numpy"] = torch.__version__, np.__version__
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
