"""The evidence of notebook 08: the thesis's claims (003, Figs 4.3/4.4, Tables 4.1/4.3) decided by
the study's one verdict rule (:mod:`nasoa_lib.verdict`) on one population of architectures.

The unit of every interval is what was drawn at random: an *architecture* for the error and
ranking claims (the population is pooled over its seeds and resampled by architecture), a *search
run* (its random seed) for the search claims. Beside each effect stands its noise floor: the
binomial standard error of one architecture's test accuracy, which bounds how well any estimate can
agree with the "true" accuracy, and how far apart two true accuracies must be before their order
means anything (:func:`noise_floor`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nasoa_lib import verdict
from nasoa_lib.errors import InvalidEstimatorInput

METHODS = ("original", "optimized", "estimate")
COMPARED = ("estimate", "original")
"""The thesis's comparison: the ensemble estimate against the network's own accuracy at the same epoch."""


# ---------------------------------------------------------------------------------- noise floor


@dataclass(frozen=True)
class NoiseFloor:
    """How far the true accuracies of a group spread against the noise of measuring each one."""

    group: str
    networks: int
    test_images: int
    se_points: float
    spread_std_points: float
    range_points: float
    spread_over_se: float
    tau_ceiling: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise_floor(true_acc: Sequence[float], test_images: int, group: str = "", draws: int = 2000, seed: int = 0) -> NoiseFloor:
    """Binomial standard error of one network's test accuracy (points, :func:`verdict.accuracy_standard_error`),
    the spread of the true accuracies (std and range, points) and their ratio; and the *tau ceiling*:
    the mean Kendall tau between the true accuracies and a re-draw of them with binomial test noise
    alone, i.e. what a perfect estimator could reach against this test set."""
    p = np.asarray(true_acc, dtype=float)
    if len(p) == 0 or test_images < 1:
        raise InvalidEstimatorInput(f"noise floor of {len(p)} accuracies on {test_images} test images",
                                    hint="pass the trained networks' true accuracies and the test set size")
    se = 100 * verdict.accuracy_standard_error(p, test_images)
    std = 100 * float(p.std(ddof=1)) if len(p) > 1 else float("nan")
    rng = np.random.default_rng(seed)
    redrawn = rng.binomial(test_images, np.clip(p, 0, 1), size=(draws, len(p))) / test_images
    taus = np.array([verdict.rank_correlation(p, r, "kendall") for r in redrawn])
    return NoiseFloor(group, len(p), int(test_images), se, std, 100 * float(np.ptp(p)),
                      std / se if se > 0 else float("nan"), float(np.nanmean(taus)) if len(p) > 1 else float("nan"))


# ----------------------------------------------------------------------- error and rank per epoch


def population_arrays(curves: pd.DataFrame, group: str = "space") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``({method: (networks, epochs) matrix}, true accuracies, epochs)`` of one group of
    :func:`.population.curves_frame`, one row per network (the population pooled over seeds)."""
    sub = curves[curves["group"] == group]
    if sub.empty:
        raise InvalidEstimatorInput(f"no networks of group {group!r} in the curves",
                                    hint="train the population first (run_population)")
    wide = {m: sub.pivot_table(index=["member", "seed"], columns="epoch", values=m, aggfunc="first").sort_index()
            for m in METHODS}
    true = sub.groupby(["member", "seed"])["true"].first().reindex(wide["original"].index).to_numpy(float)
    epochs = wide["original"].columns.to_numpy(int)
    return {m: w.reindex(columns=epochs).to_numpy(float) for m, w in wide.items()}, true, epochs


def error_and_tau_ci(curves: pd.DataFrame, group: str = "space") -> pd.DataFrame:
    """Thesis Figs 4.3/4.4 with intervals: per epoch and method, the mean absolute error to the
    true accuracy (points, t interval over networks) and Kendall's tau with the true ranking
    (Fisher-z interval, the study's rule for rank correlations), on the whole population."""
    values, true, epochs = population_arrays(curves, group)
    rows = []
    for k, epoch in enumerate(epochs):
        for method in METHODS:
            col = values[method][:, k]
            err = 100 * np.abs(col - true)
            mean, lo, hi = verdict.t_interval(err)
            n = int(np.isfinite(col).sum())
            tau = verdict.rank_correlation(col, true, "kendall")
            tau_lo, tau_hi = verdict.correlation_interval(tau, n, "kendall")
            rows.append({"epoch": int(epoch), "method": method, "n": n,
                         "abs_error_pts": mean, "abs_error_ci_low": lo, "abs_error_ci_high": hi,
                         "tau": tau, "tau_ci_low": tau_lo, "tau_ci_high": tau_hi})
    return pd.DataFrame(rows)


def _tau_gain(columns: np.ndarray) -> float:
    """Mean over epochs of tau(estimate, true) - tau(original, true); ``columns`` holds the
    estimate's epochs, then the original's, then the true accuracy (one row per network)."""
    k = (columns.shape[1] - 1) // 2
    true = columns[:, -1]
    return float(np.mean(_taus(columns[:, :k], true) - _taus(columns[:, k:2 * k], true)))


def _taus(matrix: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Kendall's tau of each column of ``matrix`` (one row per network) with the true accuracies."""
    return np.array([verdict.rank_correlation(matrix[:, i], true, "kendall") for i in range(matrix.shape[1])])


def _error_gain(est: np.ndarray, orig: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per network, mean absolute error (points) of the estimate and of the original over the given epochs."""
    return (100 * np.abs(est - true[:, None]).mean(axis=1), 100 * np.abs(orig - true[:, None]).mean(axis=1))


def gain_by_epoch(curves: pd.DataFrame, group: str = "space", noise: NoiseFloor | None = None,
                  resamples: int = verdict.BOOTSTRAP_RESAMPLES) -> pd.DataFrame:
    """Per epoch, the estimate against the original decided by the shared rule: the paired error
    difference (estimate - original, points; the claim is that it is below 0) and the tau
    difference (estimate - original; the claim is that it is above 0, bootstrap over networks)."""
    values, true, epochs = population_arrays(curves, group)
    floor = noise.se_points if noise else float("nan")
    rows = []
    for k, epoch in enumerate(epochs):
        est, orig = values["estimate"][:, [k]], values["original"][:, [k]]
        e_err, o_err = _error_gain(est, orig, true)
        err = verdict.paired(f"epoch {epoch}: error lower", e_err, o_err, "less", unit="points", noise_floor=floor)
        tau = verdict.bootstrap(f"epoch {epoch}: tau higher", np.column_stack([est, orig, true]), _tau_gain,
                                "greater", noise_floor=floor, resamples=resamples)
        rows.append({"epoch": int(epoch), "n": err.n,
                     "error_gain_pts": err.effect, "error_ci_low": err.ci_low, "error_ci_high": err.ci_high,
                     "error_verdict": err.verdict,
                     "tau_gain": tau.effect, "tau_ci_low": tau.ci_low, "tau_ci_high": tau.ci_high, "tau_verdict": tau.verdict,
                     "noise_floor_pts": floor})
    return pd.DataFrame(rows)


def estimator_claims(curves: pd.DataFrame, epoch: int, noise: NoiseFloor, group: str = "space",
                     resamples: int = verdict.BOOTSTRAP_RESAMPLES) -> list[verdict.Verdict]:
    """The thesis's estimation claims (Figs 4.3, 4.4) on the population: at ``epoch``, and averaged
    over every epoch before the last, the estimate's absolute error is lower and its Kendall tau with
    the true ranking higher than those of the network's accuracy at the same epoch."""
    values, true, epochs = population_arrays(curves, group)
    if epoch not in epochs:
        raise InvalidEstimatorInput(f"epoch {epoch} was not recorded", hint=f"one of {list(epochs)}")
    k = int(np.flatnonzero(epochs == epoch)[0])
    early = slice(0, max(1, len(epochs) - 1))
    spread = (f"{noise.networks} networks; true accuracies spread {noise.spread_std_points:.2f} points (std) = "
              f"{noise.spread_over_se:.1f} x the test SE; tau ceiling from test noise {noise.tau_ceiling:.2f}")
    out = []
    for label, cols in ((f"at epoch {epoch} of {epochs[-1]}", slice(k, k + 1)),
                        (f"averaged over epochs {epochs[early][0]}-{epochs[early][-1]} of {epochs[-1]}", early)):
        est, orig = values["estimate"][:, cols], values["original"][:, cols]
        e_err, o_err = _error_gain(est, orig, true)
        out.append(verdict.paired(
            f"Fig 4.3: {label}, the estimate's absolute error to the true accuracy is lower than the accuracy's",
            e_err, o_err, "less", unit="points", noise_floor=noise.se_points,
            evidence=f"mean error estimate {e_err.mean():.2f} vs original {o_err.mean():.2f} points; {spread}"))
        out.append(verdict.bootstrap(
            f"Fig 4.4: {label}, the estimate ranks networks closer to the true ranking (Kendall tau) than the accuracy",
            np.column_stack([est, orig, true]), _tau_gain, "greater", unit="tau", noise_floor=noise.se_points,
            evidence=f"tau estimate {_taus(est, true).mean():.3f} vs original {_taus(orig, true).mean():.3f}; {spread}",
            resamples=resamples))
    return out


# ------------------------------------------------------------------------------------- searches


def paired_by_seed(runs: pd.DataFrame, method: str) -> tuple[np.ndarray, np.ndarray]:
    """True accuracies (%) of ``method``'s chosen configurations with and without the estimator,
    paired by the search's seed (an error when the two sets of runs differ in seeds)."""
    f = runs[runs["method"] == method]
    with_ = f[f["metric"] == "estimate"].sort_values("seed")
    without = f[f["metric"] == "original"].sort_values("seed")
    if not np.array_equal(without["seed"].to_numpy(), with_["seed"].to_numpy()):
        raise InvalidEstimatorInput(f"{method}: runs with and without the estimator have different seeds",
                                    hint="compare_searches runs both metrics for the same seeds")
    return 100 * with_["true_acc"].to_numpy(float), 100 * without["true_acc"].to_numpy(float)


def search_table(runs: pd.DataFrame, true_acc: Sequence[float], test_images: int,
                 thesis: pd.DataFrame | None = None) -> pd.DataFrame:
    """Thesis Table 4.1/4.3 with intervals: per method, the mean true accuracy (%) of the chosen
    configuration without and with the estimator (t interval over the repeated runs), their paired
    difference and its verdict, beside the mean and best true accuracy of all configurations (what
    picking at random, and what a perfect search, would give) and the thesis's numbers."""
    true = 100 * np.asarray(true_acc, dtype=float)
    se = 100 * verdict.accuracy_standard_error(np.asarray(true_acc, dtype=float), test_images)
    rows = []
    for method in dict.fromkeys(runs["method"]):
        a, b = paired_by_seed(runs, method)
        m_o, lo_o, hi_o = verdict.t_interval(b)
        m_e, lo_e, hi_e = verdict.t_interval(a)
        gain = verdict.paired(method, a, b, "greater", unit="points", noise_floor=se)
        row: dict[str, Any] = {
            "method": method, "runs": len(a),
            "without_mean": m_o, "without_ci_low": lo_o, "without_ci_high": hi_o,
            "with_mean": m_e, "with_ci_low": lo_e, "with_ci_high": hi_e,
            "gain_points": gain.effect, "gain_ci_low": gain.ci_low, "gain_ci_high": gain.ci_high, "verdict": gain.verdict,
            "noise_floor_pts": se, "configs": len(true), "configs_mean": float(true.mean()), "configs_best": float(true.max()),
        }
        if thesis is not None:
            t = thesis[thesis["method"] == method]
            if len(t):
                t = t.iloc[0] if "network" not in t else t[t["network"] == "ResNet-18"].iloc[0]
                row["thesis_without"] = f"{t['without_mean']:.2f} ± {t['without_std']:.2f}"
                row["thesis_with"] = f"{t['with_mean']:.2f} ± {t['with_std']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def search_claims(tables: Mapping[str, pd.DataFrame], runs: Mapping[str, pd.DataFrame],
                  true_acc: Mapping[str, Sequence[float]], test_images: int) -> list[verdict.Verdict]:
    """Tables 4.1/4.3's claim per task and method: at equal budget, ranking by the estimate picks a
    configuration of higher true accuracy (paired over the repeated runs' seeds)."""
    out = []
    for task, table in tables.items():
        se = 100 * verdict.accuracy_standard_error(np.asarray(true_acc[task], dtype=float), test_images)
        for method in table["method"]:
            a, b = paired_by_seed(runs[task], method)
            row = table[table["method"] == method].iloc[0]
            out.append(verdict.paired(
                f"Table {'4.1' if task.startswith('NAS') else '4.3'} ({task}, {method}): ranking by the estimate finds a "
                "better configuration at equal budget", a, b, "greater", unit="points", noise_floor=se,
                evidence=f"with {row['with_mean']:.2f} vs without {row['without_mean']:.2f} %; {row['configs']} configurations, "
                         f"mean {row['configs_mean']:.2f} %, best {row['configs_best']:.2f} %"))
    return out


def intervals_at(frame: pd.DataFrame, epoch: int) -> dict[str, str]:
    """``{"abs_error_pts_epoch7_estimate": "4.46 [3.90, 5.02]", ...}``: the headline's error and tau
    of each compared method at ``epoch``, each with its 95 % interval (from :func:`error_and_tau_ci`)."""
    at = frame[frame["epoch"] == epoch].set_index("method")
    out = {}
    for col, low, high, digits in (("abs_error_pts", "abs_error_ci_low", "abs_error_ci_high", 2), ("tau", "tau_ci_low", "tau_ci_high", 3)):
        name = "abs_error_pts" if col == "abs_error_pts" else "kendall_tau"
        for method in reversed(COMPARED):
            r = at.loc[method]
            out[f"{name}_epoch{epoch}_{method}"] = f"{r[col]:.{digits}f} [{r[low]:.{digits}f}, {r[high]:.{digits}f}]"
    return out
