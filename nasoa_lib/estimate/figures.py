"""Figures of notebook 08 and the thesis's reported numbers to print beside ours (thesis 003,
Figs 4.1, 4.3, 4.4 and Tables 4.1, 4.3)."""

from __future__ import annotations

from typing import Any, Sequence

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


def plot_error_and_tau(summary: pd.DataFrame, title: str = ""):
    """Thesis Figs 4.3 and 4.4: mean absolute error to the true accuracy and Kendall's tau with the
    true ranking, per epoch, mean +- std over seeds."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for method in ("original", "optimized", "estimate"):
        f = summary[summary["method"] == method].sort_values("epoch")
        if f.empty:
            continue
        e = f["epoch"].to_numpy()
        for ax, col in ((ax1, "abs_error"), (ax2, "tau")):
            scale = 100 if col == "abs_error" else 1
            mean, std = scale * f[f"{col}_mean"].to_numpy(), scale * f[f"{col}_std"].fillna(0).to_numpy()
            ax.plot(e, mean, marker="o", ms=3, color=METHOD_COLORS[method], label=METHOD_LABELS[method],
                    ls="--" if method == "optimized" else "-")
            ax.fill_between(e, mean - std, mean + std, color=METHOD_COLORS[method], alpha=0.15)
    ax1.set_ylabel("|estimate - true| (accuracy points)")
    ax2.set_ylabel("Kendall's tau with the true ranking")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
    ax1.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_search_results(summaries: dict[str, pd.DataFrame]):
    """Table 4.1/4.3 as a chart: true accuracy of the chosen configuration, with and without the
    estimator, per method and task (mean +- std over repeated runs)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(5 * len(summaries), 3.4), squeeze=False)
    for ax, (task, s) in zip(axes.flat, summaries.items()):
        methods = list(dict.fromkeys(s["method"]))
        x = np.arange(len(methods))
        for k, metric in enumerate(("original", "estimate")):
            f = s[s["metric"] == metric].set_index("method").reindex(methods)
            ax.bar(x + (k - 0.5) * 0.38, 100 * f["true_acc_mean"], 0.38, yerr=100 * f["true_acc_std"].fillna(0),
                   color=METHOD_COLORS[metric], label="with estimator" if metric == "estimate" else "without", capsize=3)
        lo = 100 * np.nanmin(s["true_acc_mean"] - s["true_acc_std"].fillna(0))
        hi = 100 * np.nanmax(s["true_acc_mean"] + s["true_acc_std"].fillna(0))
        ax.set_ylim(max(0.0, lo - 2), hi + 1)
        ax.set_xticks(x, methods)
        ax.set_ylabel("true accuracy of the choice (%)")
        ax.set_title(task)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def search_table(summary: pd.DataFrame, thesis: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our search results side by side (with / without the estimator, in %), and the thesis's
    numbers for the same method where given."""
    rows = []
    for method in dict.fromkeys(summary["method"]):
        f = summary[summary["method"] == method].set_index("metric")
        row: dict[str, Any] = {
            "method": method,
            "ours_without": f"{100 * f.loc['original', 'true_acc_mean']:.2f} ± {100 * np.nan_to_num(f.loc['original', 'true_acc_std']):.2f}",
            "ours_with": f"{100 * f.loc['estimate', 'true_acc_mean']:.2f} ± {100 * np.nan_to_num(f.loc['estimate', 'true_acc_std']):.2f}",
            "gain_points": 100 * (f.loc["estimate", "true_acc_mean"] - f.loc["original", "true_acc_mean"]),
            "runs": int(f.loc["original", "runs"]),
        }
        if thesis is not None:
            t = thesis[thesis["method"] == method]
            if len(t):
                t = t.iloc[0] if "network" not in t else t[t["network"] == "ResNet-18"].iloc[0]
                row["thesis_without"] = f"{t['without_mean']:.2f} ± {t['without_std']:.2f}"
                row["thesis_with"] = f"{t['with_mean']:.2f} ± {t['with_std']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def estimator_advantage(summary: pd.DataFrame, searches: dict[str, pd.DataFrame], window: int) -> dict[str, Any]:
    """Whether the thesis's claims hold in our numbers, computed (never typed in): over the epochs
    before the last, is the estimate's mean error lower and its Kendall tau higher than the
    accuracy at that epoch, and does ranking by it improve each search on average?"""
    wide = summary.pivot(index="epoch", columns="method", values=["abs_error_mean", "tau_mean"])
    early = wide.index[wide.index < wide.index.max()]
    err_o, err_e = wide.loc[early, ("abs_error_mean", "original")], wide.loc[early, ("abs_error_mean", "estimate")]
    tau_o, tau_e = wide.loc[early, ("tau_mean", "original")], wide.loc[early, ("tau_mean", "estimate")]
    out: dict[str, Any] = {
        "window_K": window,
        "epochs_compared": int(len(early)),
        "epochs_estimate_error_lower": int((err_e < err_o).sum()),
        "epochs_estimate_tau_higher": int((tau_e > tau_o).sum()),
        "mean_error_original_pts": float(100 * err_o.mean()),
        "mean_error_estimate_pts": float(100 * err_e.mean()),
        "mean_tau_original": float(tau_o.mean()),
        "mean_tau_estimate": float(tau_e.mean()),
    }
    wins, total = 0, 0
    for task, s in searches.items():
        for method in dict.fromkeys(s["method"]):
            f = s[s["method"] == method].set_index("metric")["true_acc_mean"]
            gain = float(100 * (f["estimate"] - f["original"]))
            out[f"search_gain_pts[{task}/{method}]"] = gain
            wins += gain > 0
            total += 1
    out["searches_improved"] = f"{wins}/{total}"
    out["error_claim_reproduces"] = out["epochs_estimate_error_lower"] > out["epochs_compared"] / 2
    out["ranking_claim_reproduces"] = out["epochs_estimate_tau_higher"] > out["epochs_compared"] / 2
    out["search_claim_reproduces"] = wins > total / 2
    return out


def advantage_statement(adv: dict[str, Any], scale: str) -> str:
    """A sentence per claim of the thesis, worded from :func:`estimator_advantage`'s numbers."""
    def verdict(ok: bool) -> str:
        return "**reproduces**" if ok else "**does not reproduce**"

    return "\n".join([
        f"At our scale ({scale}):",
        f"- Estimation error (Fig. 4.3): {verdict(adv['error_claim_reproduces'])}. Over the "
        f"{adv['epochs_compared']} epochs before the last, the ensemble's mean absolute error to the true "
        f"accuracy is {adv['mean_error_estimate_pts']:.2f} points vs {adv['mean_error_original_pts']:.2f} for "
        f"the accuracy at that epoch; it is lower at {adv['epochs_estimate_error_lower']} of them.",
        f"- Ranking (Fig. 4.4): {verdict(adv['ranking_claim_reproduces'])}. Mean Kendall's tau "
        f"{adv['mean_tau_estimate']:.3f} (ours) vs {adv['mean_tau_original']:.3f} (original); higher at "
        f"{adv['epochs_estimate_tau_higher']} of {adv['epochs_compared']} epochs.",
        f"- Search (Tables 4.1/4.3): {verdict(adv['search_claim_reproduces'])}. Ranking by the estimate raised "
        f"the mean true accuracy of the chosen configuration in {adv['searches_improved']} method/task pairs.",
    ])
