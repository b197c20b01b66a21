"""Training step time of every baseline and a few architecture codes, measured in one run.

What SPEC section 5 calls "fast to train", with ``nasoa_lib.measure`` (the same functions the
NAS and the schedule generator use):

1. Timer noise: ResNet-18's step time measured ``--repeats`` times; the run-to-run coefficient of
   variation of the medians (target < 5 % on an idle machine).
2. Every baseline family member (RegNetY above 3.2GF only with ``--all``): training step ms
   (median, IQR), ratio to ResNet-18 from this run, images/s, inference ms, MMACs, MParams.
3. The small-image stem (``small_image_stem=True``) on ResNet-18 and MobileNetV3: cost ratio.
4. If ``nasoa_lib.builder`` exists: the released ET-NAS-A/C/F codes and ``--samples`` codes from
   ``sample_arch`` (skipped with a note otherwise).

Writes ``reports/benchmarks/step_time.csv`` and prints the table. Usage::

    python benchmarks/step_time.py [--batch-size 64] [--image-size 32] [--repeats 3] [--models resnet18 ...] [--all]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from nasoa_lib import measure, models
from nasoa_lib.device import default_device, describe_device
from nasoa_lib.paths import REPORT_DIR

OUT = REPORT_DIR / "benchmarks" / "step_time.csv"
REFERENCE = "resnet18"
HEAVY = {"regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf"}
ETNAS_CODES = {
    "ET-NAS-A": "2-_32_2-11-112-1121112",
    "ET-NAS-C": "011-_32_2-211-2-111122",
    "ET-NAS-F": "011-_64_21-211-121-11111121",
}
SMALL_STEM_MODELS = ("resnet18", "mobilenet_v3_small", "mobilenet_v3_large")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--num-classes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3, help="ResNet-18 timings for the run-to-run CV")
    p.add_argument("--models", nargs="*", default=None, help="baseline names (default: all but RegNetY > 3.2GF)")
    p.add_argument("--all", action="store_true", help="include RegNetY-8GF/16GF/32GF")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--samples", type=int, default=3, help="sampled architecture codes (needs nasoa_lib.builder)")
    p.add_argument("--max-mmacs", type=float, default=300.0, help="skip sampled codes above this many MMACs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    return p.parse_args()


def code_factories(args: argparse.Namespace) -> dict[str, tuple[str, Callable[[], nn.Module]]]:
    """Released and sampled codes, if the builder exists (name -> (kind, factory))."""
    try:
        from nasoa_lib import builder
    except ImportError as err:
        print(f"note: skipping architecture codes: nasoa_lib.builder is not available ({err})")
        return {}
    try:
        from nasoa_lib.space import sample_arch
    except ImportError:
        from nasoa_lib.space.sampling import sample_arch

    def factory(code: str) -> Callable[[], nn.Module]:
        return lambda: builder.build(code, num_classes=args.num_classes, image_size=args.image_size,
                                     small_image_stem=False)

    out = {f"{name} {code}": ("etnas", factory(code)) for name, code in ETNAS_CODES.items()}
    rng = np.random.default_rng(args.seed)
    found, tries = 0, 0
    while found < args.samples and tries < 50 * max(args.samples, 1):
        tries += 1
        code = str(sample_arch(rng))
        mmacs = measure.count_macs(factory(code)(), args.image_size) / 1e6
        if mmacs > args.max_mmacs:
            continue
        out[code] = ("sampled", factory(code))
        found += 1
    if found < args.samples:
        print(f"note: only {found} of {args.samples} sampled codes had <= {args.max_mmacs} MMACs")
    return out


def row(name: str, kind: str, small_stem: bool, model: nn.Module, args: argparse.Namespace) -> dict:
    step = measure.measure_step_time(model, args.batch_size, args.image_size, warmup=args.warmup, steps=args.steps)
    infer = measure.measure_inference_time(model, args.batch_size, args.image_size, warmup=1, steps=args.steps)
    return {
        "name": name,
        "kind": kind,
        "small_image_stem": small_stem,
        "step_ms": step.median_ms,
        "step_iqr_ms": step.iqr_ms,
        "images_per_s": step.images_per_second,
        "infer_ms": infer.median_ms,
        "mmacs": measure.count_macs(model, args.image_size) / 1e6,
        "mparams": measure.count_params(model) / 1e6,
        "device": step.device,
    }


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = default_device()
    names = args.models or [n for n in models.available() if args.all or n not in HEAVY]
    started = time.perf_counter()
    print(f"device {describe_device(device)}, batch {args.batch_size}, {args.image_size}x{args.image_size}, "
          f"{args.num_classes} classes, warmup {args.warmup}, steps {args.steps}, float32")

    reference = models.create(REFERENCE, args.num_classes, args.image_size)
    repeats = [
        measure.measure_step_time(reference, args.batch_size, args.image_size, warmup=args.warmup, steps=args.steps).median_ms
        for _ in range(args.repeats)
    ]
    ref_ms = statistics.median(repeats)
    cv = statistics.stdev(repeats) / statistics.mean(repeats) if len(repeats) > 1 else float("nan")
    print(f"{REFERENCE} step ms over {args.repeats} repeats: {', '.join(f'{r:.1f}' for r in repeats)}; "
          f"run-to-run CV {100 * cv:.1f} % (target < 5 % on an idle machine)")

    rows = []
    for name in names:
        print(f"  {name} ...", flush=True)
        model = models.create(name, args.num_classes, args.image_size)
        rows.append(row(name, f"baseline:{models.family_of(name)}", False, model, args))
    for name in SMALL_STEM_MODELS:
        print(f"  {name} (small_image_stem) ...", flush=True)
        model = models.create(name, args.num_classes, args.image_size, small_image_stem=True)
        rows.append(row(name, f"baseline:{models.family_of(name)}", True, model, args))
    for name, (kind, factory) in code_factories(args).items():
        print(f"  {name} ...", flush=True)
        rows.append(row(name, kind, False, factory(), args))

    table = pd.DataFrame(rows)
    table.insert(5, "step_ratio_to_resnet18", table["step_ms"] / ref_ms)
    table["resnet18_cv_pct"] = 100 * cv
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.4g")

    shown = table.drop(columns=["device", "resnet18_cv_pct"])
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        print(shown.to_string(index=False))
    plain = table[~table["small_image_stem"]].set_index("name")["step_ms"]
    small = table[table["small_image_stem"]].set_index("name")["step_ms"]
    for name in small.index:
        if name in plain.index:
            print(f"small_image_stem cost, {name}: {small[name] / plain[name]:.2f}x the step time")
    print(f"ResNet-18 reference {ref_ms:.1f} ms/step; CV {100 * cv:.1f} %; "
          f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
