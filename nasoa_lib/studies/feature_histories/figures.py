"""Figures of notebook 08 and the thesis's reported numbers to print beside ours (thesis 003,
Figs 4.1, 4.3, 4.4 and Tables 4.1, 4.3)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from nasoa_lib.paper import THESIS_NOTES, THESIS_TABLE_4_1, THESIS_TABLE_4_3  # noqa: F401 - notebook 08 imports them from here

METHOD_LABELS = {"original": "Original (accuracy at this epoch)", "optimized": "Optimized (one refitted classifier)",
                 "estimate": "Ours (ensemble of K refitted classifiers)"}
METHOD_COLORS = {"original": "tab:gray", "optimized": "tab:orange", "estimate": "tab:blue"}


def plot_estimation_curves(curves: pd.DataFrame, members: Sequence[tuple[str, int]], window: int):
    """Thesis Fig. 4.1: per network, accuracy at each epoch (original), the refitted classifier,
    our ensemble estimate, and the true final accuracy."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    n = len(members)
    cols = min(3, max(1, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (member, seed) in zip(axes.flat, members):
        frame = curves[(curves["member"] == member) & (curves["seed"] == seed)].sort_values("epoch")
        for method in ("original", "optimized", "estimate"):
            ax.plot(frame["epoch"], 100 * frame[method], marker="o", ms=3, color=METHOD_COLORS[method],
                    label=METHOD_LABELS[method], ls="--" if method == "optimized" else "-")
        ax.axhline(100 * frame["true"].iloc[0], color="k", lw=1, ls=":", label="true final (test)")
        ax.set_title(member if len(member) < 32 else member[:30] + "…", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Performance estimation per network (K = {window})")
    fig.tight_layout()
    return fig


def plot_error_and_tau(frame: pd.DataFrame, title: str = ""):
    """Thesis Figs 4.3 and 4.4: mean absolute error to the true accuracy and Kendall's tau with the
    true ranking, per epoch, with 95 % intervals over the population's networks
    (:func:`nasoa_lib.studies.feature_histories.evidence.error_and_tau_ci`)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for method in ("original", "optimized", "estimate"):
        f = frame[frame["method"] == method].sort_values("epoch")
        if f.empty:
            continue
        e = f["epoch"].to_numpy()
        for ax, col, lo, hi in ((ax1, "abs_error_pts", "abs_error_ci_low", "abs_error_ci_high"),
                                (ax2, "tau", "tau_ci_low", "tau_ci_high")):
            ax.plot(e, f[col], marker="o", ms=3, color=METHOD_COLORS[method], label=METHOD_LABELS[method],
                    ls="--" if method == "optimized" else "-")
            ax.fill_between(e, f[lo], f[hi], color=METHOD_COLORS[method], alpha=0.15)
    ax1.set_ylabel("|estimate - true| (accuracy points)")
    ax2.set_ylabel("Kendall's tau with the true ranking")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
    ax1.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_search_results(tables: dict[str, pd.DataFrame]):
    """Table 4.1/4.3 as a chart: true accuracy of the chosen configuration, with and without the
    estimator, per method and task (mean and 95 % interval over repeated runs), beside the mean and
    the best of all configurations."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.4), squeeze=False)
    for ax, (task, t) in zip(axes.flat, tables.items()):
        x = np.arange(len(t))
        for k, (side, metric) in enumerate((("without", "original"), ("with", "estimate"))):
            mean = t[f"{side}_mean"].to_numpy(float)
            err = np.vstack([mean - t[f"{side}_ci_low"].to_numpy(float), t[f"{side}_ci_high"].to_numpy(float) - mean])
            ax.bar(x + (k - 0.5) * 0.38, mean, 0.38, yerr=np.nan_to_num(err), color=METHOD_COLORS[metric],
                   label=f"{side} estimator", capsize=3)
        ax.axhline(t["configs_mean"].iloc[0], color="k", ls=":", lw=1, label="mean of all configurations")
        ax.axhline(t["configs_best"].iloc[0], color="k", ls="--", lw=1, label="best configuration")
        lo = np.nanmin(np.r_[t["without_ci_low"], t["with_ci_low"], t["configs_mean"]])
        ax.set_ylim(max(0.0, lo - 2), t["configs_best"].iloc[0] + 1)
        ax.set_xticks(x, t["method"])
        ax.set_ylabel("true accuracy of the choice (%)")
        ax.set_title(task)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def claims_statement(claims: pd.DataFrame, noise: pd.DataFrame, scale: str) -> str:
    """One line per claim, worded from the claims table (:func:`nasoa_lib.verdict.table`) and the
    noise floors; nothing typed by hand."""
    from nasoa_lib import verdict

    lines = [f"At our scale ({scale}); rule: {verdict.RULE}."]
    for row in noise.itertuples():
        lines.append(f"- Noise floor, {row.group}: {row.networks} networks on {row.test_images} test images; test SE "
                     f"{row.se_points:.2f} points per network, true accuracies spread {row.spread_std_points:.2f} points "
                     f"(std; range {row.range_points:.2f}) = {row.spread_over_se:.1f} x SE; a perfect estimator's "
                     f"Kendall tau against this test set is at most about {row.tau_ceiling:.2f}.")
    for row in claims.itertuples():
        unit = f" {row.unit}" if row.unit and row.unit != "tau" else ""
        lines.append(f"- {row.claim}: effect {row.effect:+.3f}{unit} [{row.ci_low:.3f}, {row.ci_high:.3f}], n = {row.n}, "
                     f"noise floor {row.noise_floor:.2f} points: **{row.verdict}**.")
    lines.append(f"\nIn all: {verdict.counts(claims)}.")
    return "\n".join(lines)
