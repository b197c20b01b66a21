"""What notebook 09 concludes from its NSS runs, decided by the study's verdict rule (issue 18).

The NSS paper's claims, each an effect with a sign (:mod:`nasoa_lib.verdict`):

* the sampled networks learn the task (error below chance), and their error falls with FLOPs
  (Figs 3-4: the blue cloud slopes down). This must hold before a comparison of spaces at a FLOPs
  target can mean anything: if error does not depend on the architecture, no space can be better;
* an Elite Space holds better networks than the Expanded Search Space at its FLOPs target (Fig. 5d:
  error EDFs of architectures within +-10 % of the target; Tables 1-2: error of the NAS result);
* sampling inside an Elite Space hits the FLOPs target with fewer draws, and closer (Tables 1-2,
  ``#samples`` and FLOPs deviation).

The noise floor beside an error effect is the binomial standard error of one network's test error
on the profile's test images (:func:`nasoa_lib.verdict.accuracy_standard_error`, in points); for a
rank correlation, a draw count or a FLOPs deviation it has no meaning and is left empty (the
per-network noise floor is then named in the evidence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from nasoa_lib import verdict
from nasoa_lib.errors import InvalidArgumentError
from nasoa_lib.nss.flops import format_flops

if TYPE_CHECKING:
    from nasoa_lib.studies.network_space_search.study import DatasetResults

POINTS = "points"


def chance_error(num_classes: int) -> float:
    """Top-1 error (%) of guessing: ``100 (1 - 1/C)``."""
    if num_classes < 2:
        raise InvalidArgumentError(f"num_classes={num_classes}; a classification task has >= 2 classes",
                                   hint="pass the dataset's number of classes")
    return 100.0 * (1.0 - 1.0 / num_classes)


def error_noise_floor(errors_pct: Sequence[float] | np.ndarray | pd.Series, test_images: int) -> float:
    """Binomial standard error (points) of one network's test error at the errors measured, over
    ``test_images`` test images (root mean square over the networks)."""
    acc = 1.0 - np.asarray(errors_pct, dtype=float) / 100.0
    return 100.0 * verdict.accuracy_standard_error(acc, test_images)


def mean_gap_over_targets(units: np.ndarray) -> float:
    """Mean over targets of (mean Elite error - mean Expanded error); ``units`` rows are
    (target index, 1 for Elite / 0 for Expanded, error). Targets missing a side are left out; nan
    when none has both (a bootstrap resample that lost a side)."""
    units = np.asarray(units, dtype=float)
    gaps = []
    for t in np.unique(units[:, 0]):
        rows = units[units[:, 0] == t]
        elite, expanded = rows[rows[:, 1] == 1, 2], rows[rows[:, 1] == 0, 2]
        if len(elite) and len(expanded):
            gaps.append(elite.mean() - expanded.mean())
    return float(np.mean(gaps)) if gaps else float("nan")


def flops_error_correlations(results: Sequence["DatasetResults"]) -> pd.DataFrame:
    """Spearman rho of FLOPs and error of the uniformly sampled networks of every space (Figs 3-4),
    with its 95 % interval (:func:`nasoa_lib.verdict.correlation`); the Expanded row is the claim (it spans the whole FLOPs range), an
    Elite Space's samples lie in a narrow FLOPs band where little relation is expected."""
    rows = []
    for res in results:
        for space, g in res.samples.groupby("space", sort=False):
            v = verdict.correlation(f"{res.name} {space}: error falls with FLOPs", g["flops"], g["error"],
                                    "spearman", direction="less", unit="rho")
            rows.append({"dataset": res.name, "space": space, "n": v.n, "spearman": v.effect,
                         "ci_low": v.ci_low, "ci_high": v.ci_high, "verdict": v.verdict,
                         "median_error_%": float(g["error"].median()), "min_error_%": float(g["error"].min()),
                         "chance_error_%": chance_error(res.num_classes),
                         "flops_min": float(g["flops"].min()), "flops_max": float(g["flops"].max()),
                         "noise_floor_points": error_noise_floor(g["error"], res.test_images)})
    return pd.DataFrame(rows)


def learning_claims(res: "DatasetResults") -> list[verdict.Verdict]:
    """The precondition: Expanded samples learn (error below chance) and error falls with FLOPs."""
    exp = res.samples[res.samples["space"] == "Expanded"]
    chance = chance_error(res.num_classes)
    floor = error_noise_floor(exp["error"], res.test_images)
    return [
        verdict.one_sample(
            f"{res.name}: networks sampled from the Expanded Space learn (error minus chance, {chance:.0f} %)",
            exp["error"] - chance, direction="less", unit=POINTS, noise_floor=floor,
            evidence=f"median error {exp['error'].median():.1f} %, best {exp['error'].min():.1f} %, "
                     f"{res.test_images} test images"),
        verdict.correlation(
            f"{res.name}: error falls with FLOPs (Figs 3-4, Spearman over Expanded samples)",
            exp["flops"], exp["error"], "spearman", direction="less", unit="rho",
            evidence=f"FLOPs {format_flops(exp['flops'].min())}..{format_flops(exp['flops'].max())}; "
                     f"binomial SE of one network's error {floor:.2f} points"),
    ]


def edf_claims(res: "DatasetResults") -> list[verdict.Verdict]:
    """Fig. 5d as claims: architectures within +-10 % of each target have lower error in the Elite
    Space than in the Expanded Space (Welch per target; over targets, the mean of the per-target
    gaps with a bootstrap over architectures)."""
    out = []
    edf = res.edf
    if edf.empty:
        return out
    for t, g in edf.groupby("target", sort=True):
        elite, expanded = g[g["space"] == "Elite"]["error"], g[g["space"] == "Expanded"]["error"]
        out.append(verdict.two_sample(
            f"{res.name} @{format_flops(t)}: Elite Space networks have lower error than Expanded ones "
            "within +-10 % of the target (Fig. 5d)",
            elite, expanded, direction="less", unit=POINTS, noise_floor=error_noise_floor(g["error"], res.test_images),
            evidence=f"mean {elite.mean():.1f} % (n={len(elite)}) vs {expanded.mean():.1f} % (n={len(expanded)})"))
    targets = sorted(edf["target"].unique())
    units = np.column_stack([edf["target"].map({t: i for i, t in enumerate(targets)}).to_numpy(float),
                             (edf["space"] == "Elite").to_numpy(float), edf["error"].to_numpy(float)])
    out.append(verdict.bootstrap(
        f"{res.name}: Elite Spaces have lower error than the Expanded Space at their targets "
        f"(mean over {len(targets)} targets, Fig. 5d)",
        units, mean_gap_over_targets, direction="less", unit=POINTS,
        noise_floor=error_noise_floor(edf["error"], res.test_images),
        evidence="bootstrap over architectures; effect = mean over targets of (Elite - Expanded) mean error"))
    return out


def nas_claims(res: "DatasetResults", max_samples: int) -> list[verdict.Verdict]:
    """Tables 1-2 as claims, paired by (target, run): NAS inside the Elite Space ends with lower
    error, needs fewer draws to hit the target, and ends closer to it. A run that never hit the
    target within ``max_samples`` draws counts ``max_samples`` (a lower bound of its true count).
    The sampling NAS keeps the best of its pool by its validation error and reports that network's
    test error (:func:`nasoa_lib.nss.evaluate.sampling_nas`), so no choice is made on test."""
    nas = res.nas
    if nas.empty:
        return []
    keyed = nas.assign(hit=nas["samples_to_hit"].astype(float).fillna(float(max_samples)))
    wide = keyed.pivot_table(index=["target", "run"], columns="space_kind",
                             values=["error", "hit", "deviation"], aggfunc="first").dropna()
    n_missed = int(nas["samples_to_hit"].isna().sum())
    e, x = wide["error"]["Elite"], wide["error"]["Expanded"]
    return [
        verdict.paired(
            f"{res.name}: NAS inside Elite Spaces finds lower error than inside the Expanded Space (Tables 1-2)",
            e, x, direction="less", unit=POINTS,
            noise_floor=error_noise_floor(pd.concat([e, x]), res.test_images),
            evidence=f"mean {e.mean():.1f} % vs {x.mean():.1f} % over {len(e)} (target, run) pairs"),
        verdict.paired(
            f"{res.name}: Elite Spaces hit the FLOPs target (+-10 %) in fewer draws (Tables 1-2, #samples)",
            wide["hit"]["Elite"], wide["hit"]["Expanded"], direction="less", unit="draws",
            evidence=f"mean {wide['hit']['Elite'].mean():.1f} vs {wide['hit']['Expanded'].mean():.1f} draws; "
                     f"{n_missed} run(s) missed within {max_samples} draws (counted as {max_samples})"),
        verdict.paired(
            f"{res.name}: NAS results of Elite Spaces lie closer to the FLOPs target (Tables 1-2, deviation)",
            100 * wide["deviation"]["Elite"], 100 * wide["deviation"]["Expanded"], direction="less",
            unit="% of target",
            evidence=f"mean {100 * wide['deviation']['Elite'].mean():.1f} % vs "
                     f"{100 * wide['deviation']['Expanded'].mean():.1f} %"),
    ]


def claims(results: Sequence["DatasetResults"], max_samples: int) -> list[verdict.Verdict]:
    """Notebook 09's claims, one block per dataset: learning and error-vs-FLOPs first, then Elite
    vs Expanded (EDF, NAS); :func:`nasoa_lib.verdict.table` makes the claims table of them."""
    out: list[verdict.Verdict] = []
    for res in results:
        out += learning_claims(res)
        out += edf_claims(res)
        out += nas_claims(res, max_samples)
    return out
