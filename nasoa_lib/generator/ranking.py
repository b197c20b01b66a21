"""The schedule generator G(D, T) (NASOA section 3.2, Eq. 2).

    [Regime_FT, A*] = argmax_{A in Zoo, Regime in S_FT} Acc_P(A, Regime, stat(D))

"Once the time constraint T is provided, the max number of iterations for different models can be
calculated by an offline step-time lookup table ... The optimal selection of model and
hyperparameters is obtained by ranking the predicted accuracy of all possible grid combinations."

:func:`candidate_grid` enumerates model x lr x frozen stages x run length, the run length in
epochs of the task on the ladder of :mod:`nasoa_lib.run_length` (``iterations_for(epochs, training
images, batch)`` steps, the predictor's meta-feature), up to the longest whose *expected
wall-clock*, from :class:`~nasoa_lib.generator.timing.FinetuneTimeTable`, fits T (a whole run
counts: fixed cost, frozen-prefix cache, steps, the final evaluation of test and validation
images): every model's candidates reach ``min(T / its step time, the ladder's last epoch)``.
:func:`rank` scores every row with the predictor in one call and sorts by predicted accuracy
(ties: the faster regime first); :func:`recommend` returns the argmax with its runners-up. All
three are pure: no training, no timing, no files.

**Early stopping on validation** (``GeneratorConfig.early_stopping``, tasks with validation
images: notebook 07's meta-test tasks). A constant-rate run evaluated at every ladder rung holds
every shorter run of the same (model, lr, frozen stages) as a checkpoint
(:mod:`nasoa_lib.run_length`), and :func:`nasoa_lib.finetune.early_stopped` keeps the checkpoint
with the best validation accuracy. So a longer run never loses a shorter one's option, and the
generator spends its budget: :func:`longest_runs` keeps, per (model, lr, frozen stages), the
longest run that fits T (its seconds count an evaluation at each rung,
``regime_costs(..., checkpointed=True)``), scored by the best predicted accuracy over its rungs
(the checkpoint the predictor expects validation to pick). This answers issue 21's two measured
faults: picks that used 11 % of T because the predictor rated a shorter run higher, and accuracy
that fell as T grew because the predictor overrated 50-epoch runs at lr 0.1 (a long run now stops
where validation peaks). A user's data has no validation split: its run trains to the end and the
grid ranks every rung as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from nasoa_lib.errors import BudgetTooSmallError, InvalidRegimeError
from nasoa_lib.generator.budget import format_seconds
from nasoa_lib.generator.config import GeneratorConfig
from nasoa_lib.generator.features import TaskFeatures, check_size
from nasoa_lib.metafeatures import FEATURE_COLUMNS

if TYPE_CHECKING:  # torch and pandas load only when used (nasoa recommend's errors stay instant)
    import pandas as pd

    from nasoa_lib.finetune import FinetuneSettings, Regime
    from nasoa_lib.online.predictor import AccuracyPredictor

GRID_COLUMNS = (*FEATURE_COLUMNS, "epochs", "expected_seconds")


@dataclass(frozen=True)
class Candidate:
    """One grid point: model + regime, its predicted accuracy and expected wall-clock."""

    model: str
    lr: float
    frozen_stages: int
    iterations: int
    predicted_accuracy: float
    expected_seconds: float
    epochs: int
    #: ladder rungs (epochs) at which an early-stopped run is evaluated, its length last; empty:
    #: the run is evaluated once, at its end
    eval_epochs: tuple[int, ...] = ()
    #: the rung whose predicted accuracy scored an early-stopped candidate (None for a run that is
    #: not stopped early: it was scored at ``epochs``)
    predicted_epochs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["eval_epochs"] = list(self.eval_epochs)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Candidate":
        values = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        values["eval_epochs"] = tuple(int(e) for e in values.get("eval_epochs") or ())
        return cls(**values)

    @property
    def early_stopping(self) -> bool:
        return bool(self.eval_epochs)


@dataclass(frozen=True)
class Recommendation:
    """G(D, T)'s answer: the chosen model and regime, the runners-up, and what it was chosen from."""

    task: TaskFeatures
    time_budget: float
    chosen: Candidate
    runners_up: tuple[Candidate, ...]
    grid_size: int
    source_accuracy: float
    settings: Mapping[str, Any]

    def regime(self) -> Regime:
        """The fine-tuning regime to run (the profile's batch size, schedule, momentum, ...)."""
        from nasoa_lib.finetune import FinetuneSettings

        s = FinetuneSettings(**{k: v for k, v in self.settings.items() if k in FinetuneSettings.__dataclass_fields__})
        return s.regime(lr=self.chosen.lr, iterations=self.chosen.iterations, frozen_stages=self.chosen.frozen_stages)

    def features(self) -> dict[str, Any]:
        """The chosen run's meta-features (one predictor row)."""
        return {"model": self.chosen.model, "domain_similarity": self.task.domain_similarity,
                "images_per_class": self.task.images_per_class, "num_classes": self.task.num_classes,
                "source_accuracy": self.source_accuracy, "iterations": self.chosen.iterations,
                "lr": self.chosen.lr, "frozen_stages": self.chosen.frozen_stages}

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task.to_dict(), "time_budget": self.time_budget, "chosen": self.chosen.to_dict(),
                "runners_up": [c.to_dict() for c in self.runners_up], "grid_size": self.grid_size,
                "source_accuracy": self.source_accuracy, "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recommendation":
        return cls(TaskFeatures.from_dict(d["task"]), float(d["time_budget"]), Candidate.from_dict(d["chosen"]),
                   tuple(Candidate.from_dict(c) for c in d["runners_up"]), int(d["grid_size"]),
                   float(d["source_accuracy"]), dict(d["settings"]))


def regime_costs(task: TaskFeatures, model: str, frozen_stages: int, table, epochs: Sequence[int],
                 batch_size: int, *, checkpointed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, iterations, expected seconds)`` of ``model`` with ``frozen_stages`` frozen for every
    value of the run-length ladder ``epochs`` on ``task``: the one conversion from epochs to steps
    and wall-clock that the generator, the searches' space and notebook 07's budgets share.

    ``checkpointed=True``: the run of rung ``j`` is evaluated (test and validation images) at each
    of the rungs ``0..j`` (early stopping, a replay-table run), so it pays ``j`` evaluations beyond
    the final one the time table counts."""
    from nasoa_lib.run_length import iterations_for

    ladder = np.asarray(epochs, dtype=np.int64)
    iterations = np.asarray([iterations_for(int(e), task.n_train, batch_size) for e in ladder], dtype=np.int64)
    seconds = np.asarray(table.expected_seconds(model, frozen_stages, iterations, task.n_train, task.n_evaluated),
                         dtype=np.float64).reshape(-1)
    if checkpointed:
        seconds = seconds + checkpoint_seconds(table.cost(model, frozen_stages), task, np.arange(len(ladder)))
    return ladder, iterations, seconds


def checkpoint_seconds(cost, task: TaskFeatures, extra_evaluations: np.ndarray | int) -> np.ndarray:
    """Expected seconds of ``extra_evaluations`` evaluations of ``task``'s test and validation
    images beyond a run's final one (the time table's ``eval_seconds_per_image``)."""
    return np.asarray(extra_evaluations, dtype=np.float64) * task.n_evaluated * cost.eval_seconds_per_image


def smallest_feasible_budget(task: TaskFeatures, models: Sequence[str], table, config: GeneratorConfig,
                             batch_size: int) -> float:
    """The least T for which some grid point fits: the cheapest (model, frozen stages) at the
    ladder's shortest run."""
    return float(min(regime_costs(task, m, k, table, config.ladder[:1], batch_size)[2][0]
                     for m in models for k in config.frozen_stages))


def stops_early(task: TaskFeatures, config: GeneratorConfig) -> bool:
    """Whether G(D, T) plans early-stopped runs on ``task``: the config asks for it and the task has
    validation images to stop on (module docstring)."""
    return bool(config.early_stopping) and task.n_validation > 0


def candidate_grid(task: TaskFeatures, time_budget: float, zoo: Mapping[str, float], table,
                   config: GeneratorConfig, batch_size: int) -> pd.DataFrame:
    """Every (model, lr, frozen stages, epochs) whose expected wall-clock fits ``time_budget``, as
    predictor rows (:data:`~nasoa_lib.metafeatures.FEATURE_COLUMNS`, with the epochs' iterations at
    ``batch_size``) plus ``epochs`` and ``expected_seconds`` (of a checkpointed run when
    :func:`stops_early`).

    ``zoo`` maps each candidate model's name to its source accuracy (a fraction).
    """
    import pandas as pd

    lrs = np.asarray(config.lrs, dtype=np.float64)
    checkpointed = stops_early(task, config)
    parts: list[dict[str, np.ndarray]] = []
    for model, source_accuracy in zoo.items():
        for k in config.frozen_stages:
            epochs, iterations, seconds = regime_costs(task, model, k, table, config.ladder, batch_size,
                                                       checkpointed=checkpointed)
            fits = seconds <= time_budget
            if not fits.any():
                continue
            eps, its, secs = epochs[fits], iterations[fits], seconds[fits]
            n = len(its) * len(lrs)
            parts.append({
                "model": np.full(n, model, dtype=object),
                "lr": np.repeat(lrs, len(its)),
                "frozen_stages": np.full(n, k, dtype=np.int64),
                "iterations": np.tile(its, len(lrs)),
                "epochs": np.tile(eps, len(lrs)),
                "expected_seconds": np.tile(secs, len(lrs)),
                "source_accuracy": np.full(n, float(source_accuracy)),
            })
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "model" else float) for c in GRID_COLUMNS})
    grid = pd.DataFrame({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})
    grid["domain_similarity"] = task.domain_similarity
    grid["images_per_class"] = task.images_per_class
    grid["num_classes"] = task.num_classes
    return grid[list(GRID_COLUMNS)]


def rank(grid: pd.DataFrame, predictor: AccuracyPredictor) -> pd.DataFrame:
    """``grid`` with ``predicted_accuracy`` from one ``predictor.predict`` call, best first (ties:
    the shorter expected wall-clock, then grid order)."""
    scores = np.asarray(predictor.predict(grid[list(FEATURE_COLUMNS)]), dtype=np.float64).reshape(-1)
    if scores.shape != (len(grid),) or not np.isfinite(scores).all():
        raise InvalidRegimeError(f"the predictor returned {scores.shape} scores for {len(grid)} grid rows "
                                 f"({'non-finite values' if scores.size == len(grid) else 'wrong count'})",
                                 hint="use a predictor with predict(DataFrame) -> one accuracy per row")
    ranked = grid.assign(predicted_accuracy=scores)
    order = np.lexsort((np.arange(len(ranked)), ranked["expected_seconds"].to_numpy(), -scores))
    return ranked.iloc[order].reset_index(drop=True)


def longest_runs(ranked: pd.DataFrame) -> pd.DataFrame:
    """:func:`rank`'s rows collapsed to one per (model, lr, frozen stages): the longest run that fits
    (its ``epochs``, ``iterations`` and ``expected_seconds``), scored by the highest predicted
    accuracy over its rungs, which ``predicted_epochs`` names (the earliest of equals); sorted
    like :func:`rank` (best first, ties: the faster run, then grid order)."""
    import pandas as pd

    keys = ["model", "lr", "frozen_stages"]
    best = ranked.groupby(keys, sort=False).head(1)  # rank order: within a regime, equal scores -> the shorter run first
    longest = ranked.loc[ranked.groupby(keys, sort=False).epochs.idxmax().to_numpy()].set_index(keys)
    out = longest.reindex(pd.MultiIndex.from_frame(best[keys])).reset_index()
    out["predicted_accuracy"] = best.predicted_accuracy.to_numpy()
    out["predicted_epochs"] = best.epochs.to_numpy()
    order = np.lexsort((np.arange(len(out)), out["expected_seconds"].to_numpy(), -out["predicted_accuracy"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)[[*ranked.columns, "predicted_epochs"]]


def recommend(dataset: TaskFeatures, time_budget: float, zoo: Mapping[str, float], predictor: AccuracyPredictor, step_time_table,
              *, config: GeneratorConfig, settings: FinetuneSettings) -> Recommendation:
    """G(D, T): the grid point with the highest predicted accuracy whose expected wall-clock fits T
    (run lengths in epochs of the task, ``settings.batch_size`` images per step); on a task with
    validation images, the early-stopped run of :func:`longest_runs` (module docstring).

    Raises :class:`~nasoa_lib.errors.InvalidDataError` for a dataset too small to fine-tune and
    :class:`~nasoa_lib.errors.BudgetTooSmallError` (stating the smallest feasible budget) when no
    grid point fits.
    """
    check_size(dataset, config.min_images_per_class)
    if not zoo:
        raise InvalidRegimeError("no candidate models to choose from", hint="build the zoo first: nasoa reproduce --only 02,03 (with your --profile)")
    if not (isinstance(time_budget, (int, float)) and np.isfinite(time_budget) and time_budget > 0):
        raise BudgetTooSmallError(f"time budget {time_budget!r} must be a number of seconds > 0",
                                  hint="e.g. 90s, 10m, 1h")
    grid = candidate_grid(dataset, float(time_budget), zoo, step_time_table, config, settings.batch_size)
    if grid.empty:
        least = smallest_feasible_budget(dataset, list(zoo), step_time_table, config, settings.batch_size)
        raise BudgetTooSmallError(
            f"no model fits a budget of {format_seconds(time_budget)} on {dataset.name!r} "
            f"({dataset.n_train} training images, {dataset.n_test} test images) on {step_time_table.device}",
            hint=f"the smallest feasible budget is {format_seconds(least)} ({_epochs(config.ladder[0])} of the "
            "fastest model and frozen-stage setting, with its fixed cost and evaluation)",
        )
    stopping = stops_early(dataset, config)
    ranked = rank(grid, predictor)
    ranked = longest_runs(ranked) if stopping else ranked
    ladder = np.asarray(config.ladder)
    rows = [Candidate(str(r.model), float(r.lr), int(r.frozen_stages), int(r.iterations),
                      float(r.predicted_accuracy), float(r.expected_seconds), int(r.epochs),
                      tuple(int(e) for e in ladder[ladder <= r.epochs]) if stopping else (),
                      int(r.predicted_epochs) if stopping else None)
            for r in ranked.head(1 + config.top_k).itertuples(index=False)]
    return Recommendation(dataset, float(time_budget), rows[0], tuple(rows[1:]), len(grid),
                          float(zoo[rows[0].model]), asdict(settings))


def _epochs(epochs: int) -> str:
    return f"{epochs} epoch{'s' if epochs != 1 else ''}"
