"""End-to-end latency of ``nasoa recommend`` (process start to answer), with its imports split out.

What a practitioner waits for: ``nasoa recommend --profile smoke --data <1,000-image folder>
--budget 30s`` in a fresh process. The folder is an ImageFolder (``<class>/<i>.png``) written from
a prepared dataset's ``.npz`` (default ``cifar10``: 10 classes x 100 training images, stratified).
Measured in one run, interleaved round by round so the load of a shared machine hits every row alike:

* ``end_to_end``: the ``nasoa`` console script in a subprocess, until it exits with the answer;
* ``imports_only``: a subprocess that imports exactly the top-level modules the command imported
  (read once from ``python -X importtime``), in the same order, and nothing else;
* ``python_startup``: ``python -c pass`` (the floor of any process);
* ``error_*``: the same command with a bad ``--budget`` and with a missing ``--data`` (they should
  answer before any heavy import), and ``nasoa --help``;
* ``import <package>``: the first-import cost of torch, torchvision, POT (``ot``, which pulls in
  scikit-learn) and pandas inside the command, from ``-X importtime`` (cumulative microseconds of
  each package's first import; that flag adds a little overhead of its own);
* ``in_process``: the same command's work in this process after a first call: ``cold_first_call``
  (imports included), ``warm_call`` (``cli.main`` again), and the warm phases (read the images,
  open the service, meta-features + ranking);
* ``before: ...`` (with ``--before-tree DIR``): the subprocess rows again with ``PYTHONPATH=DIR``,
  an earlier version of the library in the same run, e.g. from
  ``git archive <commit> nasoa_lib configs data_manifests | tar -x -C DIR``.

Ratios: ``share_of_end_to_end`` = median / median of ``end_to_end`` (same run). The first
command run is a warm-up that is not counted (on a new device it also measures the fine-tuning time
table, which the store then keeps).

The store is the one named by ``NASOA_STORE`` (the profile's folder under it). Build a smoke store
with the zoo, the reference network and the ``adaptive`` predictor by::

    NASOA_STORE=/tmp/nasoa-store nasoa reproduce --profile smoke --only 00,01,02,03,04,05,06

Writes ``reports/benchmarks/recommend_latency.csv``. Usage::

    NASOA_STORE=/tmp/nasoa-store python benchmarks/recommend_latency.py [--repeats 5] [--images 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nasoa_lib.paths import REPORT_DIR, data_dir

OUT = REPORT_DIR / "benchmarks" / "recommend_latency.csv"
PACKAGES = ("torch", "torchvision", "ot", "sklearn", "pandas")
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def make_image_folder(dataset: str, images: int, root: Path) -> Path:
    """``images`` training images of ``dataset`` as ``root/<dataset>_<images>/<class>/<i>.png``,
    an equal share per class (first images of each class); reused when already complete."""
    from PIL import Image

    folder = root / f"{dataset}_{images}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == images:
        return folder
    with np.load(data_dir() / f"{dataset}.npz") as npz:
        x, y, names = npz["x_train"], npz["y_train"], [str(n) for n in npz["class_names"]]
    per_class, extra = divmod(images, len(names))
    for c, name in enumerate(names):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, idx in enumerate(np.flatnonzero(y == c)[:per_class + (c < extra)]):
            Image.fromarray(x[idx]).save(folder / name / f"{i:04d}.png")
    return folder


def timed(cmd: list[str], *, expect_ok: bool = True,
          env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if expect_ok and done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if not expect_ok and done.returncode == 0:
        raise SystemExit(f"{' '.join(cmd)} was expected to fail")
    return seconds, done


def import_table(stderr: str) -> list[tuple[int, int, str]]:
    """``(cumulative us, depth, module)`` per line of ``-X importtime`` output, in print order."""
    rows = []
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            rows.append((int(m[2]), len(m[3]) // 2, m[4]))
    return rows


def first_import_seconds(rows: list[tuple[int, int, str]]) -> dict[str, float]:
    """Cumulative seconds of each package's first import (where it really loads), plus the total."""
    out = {p: 0.0 for p in PACKAGES}
    for cumulative, _, name in rows:
        if name in out and out[name] == 0.0:
            out[name] = cumulative / 1e6
    out["all imports (-X importtime)"] = sum(c for c, depth, _ in rows if depth == 0) / 1e6
    return out


def top_level_modules(rows: list[tuple[int, int, str]]) -> list[str]:
    """Modules imported at top level (not from inside another import), in import order."""
    return [name for _, depth, name in rows if depth == 0 and not name.startswith("encodings")]


def in_process(argv: list[str], data: Path, profile: str, budget: str, repeats: int) -> dict[str, list[float]]:
    """The command's work inside this process: first call (imports), warm calls, warm phases."""
    out: dict[str, list[float]] = {}
    start = time.perf_counter()
    from nasoa_lib import cli  # noqa: E402  (the first call's imports are part of what it measures)

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(argv) == 0
    out["cold_first_call"] = [time.perf_counter() - start]
    from nasoa_lib.generator import service
    from nasoa_lib.generator.budget import parse_budget

    for name in ("warm_call", "warm phase: read images", "warm phase: open service",
                 "warm phase: meta-features + ranking"):
        out[name] = []
    for _ in range(repeats):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            start = time.perf_counter()
            assert cli.main(argv) == 0
            out["warm_call"].append(time.perf_counter() - start)
            t0 = time.perf_counter()
            dataset = service.load_data(data, profile)
            t1 = time.perf_counter()
            svc = service.open_service(profile)
            t2 = time.perf_counter()
            service.recommend_for(dataset, parse_budget(budget), svc)
            t3 = time.perf_counter()
        out["warm phase: read images"].append(t1 - t0)
        out["warm phase: open service"].append(t2 - t1)
        out["warm phase: meta-features + ranking"].append(t3 - t2)
    return out


def iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--budget", default="30s")
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()) / "nasoa-bench-data")
    parser.add_argument("--before-tree", type=Path, help="an earlier library tree to time too (PYTHONPATH)")
    args = parser.parse_args()
    if not os.environ.get("NASOA_STORE"):
        raise SystemExit("set NASOA_STORE to a built store; build one with: NASOA_STORE=DIR nasoa reproduce "
                         f"--profile {args.profile} --only 00,01,02,03,04,05,06")
    data = make_image_folder(args.dataset, args.images, args.data_root)
    nasoa = str(Path(sys.executable).parent / "nasoa")
    argv = ["recommend", "--profile", args.profile, "--data", str(data), "--budget", args.budget]
    commands = {
        "end_to_end": [nasoa, *argv],
        "python_startup": [sys.executable, "-c", "pass"],
        "error_bad_budget": [nasoa, "recommend", "--profile", args.profile, "--data", str(data), "--budget", "soon"],
        "error_missing_data": [nasoa, "recommend", "--profile", args.profile, "--data", str(data) + "-missing",
                               "--budget", args.budget],
        "help": [nasoa, "--help"],
    }
    warmup, _ = timed(commands["end_to_end"])
    print(f"warm-up run (not counted; measures the time table on a new device): {warmup:.2f} s")
    _, traced = timed([sys.executable, "-X", "importtime", "-m", "nasoa_lib.cli", *argv])
    modules = top_level_modules(import_table(traced.stderr))
    commands["imports_only"] = [sys.executable, "-c", "import importlib, contextlib\n"  # optional ones may be absent
                                f"for m in {modules!r}:\n"
                                "    with contextlib.suppress(ImportError): importlib.import_module(m)"]

    runs = {name: (cmd, None) for name, cmd in commands.items()}
    if args.before_tree:
        before_env = {**os.environ, "PYTHONPATH": str(args.before_tree.resolve())}
        timed(commands["end_to_end"], env=before_env)  # its own warm-up
        runs.update({f"before: {name}": (commands[name], before_env)
                     for name in ("end_to_end", "error_bad_budget", "error_missing_data", "help")})
    samples: dict[str, list[float]] = {name: [] for name in runs}
    split: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, (cmd, env) in runs.items():
            samples[name].append(timed(cmd, expect_ok="error" not in name, env=env)[0])
        _, traced = timed([sys.executable, "-X", "importtime", "-m", "nasoa_lib.cli", *argv])
        for package, seconds in first_import_seconds(import_table(traced.stderr)).items():
            split.setdefault(package if package.startswith("all") else f"import {package}", []).append(seconds)
    warm = in_process(argv, data, args.profile, args.budget, args.repeats)
    import pandas as pd
    import torch

    base = statistics.median(samples["end_to_end"])
    rows = []
    for section, table in (("subprocess", samples), ("import_split", split), ("in_process", warm)):
        for name, values in table.items():
            median = statistics.median(values)
            rows.append({"section": section, "setting": name, "median_seconds": median, "iqr_seconds": iqr(values),
                         "share_of_end_to_end": median / base, "repeats": len(values)})
    frame = pd.DataFrame(rows)
    frame["images"], frame["profile"], frame["budget"] = args.images, args.profile, args.budget
    frame["cores"], frame["threads"], frame["torch"] = os.cpu_count(), torch.get_num_threads(), torch.__version__
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False)
    print(f"nasoa recommend --profile {args.profile} --data <{args.images} images> --budget {args.budget}:")
    for r in rows:
        print(f"  {r['section']:>12}  {r['setting']:<36} {r['median_seconds']:7.3f} s  (IQR {r['iqr_seconds']:.3f}, "
              f"{100 * r['share_of_end_to_end']:5.1f} % of end to end, n={r['repeats']})")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
