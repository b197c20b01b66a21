"""HPO baselines (random search, SMAC3's BOHB) on the generator's grid, and the Table 4/5 bookkeeping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nasoa_lib.errors import BudgetTooSmallError, InvalidSearchSetup
from nasoa_lib.generator import FinetuneTimeTable, GeneratorConfig, RunCost, TaskFeatures
from nasoa_lib.hpo import METHODS, PAPER_TABLE4, PAPER_TABLE5, SearchSpace, Trial, bohb, random_search
from nasoa_lib.studies import nasoa_vs_hpo as comparison

CONFIG = GeneratorConfig(lrs=(0.001, 0.01, 0.1), frozen_stages=(0, 2, 4), min_iterations=4, max_iterations=64,
                         iteration_factor=2.0)
TASK = TaskFeatures("toy", 4, 32, 40, 0.5, 8)
SPEED = {"fast": 0.02, "mid": 0.05, "slow": 0.3}


def _table() -> FinetuneTimeTable:
    costs = {(m, k): RunCost(m, k, s / (1 + 2 * k), 0.001 * k, 1000, 0.001, 0.05, k > 0)
             for m, s in SPEED.items() for k in (0, 2, 4)}
    return FinetuneTimeTable("cpu:2threads", 32, 32, 2, costs)


def _evaluator(space: SearchSpace, calls: list[Trial]):
    """A deterministic accuracy surface, charged exactly the expected seconds."""

    def evaluate(trial: Trial) -> tuple[float, float]:
        calls.append(trial)
        acc = (0.9 - 0.3 / (1 + trial.iterations / 8) - 0.1 * abs(np.log10(trial.lr) + 2)
               - 0.02 * trial.frozen_stages + 0.05 * list(SPEED).index(trial.model))
        return float(acc), space.expected_seconds(trial)

    return evaluate


def test_space_holds_only_regimes_that_fit_the_constraint():
    table = _table()
    space = SearchSpace.build(TASK, 1.0, list(SPEED), CONFIG, table)
    assert space.grid() and len(space.grid()) == len(space)
    assert all(space.expected_seconds(t) <= 1.0 for t in space.grid())
    assert not space.feasible("slow", 0) and space.feasible("slow", 4)
    assert space.at_fidelity("fast", 0.01, 0, 1.0).iterations == space.max_iterations("fast", 0)
    assert space.at_fidelity("fast", 0.01, 0, 1e-6).iterations == CONFIG.ladder[0]
    with pytest.raises(BudgetTooSmallError):
        SearchSpace.build(TASK, 0.01, list(SPEED), CONFIG, table)


def test_configspace_never_proposes_an_infeasible_pair():
    space = SearchSpace.build(TASK, 1.0, list(SPEED), CONFIG, _table())
    cs = space.configspace(seed=3)
    for config in cs.sample_configuration(300):
        trial = space.from_config(dict(config), 1.0)
        assert space.feasible(trial.model, trial.frozen_stages)
    assert space.feasible(*(lambda d: (d["model"], d["frozen_stages"]))(dict(cs.get_default_configuration())))


def test_random_search_spends_within_budget_without_repeats_and_returns_its_best():
    space = SearchSpace.build(TASK, 1.0, list(SPEED), CONFIG, _table())
    calls: list[Trial] = []
    result = random_search(space, _evaluator(space, calls), 20.0, seed=1)
    assert result.spent_seconds <= 20.0 and len(set(calls)) == len(calls) == len(result.trials)
    assert result.accuracy == max(t.accuracy for t in result.trials)
    assert result.trials[-1].spent_after == pytest.approx(result.spent_seconds)
    again = random_search(space, _evaluator(space, []), 20.0, seed=1)
    assert again.chosen == result.chosen and again.spent_seconds == result.spent_seconds
    with pytest.raises(InvalidSearchSetup):
        random_search(space, _evaluator(space, []), 1e-3, seed=1)


def test_bohb_is_multi_fidelity_within_budget_and_deterministic():
    space = SearchSpace.build(TASK, 1.0, list(SPEED), CONFIG, _table())
    calls: list[Trial] = []
    result = bohb(space, _evaluator(space, calls), 15.0, seed=0, eta=3, min_fidelity=1 / 9)
    assert result.spent_seconds <= 15.0 and len(set(calls)) == len(calls)
    fidelities = {round(t.fidelity, 3) for t in result.trials}
    assert len(fidelities) >= 2 and max(fidelities) == 1.0
    assert any(t.iterations < space.max_iterations(t.model, t.frozen_stages) for t in result.trials)
    again = bohb(space, _evaluator(space, []), 15.0, seed=0, eta=3, min_fidelity=1 / 9)
    assert again.chosen == result.chosen and [t.trial for t in again.trials] == [t.trial for t in result.trials]
    assert comparison.SearchResult.from_dict(result.to_dict()) == result


def test_methods_are_the_nine_rows_of_table4_and_table5_averages_its_rows():
    assert len(METHODS) == 9 and [m.key for m in METHODS] == list(PAPER_TABLE4)
    assert sum(m.is_search for m in METHODS) == 6
    for key, _, _, average in PAPER_TABLE5:
        row = PAPER_TABLE4[key]
        assert np.mean([v for k, v in row.items() if k != "cost"]) == pytest.approx(average, abs=0.06)


def test_time_constraints_are_log_spaced_between_the_two_reference_runs():
    table = _table()
    config = comparison.ComparisonConfig(images_per_class=8, test_per_class=10, low_model="fast", low_epochs=10,
                                         high_model="slow", high_epochs=50, constraints=4)
    ts = comparison.time_constraints(TASK, table, config, batch_size=32)
    assert ts[0] == pytest.approx(float(table.expected_seconds("fast", 0, 10, 32, 40)))
    assert ts[-1] == pytest.approx(float(table.expected_seconds("slow", 0, 50, 32, 40)))
    assert np.allclose(np.diff(np.log(ts)), np.log(ts[1] / ts[0]))


def test_tables_aggregate_over_seeds_and_put_the_papers_numbers_beside():
    rows = []
    for seed in (0, 1, 2):
        for d in ("a", "b"):
            for m in METHODS:
                rows.append({"dataset": d, "seed": seed, "constraint": 0, "time_budget": 1.0, "method": m.key,
                             "label": m.label, "accuracy": 0.5 + 0.1 * seed + (0.1 if m.key == "nasoa" else 0),
                             "cost_nominal": 40.0 if m.is_search else 1.0, "cost_spent": 30.0 if m.is_search else 0.9})
    results = comparison.Results(pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    config = comparison.ComparisonConfig(images_per_class=8, test_per_class=10)
    t4 = comparison.table4(results, config)
    nasoa = t4[t4.method == "Our final NASOA"].iloc[0]
    assert nasoa["a"] == "70.0 ± 10.0" and nasoa["cost"] == "x1" and nasoa["paper average"] == pytest.approx(85.84)
    t5 = comparison.table5(results, config)
    assert list(t5.method) == ["BOHB", "+ Our Zoo", "Our OA", "NASOA"]
    assert t5[t5.method == "NASOA"]["gain over BOHB (HPO only)"].iloc[0] == pytest.approx(10.0)
    assert t5["paper gain"].tolist() == [0.0, 10.3, 6.5, 8.6]
