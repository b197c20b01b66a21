"""SMAC3's HyperBand and BOHB-style multi-fidelity search driven by ask/tell: the one place the
project builds a SMAC facade (used by notebook 07's HPO baselines and notebook 08's searches).

The caller owns what a trial costs: ``evaluate(config, budget)`` runs (or looks up) one trial and
returns its cost (lower is better), or ``None`` when the caller's own budget is spent, which ends
the search. BOHB (``bayesian=True``) is ``MultiFidelityFacade``: a random-forest surrogate
(SMAC's default forest, built with ``n_jobs=1``: the default thread pool spent most of a search's
wall-clock polling on a busy 2-core machine) over Hyperband intensification, starting from a random
initial design of d + 1 configurations (BOHB's minimum, Falkner et al. 2018). HyperBand
(``bayesian=False``) is ``HyperbandFacade``: random configurations, the same intensifier.
"""

from __future__ import annotations

import tempfile
from typing import Any, Callable, Mapping

Evaluate = Callable[[Mapping[str, Any], float], "float | None"]


def run_multifidelity(
    configspace: Any,
    evaluate: Evaluate,
    *,
    min_budget: float,
    max_budget: float,
    eta: int,
    seed: int,
    bayesian: bool,
    name: str,
    challengers: int | None = None,
) -> Mapping[str, Any] | None:
    """Ask/tell until SMAC has no new configuration or ``evaluate`` returns ``None``; returns SMAC's
    incumbent (best cost at the highest budget it was evaluated on), or ``None`` if there is none."""
    from smac import HyperbandFacade, MultiFidelityFacade, Scenario
    from smac.main.exceptions import ConfigurationSpaceExhaustedException
    from smac.model.random_forest import RandomForest
    from smac.runhistory.dataclasses import TrialValue

    facade = MultiFidelityFacade if bayesian else HyperbandFacade
    with tempfile.TemporaryDirectory(prefix="nasoa-smac-") as folder:
        scenario = Scenario(configspace, deterministic=True, n_trials=1_000_000, min_budget=min_budget,
                            max_budget=max_budget, seed=seed, output_directory=f"{folder}/smac", name=name)
        extra: dict[str, Any] = {}
        if bayesian:
            extra["initial_design"] = facade.get_initial_design(scenario, n_configs=len(scenario.configspace) + 1)
            extra["model"] = RandomForest(
                scenario.configspace, log_y=True, n_trees=10, ratio_features=1.0, min_samples_split=2,
                min_samples_leaf=1, max_depth=2**20, bootstrapping=True, seed=scenario.seed, n_jobs=1)
        if challengers is not None:
            extra["acquisition_maximizer"] = facade.get_acquisition_maximizer(scenario, challengers=challengers)
        smac = facade(scenario, lambda config, seed=0, budget=1.0: 0.0,
                      intensifier=facade.get_intensifier(scenario, eta=eta), overwrite=True, logging_level=40,
                      **extra)
        while True:
            try:
                info = smac.ask()
            except ConfigurationSpaceExhaustedException:
                break
            cost = evaluate(info.config, float(info.budget))
            if cost is None:
                break
            smac.tell(info, TrialValue(cost=float(cost)))
        incumbent = smac.intensifier.get_incumbent()
    return None if incumbent is None else dict(incumbent)
