"""Which proxy ranks architectures like the full pretraining? (issue 17 item 2), measured once.

NASOA scores each candidate with "a short training setting" (section 4.2); the search is only as
good as that proxy's ranking. On architectures spanning the search space (the released ET-NAS
models that fit the profile plus codes sampled from the laptop macro space over several blocks,
spread over step time within T_m), this script measures for each proxy candidate:

* **repeatability**: Kendall tau between the proxy's top-1 under two seeds (other training images
  and initialisation, the same held-out validation images);
* **fidelity**: Kendall tau between the proxy's top-1 (mean of the seeds) and the source test top-1
  after the study's full shared recipe (``train.pretrain`` with the profile's ``pretrain:``
  section: stored in the profile's store, so a model that later enters the zoo is not trained twice);
* its CPU-minutes per evaluation (training seconds on this machine).

Every proxy is scored on validation images held out of the training split (never the test split a
search must not select on). Writes ``reports/benchmarks/proxy_fidelity.csv`` (one row per
architecture, proxy and seed); notebook 02 prints the taus with their intervals. Usage::

    python benchmarks/proxy_fidelity.py [--profile laptop] [--archs 8]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from nasoa_lib import measure, search, train
from nasoa_lib.search.evaluate import forget_proxy_weights
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.space import RELEASED
from nasoa_lib.zoo import released_fitting, spread_over_log

OUT = REPORT_DIR / "benchmarks" / "proxy_fidelity.csv"
BLOCKS = ("2-", "031-", "011-", "4-", "10001-", "02031-a02")
"""Blocks of the sampled architectures: the released models' blocks plus a depthwise and a
bottleneck block, from one node to the paper's largest (ETNAS_REFERENCE.md)."""
VALIDATION_PER_CLASS = 30
SEEDS = (0, 1)


def proxies(base: search.ProxySpec) -> dict[str, search.ProxySpec]:
    """The candidates: the profile's proxy (100 classes x its images per class), and 20 source
    classes with all their training images at two lengths; all scored on held-out validation images."""
    held = replace(base, validation_per_class=VALIDATION_PER_CLASS)
    return {
        f"100 classes x {base.images_per_class} images, {base.epochs} epochs": held,
        "20 classes x all images, 4 epochs": replace(held, classes=20, images_per_class=None, epochs=4),
        "20 classes x all images, 8 epochs": replace(held, classes=20, images_per_class=None, epochs=8),
    }


def sample_architectures(ctx: search.SearchContext, count: int, candidates: int = 60) -> list[str]:
    """``count`` feasible codes of the profile's macro space over :data:`BLOCKS`, spread over log
    step time (measured now, like the search's parent node)."""
    space = search.CodeSpace("macro", macro_space=ctx.config.macro_space, blocks=BLOCKS)
    codes = search.sample_distinct(space, candidates, np.random.default_rng(0), set())
    measured = []
    for code in codes:
        cost = search.measure_costs(code, ctx.profile, ctx.step, ctx.num_classes, ctx.store, ctx.config.t_max_ms)
        if cost["step_ms"] <= ctx.config.t_max_ms:
            measured.append((cost["step_ms"], code))
    measured.sort()
    return [measured[i][1] for i in spread_over_log(np.array([s for s, _ in measured]), count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="laptop")
    parser.add_argument("--archs", type=int, default=8, help="sampled architectures (besides the released ones)")
    args = parser.parse_args()
    ctx = search.SearchContext.create(args.profile)
    torch.set_num_threads(2)
    measure.warn_if_contended("the proxy study's step times")
    archs = {f"released/{n}": RELEASED[n].code for n in released_fitting(ctx.profile, ctx.config.t_max_ms)}
    archs.update({f"sampled/{i}": c for i, c in enumerate(sample_architectures(ctx, args.archs))})
    rows = []
    for name, code in archs.items():
        t0 = time.perf_counter()
        full = train.pretrain(code, profile=ctx.profile, store=ctx.store, progress=False)
        print(f"{name:12s} {code:32s} full recipe top-1 {full.source_top1 * 100:5.1f} % "
              f"({full.record['train_seconds'] / 60:.1f} min, {time.perf_counter() - t0:.0f} s now)", flush=True)
        cost = search.measure_costs(code, ctx.profile, ctx.step, ctx.num_classes, ctx.store, ctx.config.t_max_ms)
        for proxy_name, proxy in proxies(ctx.config.proxy).items():
            for seed in SEEDS:
                result = train.pretrain(code, recipe=proxy.recipe(), profile=ctx.profile, store=ctx.store, seed=seed,
                                        progress=False)
                rows.append({"arch": name, "code": code, "step_ms": cost["step_ms"], "flops": cost["flops"],
                             "full_top1": full.source_top1, "full_test_images": full.record["test_images"],
                             "full_train_seconds": full.record["train_seconds"], "proxy": proxy_name,
                             "seed": seed, "proxy_top1": result.source_top1,
                             "proxy_images": result.record["test_images"],
                             "proxy_train_seconds": result.record["train_seconds"],
                             "scored_on": result.record["scored_on"]})
                forget_proxy_weights(ctx.store, result.key)
            mean = np.mean([r["proxy_top1"] for r in rows[-len(SEEDS):]])
            print(f"    {proxy_name:40s} top-1 {mean * 100:5.1f} %", flush=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(OUT, index=False)  # after every architecture: a killed run keeps what it measured
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
