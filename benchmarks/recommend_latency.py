"""Latency of the schedule generator G(D, T) (``nasoa_lib.generator.recommend``) on the full grid.

For each profile: the generator grid of its ``generator:`` section (lrs x frozen stages x iteration
ladder) over every model the predictor knows at that scale (zoo size + baselines of the profile),
ranked by a real adaptive predictor (NASOA's L = 10 Hedge MLP; prediction cost does not depend on
its training), under a budget large enough that every grid point fits (the worst case). The time
table's costs only decide which points fit, so a uniform table is used. Reported: grid size and the
median / max wall-clock of ``recommend`` over repeats, on the threads of this process.
Writes ``reports/benchmarks/recommend_latency.csv``. Usage::

    python benchmarks/recommend_latency.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

from nasoa_lib.finetune import FinetuneSettings
from nasoa_lib.generator import FinetuneTimeTable, GeneratorConfig, RunCost, TaskFeatures, recommend
from nasoa_lib.online import make_predictor
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.profiles import load_profile
from nasoa_lib.zoo import zoo_name

OUT = REPORT_DIR / "benchmarks" / "recommend_latency.csv"


def measure(profile: str, repeats: int) -> dict:
    prof = load_profile(profile)
    config = GeneratorConfig.from_profile(prof)
    models = [zoo_name(i) for i in range(int(prof.sections["zoo"]["size"]))] + list(prof.sections["models"]["baselines"])
    table = FinetuneTimeTable("uniform", 32, prof.image_size, torch.get_num_threads(),
                              {(m, k): RunCost(m, k, 0.01, 0.0, 0, 0.0, 0.0, False)
                               for m in models for k in config.frozen_stages})
    zoo = {m: 0.5 for m in models}
    predictor = make_predictor("adaptive", models, seed=0)
    task = TaskFeatures("benchmark", 10, 500, 200, 0.5, 50)
    budget = 10.0 * config.ladder[-1]
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        rec = recommend(task, budget, zoo, predictor, table, config=config, settings=FinetuneSettings.from_profile(prof))
        times.append(time.perf_counter() - start)
    times = times[1:]  # the first call imports and warms up
    return {"profile": profile, "models": len(models), "grid_size": rec.grid_size, "repeats": repeats,
            "median_seconds": statistics.median(times), "max_seconds": max(times),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(p, args.repeats) for p in ("smoke", "laptop", "paper")]
    frame = pd.DataFrame(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False)
    for r in rows:
        print(f"{r['profile']:>6}: grid of {r['grid_size']:>6} regimes over {r['models']:>2} models ranked in "
              f"{r['median_seconds'] * 1e3:7.1f} ms (median of {r['repeats']}, max {r['max_seconds'] * 1e3:.1f} ms, "
              f"{r['threads']} threads)")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
