"""NASOA section 4.4 at our scale: the generator against HPO on unseen tasks (notebook 07).

**Tasks.** For every meta-test dataset (never seen by the predictors) and task seed, one task of the
profile's ``hpo:`` section: ``images_per_class`` training and ``validation_per_class`` validation
images per class (both from the dataset's train split, disjoint) and the dataset's test images
(``test_per_class: null``: all of them, so one task's test SE is about 2 points). Every search
selects on validation accuracy; every method reports test accuracy.

**Budgets.** ``constraints`` time constraints log-spaced between "``low_model`` for ``low_epochs``
epochs" and "``high_model`` for ``high_epochs`` epochs" of the task (NASOA: ResNet-18 for 10 epochs
to ResNet-101 for 50 epochs), turned into seconds by the generator's time table on this device.

**Methods under each constraint T.**

* every baseline of the chosen families, fine-tuned live with the default hyper-parameters (Li et
  al. 2020: one fixed lr, nothing frozen) for the longest ladder run that fits, evaluated at each
  rung and stopped early on validation (Fig. 6's curves);
* the three generator methods of Table 4 recommend and run live once (x1): the longest run of the
  chosen regime that fits T, stopped early on validation (:mod:`nasoa_lib.generator.ranking`); the
  two online ones then learn from the run's *validation* accuracies at its checkpoints (one stream
  over the tasks and constraints in order, starting from notebook 06's stored predictors);
* under the ``table_constraints`` of the tasks of ``table_task_seeds`` (default: every task seed),
  the six searches of Table 4 replay the task's table (:mod:`nasoa_lib.hpo.replay`) with
  ``search_seeds`` seeds each, on a clock of ``search_multiple`` x T simulated seconds (each trial
  charged its recorded seconds, plus SMAC's own measured time). Further task seeds without a table
  cost only their live runs (families and generators): they add units to Fig. 6 and to the
  generator claims, where one task per dataset is too few to tell a trend from the noise.

**The table** of a task: one checkpointed constant-lr run per (model, lr, frozen stages, seed in
``table_seeds``) of every model any search may pick, as long as the longest run of that (model,
frozen) that fits the largest replayed constraint, evaluated at each ladder epoch. NASOA's live
pick is a grid cell too and is looked up in it; ``spot_checks`` random cells are re-run live, alone,
to show the table agrees with a run of that regime (accuracy and seconds).

Every fine-tuning run goes through :func:`nasoa_lib.finetune.finetune_cached` (timed): a run
several methods ask for is computed once, a re-run of the notebook (after kill -9 too) replays
what is stored, and a finished search is stored whole.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nasoa_lib import verdict
from nasoa_lib.errors import BudgetTooSmallError, InvalidSearchSetup, ProfileConfigError, UnknownModelError
from nasoa_lib.finetune import FinetuneRecord, FinetuneSettings, Regime, early_stopped, finetune_cached
from nasoa_lib.generator import (
    FinetuneTimeTable, GeneratorConfig, TaskFeatures, describe, finetune_time_table, recommend,
    task_similarity,
)
from nasoa_lib.generator.online import run as run_recommendation
from nasoa_lib.generator.ranking import checkpoint_seconds, regime_costs
from nasoa_lib.hpo.methods import (
    BY_KEY, METHODS, MODELS_BASELINES, MODELS_FIXED, MODELS_ZOO, SEARCH_BOHB, SEARCH_RANDOM, Method,
)
from nasoa_lib.hpo.replay import CheckpointedRun, ReplayTable, cells_from_run, plan_runs
from nasoa_lib.hpo.search import SearchResult, bohb, random_search
from nasoa_lib.hpo.space import SearchSpace, Trial
from nasoa_lib.online.predictor import AccuracyPredictor
from nasoa_lib.paper import PAPER_TABLE4, PAPER_TABLE5
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.run_length import checkpoint_steps, checkpointed, epochs_of
from nasoa_lib.store import ArtifactStore, spec_key

log = logging.getLogger(__name__)

SEARCH_KIND = "hpo_search"
SECTION = "hpo"
#: Wall-clock seconds SMAC's BOHB spends to set up one search and per trial (ask + tell with the
#: random forest), for the plan only (measured at smoke size: ~1.2 s and ~0.01-0.1 s); the searches
#: charge what they measure.
PLAN_SMAC_SECONDS_PER_SEARCH = 1.5
PLAN_SMAC_SECONDS_PER_TRIAL = 0.05


@dataclass(frozen=True)
class ComparisonConfig:
    """The profile's ``hpo:`` section (notebook 07's sizes; see the module docstring)."""

    images_per_class: int
    validation_per_class: int
    test_per_class: int | None = None
    classes: int | None = None
    datasets: tuple[str, ...] | None = None
    task_seeds: tuple[int, ...] = (0,)
    table_task_seeds: tuple[int, ...] | None = None
    low_model: str = "resnet18"
    low_epochs: int = 10
    high_model: str = "resnet101"
    high_epochs: int = 50
    constraints: int = 4
    table_constraints: tuple[int, ...] = (0,)
    table_seeds: tuple[int, ...] = (0, 1)
    search_seeds: int = 10
    search_multiple: float = 40.0
    fixed_model: str = "regnet_y_400mf"
    families: tuple[str, ...] = ("resnet", "regnet_y", "efficientnet", "mobilenet_v3")
    family_lr: float = 0.01
    family_frozen_stages: int = 0
    eta: int = 3
    min_fidelity: float = 1 / 9
    spot_checks: int = 4

    def __post_init__(self) -> None:
        def bad(message: str, hint: str) -> ProfileConfigError:
            return ProfileConfigError(f"{SECTION} section: {message}", hint=hint)

        if self.images_per_class < 2 or self.validation_per_class < 1:
            raise bad("images_per_class must be >= 2 and validation_per_class >= 1",
                      "e.g. 30 training and 20 validation images per class")
        if self.test_per_class is not None and self.test_per_class < 1:
            raise bad(f"test_per_class={self.test_per_class} must be >= 1 or null (the full test set)",
                      "null uses every test image: one task's test SE is then about 2 points")
        if self.classes is not None and self.classes < 2:
            raise bad(f"classes={self.classes} must be >= 2 or null (all)", "a task needs two classes")
        if self.constraints < 1 or not 0 < self.low_epochs <= self.high_epochs:
            raise bad("constraints must be >= 1 and 0 < low_epochs <= high_epochs",
                      "NASOA uses 4 constraints, 10 and 50 epochs")
        if any(not 0 <= i < self.constraints for i in self.table_constraints) or not self.table_constraints:
            raise bad(f"table_constraints={self.table_constraints} must index 0..{self.constraints - 1}",
                      "e.g. [0] for the shortest constraint")
        if len(set(self.table_seeds)) < 2 or self.search_seeds < 1 or not self.task_seeds:
            raise bad(f"table_seeds={self.table_seeds} needs >= 2 distinct seeds, search_seeds >= 1, task_seeds >= 1 seed",
                      "the issue asks for >= 2 seeds per cell and >= 10 search seeds")
        if self.table_task_seeds is not None and (not self.table_task_seeds
                                                  or not set(self.table_task_seeds) <= set(self.task_seeds)):
            raise bad(f"table_task_seeds={self.table_task_seeds} must be a non-empty subset of task_seeds={self.task_seeds}",
                      "null replays every task; e.g. [0] replays the first task seed only")
        if not self.search_multiple >= 1:
            raise bad(f"search_multiple={self.search_multiple} must be >= 1", "NASOA gives HPO 40x the time")
        if self.eta < 2 or not 0 < self.min_fidelity < 1:
            raise bad("eta must be >= 2 and 0 < min_fidelity < 1", "e.g. eta 3, min_fidelity 0.111")
        if self.spot_checks < 0:
            raise bad("spot_checks must be >= 0", "e.g. 4 cells re-run live")
        for key in ("datasets", "task_seeds", "table_task_seeds", "table_constraints", "table_seeds", "families"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, tuple(value))

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "ComparisonConfig":
        prof = resolve_profile(profile)
        return prof.section(SECTION, cls)

    def dataset_names(self, prof: Profile) -> tuple[str, ...]:
        return self.datasets or prof.meta_test

    def has_table(self, task_seed: int) -> bool:
        """Whether the task of this seed gets a replay table (and the searches of Table 4)."""
        return int(task_seed) in (self.task_seeds if self.table_task_seeds is None else self.table_task_seeds)

    def replays(self, task_seed: int, constraint: int) -> bool:
        """Whether Table 4's searches run on this task under this constraint."""
        return self.has_table(task_seed) and int(constraint) in self.table_constraints

    @property
    def live_seed(self) -> int:
        """The seed of every live run (generators, families, spot checks): the table's first, so
        a live run of a grid regime is also a standalone re-run of that table cell."""
        return int(self.table_seeds[0])


@dataclass(frozen=True, eq=False)
class Case:
    """One meta-test task and its time constraints (seconds on this device)."""

    dataset: str
    task_seed: int
    task: Any
    features: TaskFeatures
    constraints: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.task_seed}"


@dataclass(eq=False)
class Study:
    """Everything notebook 07 needs, loaded once by :func:`prepare`."""

    profile: Profile
    store: ArtifactStore
    config: ComparisonConfig
    generator: GeneratorConfig
    settings: FinetuneSettings
    candidates: Mapping[str, Any]
    table: FinetuneTimeTable
    predictors: Mapping[str, AccuracyPredictor]
    cases: list[Case]
    _pretrained: dict[str, Any] = field(default_factory=dict)

    def models(self, which: str) -> dict[str, float]:
        """``{name: source accuracy}`` of the fixed model, the baselines or our zoo."""
        if which == MODELS_FIXED:
            names = [self.config.fixed_model]
        elif which == MODELS_BASELINES:
            names = [n for n, c in self.candidates.items() if c.group == "baseline"]
        elif which == MODELS_ZOO:
            names = [n for n, c in self.candidates.items() if c.group == "ours"]
        else:
            raise InvalidSearchSetup(f"unknown model set {which!r}",
                                     hint=f"use one of {MODELS_FIXED!r}, {MODELS_BASELINES!r}, {MODELS_ZOO!r}")
        return {n: float(self.candidates[n].source_accuracy) for n in names}

    def all_models(self) -> dict[str, float]:
        """Every model a method may pick (baselines and our zoo): the oracle's choices."""
        return {**self.models(MODELS_BASELINES), **self.models(MODELS_ZOO)}

    def family_models(self) -> dict[str, str]:
        """``{baseline: family}`` of the families Fig. 6 compares against."""
        from nasoa_lib import models

        return {n: models.family_of(n) for n in self.models(MODELS_BASELINES)
                if models.family_of(n) in self.config.families}

    def pretrained(self, name: str) -> Any:
        if name not in self._pretrained:
            from nasoa_lib.train import load_pretrained

            self._pretrained[name] = load_pretrained(self.candidates[name].target, self.profile, store=self.store)
        return self._pretrained[name]

    def regime(self, lr: float, iterations: int, frozen_stages: int) -> Regime:
        return self.settings.regime(lr=lr, iterations=iterations, frozen_stages=frozen_stages)

    def run(self, case: Case, model: str, regime: Regime, *, seed: int | None = None,
            eval_steps: tuple[int, ...] | None = None) -> FinetuneRecord:
        """A timed, stored fine-tuning run (read back when it exists)."""
        return finetune_cached(self.store, self.pretrained(model), case.task, regime,
                               seed=self.config.live_seed if seed is None else seed, eval_steps=eval_steps,
                               profile=self.profile.name, timed=True)

    def has_run(self, case: Case, model: str, regime: Regime, *, seed: int | None = None,
                eval_steps: tuple[int, ...] | None = None) -> bool:
        from nasoa_lib.finetune import FINETUNE_KIND, FinetuneRunSpec

        spec = FinetuneRunSpec(self.pretrained(model).key, self.pretrained(model).name, case.task.spec, regime, None,
                               self.config.live_seed if seed is None else seed, 1, eval_steps)
        return self.store.has(FINETUNE_KIND, spec.key)

    def space(self, case: Case, models: Mapping[str, float] | list[str], budget: float) -> SearchSpace:
        return SearchSpace.build(case.features, budget, list(models), self.generator, self.table,
                                 self.settings.batch_size)


# ------------------------------------------------------------------------------------- preparing


def time_constraints(features: TaskFeatures, table: FinetuneTimeTable, config: ComparisonConfig,
                     batch_size: int) -> tuple[float, ...]:
    """``config.constraints`` seconds log-spaced between "low model for low epochs" and "high model
    for high epochs" of this task (nothing frozen), on this device's time table."""

    def seconds(model: str, epochs: int) -> float:
        return float(regime_costs(features, model, 0, table, [epochs], batch_size)[2][0])

    low, high = seconds(config.low_model, config.low_epochs), seconds(config.high_model, config.high_epochs)
    return tuple(float(t) for t in np.geomspace(low, max(low, high), config.constraints))


def prepare(profile: Profile | str, store: ArtifactStore | None = None, *, progress: bool = True) -> Study:
    """Candidate models, the time table (measured once per device), notebook 06's predictors, and
    every (dataset, task seed) task with its meta-features and time constraints."""
    from nasoa_lib.data import load_dataset, make_task, sample_task_spec
    from nasoa_lib.metadata.collect import candidate_models
    from nasoa_lib.online import load_predictor

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    config = ComparisonConfig.from_profile(prof)
    generator = GeneratorConfig.from_profile(prof)
    settings = checkpointed(FinetuneSettings.from_profile(prof))  # constant lr: every method's regime is a cell of the replay table
    candidates = {c.name: c for c in candidate_models(prof, store)}
    baselines = [n for n, c in candidates.items() if c.group == "baseline"]
    if config.fixed_model not in baselines:
        raise UnknownModelError(f"hpo.fixed_model {config.fixed_model!r} is not one of the profile's baselines",
                                hint=f"choose one of {baselines}")
    if not any(c.group == "ours" for c in candidates.values()):
        raise UnknownModelError("no model of our zoo is built for this profile",
                                hint=f"build the zoo: nasoa reproduce --profile {prof.name} --only 02,03")
    grid_models = {n: c.target for n, c in candidates.items() if c.group in ("baseline", "ours")}
    table = finetune_time_table(prof, grid_models, store, progress=progress)
    reference = finetune_time_table(prof, {m: m for m in (config.low_model, config.high_model)}, store,
                                    frozen_stages=(0,), progress=progress)
    table = FinetuneTimeTable(table.device, table.batch_size, table.image_size, table.threads,
                              {**reference.costs, **table.costs})
    predictors = {name: load_predictor(store, name) for name in ("adaptive", "offline")}
    cases = []
    for dataset in config.dataset_names(prof):
        data = load_dataset(dataset)
        for seed in config.task_seeds:
            classes = min(config.classes or data.num_classes, data.num_classes)
            spec = sample_task_spec(data, classes, config.images_per_class, seed, config.test_per_class,
                                    config.validation_per_class)
            task = make_task(spec, data)
            features = describe(task, task_similarity(task, prof, store))
            cases.append(Case(dataset, seed, task, features,
                              time_constraints(features, table, config, settings.batch_size)))
    return Study(prof, store, config, generator, settings, candidates, table, predictors, cases)


def constraints_frame(study: Study) -> pd.DataFrame:
    """One row per task and constraint: seconds, the task's sizes and whether Table 4 replays it."""
    rows = []
    for case in study.cases:
        for i, t in enumerate(case.constraints):
            rows.append({"dataset": case.dataset, "task_seed": case.task_seed, "constraint": i, "seconds": t,
                         "classes": case.features.num_classes, "train_images": case.features.n_train,
                         "validation_images": case.features.n_validation, "test_images": case.features.n_test,
                         "domain_similarity": case.features.domain_similarity,
                         "replayed": study.config.replays(case.task_seed, i)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- the replay table


def _search_methods() -> list[Method]:
    return [m for m in METHODS if m.is_search]


def replay_spaces(study: Study, case: Case) -> dict[tuple[str, int], SearchSpace]:
    """``{(model set, constraint): search space}`` of the replayed constraints (a model set whose
    regimes do not fit a constraint has no space there)."""
    spaces = {}
    for i in study.config.table_constraints if study.config.has_table(case.task_seed) else ():
        for which in dict.fromkeys(m.models for m in _search_methods()):
            try:
                spaces[(which, i)] = study.space(case, study.models(which), case.constraints[i])
            except BudgetTooSmallError:
                continue
    return spaces


def oracle_space(study: Study, case: Case, constraint: int) -> SearchSpace:
    """Every model's grid under a replayed constraint (the table's cells a method could pick)."""
    return study.space(case, study.all_models(), case.constraints[constraint])


def table_runs(study: Study, case: Case) -> list[CheckpointedRun]:
    """The checkpointed runs of the case's table: every cell of every replayed space (the oracle's
    included) for each of ``table_seeds``."""
    spaces = list(replay_spaces(study, case).values())
    for i in study.config.table_constraints if study.config.has_table(case.task_seed) else ():
        try:
            spaces.append(oracle_space(study, case, i))
        except BudgetTooSmallError:
            pass
    return plan_runs(spaces, study.config.table_seeds)


def _run_regime(study: Study, run: CheckpointedRun) -> Regime:
    return study.regime(run.lr, run.longest, run.frozen_stages)


def _expected_run_seconds(study: Study, case: Case, run: CheckpointedRun) -> float:
    """Time-table estimate of a checkpointed run: the longest regime plus one evaluation per
    further checkpoint."""
    f = case.features
    cost = study.table.cost(run.model, run.frozen_stages)
    whole = float(cost.expected_seconds(run.longest, f.n_train, f.n_evaluated, study.settings.batch_size))
    return whole + float(checkpoint_seconds(cost, f, len(run.iterations) - 1))


def build_table(study: Study, case: Case, *, progress: bool = True) -> ReplayTable:
    """Run (or read back) the case's checkpointed runs and collect their cells."""
    from tqdm.auto import tqdm

    rows = []
    runs = table_runs(study, case)
    for run in tqdm(runs, desc=f"table {case.name}", disable=not progress):
        record = study.run(case, run.model, _run_regime(study, run), seed=run.seed, eval_steps=run.iterations)
        r = record.result
        rows.extend(cells_from_run(run, r.checkpoints, record.charged_seconds, r.train_seconds, r.eval_seconds))
    return ReplayTable.from_rows(rows)


# -------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class FamilyRun:
    """A family member's live run under T: the longest ladder run that fits (evaluated at every
    rung up to it, stopped early on validation like the generators' runs)."""

    regime: Regime
    epochs: int
    expected_seconds: float
    eval_steps: tuple[int, ...]


def _family_regime(study: Study, case: Case, model: str, budget: float) -> FamilyRun | None:
    k = study.config.family_frozen_stages
    epochs, iterations, seconds = regime_costs(case.features, model, k, study.table, study.generator.ladder,
                                               study.settings.batch_size, checkpointed=True)
    fits = np.flatnonzero(seconds <= budget)
    if not fits.size:
        return None
    j = int(fits[-1])
    steps = checkpoint_steps([int(e) for e in epochs[: j + 1]], case.features.n_train, study.settings.batch_size)
    return FamilyRun(study.regime(study.config.family_lr, int(iterations[j]), k), int(epochs[j]), float(seconds[j]),
                     steps)


def plan(study: Study) -> pd.DataFrame:
    """Expected minutes per stage before running (runs already in the store cost nothing): the
    table (time-table estimates of its checkpointed runs), the family curves (exact estimates), the
    generators (upper bound: T per run), the spot checks (upper bound: the replayed T per cell) and
    the searches (SMAC's own time at :data:`PLAN_SMAC_SECONDS_PER_TRIAL` per trial; the table is
    replayed, not run)."""
    cfg = study.config
    rows = []
    table_s, table_n, table_new = 0.0, 0, 0
    family_s, family_n, family_new = 0.0, 0, 0
    generator_s, searches, smac_s = 0.0, 0, 0.0
    for case in study.cases:
        for run in table_runs(study, case):
            table_n += 1
            if not study.has_run(case, run.model, _run_regime(study, run), seed=run.seed, eval_steps=run.iterations):
                table_new += 1
                table_s += _expected_run_seconds(study, case, run)
        for budget in case.constraints:
            generator_s += budget * sum(1 for m in METHODS if not m.is_search)
            for model in study.family_models():
                regime = _family_regime(study, case, model, budget)
                if regime is None:
                    continue
                family_n += 1
                if not study.has_run(case, model, regime.regime, eval_steps=regime.eval_steps):
                    family_new += 1
                    family_s += regime.expected_seconds
        for (which, i), space in replay_spaces(study, case).items():
            n_methods = sum(1 for m in _search_methods() if m.models == which)
            n_bohb = sum(1 for m in _search_methods() if m.models == which and m.search == SEARCH_BOHB)
            searches += n_methods * cfg.search_seeds
            mean_cost = float(np.mean(list(space.expected.values())))
            smac_s += n_bohb * cfg.search_seeds * (PLAN_SMAC_SECONDS_PER_SEARCH + min(
                len(space), cfg.search_multiple * case.constraints[i] / mean_cost) * PLAN_SMAC_SECONDS_PER_TRIAL)
    spot_s = cfg.spot_checks * float(np.mean([c.constraints[i] for c in study.cases if cfg.has_table(c.task_seed)
                                              for i in cfg.table_constraints]))
    rows.append({"stage": "replay table (checkpointed runs)", "runs": table_n, "new_runs": table_new,
                 "expected_minutes": table_s / 60, "note": "time-table estimate"})
    rows.append({"stage": "family curves (default hyper-parameters, live)", "runs": family_n, "new_runs": family_new,
                 "expected_minutes": family_s / 60, "note": "time-table estimate"})
    rows.append({"stage": "generators (OA only, offline MLP, NASOA; live)", "runs": sum(
        len(c.constraints) for c in study.cases) * 3, "new_runs": np.nan, "expected_minutes": generator_s / 60,
        "note": "upper bound: T per run"})
    rows.append({"stage": "replayed searches (RS, BOHB x 3 model sets)", "runs": searches, "new_runs": np.nan,
                 "expected_minutes": smac_s / 60,
                 "note": f"SMAC: ~{PLAN_SMAC_SECONDS_PER_SEARCH:g}s per search + {PLAN_SMAC_SECONDS_PER_TRIAL:g}s per trial"})
    rows.append({"stage": "spot checks (table cells re-run live)", "runs": cfg.spot_checks, "new_runs": np.nan,
                 "expected_minutes": spot_s / 60, "note": "upper bound: T per cell"})
    out = pd.DataFrame(rows)
    total = pd.DataFrame([{"stage": "total (upper bound)", "runs": int(out.runs.sum()), "new_runs": np.nan,
                           "expected_minutes": float(out.expected_minutes.sum()), "note": ""}])
    return pd.concat([out, total], ignore_index=True)


# --------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Results:
    """Every number notebook 07 reports, as tables (one row per observation)."""

    methods: pd.DataFrame
    families: pd.DataFrame
    runs: pd.DataFrame
    trials: pd.DataFrame
    table: pd.DataFrame
    spot_checks: pd.DataFrame
    table_costs: pd.DataFrame
    oracle: pd.DataFrame


def _search_key(study: Study, case: Case, method: Method, space: SearchSpace, budget: float, seed: int,
                table: ReplayTable) -> str:
    pretrained = {m: study.pretrained(m).key for m in space.models}
    cells = table.frame[table.frame.model.isin(space.models)]
    return spec_key({"stage": SEARCH_KIND, "version": 2, "method": method.search, "seed": seed,
                     "task": case.task.spec.to_dict(), "budget": budget, "models": list(space.models),
                     "lrs": list(space.lrs),
                     "epochs": {f"{m}|{k}": list(v) for (m, k), v in sorted(space.epochs.items())},
                     "pretrained": pretrained, "settings": asdict(study.settings),
                     "table": spec_key({"cells": cells.round(6).to_dict(orient="list")}),
                     "eta": study.config.eta, "min_fidelity": study.config.min_fidelity})


def replay_search(study: Study, case: Case, method: Method, space: SearchSpace, table: ReplayTable, budget: float,
                  seed: int) -> SearchResult:
    """One search (random search or BOHB) of ``space`` against ``table`` with ``search_multiple``
    x ``budget`` simulated seconds; stored whole (SMAC is not reproducible run to run)."""
    total = study.config.search_multiple * budget
    key = _search_key(study, case, method, space, total, seed, table)
    found = study.store.get(SEARCH_KIND, key)
    if found is not None:
        return SearchResult.from_dict(found)
    observe = table.observer(np.random.default_rng([seed, 97]))
    if method.search == SEARCH_RANDOM:
        result = random_search(space, observe, total, seed=seed)
    else:
        result = bohb(space, observe, total, seed=seed, eta=study.config.eta, min_fidelity=study.config.min_fidelity)
    study.store.put(SEARCH_KIND, key, result.to_dict())
    return result


def _copy(predictor: AccuracyPredictor) -> AccuracyPredictor:
    return type(predictor).from_bytes(predictor.to_bytes())


def _epochs(case: Case, step: int | None, study: Study) -> int:
    """The ladder epochs a checkpoint's step count makes on the case's task (rounded: checkpoints sit
    on whole rungs)."""
    return int(round(epochs_of(int(step), case.features.n_train, study.settings.batch_size)))


def _validation(record: FinetuneRecord) -> float:
    cps = record.result.checkpoints
    return float(cps[-1].validation_accuracy) if cps and cps[-1].validation_accuracy is not None else float("nan")


def run(study: Study, *, progress: bool = True) -> Results:
    """Run (or replay) every stage of the comparison; see the module docstring."""
    from tqdm.auto import tqdm

    from nasoa_lib.device import pinned_threads
    from nasoa_lib.finetune import worker_threads

    cfg = study.config
    cap = study.generator.ladder[-1]
    methods, families, runs, trials, tables, spots, costs, oracles = [], [], [], [], [], [], [], []
    threads = min(study.profile.threads, worker_threads(study.settings.workers))
    streams = {m.key: _copy(study.predictors[m.predictor]) for m in METHODS if not m.is_search}
    with pinned_threads(threads):
        replay: dict[str, ReplayTable] = {}
        for case in (c for c in study.cases if cfg.has_table(c.task_seed)):
            table = replay[case.name] = build_table(study, case, progress=progress)
            tables.append(table.frame.assign(dataset=case.dataset, task_seed=case.task_seed))
        bar = tqdm(total=sum(len(c.constraints) for c in study.cases), desc="tasks x constraints",
                   disable=not progress)
        for case in study.cases:
            table = replay.get(case.name)
            for i, budget in enumerate(case.constraints):
                base = {"dataset": case.dataset, "task_seed": case.task_seed, "constraint": i, "time_budget": budget}
                replayed = cfg.replays(case.task_seed, i)
                for model, family in study.family_models().items():
                    found = _family_regime(study, case, model, budget)
                    if found is None:
                        continue
                    record = study.run(case, model, found.regime, eval_steps=found.eval_steps)
                    kept = early_stopped(record.result.checkpoints)
                    families.append({**base, "family": family, "model": model, "epochs": found.epochs,
                                     "iterations": found.regime.iterations,
                                     "stopped_epochs": _epochs(case, kept.step, study),
                                     "test_accuracy": kept.test_accuracy,
                                     "validation_accuracy": kept.validation_accuracy,
                                     "wall_seconds": record.charged_seconds})
                    runs.append({**base, "source": "family", "model": model,
                                 "frozen_stages": found.regime.frozen_stages, "epochs": found.epochs,
                                 "iterations": found.regime.iterations, "expected_seconds": found.expected_seconds,
                                 "wall_seconds": record.charged_seconds})
                for method in METHODS:
                    if method.is_search:
                        continue
                    row = {**base, "method": method.key, "label": method.label, "cost_nominal": 1.0,
                           "search_seed": np.nan, "source": "live"}
                    try:
                        rec = recommend(case.features, budget, study.models(method.models), streams[method.key],
                                        study.table, config=study.generator, settings=study.settings)
                    except BudgetTooSmallError as err:
                        methods.append({**row, "test_accuracy": np.nan, "note": str(err)})
                        continue
                    outcome, _ = run_recommendation(
                        rec, case.task, study.pretrained(rec.chosen.model),
                        predictor=streams[method.key] if method.online else None, store=study.store,
                        seed=cfg.live_seed, cached=True, profile=study.profile.name)
                    c = rec.chosen
                    stopped = _epochs(case, outcome.selected_step, study)
                    trial = Trial(c.model, c.lr, c.frozen_stages, stopped)
                    looked_up = table.mean(trial) if replayed and trial in table else None
                    methods.append({**row, "test_accuracy": outcome.accuracy,
                                    "validation_accuracy": outcome.validation_accuracy,
                                    "spent_seconds": outcome.wall_seconds, "cost_spent": outcome.wall_seconds / budget,
                                    "model": c.model, "lr": c.lr, "frozen_stages": c.frozen_stages, "epochs": c.epochs,
                                    "stopped_epochs": stopped, "predicted_epochs": c.predicted_epochs,
                                    "iterations": c.iterations, "predicted_accuracy": c.predicted_accuracy,
                                    "expected_seconds": c.expected_seconds, "budget_used": c.expected_seconds / budget,
                                    "at_epoch_cap": c.epochs >= cap, "trials": 1, "grid_size": rec.grid_size,
                                    "table_test_accuracy": looked_up["test_accuracy"] if looked_up else np.nan})
                    runs.append({**base, "source": method.key, "model": c.model, "frozen_stages": c.frozen_stages,
                                 "epochs": c.epochs, "iterations": c.iterations, "expected_seconds": c.expected_seconds,
                                 "wall_seconds": outcome.wall_seconds})
                    if looked_up is not None and method.key == "nasoa":
                        # an early-stopped run outlasts the cell it reports: its seconds are not that cell's
                        seconds = outcome.wall_seconds if stopped == c.epochs else np.nan
                        spots.append(_spot_row(case, i, trial, table, cfg.live_seed, outcome.accuracy,
                                               outcome.validation_accuracy, seconds, "NASOA's pick"))
                if replayed:
                    try:
                        best, best_acc = table.oracle(oracle_space(study, case, i))
                        oracles.append({**base, "oracle_test_accuracy": best_acc, **best.to_dict()})
                    except BudgetTooSmallError:
                        pass
                    for method in _search_methods():
                        row = {**base, "method": method.key, "label": method.label,
                               "cost_nominal": cfg.search_multiple, "source": "table"}
                        try:
                            space = study.space(case, study.models(method.models), budget)
                        except BudgetTooSmallError as err:
                            methods.append({**row, "test_accuracy": np.nan, "note": str(err)})
                            continue
                        enumerate_s = table.total_seconds(space)
                        costs.append({**base, "method": method.key, "grid_cells": len(space),
                                      "search_seconds": cfg.search_multiple * budget,
                                      "table_enumeration_seconds": enumerate_s,
                                      "search_share_of_enumeration": cfg.search_multiple * budget / enumerate_s})
                        for s in range(cfg.search_seeds):
                            result = replay_search(study, case, method, space, table, budget, s)
                            chosen = result.chosen
                            methods.append({**row, "search_seed": s,
                                            "test_accuracy": table.test_accuracy(chosen, result.run),
                                            "validation_accuracy": result.validation_accuracy,
                                            "spent_seconds": result.spent_seconds,
                                            "cost_spent": result.spent_seconds / budget,
                                            "overhead_seconds": result.overhead_seconds,
                                            "model": chosen.model, "lr": chosen.lr,
                                            "frozen_stages": chosen.frozen_stages, "epochs": chosen.epochs,
                                            "iterations": space.iterations_of(chosen),
                                            "expected_seconds": space.expected_seconds(chosen),
                                            "budget_used": space.expected_seconds(chosen) / budget,
                                            "at_epoch_cap": chosen.epochs >= cap, "trials": len(result.trials),
                                            "table_test_accuracy": table.mean(chosen)["test_accuracy"]})
                            trials.extend({**base, "method": method.key, "search_seed": s, "index": j, **t.to_dict()}
                                          for j, t in enumerate(result.trials))
                bar.update(1)
        bar.close()
        spots.extend(_spot_checks(study, replay, progress))
    return Results(pd.DataFrame(methods), pd.DataFrame(families), pd.DataFrame(runs), pd.DataFrame(trials),
                   pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(), pd.DataFrame(spots),
                   pd.DataFrame(costs), pd.DataFrame(oracles))


def _spot_row(case: Case, constraint: int, trial: Trial, table: ReplayTable, seed: int, test: float,
              validation: float | None, seconds: float, why: str) -> dict[str, Any]:
    row = table.row(trial, seed)
    return {"dataset": case.dataset, "task_seed": case.task_seed, "constraint": constraint, "why": why,
            **trial.to_dict(), "seed": seed, "live_test_accuracy": test, "table_test_accuracy": float(row.test_accuracy),
            "live_validation_accuracy": np.nan if validation is None else validation,
            "table_validation_accuracy": float(row.validation_accuracy), "live_seconds": seconds,
            "table_seconds": float(row.seconds), "table_seed_mean_test_accuracy": table.mean(trial)["test_accuracy"]}


def _spot_checks(study: Study, replay: Mapping[str, ReplayTable], progress: bool) -> list[dict[str, Any]]:
    """``spot_checks`` table cells drawn at random (seed 0) over every case with a table, re-run live
    alone: the regime of that cell's epochs with the table's first seed."""
    cells = [(case, Trial(str(r.model), float(r.lr), int(r.frozen_stages), int(r.epochs)))
             for case in study.cases if case.name in replay for r in replay[case.name].frame[
                 replay[case.name].frame.seed == study.config.live_seed].itertuples(index=False)]
    if not cells or not study.config.spot_checks:
        return []
    rng = np.random.default_rng(0)
    picks = rng.choice(len(cells), min(study.config.spot_checks, len(cells)), replace=False)
    out = []
    for j in sorted(int(p) for p in picks):
        case, trial = cells[j]
        table = replay[case.name]
        iterations = int(table.row(trial, study.config.live_seed).iterations)
        record = study.run(case, trial.model, study.regime(trial.lr, iterations, trial.frozen_stages))
        out.append(_spot_row(case, -1, trial, table, study.config.live_seed, record.result.accuracy,
                             _validation(record), record.charged_seconds, "random cell"))
    return out


# -------------------------------------------------------------------------------------- reporting


def _mean_ci(values: pd.Series, scale: float = 100.0) -> str:
    """``mean ± half-width of the 95 % t interval (n)``, or the value alone for one unit."""
    x = values.dropna().to_numpy(dtype=float) * scale
    if not len(x):
        return "n/a"
    mean, lo, hi = verdict.t_interval(x)
    if len(x) == 1 or not np.isfinite(lo):
        return f"{mean:.1f} (n={len(x)})"
    return f"{mean:.1f} ± {(hi - lo) / 2:.1f} (n={len(x)})"


def _replayed(results: Results, config: ComparisonConfig) -> pd.DataFrame:
    """The methods' rows under the replayed constraints of the tasks with a table (Tables 4-5, the
    regret and the x1-vs-x40 claims compare methods on exactly these units)."""
    m = results.methods
    return m[np.array([config.replays(s, c) for s, c in zip(m.task_seed, m.constraint)], dtype=bool)]


def table4(results: Results, config: ComparisonConfig) -> pd.DataFrame:
    """NASOA Table 4 at our scale: test accuracy (%) per meta-test dataset and method under the
    replayed constraints, mean ± 95 % CI half-width over search seeds (searches) or tasks
    (generators), the nominal and the spent cost (x T), and the paper's average beside ours."""
    frame = _replayed(results, config)
    datasets = list(dict.fromkeys(frame.dataset))
    rows = []
    for method in METHODS:
        part = frame[frame.method == method.key]
        if part.empty:
            continue
        row = {"method": method.label, "cost": f"x{part.cost_nominal.iloc[0]:g}",
               "spent (x T)": round(float(part.cost_spent.mean()), 2) if "cost_spent" in part else np.nan}
        for d in datasets:
            row[d] = _mean_ci(part[part.dataset == d].test_accuracy)
        row["average"] = _mean_ci(_per_unit_average(part))
        row["paper cost"] = PAPER_TABLE4[method.key]["cost"]
        row["paper average"] = round(_paper_average(method.key), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def _per_unit_average(part: pd.DataFrame) -> pd.Series:
    """Average over datasets per search seed (searches) or per task seed and constraint (generators)."""
    unit = "search_seed" if part.search_seed.notna().any() else "task_seed"
    keys = [unit, "constraint"] + (["task_seed"] if unit == "search_seed" else [])
    return part.groupby(keys).test_accuracy.mean()


def paper_table4() -> pd.DataFrame:
    """NASOA Table 4 as printed (accuracy %, four fine-grained datasets at ImageNet scale)."""
    return pd.DataFrame([{"method": BY_KEY[k].label, **v} for k, v in PAPER_TABLE4.items()])


def table5(results: Results, config: ComparisonConfig) -> pd.DataFrame:
    """NASOA Table 5: average test accuracy over the meta-test datasets of BOHB (HPO only), + zoo,
    our OA and NASOA (mean ± CI), with the gain over BOHB (HPO only), beside the paper's."""
    frame = _replayed(results, config)
    base = frame[frame.method == "bohb_hpo_only"].test_accuracy.mean() * 100
    rows = []
    for key, label, what, paper in PAPER_TABLE5:
        part = frame[frame.method == key]
        if part.empty:
            continue
        ours = part.test_accuracy.mean() * 100
        rows.append({"method": label, "what": what, "cost": f"x{part.cost_nominal.iloc[0]:g}",
                     "average accuracy": _mean_ci(_per_unit_average(part)),
                     "gain over BOHB (HPO only)": round(float(ours - base), 1) if np.isfinite(base) else np.nan,
                     "paper average": paper, "paper gain": round(paper - PAPER_TABLE5[0][3], 1)})
    return pd.DataFrame(rows)


def test_standard_errors(results: Results, constraints: pd.DataFrame) -> pd.DataFrame:
    """Per task: its test images and the binomial SE (points) of one test accuracy at the mean
    accuracy of the methods on it: the noise floor of every comparison on that task."""
    sizes = constraints.drop_duplicates(["dataset", "task_seed"])[["dataset", "task_seed", "test_images"]]
    acc = results.methods.groupby(["dataset", "task_seed"]).test_accuracy.mean().rename("mean_test_accuracy")
    out = sizes.merge(acc.reset_index(), on=["dataset", "task_seed"], how="left")
    out["test_se_points"] = [100 * verdict.accuracy_standard_error(p, n)
                             for p, n in zip(out.mean_test_accuracy, out.test_images)]
    return out


def regret(results: Results, config: ComparisonConfig) -> pd.DataFrame:
    """Per method and replayed constraint: the table's best cell (mean test accuracy over its seeds,
    among every model's regimes that fit T) minus the method's test accuracy, in points, mean ±
    95 % CI over its units (search seeds x tasks, or tasks)."""
    if results.oracle.empty:
        return pd.DataFrame()
    frame = _replayed(results, config).merge(results.oracle[["dataset", "task_seed", "constraint",
                                                             "oracle_test_accuracy"]],
                                             on=["dataset", "task_seed", "constraint"])
    frame = frame.assign(regret=(frame.oracle_test_accuracy - frame.test_accuracy))
    rows = []
    for (constraint, key), part in frame.groupby(["constraint", "method"], sort=False):
        rows.append({"constraint": constraint, "time_budget": round(float(part.time_budget.mean()), 2),
                     "method": BY_KEY[key].label, "regret (points)": _mean_ci(part.regret),
                     "oracle (%)": round(float(part.oracle_test_accuracy.mean() * 100), 1)})
    return pd.DataFrame(rows)


def budget_use(results: Results) -> pd.DataFrame:
    """Each generator pick's expected wall-clock against T, and whether it sits at the ladder's
    longest run (the issue's check: >= 50 % of T or at the epoch cap); with the rung the predictor
    rated best and the rung validation stopped at (early-stopped runs)."""
    frame = results.methods[results.methods.source == "live"].copy()
    frame["uses_half_or_cap"] = (frame.budget_used >= 0.5) | frame.at_epoch_cap.astype(bool)
    extra = [c for c in ("predicted_epochs", "stopped_epochs") if c in frame]
    return frame[["dataset", "task_seed", "constraint", "time_budget", "method", "model", "epochs", *extra,
                  "frozen_stages", "lr", "expected_seconds", "budget_used", "at_epoch_cap", "uses_half_or_cap"]]


def figure6_frame(results: Results) -> pd.DataFrame:
    """Fig. 6's points: per task and constraint, NASOA's live test accuracy and the best member of
    each family (default hyper-parameters, live) under the same constraint. "Best" is by test
    accuracy: the family curve is a reference line, not a method that chooses."""
    keys = ["dataset", "task_seed", "constraint"]
    best = (results.families.sort_values("test_accuracy", ascending=False)
            .groupby([*keys, "family"], as_index=False).first())
    best = best.rename(columns={"model": "best_model"})[[*keys, "time_budget", "family", "best_model",
                                                         "test_accuracy"]]
    nasoa = results.methods[results.methods.method == "nasoa"]
    nasoa = nasoa.assign(family="NASOA", best_model=nasoa.model)[list(best.columns)]
    return pd.concat([best, nasoa], ignore_index=True)


def figure6_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over tasks of :func:`figure6_frame` per dataset, family and constraint."""
    out = (points.groupby(["dataset", "family", "constraint"])
           .agg(time_budget=("time_budget", "mean"), test_accuracy=("test_accuracy", "mean"),
                accuracy_std=("test_accuracy", "std"), tasks=("test_accuracy", "size"),
                best_models=("best_model", lambda m: ", ".join(sorted(set(map(str, m))))))
           .reset_index())
    out["accuracy_std"] = out["accuracy_std"].fillna(0.0)
    return out


def budget_steps(results: Results) -> pd.DataFrame:
    """Per task and step from one time constraint to the next: the change (points) of NASOA's live
    test accuracy and of the best baseline's (the most accurate member of any family under that
    constraint; NaN without family runs). Issue 21's Fig. 6 check: NASOA's accuracy should not fall
    as T grows, and should rise where the best baseline's rises."""
    keys = ["dataset", "task_seed", "constraint"]
    live = results.methods[(results.methods.source == "live") & (results.methods.method == "nasoa")]
    frame = live.set_index(keys).test_accuracy.rename("nasoa").to_frame()
    frame["best_baseline"] = (results.families.groupby(keys).test_accuracy.max()
                              if not results.families.empty else np.nan)
    rows = []
    for (dataset, seed), part in frame.reset_index().groupby(["dataset", "task_seed"]):
        part = part.sort_values("constraint")
        for a, b in zip(part.iloc[:-1].itertuples(index=False), part.iloc[1:].itertuples(index=False)):
            rows.append({"dataset": dataset, "task_seed": seed, "from_constraint": a.constraint,
                         "to_constraint": b.constraint, "nasoa_change": 100 * (b.nasoa - a.nasoa),
                         "best_baseline_change": 100 * (b.best_baseline - a.best_baseline)})
    return pd.DataFrame(rows, columns=["dataset", "task_seed", "from_constraint", "to_constraint", "nasoa_change",
                                       "best_baseline_change"])


def improvement_over_families(points: pd.DataFrame) -> pd.DataFrame:
    """NASOA's test accuracy minus each family's best member, over tasks and constraints (the paper:
    +2.1 % over RegNet, +7.4 % over EfficientNet)."""
    keys = ["dataset", "task_seed", "constraint"]
    nasoa = points[points.family == "NASOA"].set_index(keys).test_accuracy
    rows = []
    for family, part in points[points.family != "NASOA"].groupby("family"):
        diff = (nasoa - part.set_index(keys).test_accuracy).dropna() * 100
        rows.append({"family": family, "nasoa_minus_best_member (points)": _mean_ci(diff, 1.0),
                     "nasoa_wins": f"{int((diff > 0).sum())} of {len(diff)}"})
    return pd.DataFrame(rows)


def timing_check(results: Results) -> pd.DataFrame:
    """How well the time table predicted the wall-clock of the live runs (the generator promises
    expected time <= T)."""
    runs = results.runs.assign(ratio=results.runs.wall_seconds / results.runs.expected_seconds,
                               over_budget=results.runs.wall_seconds > results.runs.time_budget)
    return runs.groupby("source").agg(runs=("ratio", "size"), median_ratio=("ratio", "median"),
                                      p90_ratio=("ratio", lambda r: r.quantile(0.9)),
                                      over_budget=("over_budget", "sum")).reset_index()


def spot_check_summary(results: Results, standard_errors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Live re-runs of table cells against the table: accuracy differences (points) and the
    ratio of live to charged seconds, each by the verdict rule (agreement = an interval that
    contains 0, or 1 for the seconds' ratio); the noise floor is the tasks' test SE."""
    s = results.spot_checks
    if s.empty:
        return verdict.table([])
    floor = float("nan")
    if standard_errors is not None and not standard_errors.empty:
        floor = float(np.sqrt(np.mean(standard_errors.test_se_points ** 2)))
    return verdict.table([
        verdict.paired("live test accuracy of a table cell differs from the table's (same seed)",
                       s.live_test_accuracy * 100, s.table_test_accuracy * 100, unit="points", noise_floor=floor,
                       evidence="agreement: inconclusive around 0 (a checkpoint of a longer constant-lr run is the "
                       "shorter run)"),
        verdict.paired("live validation accuracy of a table cell differs from the table's (same seed)",
                       s.live_validation_accuracy * 100, s.table_validation_accuracy * 100, unit="points"),
        verdict.ratio("live wall-clock of a table cell exceeds the seconds the table charges",
                      s.live_seconds / s.table_seconds, evidence="agreement: an interval around 1"),
    ])


def _paper_average(key: str) -> float:
    return float(np.mean([v for k, v in PAPER_TABLE4[key].items() if k != "cost"]))


def claims(results: Results, config: ComparisonConfig, points: pd.DataFrame | None = None,
           standard_errors: pd.DataFrame | None = None) -> pd.DataFrame:
    """NASOA's section 4.4 claims decided by the study's verdict rule (:mod:`nasoa_lib.verdict`),
    each a paired test with its n.

    NASOA (x1) against a search (x``search_multiple``): units are (task, search seed) under the
    replayed constraints, NASOA's live test accuracy against the search's chosen run's. Generator
    against generator and NASOA against the families: units are (task, constraint), all live. A
    claim with a margin ("within 1 point or better") is a threshold on the paired difference.
    ``standard_errors`` (:func:`test_standard_errors`) gives each effect its noise floor."""
    frame = _replayed(results, config)
    floor = float("nan")
    if standard_errors is not None and not standard_errors.empty:
        floor = float(np.sqrt(np.mean(standard_errors.test_se_points ** 2)))
    keys = ["dataset", "task_seed", "constraint"]

    def versus_search(a: str, b: str) -> pd.Series:
        gen = frame[frame.method == a].set_index(keys).test_accuracy
        search = frame[frame.method == b]
        if gen.empty or search.empty:
            return pd.Series(dtype=float)
        joined = search.join(gen.rename("gen"), on=keys)
        return (joined.gen - joined.test_accuracy).dropna() * 100

    def between_live(a: str, b: str) -> pd.Series:
        live = results.methods[results.methods.source == "live"]
        x = live[live.method == a].set_index(keys).test_accuracy
        y = live[live.method == b].set_index(keys).test_accuracy
        return (x - y).dropna() * 100

    def between_searches(a: str, b: str) -> pd.Series:
        x = frame[frame.method == a].set_index([*keys, "search_seed"]).test_accuracy
        y = frame[frame.method == b].set_index([*keys, "search_seed"]).test_accuracy
        return (x - y).dropna() * 100

    def search_vs_generator(a: str, b: str) -> pd.Series:
        return -versus_search(b, a)

    multiple = f"x{config.search_multiple:g}"
    rows = [
        (f"NASOA (x1) is close to BOHB over the baseline families ({multiple}): within 1 point or better "
         "(units: task x search seed)", _paper_average("nasoa") - _paper_average("bohb"),
         versus_search("nasoa", "bohb"), -1.0),
        (f"NASOA (x1) is close to our zoo with BOHB ({multiple}): within 2 points or better "
         "(units: task x search seed)", _paper_average("nasoa") - _paper_average("zoo_bohb"),
         versus_search("nasoa", "zoo_bohb"), -2.0),
        ("the zoo is the main gain: + zoo beats the adaptive scheduler over BOHB (HPO only) (Table 5; "
         "units: task x search seed)",
         (_paper_average("zoo_bohb") - _paper_average("bohb_hpo_only"))
         - (_paper_average("oa_only") - _paper_average("bohb_hpo_only")), search_vs_generator("zoo_bohb", "oa_only"),
         0.0),
        ("the zoo helps the searches: zoo + BOHB beats BOHB over the baseline families (units: task x search seed)",
         _paper_average("zoo_bohb") - _paper_average("bohb"), between_searches("zoo_bohb", "bohb"), 0.0),
        ("the zoo helps the generator: NASOA beats OA only (same predictor, baselines only; units: task x constraint)",
         _paper_average("nasoa") - _paper_average("oa_only"), between_live("nasoa", "oa_only"), 0.0),
        ("online adaption helps: NASOA beats the zoo with the offline fixed MLP (units: task x constraint)",
         _paper_average("nasoa") - _paper_average("zoo_offline"), between_live("nasoa", "zoo_offline"), 0.0),
    ]
    decided = [verdict.one_sample(c, d, unit="points", noise_floor=floor, threshold=t) for c, _, d, t in rows]
    paper = [p for _, p, _, _ in rows]
    steps = budget_steps(results)
    step_floor = floor * np.sqrt(2) if np.isfinite(floor) else floor  # a difference of two test accuracies
    decided.append(verdict.one_sample(
        "NASOA's test accuracy does not fall as T grows: from each time constraint to the next it drops by less "
        "than 1 point, the margin of 'close' above (units: task x step)", steps.nasoa_change, unit="points",
        noise_floor=step_floor, threshold=-1.0))
    rising = steps[steps.best_baseline_change > 0]
    decided.append(verdict.one_sample(
        "NASOA's test accuracy rises where the best baseline's rises (Fig. 6; units: task x step on which the best "
        "family member under T gains)", rising.nasoa_change, unit="points", noise_floor=step_floor))
    paper.extend([np.nan, np.nan])
    if points is not None and not points.empty:
        paper_family = {"regnet_y": 2.1, "efficientnet": 7.4}
        nasoa = points[points.family == "NASOA"].set_index(keys).test_accuracy
        for family, part in points[points.family != "NASOA"].groupby("family"):
            d = (nasoa - part.set_index(keys).test_accuracy).dropna() * 100
            decided.append(verdict.one_sample(
                f"NASOA beats the best {family} member under the same constraint (Fig. 6; units: task x constraint)",
                d, unit="points", noise_floor=floor))
            paper.append(paper_family.get(str(family), np.nan))
    table = verdict.table(decided)
    table.insert(1, "paper (points)", np.round(np.asarray(paper, dtype=float), 2))
    return table
