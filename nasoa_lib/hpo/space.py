"""The HPO baselines' search space: model x lr x frozen stages x run length under one time budget.

The baselines of NASOA Table 4 search exactly the grid the generator ranks (the same lrs, frozen
stages and run-length ladder in epochs of the task, :class:`~nasoa_lib.generator.GeneratorConfig`
and :mod:`nasoa_lib.run_length`), restricted to a set of models (one fixed large baseline, the
baseline families, or our zoo) and to the regimes whose expected wall-clock (the generator's time
table, :func:`~nasoa_lib.generator.ranking.regime_costs`) fits the fine-tuning time constraint T:
a search may spend 40 T in total, but the regime it returns must still fine-tune within T, so a
regime longer than T is not a candidate. A (model, frozen stages) pair with no run length under T
is infeasible and excluded (a ConfigSpace forbidden clause for SMAC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from nasoa_lib.errors import BudgetTooSmallError


@dataclass(frozen=True, order=True)
class Trial:
    """One configuration a search evaluates: a model and a full regime (run length in epochs)."""

    model: str
    lr: float
    frozen_stages: int
    epochs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchSpace:
    """Feasible grid of one (task, time constraint): ladder epochs per (model, frozen), with each
    regime's iterations and expected wall-clock."""

    models: tuple[str, ...]
    lrs: tuple[float, ...]
    frozen_stages: tuple[int, ...]
    epochs: Mapping[tuple[str, int], tuple[int, ...]]
    expected: Mapping[tuple[str, int, int], float]
    iterations: Mapping[tuple[str, int, int], int]

    @classmethod
    def build(cls, task, time_budget: float, models: Sequence[str], config, table, batch_size: int) -> "SearchSpace":
        """The grid of ``models`` under ``time_budget`` seconds for ``task`` (a
        :class:`~nasoa_lib.generator.TaskFeatures`), ``batch_size`` images per step."""
        from nasoa_lib.generator.ranking import regime_costs

        epochs: dict[tuple[str, int], tuple[int, ...]] = {}
        expected: dict[tuple[str, int, int], float] = {}
        iterations: dict[tuple[str, int, int], int] = {}
        for model in models:
            for k in config.frozen_stages:
                eps, its, seconds = regime_costs(task, model, k, table, config.ladder, batch_size)
                fits = seconds <= time_budget
                if fits.any():
                    epochs[(model, k)] = tuple(int(e) for e in eps[fits])
                    for e, i, s in zip(eps[fits], its[fits], seconds[fits]):
                        expected[(model, k, int(e))] = float(s)
                        iterations[(model, k, int(e))] = int(i)
        if not epochs:
            raise BudgetTooSmallError(
                f"no regime of {list(models)} fits {time_budget:.2f}s on {task.name!r}",
                hint="raise the time constraint or add faster models / frozen stages to the grid",
            )
        kept = tuple(m for m in models if any((m, k) in epochs for k in config.frozen_stages))
        return cls(kept, tuple(config.lrs), tuple(config.frozen_stages), epochs, expected, iterations)

    def feasible(self, model: str, frozen_stages: int) -> bool:
        return (model, frozen_stages) in self.epochs

    def grid(self) -> list[Trial]:
        """Every feasible trial, in a fixed order (models, then lrs, frozen stages, epochs)."""
        return [Trial(m, lr, k, e) for m in self.models for lr in self.lrs for k in self.frozen_stages
                if self.feasible(m, k) for e in self.epochs[(m, k)]]

    def __len__(self) -> int:
        return len(self.lrs) * sum(len(v) for v in self.epochs.values())

    def expected_seconds(self, trial: Trial) -> float:
        return self.expected[(trial.model, trial.frozen_stages, trial.epochs)]

    def iterations_of(self, trial: Trial) -> int:
        return self.iterations[(trial.model, trial.frozen_stages, trial.epochs)]

    def max_epochs(self, model: str, frozen_stages: int) -> int:
        return self.epochs[(model, frozen_stages)][-1]

    def at_fidelity(self, model: str, lr: float, frozen_stages: int, fidelity: float) -> Trial:
        """BOHB's budget as run length: the largest ladder value <= ``fidelity`` x the pair's
        longest feasible run (at least its shortest one)."""
        values = self.epochs[(model, frozen_stages)]
        target = float(fidelity) * values[-1]
        below = [v for v in values if v <= target + 1e-9]
        return Trial(model, float(lr), int(frozen_stages), below[-1] if below else values[0])

    def configspace(self, seed: int):
        """SMAC's space over (model, lr, frozen stages); the run length is BOHB's fidelity.

        The learning rate is an ordered categorical over the grid values (every trial stays a grid
        cell of the replay table). Infeasible (model, frozen) pairs are forbidden; the default
        configuration is a random feasible one per ``seed`` so that SMAC's first configuration
        favours nothing."""
        from ConfigSpace import Categorical, ConfigurationSpace
        from ConfigSpace import ForbiddenAndConjunction, ForbiddenEqualsClause

        rng = np.random.default_rng([seed, 23])
        pairs = sorted(self.epochs)
        m0, k0 = pairs[int(rng.integers(len(pairs)))]
        cs = ConfigurationSpace(seed=seed)
        lr = Categorical("lr", list(self.lrs), ordered=True, default=self.lrs[int(rng.integers(len(self.lrs)))])
        ks = [k for k in self.frozen_stages if any(p[1] == k for p in pairs)]
        frozen = Categorical("frozen_stages", ks, ordered=True, default=k0)
        hps = [lr, frozen]
        model = None
        if len(self.models) > 1:
            model = Categorical("model", list(self.models), default=m0)
            hps.insert(0, model)
        cs.add(hps)
        if model is not None:
            forbidden = [ForbiddenAndConjunction(ForbiddenEqualsClause(model, m), ForbiddenEqualsClause(frozen, k))
                         for m in self.models for k in ks if not self.feasible(m, k)]
            if forbidden:
                cs.add(forbidden)
        return cs

    def snap_lr(self, lr: float) -> float:
        """The grid learning rate nearest to ``lr`` in log space."""
        grid = np.asarray(self.lrs, dtype=float)
        return float(grid[int(np.argmin(np.abs(np.log(grid) - np.log(float(lr)))))])

    def from_config(self, config: Mapping[str, Any], fidelity: float) -> Trial:
        """The grid trial of a SMAC configuration at BOHB budget ``fidelity``."""
        model = str(config["model"]) if "model" in config else self.models[0]
        return self.at_fidelity(model, self.snap_lr(config["lr"]), int(config["frozen_stages"]), fidelity)
