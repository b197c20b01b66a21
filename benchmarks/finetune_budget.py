"""Does ``nasoa finetune --budget T`` keep its budget? End to end, as a practitioner runs it.

For each dataset (a seeded subset of a prepared dataset written as a user ``.npz``) and each budget
T, the command runs as a subprocess (``nasoa finetune --profile P --data X.npz --budget T --out
tmp``), timed from process start to exit (interpreter start, imports, data, service, domain
similarity, recommendation, pretrained network, training, evaluation, saving, interpreter exit).
The command's own reported wall-clock (its ``wall-clock ... of budget ...`` line, counted from when
it begins work) is parsed too. Reported: both against T, and whether the process kept the promise
wall-clock <= 1.1 x T + 2 s (:class:`nasoa_lib.generator.timing.Deadline`). A budget the command
refuses (``BudgetTooSmallError``: the start-up already left too little) counts as kept when it
exits within the same bound; its row says ``refused``.

Needs an artifact store with the profile's zoo, pretrained zoo weights, the reference network and
the online predictor, given by ``NASOA_STORE`` (the runs update its ``service`` predictor and may
add this device's fine-tuning time table, so point it at a copy). Build one with::

    NASOA_STORE=/tmp/nasoa-store nasoa reproduce --profile smoke --only 00,01,02,03,04,05,06

Writes ``reports/benchmarks/finetune_budget.csv``. Usage::

    NASOA_STORE=/tmp/nasoa-store python benchmarks/finetune_budget.py [--budgets 3 5 10 20 45]
        [--datasets brain_mri trashnet dtd10] [--train-images 400] [--test-images 100]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nasoa_lib.data import load_dataset
from nasoa_lib.device import describe_device
from nasoa_lib.generator.budget import parse_budget
from nasoa_lib.generator.timing import TOLERANCE_FACTOR, TOLERANCE_SECONDS
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.profiles import load_profile

OUT = REPORT_DIR / "benchmarks" / "finetune_budget.csv"
NASOA = [sys.executable, "-m", "nasoa_lib.cli"]
_WALL = re.compile(r"^wall-clock (.+) of budget (.+): (.+)$", re.M)
_STOPPED = re.compile(r"training stopped after (\d+) of (\d+) planned steps")


def user_npz(name: str, train: int, test: int, folder: Path, seed: int = 0) -> Path:
    """A seeded subset of a prepared dataset in the user ``.npz`` format."""
    data = load_dataset(name)
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.permutation(len(data.y_train))[:train])
    te = np.sort(rng.permutation(len(data.y_test))[:test])
    path = folder / f"{name}.npz"
    np.savez(path, x_train=data.x_train[tr], y_train=data.y_train[tr], x_test=data.x_test[te],
             y_test=data.y_test[te], class_names=np.array(data.class_names))
    return path


def run_once(profile: str, data: Path, budget: float, out: Path) -> dict:
    """One ``nasoa finetune`` process: its wall-clock, exit code and what it reported."""
    cmd = [*NASOA, "finetune", "--profile", profile, "--data", str(data), "--budget", f"{budget:g}s",
           "--out", str(out), "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20 * budget + 300)
    process = time.perf_counter() - start
    found = _WALL.search(proc.stdout)
    stopped = _STOPPED.search(proc.stdout)
    error = next((line[len("error: "):] for line in proc.stderr.splitlines() if line.startswith("error: ")), "")
    if proc.returncode not in (0, 2) or (proc.returncode == 2 and not error):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"exit_code": proc.returncode, "process_seconds": process,
            "reported_seconds": parse_budget(found.group(1).replace(" ", "")) if found else np.nan,
            "verdict": found.group(3) if found else "refused: " + error[:120],
            "stopped_early": bool(stopped), "steps": int(stopped.group(1)) if stopped else np.nan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--budgets", type=float, nargs="+", default=[3.0, 5.0, 10.0, 20.0, 45.0])
    parser.add_argument("--datasets", nargs="+", default=["brain_mri", "trashnet", "dtd10"])
    parser.add_argument("--train-images", type=int, default=400)
    parser.add_argument("--test-images", type=int, default=100)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not os.environ.get("NASOA_STORE"):
        parser.error("set NASOA_STORE to a copy of a store holding the zoo and the predictor (see the docstring)")
    prof = load_profile(args.profile)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {name: user_npz(name, args.train_images, args.test_images, folder) for name in args.datasets}
        # two untimed runs first: the first measures this device's time table if the store lacks it,
        # the second times the domain similarity's start-up once (what later runs plan with)
        for _ in range(2):
            run_once(args.profile, files[args.datasets[0]], max(args.budgets), folder / "warm-up")
        for name, path in files.items():
            for budget in args.budgets:
                result = run_once(args.profile, path, budget, folder / f"{name}-{budget:g}")
                limit = TOLERANCE_FACTOR * budget + TOLERANCE_SECONDS
                row = {"dataset": name, "train_images": args.train_images, "test_images": args.test_images,
                       "budget_seconds": budget, **result, "process_ratio": result["process_seconds"] / budget,
                       "reported_ratio": result["reported_seconds"] / budget, "limit_seconds": limit,
                       "kept": result["process_seconds"] <= limit}
                rows.append(row)
                print(f"{name:<10} T={budget:>5g}s  process {row['process_seconds']:6.1f}s "
                      f"(x{row['process_ratio']:.2f})  reported {row['reported_seconds']:6.1f}s  "
                      f"limit {limit:5.1f}s  {'kept' if row['kept'] else 'NOT KEPT'}  [{row['verdict']}]")
    frame = pd.DataFrame(rows)
    frame["machine"], frame["profile"], frame["threads"] = describe_device(), args.profile, prof.threads
    frame["cores"], frame["torch"] = os.cpu_count() or 1, torch.__version__
    print(f"kept {int(frame.kept.sum())} of {len(frame)} (<= {TOLERANCE_FACTOR:g} x T + {TOLERANCE_SECONDS:g} s); "
          f"worst process/limit {float((frame.process_seconds / frame.limit_seconds).max()):.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
