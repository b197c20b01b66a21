"""Random search, HyperBand and BOHB ranked by a chosen metric (thesis 003, section 3.2, 4.2.1,
4.3.1; appendix A.3.2, A.5).

The searches run on a :class:`TabularBenchmark`: for each configuration the curve of a ranking
metric after e = 1..E epochs (the network's validation accuracy, "original", or the feature-history
estimate, "estimate") and its true final accuracy. Because every run of the population was trained
with the linear schedule of the full budget E, training a configuration for b < E epochs *is* the
first b epochs of its recorded run (thesis A.3.2 likewise fixes the schedule at the maximal budget),
so a lookup answers what a search would have seen, and the ranking question of the thesis is
answered without training anything again.

HyperBand and BOHB are SMAC3's implementations (the project's maintained choice):
``HyperbandFacade`` (random configurations + Hyperband intensifier) and ``MultiFidelityFacade``
(random-forest Bayesian optimisation + Hyperband, SMAC's BOHB-style facade; the original BOHB uses a
kernel density estimator instead of a random forest). Both are driven through SMAC's ask/tell
interface so that every method gets the same total budget in epochs. SMAC starts HyperBand from
the space's default configuration; the default is drawn at random per seed so that no configuration
is favoured, and BOHB's random initial design is d + 1 configurations, as in BOHB's own minimum.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nasoa_lib.errors import InvalidSearchSetup

log = logging.getLogger(__name__)

METHODS = ("random_search", "hyperband", "bohb")


@dataclass(frozen=True, eq=False)
class TabularBenchmark:
    """Recorded curves of ``n`` configurations over ``E`` epochs.

    ``metrics[name][i, e - 1]`` is metric ``name`` of configuration ``i`` after ``e`` epochs;
    ``true[i]`` its true final accuracy; ``params[i]`` its hyperparameters (used to build the search
    space: a full grid becomes one hyperparameter per key, anything else one categorical choice).
    """

    names: tuple[str, ...]
    metrics: Mapping[str, np.ndarray]
    true: np.ndarray
    params: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        n = len(self.names)
        if n == 0:
            raise InvalidSearchSetup("the tabular benchmark has no configurations", hint="train a population first")
        for name, values in self.metrics.items():
            if np.asarray(values).ndim != 2 or np.asarray(values).shape[0] != n:
                raise InvalidSearchSetup(
                    f"metric {name!r} has shape {np.asarray(values).shape}; expected ({n}, epochs)",
                    hint="one row per configuration, one column per epoch",
                )
        if np.asarray(self.true).shape != (n,):
            raise InvalidSearchSetup(f"true accuracies have shape {np.asarray(self.true).shape}, expected ({n},)")
        if self.params and len(self.params) != n:
            raise InvalidSearchSetup(f"{len(self.params)} parameter sets for {n} configurations")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def epochs(self) -> int:
        return int(next(iter(self.metrics.values())).shape[1])

    def value(self, index: int, metric: str, budget: int) -> float:
        """Metric ``metric`` of configuration ``index`` after ``budget`` epochs."""
        if metric not in self.metrics:
            raise InvalidSearchSetup(f"unknown ranking metric {metric!r}", hint=f"one of {sorted(self.metrics)}")
        if not 1 <= budget <= self.epochs:
            raise InvalidSearchSetup(f"budget {budget} outside the recorded 1..{self.epochs} epochs")
        return float(self.metrics[metric][index, budget - 1])

    @property
    def best_true(self) -> float:
        return float(np.max(self.true))

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], metrics: Mapping[str, str] | None = None) -> "TabularBenchmark":
        """From population records (:mod:`.population`); ``metrics`` maps benchmark metric names
        to curve columns (default: ``original`` = validation accuracy, ``estimate`` = ensemble)."""
        metrics = metrics or {"original": "val_acc", "estimate": "estimate_acc"}
        names, params = [], []
        for r in records:
            m = r["member"]
            names.append(f"{r['label']}@{m['seed']}" if m["group"] != "hpo" else r["label"])
            params.append({"lr": m["settings"]["lr"], "augment": m["settings"]["augment"]} if m["group"] == "hpo" else {})
        table = {k: np.array([[row[col] for row in r["curve"]] for r in records], dtype=float) for k, col in metrics.items()}
        return cls(tuple(names), table, np.array([r["true_acc"] for r in records], dtype=float),
                   tuple(params) if all(params) else ())

    # -- search space ---------------------------------------------------------------------------

    def _grid(self) -> tuple[list[str], dict[tuple, int]] | None:
        if not self.params:
            return None
        keys = sorted(self.params[0])
        if not keys or any(sorted(p) != keys for p in self.params):
            return None
        values = {k: sorted({p[k] for p in self.params}, key=lambda v: (str(type(v)), v)) for k in keys}
        if math.prod(len(v) for v in values.values()) != len(self) or any(len(v) < 2 for v in values.values()):
            return None
        lookup = {tuple(p[k] for k in keys): i for i, p in enumerate(self.params)}
        return (keys, lookup) if len(lookup) == len(self) else None

    def configspace(self, seed: int):
        """The SMAC search space: one hyperparameter per grid key, else one categorical choice."""
        from ConfigSpace import Categorical, ConfigurationSpace

        cs = ConfigurationSpace(seed=seed)
        rng = np.random.default_rng([seed, 17])
        grid = self._grid()
        if grid is None:
            names = list(self.names)
            cs.add(Categorical("config", names, default=names[int(rng.integers(len(names)))]))
        else:
            keys, _ = grid
            for k in keys:
                vals = sorted({p[k] for p in self.params}, key=lambda v: (str(type(v)), v))
                numeric = all(isinstance(v, (int, float)) for v in vals)
                cs.add(Categorical(k, vals, ordered=numeric, default=vals[int(rng.integers(len(vals)))]))
        return cs

    def index_of(self, config: Mapping[str, Any]) -> int:
        grid = self._grid()
        if grid is None:
            return self.names.index(config["config"])
        keys, lookup = grid
        return lookup[tuple(config[k] for k in keys)]


@dataclass(frozen=True)
class SearchResult:
    """What one search run chose and what that choice is truly worth."""

    method: str
    metric: str
    seed: int
    chosen: int
    chosen_name: str
    true_acc: float
    regret: float
    spent_epochs: int
    trials: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _result(bench: TabularBenchmark, method: str, metric: str, seed: int, chosen: int, spent: int, trials: int) -> SearchResult:
    true = float(bench.true[chosen])
    return SearchResult(method, metric, seed, int(chosen), bench.names[chosen], true, bench.best_true - true, int(spent), trials)


def _check(bench: TabularBenchmark, metric: str, budget_epochs: int, max_budget: int, min_budget: int = 1) -> None:
    if metric not in bench.metrics:
        raise InvalidSearchSetup(f"unknown ranking metric {metric!r}", hint=f"one of {sorted(bench.metrics)}")
    if not 1 <= min_budget <= max_budget <= bench.epochs:
        raise InvalidSearchSetup(
            f"budgets {min_budget}..{max_budget} epochs outside the recorded 1..{bench.epochs}",
            hint="lower search_max_budget or record longer curves",
        )
    if budget_epochs < max_budget:
        raise InvalidSearchSetup(
            f"total budget {budget_epochs} epochs is less than one evaluation at {max_budget} epochs",
            hint="raise search_budget_epochs",
        )


def random_search(bench: TabularBenchmark, metric: str, budget_epochs: int, epochs_per_config: int, seed: int = 0) -> SearchResult:
    """Sample configurations uniformly, train each for ``epochs_per_config`` epochs within the total
    budget, return the one ranked best by ``metric`` (thesis section 3.2, appendix A.3.2)."""
    _check(bench, metric, budget_epochs, epochs_per_config)
    rng = np.random.default_rng(seed)
    count = min(len(bench), budget_epochs // epochs_per_config)
    picks = rng.choice(len(bench), count, replace=False)
    scores = [bench.value(int(i), metric, epochs_per_config) for i in picks]
    chosen = int(picks[int(np.argmax(scores))])
    return _result(bench, "random_search", metric, seed, chosen, count * epochs_per_config, count)


def _smac_round(budget: float, max_budget: int) -> int:
    return int(min(max_budget, max(1, math.floor(budget + 0.5))))


def hyperband(
    bench: TabularBenchmark,
    metric: str,
    budget_epochs: int,
    min_budget: int,
    max_budget: int,
    eta: int = 2,
    seed: int = 0,
    bayesian: bool = False,
) -> SearchResult:
    """HyperBand (``bayesian=False``) or BOHB (``bayesian=True``) from SMAC3, ranking by ``metric``
    and allocating budget by it (thesis section 3.2); stops before the total epochs would exceed
    ``budget_epochs`` or when every configuration has been proposed. SMAC's budgets (floats on a
    geometric grid with factor ``eta``) are rounded to whole epochs. The choice is SMAC's incumbent
    (best cost at the highest budget it was evaluated on)."""
    _check(bench, metric, budget_epochs, max_budget, min_budget)
    from nasoa_lib.multifidelity import run_multifidelity

    method = "bohb" if bayesian else "hyperband"
    spent, trials = 0, 0
    seen: dict[int, tuple[int, float]] = {}

    def cost(config: Mapping[str, Any], smac_budget: float) -> float | None:
        nonlocal spent, trials
        budget = _smac_round(smac_budget, max_budget)
        if spent + budget > budget_epochs:
            return None
        index = bench.index_of(config)
        score = bench.value(index, metric, budget)
        spent, trials = spent + budget, trials + 1
        if index not in seen or seen[index][0] <= budget:
            seen[index] = (budget, score)
        return 1.0 - score

    incumbent = run_multifidelity(bench.configspace(seed), cost, min_budget=min_budget, max_budget=max_budget,
                                  eta=eta, seed=seed, bayesian=bayesian, name=f"{method}-{metric}")
    if incumbent is not None:
        chosen = bench.index_of(incumbent)
    else:  # nothing reached SMAC's incumbent rule yet: best score at the highest budget reached
        top = max(b for b, _ in seen.values())
        chosen = max((s, i) for i, (b, s) in seen.items() if b == top)[1]
    return _result(bench, method, metric, seed, chosen, spent, trials)


def compare_searches(
    bench: TabularBenchmark,
    *,
    budget_epochs: int,
    min_budget: int,
    max_budget: int,
    eta: int = 2,
    repeats: int = 5,
    metrics: Sequence[str] = ("original", "estimate"),
    methods: Sequence[str] = METHODS,
    progress: bool = False,
) -> pd.DataFrame:
    """Every method x metric, ``repeats`` seeds each (thesis Tables 4.1/4.3: each experiment
    repeated with different random seeds); one row per run."""
    rows = []
    runs = list(itertools.product(methods, metrics, range(repeats)))
    if progress:
        from tqdm.auto import tqdm

        runs = tqdm(runs, desc="searches", leave=False)
    for method, metric, seed in runs:
        if method == "random_search":
            res = random_search(bench, metric, budget_epochs, max_budget, seed)
        elif method in ("hyperband", "bohb"):
            res = hyperband(bench, metric, budget_epochs, min_budget, max_budget, eta, seed, bayesian=method == "bohb")
        else:
            raise InvalidSearchSetup(f"unknown search method {method!r}", hint=f"one of {METHODS}")
        rows.append(res.to_dict())
    return pd.DataFrame(rows)


def summarize_searches(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean +- std of the chosen configuration's true accuracy per method and ranking metric."""
    g = runs.groupby(["method", "metric"], sort=False)
    out = g.agg(true_acc_mean=("true_acc", "mean"), true_acc_std=("true_acc", "std"),
                regret_mean=("regret", "mean"), spent_epochs=("spent_epochs", "mean"),
                runs=("seed", "count")).reset_index()
    return out
