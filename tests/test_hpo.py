"""HPO baselines (random search, SMAC3's BOHB) on the generator's grid, replayed from a table, and
the Table 4/5 bookkeeping of notebook 07."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest

from nasoa_lib.errors import BudgetTooSmallError, InvalidSearchSetup, ProfileConfigError, StoreCorruptedError
from nasoa_lib.finetune import Checkpoint
from nasoa_lib.generator import FinetuneTimeTable, GeneratorConfig, RunCost, TaskFeatures
from nasoa_lib.hpo import (
    METHODS, PAPER_TABLE4, PAPER_TABLE5, CheckpointedRun, Observation, ReplayTable, SearchSpace, Trial, bohb,
    cells_from_run, plan_runs, random_search,
)
from nasoa_lib.run_length import iterations_for
from nasoa_lib.studies import nasoa_vs_hpo as comparison

LADDER = (1, 2, 3, 5, 8, 11, 17)
CONFIG = GeneratorConfig(lrs=(0.001, 0.01, 0.1), frozen_stages=(0, 2, 4), epochs=LADDER)
BATCH = 8
TASK = TaskFeatures("toy", 4, 32, 40, 0.5, 8, 16)  # 4 steps per epoch at batch 8
SPEED = {"fast": 0.01, "mid": 0.03, "slow": 0.3}


def _table() -> FinetuneTimeTable:
    costs = {(m, k): RunCost(m, k, s / (1 + 2 * k), 0.001 * k, 1000, 0.001, 0.05, k > 0)
             for m, s in SPEED.items() for k in (0, 2, 4)}
    return FinetuneTimeTable("cpu:2threads", BATCH, 32, 2, costs)


def _space(budget: float = 1.0, models=tuple(SPEED)) -> SearchSpace:
    return SearchSpace.build(TASK, budget, list(models), CONFIG, _table(), BATCH)


def _accuracy(t: Trial) -> float:
    return float(0.9 - 0.3 / (1 + t.epochs / 4) - 0.1 * abs(np.log10(t.lr) + 2) - 0.02 * t.frozen_stages
                 + 0.05 * list(SPEED).index(t.model))


def _replay(space: SearchSpace, seeds=(0, 1), test_of=lambda t, s: _accuracy(t) - 0.01 * s) -> ReplayTable:
    """A table over every cell of ``space``: validation = a smooth surface, test = ``test_of``."""
    rows = []
    for t in space.grid():
        for s in seeds:
            rows.append({**t.to_dict(), "seed": s, "iterations": space.iterations_of(t),
                         "validation_accuracy": _accuracy(t) + 0.005 * s, "test_accuracy": test_of(t, s),
                         "seconds": space.expected_seconds(t) * (1 + 0.1 * s), "train_seconds": 0.0})
    return ReplayTable.from_rows(rows)


def test_space_holds_only_regimes_that_fit_the_constraint_in_epochs_of_the_task():
    space = _space(1.0)
    assert space.grid() and len(space.grid()) == len(space)
    assert all(space.expected_seconds(t) <= 1.0 for t in space.grid())
    assert all(space.iterations_of(t) == iterations_for(t.epochs, TASK.n_train, BATCH) for t in space.grid())
    assert not space.feasible("slow", 0) and space.feasible("slow", 4)
    assert space.max_epochs("fast", 4) == LADDER[-1]  # a cheap regime reaches the ladder's cap
    assert space.at_fidelity("fast", 0.01, 0, 1.0).epochs == space.max_epochs("fast", 0)
    assert space.at_fidelity("fast", 0.01, 0, 1e-6).epochs == LADDER[0]
    with pytest.raises(BudgetTooSmallError):
        _space(0.01)


def test_configspace_never_proposes_an_infeasible_pair():
    space = _space(1.0)
    cs = space.configspace(seed=3)
    for config in cs.sample_configuration(300):
        trial = space.from_config(dict(config), 1.0)
        assert space.feasible(trial.model, trial.frozen_stages)
    assert space.feasible(*(lambda d: (d["model"], d["frozen_stages"]))(dict(cs.get_default_configuration())))


def test_random_search_spends_within_budget_without_repeats_and_returns_its_best_validation():
    space = _space(1.0)
    table = _replay(space)
    result = random_search(space, table.observer(np.random.default_rng(0)), 8.0, seed=1, clock=_clock())
    trials = [t.trial for t in result.trials]
    assert result.spent_seconds <= 8.0 and len(set(trials)) == len(trials)
    assert result.validation_accuracy == max(t.validation_accuracy for t in result.trials)
    assert result.spent_seconds >= sum(t.seconds for t in result.trials) + result.overhead_seconds - 1e-9
    assert result.overhead_seconds >= 0 and result.trials[-1].spent_after <= result.spent_seconds
    again = random_search(space, table.observer(np.random.default_rng(0)), 8.0, seed=1, clock=_clock())
    assert again.chosen == result.chosen and again.run == result.run
    with pytest.raises(InvalidSearchSetup):
        random_search(space, table.observer(np.random.default_rng(0)), 1e-3, seed=1)


def test_bohb_is_multi_fidelity_within_budget_on_the_epoch_ladder():
    space = _space(1.0)
    table = _replay(space)
    result = bohb(space, table.observer(np.random.default_rng(0)), 6.0, seed=0, eta=3, min_fidelity=1 / 9,
                  clock=_clock())
    trials = [t.trial for t in result.trials]
    assert result.spent_seconds <= 6.0 + 0.01 and len(set(trials)) == len(trials)  # + SMAC's own last proposal
    assert len({round(t.fidelity, 3) for t in result.trials}) >= 2
    assert len({t.epochs for t in result.trials}) >= 2  # the fidelities are different run lengths
    assert any(t.epochs < space.max_epochs(t.model, t.frozen_stages) for t in result.trials)
    assert comparison.SearchResult.from_dict(result.to_dict()) == result


@pytest.mark.parametrize("search", ["random", "bohb"])
def test_no_search_selects_on_test_accuracy(search):
    """The searches see validation only: scrambling the table's test accuracies changes what they
    report, never what they choose."""
    space = _space(1.0)
    honest = _replay(space)
    scrambled_rng = np.random.default_rng(5)
    scrambled = _replay(space, test_of=lambda t, s: float(scrambled_rng.uniform()))

    def go(table: ReplayTable):
        observe = table.observer(np.random.default_rng(3))
        if search == "random":
            return random_search(space, observe, 6.0, seed=2, clock=_clock())
        return bohb(space, observe, 6.0, seed=2, eta=3, min_fidelity=1 / 9, clock=_clock())

    a, b = go(honest), go(scrambled)
    assert (a.chosen, a.run) == (b.chosen, b.run)
    assert honest.test_accuracy(a.chosen, a.run) != scrambled.test_accuracy(b.chosen, b.run)
    assert not hasattr(Observation(0.5, 1.0), "test_accuracy")


def test_checkpointed_runs_cover_every_cell_and_charge_what_the_regime_alone_costs():
    spaces = [_space(0.5), _space(1.0, models=("fast",))]
    runs = plan_runs(spaces, seeds=(0, 1))
    cells = {(t.model, t.lr, t.frozen_stages, t.epochs) for s in spaces for t in s.grid()}
    covered = {(r.model, r.lr, r.frozen_stages, e) for r in runs for e in r.epochs}
    assert cells == covered and len(runs) == 2 * len({c[:3] for c in cells})
    run = CheckpointedRun("fast", 0.01, 0, 0, (1, 2, 3), (4, 8, 12))
    checkpoints = [Checkpoint(s, 0.1 * s, 0.5, 0.6, (0.5, 0.5)) for s in (4, 8, 12)]
    rows = cells_from_run(run, checkpoints, wall_seconds=2.0, train_seconds=1.2, eval_seconds=0.3)
    fixed, share = 2.0 - 1.2 - 0.3, 0.3 / 3
    assert [r["seconds"] for r in rows] == pytest.approx([fixed + 0.1 * s + share for s in (4, 8, 12)])
    assert [r["epochs"] for r in rows] == [1, 2, 3] and rows[0]["validation_accuracy"] == 0.6
    with pytest.raises(InvalidSearchSetup):
        cells_from_run(run, checkpoints[:2], 2.0, 1.2, 0.3)


def test_replay_table_round_trips_and_refuses_what_it_lacks(tmp_path):
    space = _space(1.0)
    table = _replay(space)
    again = ReplayTable.read_csv(table.to_csv(tmp_path / "t.csv"))
    assert len(again) == len(table) == len(space) and not again.missing(space)
    t = space.grid()[0]
    assert again.mean(t)["test_accuracy"] == pytest.approx(table.mean(t)["test_accuracy"])
    assert table.total_seconds(space) == pytest.approx(sum(table.mean(x)["seconds"] for x in space.grid()))
    best, acc = table.oracle(space)
    assert acc == max(table.mean(x)["test_accuracy"] for x in space.grid())
    with pytest.raises(InvalidSearchSetup):
        table.observe(Trial("nope", 0.01, 0, 1), 0)
    with pytest.raises(StoreCorruptedError):
        ReplayTable(table.frame.drop(columns=["test_accuracy"]))
    with pytest.raises(StoreCorruptedError):
        ReplayTable(pd.concat([table.frame, table.frame.iloc[:1]]))


def test_methods_are_the_nine_rows_of_table4_and_table5_averages_its_rows():
    assert len(METHODS) == 9 and [m.key for m in METHODS] == list(PAPER_TABLE4)
    assert sum(m.is_search for m in METHODS) == 6
    for key, _, _, average in PAPER_TABLE5:
        row = PAPER_TABLE4[key]
        assert np.mean([v for k, v in row.items() if k != "cost"]) == pytest.approx(average, abs=0.06)


def test_time_constraints_are_log_spaced_between_the_two_reference_runs_in_epochs():
    table = _table()
    config = comparison.ComparisonConfig(images_per_class=8, validation_per_class=4, low_model="fast", low_epochs=10,
                                         high_model="slow", high_epochs=50, constraints=4)
    ts = comparison.time_constraints(TASK, table, config, batch_size=BATCH)
    steps = lambda e: iterations_for(e, TASK.n_train, BATCH)  # noqa: E731
    assert ts[0] == pytest.approx(float(table.expected_seconds("fast", 0, steps(10), 32, TASK.n_evaluated)))
    assert ts[-1] == pytest.approx(float(table.expected_seconds("slow", 0, steps(50), 32, TASK.n_evaluated)))
    assert np.allclose(np.diff(np.log(ts)), np.log(ts[1] / ts[0]))


def _clock():
    """A deterministic clock: 1 ms per reading, so SMAC's charged overhead does not depend on the load."""
    return itertools.count(0.0, 1e-3).__next__


def _results() -> comparison.Results:
    rows = []
    for d in ("a", "b"):
        for c in (0, 1):
            for m in METHODS:
                seeds = range(10) if m.is_search else [np.nan]
                if m.is_search and c != 0:
                    continue
                for s in seeds:
                    noise = 0.0 if np.isnan(s) else 0.01 * (s - 4.5)
                    rows.append({"dataset": d, "task_seed": 0, "constraint": c, "time_budget": 1.0 + c,
                                 "method": m.key, "label": m.label, "search_seed": s,
                                 "test_accuracy": 0.5 + 0.05 * c + (0.1 if m.key == "nasoa" else 0) + noise,
                                 "cost_nominal": 40.0 if m.is_search else 1.0,
                                 "cost_spent": 30.0 if m.is_search else 0.9,
                                 "source": "table" if m.is_search else "live"})
    frame = pd.DataFrame(rows)
    oracle = pd.DataFrame([{"dataset": d, "task_seed": 0, "constraint": 0, "oracle_test_accuracy": 0.7}
                           for d in ("a", "b")])
    return comparison.Results(frame, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                              pd.DataFrame(), pd.DataFrame(), oracle)


def test_tables_give_intervals_over_seeds_and_put_the_papers_numbers_beside():
    config = comparison.ComparisonConfig(images_per_class=8, validation_per_class=4)
    results = _results()
    t4 = comparison.table4(results, config)
    nasoa = t4[t4.method == "Our final NASOA"].iloc[0]
    assert nasoa["a"] == "60.0 (n=1)" and nasoa["cost"] == "x1" and nasoa["paper average"] == pytest.approx(85.84)
    bohb_row = t4[t4.method == "BOHB"].iloc[0]
    assert bohb_row["a"].startswith("50.0 ± ") and bohb_row["a"].endswith("(n=10)")
    t5 = comparison.table5(results, config)
    assert list(t5.method) == ["BOHB", "+ Our Zoo", "Our OA", "NASOA"]
    assert t5[t5.method == "NASOA"]["gain over BOHB (HPO only)"].iloc[0] == pytest.approx(10.0)
    assert t5["paper gain"].tolist() == [0.0, 10.3, 6.5, 8.6]
    reg = comparison.regret(results, config)
    assert reg[reg.method == "Our final NASOA"]["regret (points)"].iloc[0] == "10.0 (n=2)"  # below verdict.MIN_UNITS: no interval


def test_claims_are_paired_with_their_units():
    config = comparison.ComparisonConfig(images_per_class=8, validation_per_class=4)
    verdicts = comparison.claims(_results(), config)
    first = verdicts.iloc[0]
    assert first.n == 20 and first.effect == pytest.approx(10.0) and first.verdict == "holds"  # 2 tasks x 10 seeds
    live = verdicts[verdicts.claim.str.contains("NASOA beats OA only")].iloc[0]
    assert live.n == 4 and live.effect == pytest.approx(10.0)  # 2 tasks x 2 constraints
    falls = verdicts[verdicts.claim.str.contains("does not fall")].iloc[0]
    assert falls.n == 2 and falls.effect == pytest.approx(5.0) and falls.threshold == -1.0  # 2 tasks x 1 step
    rises = verdicts[verdicts.claim.str.contains("rises where the best baseline")].iloc[0]
    assert rises.n == 0 and rises.verdict == "inconclusive"  # no family runs: no step to judge


def test_budget_steps_pair_nasoa_with_the_best_baseline_per_step():
    methods = pd.DataFrame([{"dataset": "a", "task_seed": 0, "constraint": c, "method": "nasoa", "source": "live",
                             "search_seed": np.nan, "time_budget": 1.0 + c, "cost_nominal": 1.0,
                             "test_accuracy": acc} for c, acc in enumerate([0.60, 0.62, 0.61])])
    families = pd.DataFrame([{"dataset": "a", "task_seed": 0, "constraint": c, "family": f, "test_accuracy": acc}
                             for c, accs in enumerate([(0.40, 0.50), (0.45, 0.55), (0.55, 0.52)])
                             for f, acc in zip(("x", "y"), accs)])
    results = comparison.Results(methods, families, *[pd.DataFrame()] * 6)
    steps = comparison.budget_steps(results)
    assert steps.nasoa_change.tolist() == pytest.approx([2.0, -1.0])
    assert steps.best_baseline_change.tolist() == pytest.approx([5.0, 0.0])  # the best over families: 50 -> 55 -> 55
    verdicts = comparison.claims(results, comparison.ComparisonConfig(images_per_class=8, validation_per_class=4))
    rises = verdicts[verdicts.claim.str.contains("rises where the best baseline")].iloc[0]
    assert rises.n == 1 and rises.effect == pytest.approx(2.0)  # only the step on which the best baseline gains


def test_searches_replay_only_the_tasks_with_a_table():
    config = comparison.ComparisonConfig(images_per_class=8, validation_per_class=4, task_seeds=[0, 1],
                                         table_task_seeds=[0])
    assert config.replays(0, 0) and not config.replays(1, 0) and not config.replays(0, 1)
    results = _results()
    extra = results.methods[results.methods.source == "live"].assign(task_seed=1, test_accuracy=0.0)
    results = dataclasses.replace(results, methods=pd.concat([results.methods, extra], ignore_index=True))
    t4 = comparison.table4(results, config)
    assert t4[t4.method == "Our final NASOA"].iloc[0]["a"] == "60.0 (n=1)"  # task seed 1 has no table: not in Table 4
    with pytest.raises(ProfileConfigError):
        comparison.ComparisonConfig(images_per_class=8, validation_per_class=4, task_seeds=[0], table_task_seeds=[1])
    with pytest.raises(ProfileConfigError):
        comparison.ComparisonConfig(images_per_class=8, validation_per_class=4, table_task_seeds=[])
