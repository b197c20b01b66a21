"""Random search and BOHB over fine-tuning regimes, paying real fine-tuning wall-clock (NASOA Table 4).

Both searches spend a budget of seconds (NASOA: 40x the time constraint T) on trials of a
:class:`~nasoa_lib.hpo.space.SearchSpace`; each trial is a real fine-tuning run (``evaluate``
returns its accuracy and the seconds it is charged, the run's recorded wall-clock). A trial is
started only if its expected wall-clock still fits the remaining budget, so a search never plans
to overspend; a configuration a search has already evaluated is not run or charged again.

**Random search** draws trials uniformly without replacement from the feasible grid (model, lr,
frozen stages, iterations) and returns the most accurate one.

**BOHB** is SMAC3's ``MultiFidelityFacade`` (2.x): Hyperband intensification (successive halving
brackets with factor ``eta``) over a random-forest Bayesian-optimisation proposal model, with a
random initial design of d + 1 configurations (BOHB's minimum). Chosen over HpBandSter (the BOHB
authors' original, KDE-based implementation) because SMAC3 is maintained, is already the project's
HPO library (notebook 08), and its ask/tell interface lets us charge each trial its real
wall-clock; the price is a random forest instead of BOHB's kernel density estimator, which the
SMAC3 documentation presents as its BOHB-style facade. The fidelity is iterations: SMAC's budget
``b`` in ``[min_fidelity, 1]`` runs the configuration for the largest ladder value <= ``b`` x its
maximal iterations under T. The answer is SMAC's incumbent (best at the highest budget observed).

Both select by the accuracy they report (the task's test accuracy, as NASOA reports fine-tuning
accuracy on the test set); this favours the searches over the one-shot generator, which never
sees a test accuracy before it chooses.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

from nasoa_lib.errors import InvalidSearchSetup
from nasoa_lib.hpo.space import SearchSpace, Trial

log = logging.getLogger(__name__)

Evaluate = Callable[[Trial], tuple[float, float]]
#: BOHB stops after this many consecutive proposals that were all evaluated before (no new run can
#: be learned from: SMAC keeps re-proposing a small, exhausted space).
MAX_REPEATS = 200
#: Random configurations SMAC scores when maximising the acquisition function (SMAC's default is
#: 10 000, sized for continuous spaces); our grids hold at most a few hundred (model, lr, frozen)
#: configurations, which 1 000 draws already cover, at a tenth of the cost per proposal.
CHALLENGERS = 1000


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated trial of a search, in order."""

    model: str
    lr: float
    frozen_stages: int
    iterations: int
    fidelity: float
    accuracy: float
    seconds: float
    expected_seconds: float
    spent_after: float

    @property
    def trial(self) -> Trial:
        return Trial(self.model, self.lr, self.frozen_stages, self.iterations)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    """What a search chose, what the choice scored, and what the search spent."""

    method: str
    seed: int
    budget_seconds: float
    spent_seconds: float
    chosen: Trial
    accuracy: float
    trials: tuple[TrialRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "seed": self.seed, "budget_seconds": self.budget_seconds,
                "spent_seconds": self.spent_seconds, "chosen": self.chosen.to_dict(), "accuracy": self.accuracy,
                "trials": [t.to_dict() for t in self.trials]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SearchResult":
        return cls(d["method"], int(d["seed"]), float(d["budget_seconds"]), float(d["spent_seconds"]),
                   Trial(**d["chosen"]), float(d["accuracy"]), tuple(TrialRecord(**t) for t in d["trials"]))


class _Ledger:
    """Runs trials against the budget, memoising what was already evaluated."""

    def __init__(self, space: SearchSpace, evaluate: Evaluate, budget: float) -> None:
        self.space, self.evaluate, self.budget = space, evaluate, float(budget)
        self.spent = 0.0
        self.records: list[TrialRecord] = []
        self.seen: dict[Trial, float] = {}

    def fits(self, trial: Trial) -> bool:
        return trial in self.seen or self.spent + self.space.expected_seconds(trial) <= self.budget

    def run(self, trial: Trial, fidelity: float = 1.0) -> tuple[float, bool]:
        """Accuracy of ``trial`` and whether it was a new run."""
        if trial in self.seen:
            return self.seen[trial], False
        accuracy, seconds = self.evaluate(trial)
        self.spent += float(seconds)
        self.seen[trial] = float(accuracy)
        self.records.append(TrialRecord(trial.model, trial.lr, trial.frozen_stages, trial.iterations, float(fidelity),
                                        float(accuracy), float(seconds), self.space.expected_seconds(trial), self.spent))
        return float(accuracy), True


def _check(space: SearchSpace, budget: float) -> None:
    cheapest = min(space.expected.values())
    if not budget >= cheapest:
        raise InvalidSearchSetup(f"a search budget of {budget:.2f}s cannot pay even the cheapest trial ({cheapest:.2f}s)",
                                 hint="raise the budget multiple or the time constraint")


def random_search(space: SearchSpace, evaluate: Evaluate, budget_seconds: float, seed: int = 0) -> SearchResult:
    """Uniform random trials without replacement until the next one would not fit the budget."""
    _check(space, budget_seconds)
    ledger = _Ledger(space, evaluate, budget_seconds)
    grid = space.grid()
    for index in np.random.default_rng([seed, 31]).permutation(len(grid)):
        trial = grid[int(index)]
        if not ledger.fits(trial):
            break
        ledger.run(trial)
    best = max(ledger.records, key=lambda r: (r.accuracy, -r.seconds))
    return SearchResult("random_search", seed, float(budget_seconds), ledger.spent, best.trial, best.accuracy,
                        tuple(ledger.records))


def bohb(space: SearchSpace, evaluate: Evaluate, budget_seconds: float, seed: int = 0, eta: int = 3,
         min_fidelity: float = 1 / 9) -> SearchResult:
    """SMAC3's BOHB-style multi-fidelity optimisation (module docstring) within ``budget_seconds``."""
    from nasoa_lib.multifidelity import run_multifidelity

    _check(space, budget_seconds)
    if not 0 < min_fidelity < 1 or eta < 2:
        raise InvalidSearchSetup(f"BOHB needs 0 < min_fidelity < 1 and eta >= 2 (got {min_fidelity}, {eta})",
                                 hint="e.g. eta 3 with min_fidelity 1/9 (three brackets)")
    ledger = _Ledger(space, evaluate, budget_seconds)
    repeats = 0

    def cost(config: Mapping[str, Any], budget: float) -> float | None:
        nonlocal repeats
        trial = space.from_config(dict(config), budget)
        if repeats >= MAX_REPEATS or not ledger.fits(trial):
            return None
        accuracy, new = ledger.run(trial, budget)
        repeats = 0 if new else repeats + 1
        return 1.0 - accuracy

    incumbent = run_multifidelity(space.configspace(seed), cost, min_budget=min_fidelity, max_budget=1.0, eta=eta,
                                  seed=seed, bayesian=True, name="bohb", challengers=CHALLENGERS)
    if not ledger.records:
        raise InvalidSearchSetup("BOHB could not run a single trial within its budget",
                                 hint="raise the budget multiple")
    chosen = None
    if incumbent is not None:
        inc = incumbent
        same = [r for r in ledger.records if (r.model == inc.get("model", space.models[0]) and r.lr == float(inc["lr"])
                                              and r.frozen_stages == int(inc["frozen_stages"]))]
        if same:
            chosen = max(same, key=lambda r: (r.iterations, r.accuracy))
    if chosen is None:  # no incumbent yet: the best trial at the highest fidelity reached
        top = max(r.fidelity for r in ledger.records)
        chosen = max((r for r in ledger.records if r.fidelity == top), key=lambda r: r.accuracy)
    return SearchResult("bohb", seed, float(budget_seconds), ledger.spent, chosen.trial, chosen.accuracy,
                        tuple(ledger.records))
