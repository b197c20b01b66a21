"""Notebook 01: the preliminary experiments of NASOA (section 4.1; appendix Figs. 6-7), the loops behind notebook 01.

NASOA motivates its design with four findings: fine-tuning beats training from scratch; the
number of frozen stages changes both accuracy and time, and its best value depends on the dataset
(Fig. 6 left); which model is best depends on the dataset and the time budget, smaller models
winning short budgets (Fig. 6 right, Fig. 7); and the learning rate matters. This module plans
those runs at a profile's scale (:class:`PreliminaryConfig`, the profile's ``preliminary:``
section), runs each once (every run is a store record keyed by its spec, so a re-run skips
finished runs and an interrupted one resumes), turns the records into tables and checks each
finding against the data (:func:`conclusions`).

Tasks: for each dataset and seed, one task of ``num_classes`` random classes with
``images_per_class`` training images (``nasoa_lib.data.sample_task_spec``); every experiment of
that (dataset, seed) fine-tunes the same task, so the comparisons are paired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nasoa_lib import verdict
from nasoa_lib.errors import ProfileConfigError
from nasoa_lib.finetune import FINETUNE_KIND, FinetuneRecord, FinetuneSettings, Regime, finetune_cached, run_spec, worker_threads
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.store import ArtifactStore, spec_key
from nasoa_lib.train import PretrainRecipe

log = logging.getLogger(__name__)

STEP_TIME_KIND = "preliminary_step_time"
EXPERIMENTS = ("finetune_vs_scratch", "frozen_stages", "model_vs_time", "learning_rate")


@dataclass(frozen=True)
class PreliminaryConfig:
    """The profile's ``preliminary:`` section.

    ``models`` are ordered from small (fast step) to large; ``main_model`` is fine-tuned in the
    scratch, frozen-stage and learning-rate experiments; ``time_budgets`` (seconds of training on
    this device) are given to every model in the model-vs-time experiment, which turns each budget
    into iterations with the stored measured step time, as NASOA's generator does with its step-time
    lookup table (no wall-clock limit: runs stay deterministic and cacheable on a busy CPU; the
    achieved seconds are reported). ``datasets=None`` means the profile's meta-train sets, ``seeds=None`` its seeds.
    """

    models: tuple[str, ...]
    main_model: str
    num_classes: int
    images_per_class: int
    test_per_class: int
    iterations: int
    lr: float
    scratch_lr: float
    lrs: tuple[float, ...]
    frozen_stages: tuple[int, ...]
    time_budgets: tuple[float, ...]
    datasets: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "PreliminaryConfig":
        prof = resolve_profile(profile)
        cfg = prof.section("preliminary", cls)
        if cfg.main_model not in cfg.models:
            raise ProfileConfigError(f"preliminary.main_model {cfg.main_model!r} must be one of models {cfg.models}",
                                     hint="add main_model to the preliminary: section's models, or pick one of them")
        return cfg

    def dataset_names(self, profile: Profile) -> tuple[str, ...]:
        return tuple(self.datasets) if self.datasets else profile.meta_train

    def seed_values(self, profile: Profile) -> tuple[int, ...]:
        return tuple(self.seeds) if self.seeds else profile.seeds


@dataclass(frozen=True)
class PlannedRun:
    """One fine-tuning run of one experiment; ``setting`` is what the experiment varies."""

    experiment: str
    dataset: str
    seed: int
    model: str
    pretrained: bool
    regime: Regime
    setting: Any
    task: Any = field(repr=False)
    time_limit: float | None = None
    eval_points: int = 1

    def key(self, pretrained_keys: Mapping[str, str]) -> str:
        pkey = pretrained_keys[self.model] if self.pretrained else None
        return spec_key(run_spec(pkey, self.model, self.task, self.regime, self.time_limit, self.seed, self.eval_points))


# ----------------------------------------------------------------------------------------------
# Pretraining and step times
# ----------------------------------------------------------------------------------------------


def step_times(profile: Profile | str, cfg: PreliminaryConfig, store: ArtifactStore | None = None) -> dict[str, float]:
    """Median training-step seconds of each model at the fine-tuning batch size and the threads
    one worker uses; measured once and stored (the iteration counts of the model-vs-time
    experiment derive from them, so re-measuring would change run keys)."""
    from nasoa_lib.builder import key_fields
    from nasoa_lib.measure import MeasureConfig, measure_step_time, warn_if_contended
    from nasoa_lib.train import build_model

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    settings = FinetuneSettings.from_profile(prof)
    threads = min(prof.threads, worker_threads(settings.workers))
    out = {}
    for name in cfg.models:
        spec = {"model": name, "batch_size": settings.batch_size, "image_size": prof.image_size,
                "threads": threads, "num_classes": cfg.num_classes, **key_fields(name)}
        key = spec_key(spec)
        record = store.get(STEP_TIME_KIND, key)
        if record is None:
            warn_if_contended(f"the step time of {name}")
            recipe = PretrainRecipe.from_profile(prof)
            model = build_model(name, cfg.num_classes, prof.image_size, recipe.small_image_stem)
            m = MeasureConfig.from_profile(prof)
            timing = measure_step_time(model, settings.batch_size, prof.image_size, warmup=m.warmup, steps=m.steps,
                                       threads=threads)
            record = {**spec, "median_seconds": timing.median_ms / 1000.0, "timing": timing.to_dict()}
            store.put(STEP_TIME_KIND, key, record)
        out[name] = float(record["median_seconds"])
    return out


# ----------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------


def task_specs(profile: Profile | str, cfg: PreliminaryConfig) -> dict[tuple[str, int], Any]:
    """One task spec per (dataset, seed); test images per class capped by what the dataset has."""
    from nasoa_lib.data import load_dataset, sample_task_spec

    prof = resolve_profile(profile)
    specs = {}
    for name in cfg.dataset_names(prof):
        data = load_dataset(name)
        test_cap = int(data.test_counts().min())
        for seed in cfg.seed_values(prof):
            specs[(name, seed)] = sample_task_spec(data, cfg.num_classes, cfg.images_per_class, seed,
                                                   test_per_class=min(cfg.test_per_class, test_cap))
    return specs


def plan_runs(profile: Profile | str, cfg: PreliminaryConfig, seconds_per_step: Mapping[str, float]) -> list[PlannedRun]:
    """Every run of the four experiments (shared runs appear under each experiment, run once)."""
    prof = resolve_profile(profile)
    settings = FinetuneSettings.from_profile(prof)
    runs: list[PlannedRun] = []
    main = cfg.main_model
    for (dataset, seed), spec in task_specs(prof, cfg).items():
        base = dict(dataset=dataset, seed=seed, task=spec)
        runs.append(PlannedRun("finetune_vs_scratch", model=main, pretrained=True, setting="fine-tune",
                               regime=settings.regime(cfg.lr, cfg.iterations), **base))
        runs.append(PlannedRun("finetune_vs_scratch", model=main, pretrained=False, setting="scratch",
                               regime=settings.regime(cfg.scratch_lr, cfg.iterations), **base))
        for k in cfg.frozen_stages:
            runs.append(PlannedRun("frozen_stages", model=main, pretrained=True, setting=int(k),
                                   regime=settings.regime(cfg.lr, cfg.iterations, int(k)), **base))
        for lr in cfg.lrs:
            runs.append(PlannedRun("learning_rate", model=main, pretrained=True, setting=float(lr),
                                   regime=settings.regime(float(lr), cfg.iterations), **base))
        for name in cfg.models:
            for budget in cfg.time_budgets:
                iterations = max(1, int(budget / seconds_per_step[name]))
                runs.append(PlannedRun("model_vs_time", model=name, pretrained=True, setting=float(budget),
                                       regime=settings.regime(cfg.lr, iterations), **base))
    return runs


def plan_minutes(runs: Sequence[PlannedRun], seconds_per_step: Mapping[str, float], done: set[str] | None = None,
                 pretrained_keys: Mapping[str, str] | None = None, overhead_seconds: float = 0.5) -> pd.DataFrame:
    """Expected minutes per experiment: iterations x measured step time (an upper bound for frozen
    runs, which skip most of the backward pass) + a per-run overhead (copy, evaluation), counting
    each distinct run once and skipping runs already in the store."""
    seen: set[str] = set(done or ())
    rows = []
    for experiment in EXPERIMENTS:
        count, seconds = 0, 0.0
        for run in runs:
            if run.experiment != experiment:
                continue
            key = run.key(pretrained_keys) if pretrained_keys is not None else None
            if key is not None and key in seen:
                continue
            if key is not None:
                seen.add(key)
            step = seconds_per_step.get(run.model, max(seconds_per_step.values()))
            train = run.regime.iterations * step
            if run.time_limit is not None:
                train = min(train, run.time_limit)
            count += 1
            seconds += train + overhead_seconds
        rows.append({"experiment": experiment, "new_runs": count, "expected_minutes": seconds / 60})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------


def run_experiments(
    profile: Profile | str,
    runs: Sequence[PlannedRun],
    pretrained: Mapping[str, Any],
    store: ArtifactStore | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every distinct planned run once (store-cached) and return one row per planned run."""
    from nasoa_lib.data import make_task

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    keys = {name: p.key for name, p in pretrained.items()}
    tasks: dict[Any, Any] = {}
    records: dict[str, FinetuneRecord] = {}
    bar = _bar(len(runs), progress, "fine-tuning runs")
    for run in runs:
        key = run.key(keys)
        if key not in records:
            found = store.get(FINETUNE_KIND, key)
            if found is not None:
                record = FinetuneRecord.from_dict(found)
            else:
                if run.task not in tasks:
                    tasks[run.task] = make_task(run.task)
                record = finetune_cached(
                    store, pretrained[run.model] if run.pretrained else None, tasks[run.task], run.regime,
                    model=None if run.pretrained else run.model, time_limit=run.time_limit, seed=run.seed,
                    eval_points=run.eval_points, image_size=prof.image_size, profile=prof.name,
                )
            records[key] = record
        bar.update(1)
    bar.close()
    return results_frame(runs, records, keys)


def results_frame(runs: Sequence[PlannedRun], records: Mapping[str, FinetuneRecord],
                  pretrained_keys: Mapping[str, str]) -> pd.DataFrame:
    rows = []
    for run in runs:
        rec = records[run.key(pretrained_keys)].result
        rows.append({
            "experiment": run.experiment, "dataset": run.dataset, "seed": run.seed, "model": run.model,
            "pretrained": run.pretrained, "setting": run.setting, "lr": run.regime.lr,
            "frozen_stages": run.regime.frozen_stages, "iterations": run.regime.iterations,
            "time_limit": run.time_limit, "accuracy": rec.accuracy, "train_seconds": rec.train_seconds,
            "steps": rec.steps, "stopped_by_time": rec.stopped_by_time,
            "median_step_seconds": rec.median_step_seconds, "frozen_cache": rec.frozen_cache,
            "key": rec.key,
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Summaries and conclusions
# ----------------------------------------------------------------------------------------------


def summary(frame: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Mean and standard deviation over seeds of accuracy and training time, per dataset x setting."""
    sub = frame[frame.experiment == experiment]
    by = ["dataset", "model", "setting"]
    agg = sub.groupby(by).agg(
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        seconds_mean=("train_seconds", "mean"), seconds_std=("train_seconds", "std"),
        steps_mean=("steps", "mean"), seeds=("seed", "nunique"),
    )
    return agg.reset_index()


def conclusions(frame: pd.DataFrame, models: Sequence[str], test_images: int) -> pd.DataFrame:
    """Each finding of NASOA section 4.1 / appendix Figs 6-7 decided by the study's verdict rule
    (:mod:`nasoa_lib.verdict`) on paired tasks (one task per dataset and seed).

    Findings about a *choice* ("the best frozen-stage count differs between datasets", "the
    learning rate matters") are measured out of sample, because the best of several noisy means
    beats their worst even when nothing differs: the choice is made on the other seeds and its
    gain measured on the held-out seed (:func:`held_out_choice_gain`). ``test_images`` (per task)
    gives each effect its noise floor, the binomial standard error of one task's test accuracy."""
    pts = "points"

    def floor(sub: pd.DataFrame) -> float:
        return verdict.accuracy_standard_error(sub.accuracy, test_images) * 100

    out: list[verdict.Verdict] = []
    ft = frame[frame.experiment == "finetune_vs_scratch"].pivot_table(
        index=["dataset", "seed"], columns="setting", values="accuracy")
    means = ft.groupby(level="dataset").mean()
    out.append(verdict.paired(
        "Fine-tuning beats training from scratch at equal iterations (paired by task)",
        ft["fine-tune"] * 100, ft["scratch"] * 100, unit=pts,
        noise_floor=floor(frame[frame.experiment == "finetune_vs_scratch"]),
        evidence="; ".join(f"{d}: {r['fine-tune']:.3f} vs {r['scratch']:.3f}" for d, r in means.iterrows())))

    fz = _numeric_setting(frame, "frozen_stages")
    gain = held_out_choice_gain(fz, "setting", per=("dataset",), versus="global")
    out.append(verdict.one_sample(
        "The best number of frozen stages differs between datasets (Fig. 6 left): choosing k per "
        "dataset beats one k for all, on held-out seeds",
        gain * 100, unit=pts, noise_floor=floor(fz), evidence=_best_settings(fz, "setting", ("dataset",), "k=")))
    times = fz.pivot_table(index=["dataset", "seed"], columns="setting", values="train_seconds")
    k0, kmax = min(times.columns), max(times.columns)
    out.append(verdict.paired(
        f"Freezing more stages shortens fine-tuning (seconds at k={k0} minus k={kmax}, paired by task)",
        times[k0], times[kmax], unit="seconds",
        evidence=", ".join(f"k={k}: {v:.2f}s" for k, v in times.mean().items())))
    gain = held_out_choice_gain(fz, "setting", per=("dataset",), versus="worst")
    out.append(verdict.one_sample(
        "Frozen stages matter for accuracy: the best k beats the worst k, both chosen on the other seeds",
        gain * 100, unit=pts, noise_floor=floor(fz), evidence=_spread(fz, "setting")))

    mt = _numeric_setting(frame, "model_vs_time")
    short, large, small = mt.setting.min(), models[-1], models[0]
    at_short = mt[mt.setting == short].pivot_table(index=["dataset", "seed"], columns="model", values="accuracy")
    out.append(verdict.paired(
        f"With the shortest budget ({short:g}s) the smallest model ({small}) beats the largest ({large}) (Fig. 7)",
        at_short[small] * 100, at_short[large] * 100, unit=pts, noise_floor=floor(mt[mt.setting == short]),
        evidence="; ".join(f"{d}: {r[small]:.3f} vs {r[large]:.3f}"
                           for d, r in at_short.groupby(level="dataset").mean().iterrows())))
    gain = held_out_choice_gain(mt, "model", per=("dataset", "setting"), versus="global")
    out.append(verdict.one_sample(
        "The best model depends on the dataset and the time budget (Fig. 6 right): choosing the model per "
        "dataset and budget beats one model for all, on held-out seeds",
        gain * 100, unit=pts, noise_floor=floor(mt), evidence=_best_settings(mt, "model", ("dataset", "setting"), "")))

    lr = _numeric_setting(frame, "learning_rate")
    gain = held_out_choice_gain(lr, "setting", per=("dataset",), versus="worst")
    out.append(verdict.one_sample(
        "The learning rate matters: the best lr beats the worst lr, both chosen on the other seeds",
        gain * 100, unit=pts, noise_floor=floor(lr), evidence=_spread(lr, "setting")))
    return verdict.table(out)


def held_out_choice_gain(sub: pd.DataFrame, option: str, per: Sequence[str], versus: str) -> np.ndarray:
    """Out-of-sample gain of choosing ``option`` per group (leave one seed out).

    For each held-out seed and each group of ``per`` (e.g. each dataset), the best option is the
    one with the highest mean accuracy on the *other* seeds; it is compared, on the held-out seed,
    with ``versus``: ``"global"`` (the option best over all groups on the other seeds: does a
    per-group choice pay?) or ``"worst"`` (the group's worst option on the other seeds: does the
    option matter at all?). Returns one accuracy difference per (held-out seed, group); empty with
    fewer than two seeds."""
    if versus not in ("global", "worst"):
        raise ProfileConfigError(f"versus={versus!r} is not 'global' or 'worst'", hint="pass 'global' or 'worst'")
    seeds = sorted(sub.seed.unique())
    gains: list[float] = []
    if len(seeds) < 2:
        return np.array(gains)
    for held in seeds:
        train, test = sub[sub.seed != held], sub[sub.seed == held]
        train_means = train.groupby([*per, option]).accuracy.mean()
        overall = train.groupby(option).accuracy.mean().idxmax()
        test_acc = test.groupby([*per, option]).accuracy.mean()
        for group, part in train_means.groupby(level=list(range(len(per)))):
            options = part.droplevel(list(range(len(per))))
            chosen = options.idxmax()
            other = overall if versus == "global" else options.idxmin()
            key = group if isinstance(group, tuple) else (group,)
            a, b = test_acc.get((*key, chosen)), test_acc.get((*key, other))
            if a is not None and b is not None:
                gains.append(float(a - b))
    return np.array(gains)


def _numeric_setting(frame: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """One experiment's rows with its setting as numbers (k, seconds, lr; the frame's column mixes
    experiments, and a table read back from CSV holds them as text)."""
    sub = frame[frame.experiment == experiment]
    return sub.assign(setting=pd.to_numeric(sub.setting))


def _best_settings(sub: pd.DataFrame, option: str, per: Sequence[str], prefix: str) -> str:
    means = sub.groupby([*per, option]).accuracy.mean()
    best = means.groupby(level=list(range(len(per)))).idxmax()
    return "; ".join("@".join(f"{v:g}" if isinstance(v, float) else str(v) for v in idx[:-1])
                     + f": {prefix}{idx[-1]}" for idx in best)


def _spread(sub: pd.DataFrame, option: str) -> str:
    means = sub.groupby(["dataset", option]).accuracy.mean()
    spread = means.groupby(level="dataset").agg(lambda a: a.max() - a.min())
    return "in-sample best minus worst: " + "; ".join(f"{d}: {v * 100:.1f} pts" for d, v in spread.items())


def headline(frame: pd.DataFrame, verdicts: pd.DataFrame) -> dict[str, Any]:
    ft = summary(frame, "finetune_vs_scratch").pivot(index="dataset", columns="setting", values="accuracy_mean")
    return {
        "runs": int(frame.key.nunique()),
        "finetune_minus_scratch_mean_points": float((ft["fine-tune"] - ft["scratch"]).mean() * 100),
        "claims": verdict.counts(verdicts),
        "training_minutes": float(frame.drop_duplicates("key").train_seconds.sum() / 60),
    }


def _bar(total: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled)
