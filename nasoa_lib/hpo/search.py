"""Random search and BOHB over fine-tuning regimes, on a clock of charged seconds (NASOA Table 4).

Both searches spend a budget of seconds (NASOA: 40x the time constraint T) on trials of a
:class:`~nasoa_lib.hpo.space.SearchSpace`. ``observe(trial)`` returns an :class:`Observation`: the
trial's **validation** accuracy, the seconds it is charged and which run answered (notebook 07
looks trials up in a replay table, :mod:`nasoa_lib.hpo.replay`; a live evaluator works the same).
The search's clock is the charged seconds plus the optimiser's own wall-clock between
observations (SMAC's proposals and model fits: measured, never assumed free). A trial is started
only if its expected wall-clock still fits the remaining budget, so a search never plans to
overspend; a trial already observed is not charged again.

**Selection uses validation only.** An :class:`Observation` holds no test accuracy, so neither
search can see one: random search returns the trial with the best validation accuracy, BOHB
SMAC's incumbent on cost ``1 - validation accuracy``. The caller reports the chosen run's test
accuracy afterwards (:meth:`nasoa_lib.hpo.replay.ReplayTable.test_accuracy`).

**Random search** draws trials uniformly without replacement from the feasible grid (model, lr,
frozen stages, epochs).

**BOHB** is SMAC3's ``MultiFidelityFacade`` (2.x, :mod:`nasoa_lib.multifidelity`): Hyperband
intensification (successive halving brackets with factor ``eta``) over a random-forest Bayesian
proposal model, with a random initial design of d + 1 configurations (BOHB's minimum). Kept over
HpBandSter (the BOHB authors' KDE implementation, unmaintained since 2018), DEHB and syne-tune
(neither in this project's dependencies; syne-tune's simulator replays tables too, but through its
own backend and a second HPO stack beside notebook 08's): SMAC3 is maintained, is already the
project's HPO library, and its ask/tell interface lets us charge each trial its recorded seconds
and SMAC its own measured time; the price is a random forest instead of BOHB's kernel density
estimator (SMAC3 documents this facade as its BOHB). The fidelity is the run length: SMAC's budget
``b`` in ``[min_fidelity, 1]`` runs the configuration for the largest ladder epoch count <= ``b`` x
its longest run under T (:meth:`SearchSpace.at_fidelity`). The answer is SMAC's incumbent (best at
the highest budget observed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

from nasoa_lib.errors import InvalidSearchSetup
from nasoa_lib.hpo.space import SearchSpace, Trial

log = logging.getLogger(__name__)

#: BOHB stops after this many consecutive proposals that were all evaluated before (no new run can
#: be learned from: SMAC keeps re-proposing a small, exhausted space).
MAX_REPEATS = 200
#: Random configurations SMAC scores when maximising the acquisition function (SMAC's default is
#: 10 000, sized for continuous spaces); our grids hold at most a few hundred (model, lr, frozen)
#: configurations, which 1 000 draws already cover, at a tenth of the cost per proposal.
CHALLENGERS = 1000


@dataclass(frozen=True)
class Observation:
    """What a search learns from one trial: validation accuracy, charged seconds, and which run
    answered (a seed of the replay table, or None). Deliberately no test accuracy."""

    validation_accuracy: float
    seconds: float
    run: int | None = None


Observe = Callable[[Trial], Observation]


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated trial of a search, in order. ``spent_after``: the search's clock after it
    (charged seconds plus optimiser overhead so far)."""

    model: str
    lr: float
    frozen_stages: int
    epochs: int
    fidelity: float
    validation_accuracy: float
    seconds: float
    expected_seconds: float
    overhead_seconds: float
    spent_after: float
    run: int | None = None

    @property
    def trial(self) -> Trial:
        return Trial(self.model, self.lr, self.frozen_stages, self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    """What a search chose (by validation), the run that answered for it, and what it spent."""

    method: str
    seed: int
    budget_seconds: float
    spent_seconds: float
    overhead_seconds: float
    chosen: Trial
    validation_accuracy: float
    run: int | None
    trials: tuple[TrialRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "seed": self.seed, "budget_seconds": self.budget_seconds,
                "spent_seconds": self.spent_seconds, "overhead_seconds": self.overhead_seconds,
                "chosen": self.chosen.to_dict(), "validation_accuracy": self.validation_accuracy, "run": self.run,
                "trials": [t.to_dict() for t in self.trials]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SearchResult":
        return cls(d["method"], int(d["seed"]), float(d["budget_seconds"]), float(d["spent_seconds"]),
                   float(d["overhead_seconds"]), Trial(**d["chosen"]), float(d["validation_accuracy"]),
                   d["run"], tuple(TrialRecord(**t) for t in d["trials"]))


#: A monotonic clock in seconds. The searches charge the optimiser's own time by it; tests pass a
#: deterministic one so that what a search does never depends on how busy the machine is.
Clock = Callable[[], float]


class _Ledger:
    """Observes trials against the budget, memoising what was already observed; the clock adds the
    optimiser's wall-clock since the previous observation returned."""

    def __init__(self, space: SearchSpace, observe: Observe, budget: float, clock: Clock = time.perf_counter) -> None:
        self.space, self.observe, self.budget = space, observe, float(budget)
        self.clock = clock
        self.spent = 0.0
        self.overhead = 0.0
        self.records: list[TrialRecord] = []
        self.seen: dict[Trial, Observation] = {}
        self._mark = clock()
        self._pending = 0.0

    def tick(self) -> None:
        """Charge the optimiser's wall-clock since the last mark."""
        now = self.clock()
        used, self._mark = now - self._mark, now
        self.spent += used
        self.overhead += used
        self._pending += used

    def fits(self, trial: Trial) -> bool:
        self.tick()
        return trial in self.seen or self.spent + self.space.expected_seconds(trial) <= self.budget

    def run(self, trial: Trial, fidelity: float = 1.0) -> tuple[Observation, bool]:
        """The observation of ``trial`` and whether it was new (charged)."""
        if trial in self.seen:
            return self.seen[trial], False
        self.tick()
        overhead, self._pending = self._pending, 0.0
        obs = self.observe(trial)
        self.spent += float(obs.seconds)
        self.seen[trial] = obs
        self.records.append(TrialRecord(trial.model, trial.lr, trial.frozen_stages, trial.epochs, float(fidelity),
                                        float(obs.validation_accuracy), float(obs.seconds),
                                        self.space.expected_seconds(trial), overhead, self.spent, obs.run))
        self._mark = self.clock()
        return obs, True

    def result(self, method: str, seed: int, chosen: TrialRecord) -> SearchResult:
        return SearchResult(method, seed, self.budget, self.spent, self.overhead, chosen.trial,
                            chosen.validation_accuracy, chosen.run, tuple(self.records))


def _check(space: SearchSpace, budget: float) -> None:
    cheapest = min(space.expected.values())
    if not budget >= cheapest:
        raise InvalidSearchSetup(f"a search budget of {budget:.2f}s cannot pay even the cheapest trial ({cheapest:.2f}s)",
                                 hint="raise the budget multiple or the time constraint")


def best_by_validation(records: list[TrialRecord] | tuple[TrialRecord, ...]) -> TrialRecord:
    """The trial with the highest validation accuracy (ties: the cheaper, then the earlier)."""
    return max(records, key=lambda r: (r.validation_accuracy, -r.seconds, -records.index(r)))


def random_search(space: SearchSpace, observe: Observe, budget_seconds: float, seed: int = 0,
                  clock: Clock = time.perf_counter) -> SearchResult:
    """Uniform random trials without replacement until the next one would not fit the budget."""
    _check(space, budget_seconds)
    ledger = _Ledger(space, observe, budget_seconds, clock)
    grid = space.grid()
    for index in np.random.default_rng([seed, 31]).permutation(len(grid)):
        trial = grid[int(index)]
        if not ledger.fits(trial):
            break
        ledger.run(trial)
    ledger.tick()
    return ledger.result("random_search", seed, best_by_validation(ledger.records))


def bohb(space: SearchSpace, observe: Observe, budget_seconds: float, seed: int = 0, eta: int = 3,
         min_fidelity: float = 1 / 9, clock: Clock = time.perf_counter) -> SearchResult:
    """SMAC3's BOHB-style multi-fidelity optimisation (module docstring) within ``budget_seconds``."""
    from nasoa_lib.multifidelity import run_multifidelity

    _check(space, budget_seconds)
    if not 0 < min_fidelity < 1 or eta < 2:
        raise InvalidSearchSetup(f"BOHB needs 0 < min_fidelity < 1 and eta >= 2 (got {min_fidelity}, {eta})",
                                 hint="e.g. eta 3 with min_fidelity 1/9 (three brackets)")
    ledger = _Ledger(space, observe, budget_seconds, clock)
    repeats = 0

    def cost(config: Mapping[str, Any], budget: float) -> float | None:
        nonlocal repeats
        trial = space.from_config(dict(config), budget)
        if repeats >= MAX_REPEATS or not ledger.fits(trial):
            return None
        obs, new = ledger.run(trial, budget)
        repeats = 0 if new else repeats + 1
        return 1.0 - obs.validation_accuracy

    incumbent = run_multifidelity(space.configspace(seed), cost, min_budget=min_fidelity, max_budget=1.0, eta=eta,
                                  seed=seed, bayesian=True, name="bohb", challengers=CHALLENGERS)
    ledger.tick()
    if not ledger.records:
        raise InvalidSearchSetup("BOHB could not run a single trial within its budget",
                                 hint="raise the budget multiple")
    chosen = None
    if incumbent is not None:
        inc = incumbent
        same = [r for r in ledger.records if (r.model == inc.get("model", space.models[0]) and r.lr == float(inc["lr"])
                                              and r.frozen_stages == int(inc["frozen_stages"]))]
        if same:  # the incumbent at the longest run length it was observed at
            longest = max(r.epochs for r in same)
            chosen = best_by_validation([r for r in same if r.epochs == longest])
    if chosen is None:  # no incumbent yet: the best trial at the highest fidelity reached
        top = max(r.fidelity for r in ledger.records)
        chosen = best_by_validation([r for r in ledger.records if r.fidelity == top])
    return ledger.result("bohb", seed, chosen)
