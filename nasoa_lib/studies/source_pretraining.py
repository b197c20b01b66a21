"""Notebook 00's shared source-pretraining stage (issue 23): every model pretrained once, one recipe.

NASOA pretrains every zoo model and every baseline on ImageNet "following common practice"
(section 4.2) and feeds each model's ImageNet accuracy to the predictor (section 3.2.1). Here the
profile's baselines and the released ET-NAS models that fit it are pretrained on the source set
with the profile's one :class:`~nasoa_lib.train.PretrainRecipe` (``train.pretrain``, cached in the
store); notebooks 00 (EMD reference), 01, 04, 05 and 07 load these weights, and notebook 03
pretrains our searched zoo with the same recipe.

What a reader needs to trust the weights is printed from here: each model's per-epoch test top-1
(is it still rising? does the ranking between models settle by the last epoch?), its final top-1
against chance and the study's floor (10x chance) decided by :mod:`nasoa_lib.verdict`, and the
recipe's evidence, measured once by ``benchmarks/pretrain_recipe.py``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from nasoa_lib import verdict
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.train import Pretrained

FLOOR_TIMES_CHANCE = 10.0
"""A pretrained model of the study must reach this multiple of chance (issue 23: >= 10 % on 100 classes)."""
RECIPE_EVIDENCE = REPORT_DIR / "benchmarks" / "pretrain_recipe.csv"
"""Per-epoch curves of the recipe's arms, written by ``benchmarks/pretrain_recipe.py``."""


def stage_models(profile: Profile | str) -> dict[str, str]:
    """``{display name: baseline name or architecture code}`` the stage pretrains: the profile's
    baselines (``models.baselines``), then the released ET-NAS models it compares (``zoo.released``,
    or every released model within the search's step-time limit when that list is ``null``)."""
    from nasoa_lib import zoo
    from nasoa_lib.models import ModelsConfig
    from nasoa_lib.search.config import SearchConfig
    from nasoa_lib.space import RELEASED

    prof = resolve_profile(profile)
    names = {b: b for b in ModelsConfig.from_profile(prof).baselines}
    released = zoo.released_fitting(prof, SearchConfig.from_profile(prof).t_max_ms)
    names.update({zoo.RELEASED + n: RELEASED[n].code for n in released})
    return names


def curves(records: Mapping[str, Mapping[str, object]]) -> pd.DataFrame:
    """One row per model and epoch of the pretraining records (``Pretrained.record``, or a stored
    ``pretrained`` record): test and train top-1, train loss, seconds and cumulative minutes."""
    rows = []
    for name, record in records.items():
        minutes = 0.0
        for e in record["curve"]:
            minutes += float(e["train_seconds"]) / 60
            rows.append({"model": name, "epoch": int(e["epoch"]), "test_top1": float(e["test_top1"]),
                         "train_top1": float(e["train_top1"]), "train_loss": float(e["train_loss"]),
                         "train_seconds": float(e["train_seconds"]), "minutes": minutes})
    return pd.DataFrame(rows)


def summary(pretrained: Mapping[str, Pretrained]) -> pd.DataFrame:
    """Per model: parameters, epochs, training minutes, images/s, final test top-1 and its multiple of chance."""
    rows = []
    for name, p in pretrained.items():
        r = p.record
        chance = 1.0 / int(r["num_classes"])
        rows.append({"model": name, "params_M": int(r["num_params"]) / 1e6, "epochs": len(r["curve"]),
                     "train_minutes": float(r["train_seconds"]) / 60, "images_per_second": float(r["images_per_second"]),
                     "source_top1": float(p.source_top1), "chance": chance, "times_chance": float(p.source_top1) / chance,
                     "test_images": int(r["test_images"])})
    return pd.DataFrame(rows)


def floor_claims(table: pd.DataFrame, times_chance: float = FLOOR_TIMES_CHANCE) -> pd.DataFrame:
    """One claim per model of :func:`summary`'s table: "its source top-1 is at least ``times_chance``
    x chance", its interval the t interval of the mean of its per-image 0/1 outcomes."""
    claims = []
    for r in table.itertuples():
        floor = times_chance * r.chance
        claims.append(verdict.proportion(
            f"{r.model} reaches {times_chance:g}x chance ({floor * 100:.3g} %) on the source test set",
            r.source_top1, r.test_images, threshold=floor,
            noise_floor=verdict.accuracy_standard_error(r.source_top1, r.test_images),
            evidence=f"top-1 {r.source_top1 * 100:.1f} % of {r.test_images} images, chance {r.chance * 100:.2g} %"))
    return verdict.table(claims)


def ranking_stability(curve: pd.DataFrame) -> pd.DataFrame:
    """Kendall tau between the models' ranking by test top-1 after each epoch and after the last
    one. Descriptive, without an interval: with a handful of models tau moves in coarse steps
    (0.2 with 5) and the Fisher-z interval degenerates at |tau| = 1. Only epochs that every model
    has are compared."""
    wide = curve.pivot(index="epoch", columns="model", values="test_top1").dropna()
    if wide.empty:
        return pd.DataFrame(columns=["epoch", "kendall_tau_vs_last", "models"])
    last = wide.iloc[-1].to_numpy()
    return pd.DataFrame([{"epoch": int(epoch), "kendall_tau_vs_last": verdict.rank_correlation(row.to_numpy(), last, "kendall"),
                          "models": wide.shape[1]} for epoch, row in wide.iterrows()])


def plot_curves(curve: pd.DataFrame, chance: float, times_chance: float = FLOOR_TIMES_CHANCE, title: str = ""):
    """Test top-1 per epoch, one line per model, with chance and the study's floor."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, grp in curve.groupby("model", sort=False):
        axes[0].plot(grp.epoch, grp.test_top1 * 100, "-o", ms=3, label=name)
        axes[1].plot(grp.minutes, grp.test_top1 * 100, "-o", ms=3, label=name)
    for ax, xlabel in ((axes[0], "epoch"), (axes[1], "training minutes (this machine)")):
        ax.axhline(chance * 100, color="grey", ls=":", lw=1, label="chance")
        ax.axhline(times_chance * chance * 100, color="grey", ls="--", lw=1, label=f"{times_chance:g}x chance")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("source test top-1 (%)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def recipe_evidence(path=RECIPE_EVIDENCE) -> pd.DataFrame | None:
    """The recipe's measured arms (``benchmarks/pretrain_recipe.py``): one row per arm and epoch;
    ``None`` when the benchmark has not been run on this checkout."""
    from pathlib import Path

    path = Path(path)
    return pd.read_csv(path) if path.exists() else None


def recipe_arms_table(evidence: pd.DataFrame) -> pd.DataFrame:
    """One row per arm of :func:`recipe_evidence`: epochs, CPU-minutes and final test top-1."""
    last = evidence.sort_values("epoch").groupby("arm", sort=False).tail(1).set_index("arm")
    minutes = evidence.groupby("arm", sort=False).train_seconds.sum() / 60
    out = last[["model", "stem", "augment", "label_smoothing", "batch_size", "lr", "epochs"]].copy()
    out["train_minutes"] = minutes
    out["source_top1_%"] = last.test_top1 * 100
    out["test_images"] = last.test_images
    return out.reset_index()


def stem_claims(evidence: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Per model, "the ImageNet stem beats the small-image stem at equal planned CPU-minutes" (the
    small stem's epochs are the chosen epochs divided by the two stems' step-time ratio, measured
    in one interleaved run; the arms' measured minutes are printed beside, since a busy machine
    stretches wall-clock): the difference of final top-1 between the two arms, each a proportion of
    its test images (:func:`nasoa_lib.verdict.two_proportions`, Welch's interval over the per-image
    outcomes), with the arms' test standard error as the noise floor."""
    arms = recipe_arms_table(evidence)
    claims = []
    for model in models:
        rows = arms[arms.model == model]
        small = rows[rows.stem == "small"]
        if small.empty:
            continue
        s = small.iloc[0]
        same_recipe = ((rows.stem == "imagenet") & (rows.augment == s.augment) & (rows.label_smoothing == s.label_smoothing)
                       & (rows.batch_size == s.batch_size) & (rows.lr == s.lr))
        if not same_recipe.any():
            continue
        b = rows[same_recipe].iloc[0]  # the ImageNet-stem arm of the same recipe (not an ablation of it)
        claims.append(verdict.two_proportions(
            f"{model}: the ImageNet stem beats the small-image stem at equal planned CPU-minutes",
            b["source_top1_%"] / 100, int(b.test_images), s["source_top1_%"] / 100, int(s.test_images),
            noise_floor=verdict.accuracy_standard_error([b["source_top1_%"] / 100, s["source_top1_%"] / 100],
                                                        [int(b.test_images), int(s.test_images)]),
            evidence=(f"{b['source_top1_%']:.1f} % in {b.train_minutes:.1f} min ({int(b.epochs)} epochs) vs "
                      f"{s['source_top1_%']:.1f} % in {s.train_minutes:.1f} min ({int(s.epochs)} epochs)")))
    return verdict.table(claims)


def headline(table: pd.DataFrame, claims: pd.DataFrame) -> dict[str, object]:
    """Notebook 00's pretraining numbers for the report index."""
    best = table.sort_values("source_top1", ascending=False)
    return {
        "pretrained models": len(table),
        "source top-1 % (model)": ", ".join(f"{r.model} {r.source_top1 * 100:.1f}" for r in best.itertuples()),
        f"models >= {FLOOR_TIMES_CHANCE:g}x chance": verdict.counts(claims),
        "pretraining minutes (this machine)": round(float(table.train_minutes.sum()), 1),
    }
