"""The NSS study of notebook 09: plan, run per dataset, tables and figures (NSS Sec. 4, Figs 3-5,
Tables 1-2). The notebook only calls these functions; every stage is cached in the artifact store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from nasoa_lib.nss.evaluate import (
    SuperNetEvaluator,
    evaluate_samples,
    run_nas,
    sample_within_tolerance,
    train_evaluation_supernet,
)
from nasoa_lib.nss.flops import format_flops, space_expected_flops
from nasoa_lib.nss.search import NSSConfig, NSSData, load_nss_data, run_search, scaled_targets, search_steps
from nasoa_lib.nss.spaces import NetworkSpace
from nasoa_lib.nss.supernet import SuperNet
from nasoa_lib.paper import NSS_PAPER_TABLE1 as PAPER_TABLE1

log = logging.getLogger(__name__)

INFERENCE_SPEEDUP = 1.7
"""Test images/s per training image/s of these small super-network paths (measured, 2-core CPU)."""
SEARCH_STEP_PASSES = 2.9
"""A search step (weight step + Theta step, each on a fresh path) costs ~2.9 uniform training passes
(measured on the laptop profile, 2-core CPU)."""


def measure_throughput(config: NSSConfig, num_classes: int, steps: int = 6) -> float:
    """Training images/s of the super network on uniformly drawn architectures (one thread setting),
    on the CPU the NSS search runs on: one warm-up step, then ``steps`` steps timed by
    :func:`nasoa_lib.measure.time_calls`, images over their total time. Each step draws a fresh
    path, so it is not the fixed ``model(x)`` of ``measure_step_time``."""
    from nasoa_lib.measure import time_calls

    net = SuperNet(config.expanded, num_classes)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(config.batch_size, 3, config.image_size, config.image_size)
    y = torch.randint(0, num_classes, (config.batch_size,))
    rng = np.random.default_rng(0)
    space = config.expanded.as_space()

    def step() -> None:
        loss = F.cross_entropy(net(x, space.sample(rng)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    samples = time_calls(step, torch.device("cpu"), warmup=1, steps=steps)
    return config.batch_size * steps / (sum(samples) / 1000.0)


def plan(config: NSSConfig, targets: list[float], images_per_s: float) -> pd.DataFrame:
    """Expected minutes per stage and dataset from measured throughput (SPEC section 2)."""
    steps = search_steps(config, len(targets))
    evalnet_steps = (config.train_images // config.batch_size) * config.eval_epochs
    # NAS: every pool member on the validation images, the chosen one on the test images
    infer_images = ((config.eval_samples + len(targets) * config.samples_per_elite_space
                     + 2 * len(targets) * config.edf_samples + 2 * len(targets) * config.nas_runs) * config.test_images
                    + 2 * len(targets) * config.nas_runs * config.nas_pool * config.validation_images)
    rows = []
    for name in config.datasets:
        # a search step is a weight step + a Theta step
        rows += [
            {"dataset": name, "stage": f"NSS search ({len(targets)} targets, shared warm-up)",
             "image_passes": steps * config.batch_size * 2,
             "minutes": steps * config.batch_size * SEARCH_STEP_PASSES / images_per_s / 60},
            {"dataset": name, "stage": "evaluation super network",
             "image_passes": evalnet_steps * config.batch_size,
             "minutes": evalnet_steps * config.batch_size / images_per_s / 60},
            {"dataset": name, "stage": "sample evaluation + NAS (inference)",
             "image_passes": infer_images, "minutes": infer_images / (INFERENCE_SPEEDUP * images_per_s) / 60},
        ]
    return pd.DataFrame(rows)


@dataclass
class DatasetResults:
    """Everything one dataset contributes to the figures and tables."""

    name: str
    num_classes: int
    test_images: int
    targets: list[float]
    searches: list[dict]
    samples: pd.DataFrame
    edf: pd.DataFrame
    nas: pd.DataFrame
    extra: dict = field(default_factory=dict)


class _Bar:
    def __init__(self, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, leave=False)

    def __call__(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def run_dataset(config: NSSConfig, name: str, store, profile: str | None = None) -> DatasetResults:
    """Searches for every target, the evaluation super network, samples, EDFs and NAS of one dataset."""
    data: NSSData = load_nss_data(name, config)
    targets = scaled_targets(config.paper_targets_mf, config.expanded, config.image_size, data.num_classes)
    bar = _Bar(search_steps(config, len(targets)), f"{name}: NSS search")
    searches = [run_search(config, data, t, store, bar, profile=profile) for t in targets]
    bar.close()
    bar = _Bar((config.train_images // config.batch_size) * config.eval_epochs, f"{name}: eval super net")
    net, ekey = train_evaluation_supernet(config, data, store, bar, profile=profile)
    bar.close()
    evaluator = SuperNetEvaluator(net, data, config.eval_batch)
    expanded = config.expanded.as_space()
    spaces = [("Expanded", expanded)] + [
        (f"Elite@{format_flops(s['target'])}", NetworkSpace.parse(s["elite_space"])) for s in searches]
    bar = _Bar(config.eval_samples + len(searches) * config.samples_per_elite_space, f"{name}: sampling spaces")
    rows = []
    for label, space in spaces:
        n = config.eval_samples if label == "Expanded" else config.samples_per_elite_space
        rows += evaluate_samples(evaluator, space, n, config.seed, store, ekey, label, bar)
    bar.close()
    samples = pd.DataFrame(rows)
    samples.insert(0, "dataset", name)
    edf_rows, nas_rows = [], []
    bar = _Bar(2 * len(targets), f"{name}: EDF samples + NAS")
    for s, t in zip(searches, targets):
        elite = NetworkSpace.parse(s["elite_space"])
        for label, space in (("Elite", elite), ("Expanded", expanded)):
            found = sample_within_tolerance(evaluator, space, t, config.tolerance, config.edf_samples,
                                            config.nas_max_samples * config.edf_samples, config.seed,
                                            store, ekey, label)
            for r in found["rows"]:
                edf_rows.append({"dataset": name, "target": t, **r, "space": label})
            for r in run_nas(evaluator, space, t, config, store, ekey):
                nas_rows.append({"dataset": name, "space_kind": label, **r})
            bar()
    bar.close()
    return DatasetResults(name, data.num_classes, len(data.y_test), targets, searches, samples,
                          pd.DataFrame(edf_rows), pd.DataFrame(nas_rows))


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def elite_table(results: list[DatasetResults], image_size: int) -> pd.DataFrame:
    rows = []
    for res in results:
        for s in res.searches:
            space = NetworkSpace.parse(s["elite_space"])
            rows.append({"dataset": res.name, "target": format_flops(s["target"]),
                         "target_flops": s["target"], "elite_space": s["elite_space"],
                         "expected_flops": space_expected_flops(space, image_size, res.num_classes),
                         "deviation_%": 100 * abs(s["elite_flops"] / s["target"] - 1),
                         "final_flops_loss": s["history"][-1].get("flops_loss")})
    return pd.DataFrame(rows)


def nas_table(results: list[DatasetResults], max_samples: int) -> pd.DataFrame:
    """Tables 1-2 style: mean over NAS runs of FLOPs (deviation), #samples, error per target/space."""
    rows = []
    for res in results:
        df = res.nas
        for (target, kind), g in df.groupby(["target", "space_kind"], sort=True):
            hit = g["samples_to_hit"].dropna()
            rows.append({
                "dataset": res.name, "target": format_flops(target), "space": kind,
                "flops": format_flops(g["flops"].mean()),
                "deviation_%": 100 * g["deviation"].mean(),
                "samples": float(hit.mean()) if len(hit) == len(g) else float("nan"),
                "runs_missing_tolerance": int(len(g) - len(hit)),
                "error_%": g["error"].mean(), "target_flops": target,
            })
    out = pd.DataFrame(rows)
    if not out.empty:
        out.loc[out["runs_missing_tolerance"] > 0, "samples"] = float("nan")
        out["samples_note"] = np.where(out["runs_missing_tolerance"] > 0, f"> {max_samples} in some runs", "")
    return out


def nas_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Average row per dataset and space (the paper's 'Average' line), beside the paper's."""
    ours = (table.groupby(["dataset", "space"], as_index=False)[["deviation_%", "samples", "error_%"]]
            .mean())
    ours["source"] = "ours"
    paper = PAPER_TABLE1.copy()
    paper["source"] = "paper"
    return pd.concat([ours, paper], ignore_index=True)


def stage_allocation(results: list[DatasetResults]) -> pd.DataFrame:
    """Sec. 4.5: does d1 <= d3 <= d2 and w1 <= w3 <= w2 hold for our Elite Spaces (range midpoints)?"""
    rows = []
    for res in results:
        for s in res.searches:
            space = NetworkSpace.parse(s["elite_space"])
            d = [(a + b) / 2 for a, b in space.depths]
            w = [(a + b) / 2 for a, b in space.widths]
            rows.append({"dataset": res.name, "target": format_flops(s["target"]), "elite_space": str(space),
                         "d1<=d3<=d2": d[0] <= d[2] <= d[1], "w1<=w3<=w2": w[0] <= w[2] <= w[1],
                         "d1<=d2<=d3": d[0] <= d[1] <= d[2], "w1<=w2<=w3": w[0] <= w[1] <= w[2]})
    return pd.DataFrame(rows)


def elite_vs_expanded_edf(results: list[DatasetResults]) -> pd.DataFrame:
    rows = []
    for res in results:
        if res.edf.empty:
            continue
        for (t, kind), g in res.edf.groupby(["target", "space"]):
            rows.append({"dataset": res.name, "target": format_flops(t), "space": kind, "n": len(g),
                         "median_error_%": g["error"].median(), "best_error_%": g["error"].min()})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def plot_error_vs_flops(res: DatasetResults):
    """Figs 3-4: blue = Expanded samples, orange = the Elite Space's samples, one panel per target."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    n = len(res.searches)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    exp = res.samples[res.samples["space"] == "Expanded"]
    for ax, s in zip(axes[0], res.searches):
        label = f"Elite@{format_flops(s['target'])}"
        el = res.samples[res.samples["space"] == label]
        ax.scatter(exp["flops"] / 1e6, exp["error"], s=8, alpha=0.5, color="tab:blue", label="Expanded")
        ax.scatter(el["flops"] / 1e6, el["error"], s=8, alpha=0.6, color="tab:orange", label="Elite")
        ax.axvline(s["target"] / 1e6, color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("FLOPs (M, multiply-adds)")
        ax.set_title(f"{res.name}: target {format_flops(s['target'])}")
    axes[0][0].set_ylabel("super-network error (%)")
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def plot_error_edf(res: DatasetResults):
    """Fig 5d: error EDF of architectures within +-10 % of each target, Elite vs Expanded."""
    import matplotlib.pyplot as plt

    targets = sorted(res.edf["target"].unique()) if not res.edf.empty else []
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(4.2 * max(1, len(targets)), 3.4), squeeze=False)
    for ax, t in zip(axes[0], targets):
        for kind, color in (("Expanded", "tab:blue"), ("Elite", "tab:orange")):
            e = np.sort(res.edf[(res.edf["target"] == t) & (res.edf["space"] == kind)]["error"].to_numpy())
            if len(e):
                ax.step(e, np.arange(1, len(e) + 1) / len(e), where="post", color=color,
                        label=f"{kind} (n={len(e)})")
        ax.set_title(f"{res.name}: {format_flops(t)} +-10%")
        ax.set_xlabel("error (%)")
        ax.legend()
    axes[0][0].set_ylabel("cumulative probability")
    fig.tight_layout()
    return fig


def plot_learning(results: list[DatasetResults], correlations: pd.DataFrame):
    """Does the task discriminate architectures? Error vs FLOPs of the Expanded samples with the
    chance error and the Spearman rho with its 95 % interval (:func:`nasoa_lib.verdict.correlation`) in
    the title."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(results), figsize=(4.8 * len(results), 3.6), squeeze=False)
    for ax, res in zip(axes[0], results):
        exp = res.samples[res.samples["space"] == "Expanded"]
        row = correlations[(correlations["dataset"] == res.name) & (correlations["space"] == "Expanded")].iloc[0]
        ax.scatter(exp["flops"] / 1e6, exp["error"], s=10, alpha=0.6, color="tab:blue")
        ax.axhline(row["chance_error_%"], color="k", ls=":", lw=0.8, label="chance")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("FLOPs (M, multiply-adds)")
        ax.set_title(f"{res.name}: Spearman {row['spearman']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}], "
                     f"n={int(row['n'])}", fontsize=9)
        ax.legend()
    axes[0][0].set_ylabel("super-network test error (%)")
    fig.tight_layout()
    return fig


def headline(results: list[DatasetResults], table: pd.DataFrame, verdicts: list) -> dict:
    """Headline numbers: the claims count, each claim's effect [CI], n and verdict, and the means of
    Tables 1-2."""
    from nasoa_lib import verdict as verdict_rule

    out: dict = {"claims": verdict_rule.counts(verdicts)}
    for v in verdicts:
        floor = f" (noise floor {v.noise_floor:.2f} points)" if np.isfinite(v.noise_floor) else ""
        out[v.claim] = v.summary() + floor
    for res in results:
        t = table[table["dataset"] == res.name]
        for kind in ("Elite", "Expanded"):
            g = t[t["space"] == kind]
            out[f"{res.name} NAS error % ({kind}, mean)"] = round(float(g["error_%"].mean()), 2)
            out[f"{res.name} FLOPs deviation % ({kind}, mean)"] = round(float(g["deviation_%"].mean()), 2)
    return out
