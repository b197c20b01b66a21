"""The schedule generator G(D, T): budgets, the time model, the grid, ranking, and running online."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nasoa_lib.errors import BudgetTooSmallError, InvalidBudgetError, InvalidDataError, ProfileConfigError
from nasoa_lib.finetune import FinetuneSettings
from nasoa_lib.generator import (
    FinetuneTimeTable, GeneratorConfig, Recommendation, RunCost, TaskFeatures, candidate_grid, format_seconds,
    parse_budget, rank, recommend, regime_costs, smallest_feasible_budget,
)
from nasoa_lib.metafeatures import FEATURE_COLUMNS
from nasoa_lib.run_length import RunLengthConfig, iterations_for

CONFIG = GeneratorConfig(lrs=(0.001, 0.01, 0.1), frozen_stages=(0, 2, 4), epochs=(1, 2, 3, 5, 8, 11, 17, 26))
SETTINGS = FinetuneSettings(batch_size=32)
BATCH = SETTINGS.batch_size
TASK = TaskFeatures("toy", num_classes=4, n_train=64, n_test=40, domain_similarity=0.4, smallest_class=16)
ZOO = {"fast": 0.30, "mid": 0.40, "slow": 0.55}


def _table() -> FinetuneTimeTable:
    costs = {}
    for model, step in (("fast", 0.02), ("mid", 0.05), ("slow", 0.2)):
        for k in (0, 2, 4):
            costs[(model, k)] = RunCost(model, k, step / (1 + k), 0.002 * k, 4096, 0.001, 0.1, k > 0)
    return FinetuneTimeTable("cpu:2threads", 32, 32, 2, costs)


class ScorePredictor:
    """A fixed, known scoring rule (a stand-in for the online predictor's interface)."""

    def __init__(self) -> None:
        self.updates: list[tuple[dict, float]] = []

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        assert list(features.columns) == list(FEATURE_COLUMNS)
        bonus = features["model"].map({"fast": 0.0, "mid": 0.05, "slow": 0.1}).to_numpy()
        return (bonus + 0.1 * np.log10(features["iterations"].to_numpy())
                - 0.05 * np.abs(np.log10(features["lr"].to_numpy()) + 2) - 0.01 * features["frozen_stages"].to_numpy())

    def update(self, features, accuracy: float) -> float:
        self.updates.append((dict(features), accuracy))
        return 0.0


# ---------------------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150),
                                           ("120", 120), (" 10 m ", 600), (45, 45)])
def test_budgets_parse_as_people_write_them(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "-5s", "0", "m", "10m5", "1e400"])
def test_bad_budgets_are_clear_errors(text):
    with pytest.raises(InvalidBudgetError) as err:
        parse_budget(text)
    assert "90s" in err.value.hint


def test_seconds_format_round_trips_through_the_parser():
    assert format_seconds(42) == "42.0s" and format_seconds(119.6) == "2m 00s" and format_seconds(5400) == "1h 30m"
    for s in (42.0, 185.0, 5400.0):
        assert parse_budget(format_seconds(s).replace(" ", "")) == pytest.approx(s, abs=0.5)


# --------------------------------------------------------------------------------------- the grid


def test_run_length_comes_from_the_one_run_length_section():
    import dataclasses

    from nasoa_lib.profiles import load_profile

    for name in ("smoke", "laptop"):
        assert GeneratorConfig.from_profile(name).ladder == RunLengthConfig.from_profile(name).ladder()
    smoke = load_profile("smoke")
    twice = dataclasses.replace(smoke, sections={**smoke.sections,
                                                 "generator": {**smoke.sections["generator"], "epochs": [1, 2]}})
    with pytest.raises(ProfileConfigError, match="run_length"):
        GeneratorConfig.from_profile(twice)
    with pytest.raises(ProfileConfigError, match="run-length ladder"):
        GeneratorConfig(lrs=(0.1,), frozen_stages=(0,)).ladder
    with pytest.raises(ProfileConfigError):
        GeneratorConfig(lrs=(), frozen_stages=(0,), epochs=(1,))
    with pytest.raises(ProfileConfigError):
        GeneratorConfig(lrs=(0.1,), frozen_stages=(5,), epochs=(1,))
    with pytest.raises(ProfileConfigError):
        GeneratorConfig(lrs=(0.1,), frozen_stages=(0,), epochs=(0, 2))


def test_time_model_mirrors_the_engines_frozen_cache_rule():
    cost = RunCost("m", 2, step_seconds=0.1, prefix_seconds_per_image=0.01, prefix_bytes_per_image=10,
                   eval_seconds_per_image=0.002, fixed_seconds=0.5, cacheable=True)
    # 2 iterations x batch 32 = 64 >= 64 images: one prefix pass over the training images, then cached steps
    assert cost.expected_seconds(2, 64, 10, 32) == pytest.approx(0.5 + 64 * 0.01 + 2 * 0.1 + 10 * 0.002)
    # 1 x 32 < 64: no cache, the prefix runs on every batch
    assert cost.expected_seconds(1, 64, 10, 32) == pytest.approx(0.5 + (0.1 + 32 * 0.01) + 10 * 0.002)
    # activations too big for the cache: never cached
    huge = RunCost("m", 2, 0.1, 0.01, 10 ** 9, 0.002, 0.5, True)
    assert not huge.uses_cache(1000, 64, 32)
    full = RunCost("m", 0, 0.1, 0.0, 0, 0.002, 0.5, False)
    np.testing.assert_allclose(full.expected_seconds(np.array([1, 10]), 64, 10, 32), [0.62, 1.52])


def test_time_table_round_trips_and_names_a_missing_entry():
    table = _table()
    again = FinetuneTimeTable.from_dict(table.to_dict())
    assert again.costs == table.costs and again.device == table.device
    with pytest.raises(Exception, match="no entry for 'fast' with 1 frozen"):
        table.cost("fast", 1)


@pytest.mark.parametrize("budget", [0.3, 0.8, 1.5, 4.0, 20.0])
def test_grid_holds_exactly_the_combinations_that_fit(budget):
    table = _table()
    grid = candidate_grid(TASK, budget, ZOO, table, CONFIG, BATCH)
    assert (grid.expected_seconds <= budget).all()
    fitting = sum(len(CONFIG.lrs) for m in ZOO for k in CONFIG.frozen_stages for e in CONFIG.ladder
                  if table.expected_seconds(m, k, iterations_for(e, TASK.n_train, BATCH), TASK.n_train,
                                            TASK.n_test) <= budget)
    assert len(grid) == fitting
    assert set(grid.columns) >= set(FEATURE_COLUMNS)
    assert (grid.images_per_class == 16).all() and (grid.source_accuracy == grid.model.map(ZOO)).all()
    assert (grid.iterations == [iterations_for(e, TASK.n_train, BATCH) for e in grid.epochs]).all()
    for (m, k), part in grid.groupby(["model", "frozen_stages"]):  # every pair reaches the longest run under T
        epochs, _, seconds = regime_costs(TASK, m, k, table, CONFIG.ladder, BATCH)
        assert part.epochs.max() == epochs[seconds <= budget].max()


def test_ranking_follows_the_predictor_and_prefers_the_faster_regime_on_ties():
    grid = candidate_grid(TASK, 5.0, ZOO, _table(), CONFIG, BATCH)
    ranked = rank(grid, ScorePredictor())
    expected = ScorePredictor().predict(ranked[list(FEATURE_COLUMNS)])
    np.testing.assert_allclose(ranked.predicted_accuracy, expected)
    assert (np.diff(ranked.predicted_accuracy) <= 1e-12).all()

    class Flat:
        def predict(self, features):
            return np.full(len(features), 0.5)

    flat = rank(grid, Flat())
    assert flat.expected_seconds.is_monotonic_increasing


@pytest.mark.parametrize("budget", [0.5, 1.0, 2.5, 6.0, 50.0])
def test_recommend_is_the_argmax_and_never_exceeds_the_budget(budget):
    table = _table()
    rec = recommend(TASK, budget, ZOO, ScorePredictor(), table, config=CONFIG, settings=SETTINGS)
    assert rec.chosen.expected_seconds <= budget
    assert all(c.expected_seconds <= budget for c in rec.runners_up)
    grid = candidate_grid(TASK, budget, ZOO, table, CONFIG, BATCH)
    scores = ScorePredictor().predict(grid[list(FEATURE_COLUMNS)])
    assert rec.chosen.predicted_accuracy == pytest.approx(scores.max())
    assert len(rec.runners_up) == min(CONFIG.top_k, len(grid) - 1) and rec.grid_size == len(grid)
    assert [c.predicted_accuracy for c in (rec.chosen, *rec.runners_up)] == sorted(
        [c.predicted_accuracy for c in (rec.chosen, *rec.runners_up)], reverse=True)
    regime = rec.regime()
    assert (regime.lr, regime.iterations, regime.frozen_stages, regime.batch_size) == (
        rec.chosen.lr, rec.chosen.iterations, rec.chosen.frozen_stages, 32)
    assert rec.chosen.iterations == iterations_for(rec.chosen.epochs, TASK.n_train, BATCH)
    assert Recommendation.from_dict(rec.to_dict()) == rec
    assert rec.features()["source_accuracy"] == ZOO[rec.chosen.model]


def test_impossible_budget_states_the_smallest_feasible_one():
    table = _table()
    least = smallest_feasible_budget(TASK, list(ZOO), table, CONFIG, BATCH)
    with pytest.raises(BudgetTooSmallError) as err:
        recommend(TASK, least * 0.99, ZOO, ScorePredictor(), table, config=CONFIG, settings=SETTINGS)
    assert format_seconds(least) in err.value.hint and "1 epoch" in err.value.hint
    rec = recommend(TASK, least, ZOO, ScorePredictor(), table, config=CONFIG, settings=SETTINGS)
    assert rec.chosen.epochs == CONFIG.ladder[0] and rec.grid_size >= 1


@pytest.mark.parametrize("features, message", [
    (TaskFeatures("tiny", 4, 4, 4, 0.5, 1), "too small"),
    (TaskFeatures("one", 1, 10, 4, 0.5, 10), "needs >= 2"),
    (TaskFeatures("untested", 2, 10, 0, 0.5, 5), "no test images"),
])
def test_dataset_too_small_is_a_clear_error(features, message):
    with pytest.raises(InvalidDataError, match=message):
        recommend(features, 100.0, ZOO, ScorePredictor(), _table(), config=CONFIG, settings=SETTINGS)


# ------------------------------------------------------------------ early stopping on validation

VALIDATED = TaskFeatures("toy-val", num_classes=4, n_train=64, n_test=40, domain_similarity=0.4, smallest_class=16,
                         n_validation=20)


class PeakedPredictor(ScorePredictor):
    """Predicts that accuracy peaks at 3 epochs (2 steps per epoch here) and falls after: the
    shape of the lr 0.1 runs the laptop predictor overrated."""

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        base = super().predict(features) - 0.1 * np.log10(features["iterations"].to_numpy())
        return base - 0.2 * np.abs(np.log(features["iterations"].to_numpy() / 6.0))


@pytest.mark.parametrize("budget", [0.5, 1.0, 2.5, 6.0, 50.0])
def test_early_stopping_plans_the_longest_run_that_fits_scored_by_its_best_rung(budget):
    table = _table()
    rec = recommend(VALIDATED, budget, ZOO, PeakedPredictor(), table, config=CONFIG, settings=SETTINGS)
    chosen = rec.chosen
    epochs, iterations, seconds = regime_costs(VALIDATED, chosen.model, chosen.frozen_stages, table, CONFIG.ladder,
                                               BATCH, checkpointed=True)
    fits = seconds <= budget
    j = int(np.flatnonzero(fits)[-1])
    assert chosen.epochs == epochs[j] and chosen.expected_seconds == pytest.approx(seconds[j]) and seconds[j] <= budget
    assert chosen.eval_epochs == tuple(int(e) for e in epochs[: j + 1])
    rows = pd.DataFrame({"model": chosen.model, "domain_similarity": 0.4, "images_per_class": 16.0,
                         "num_classes": 4, "source_accuracy": ZOO[chosen.model], "iterations": iterations[fits],
                         "lr": chosen.lr, "frozen_stages": chosen.frozen_stages})[list(FEATURE_COLUMNS)]
    scores = PeakedPredictor().predict(rows)
    assert chosen.predicted_accuracy == pytest.approx(scores.max())
    assert chosen.predicted_epochs == epochs[int(np.argmax(scores))]
    # the checkpoints' evaluations are charged: each extra rung costs one pass over test + validation images
    plain = regime_costs(VALIDATED, chosen.model, chosen.frozen_stages, table, CONFIG.ladder, BATCH)[2]
    cost = table.cost(chosen.model, chosen.frozen_stages)
    assert seconds - plain == pytest.approx(np.arange(len(plain)) * 60 * cost.eval_seconds_per_image)
    # one candidate per regime, best first
    regimes = [(c.model, c.lr, c.frozen_stages) for c in (chosen, *rec.runners_up)]
    assert len(set(regimes)) == len(regimes)
    assert [c.predicted_accuracy for c in (chosen, *rec.runners_up)] == sorted(
        [c.predicted_accuracy for c in (chosen, *rec.runners_up)], reverse=True)
    assert Recommendation.from_dict(rec.to_dict()) == rec


@pytest.mark.parametrize("budget", np.geomspace(0.3, 60.0, 12))
def test_an_early_stopped_pick_spends_half_the_budget_or_reaches_the_ladders_end(budget):
    """Issue 21's check. Neighbouring rungs are at most 2x apart and fixed costs are shared, so the
    longest run that fits costs more than half of the next one, which does not fit."""
    rec = recommend(VALIDATED, budget, ZOO, PeakedPredictor(), _table(), config=CONFIG, settings=SETTINGS)
    assert rec.chosen.expected_seconds >= budget / 2 or rec.chosen.epochs == CONFIG.ladder[-1]
    # without validation images the same predictor picks its peak rung and leaves most of the budget
    plain = recommend(TASK, budget, ZOO, PeakedPredictor(), _table(), config=CONFIG, settings=SETTINGS)
    assert not plain.chosen.early_stopping and plain.chosen.predicted_epochs is None


def test_early_stopping_can_be_switched_off():
    import dataclasses

    config = dataclasses.replace(CONFIG, early_stopping=False)
    rec = recommend(VALIDATED, 6.0, ZOO, PeakedPredictor(), _table(), config=config, settings=SETTINGS)
    assert not rec.chosen.early_stopping and rec.chosen.epochs <= 5
    with pytest.raises(ProfileConfigError, match="early_stopping"):
        dataclasses.replace(CONFIG, early_stopping="yes")


def test_early_stopped_keeps_the_best_validation_checkpoint_and_never_looks_at_test():
    from nasoa_lib.errors import InvalidRegimeError
    from nasoa_lib.finetune import Checkpoint, early_stopped

    cps = [Checkpoint(2, 1.0, 0.9, 0.5, (0.9, 0.9)), Checkpoint(4, 2.0, 0.1, 0.7, (0.1, 0.1)),
           Checkpoint(6, 3.0, 0.2, 0.7, (0.2, 0.2)), Checkpoint(8, 4.0, 0.95, 0.6, (0.95, 0.95))]
    assert early_stopped(cps).step == 4  # best validation, the earliest of equals; test is ignored
    assert early_stopped([Checkpoint(s, 1.0, t, None, (t, t)) for s, t in ((2, 0.9), (4, 0.3))]).step == 4
    with pytest.raises(InvalidRegimeError):
        early_stopped([])


# ------------------------------------------------------------------------- real runs (tiny, CPU)


@pytest.fixture(scope="module")
def tiny():
    """A real 2-class task of a prepared dataset and a small pretrained-shaped network."""
    import torch

    from nasoa_lib.data import make_task, sample_task_spec
    from nasoa_lib.store import spec_key
    from nasoa_lib.train import Pretrained, build_model

    spec = sample_task_spec("cifar10", 2, 8, seed=0, test_per_class=6)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_model("011-_16_1-2-2-1", 100, 32)
    pretrained = Pretrained("011-_16_1-2-2-1", net.eval(), 0.1, {"image_size": 32, "model": "011-_16_1-2-2-1"},
                            spec_key({"test": "tiny-generator"}))
    return make_task(spec), pretrained


def test_measured_costs_are_positive_and_cached_per_architecture(tiny, monkeypatch, tmp_path):
    from nasoa_lib.generator import timing
    from nasoa_lib.profiles import load_profile
    from nasoa_lib.store import ArtifactStore

    store = ArtifactStore(tmp_path / "store")
    prof = load_profile("smoke")
    table = timing.finetune_time_table(prof, {"tiny": "011-_16_1-2-2-1"}, store, frozen_stages=(0, 2))
    zero, two = table.cost("tiny", 0), table.cost("tiny", 2)
    assert zero.step_seconds > 0 and two.step_seconds > 0 and zero.eval_seconds_per_image > 0
    assert not zero.cacheable and two.cacheable and two.prefix_bytes_per_image > 0
    monkeypatch.setattr(timing, "measure_run_cost", lambda *a, **k: pytest.fail("measured again"))
    again = timing.finetune_time_table(prof, {"renamed": "011-_16_1-2-2-1"}, store, frozen_stages=(0, 2))
    assert again.cost("renamed", 2).step_seconds == two.step_seconds


def test_run_fine_tunes_updates_the_predictor_and_persists_it(tiny, tmp_path, monkeypatch):
    from nasoa_lib.generator import describe, runs
    from nasoa_lib.generator.online import run
    from nasoa_lib.online import load_predictor, make_predictor
    from nasoa_lib.store import ArtifactStore

    task, pretrained = tiny
    store = ArtifactStore(tmp_path / "store")
    zoo = {"tiny": 0.1}
    table = FinetuneTimeTable("cpu", 16, 32, 2, {("tiny", k): RunCost("tiny", k, 0.01, 0.001, 100, 0.001, 0.05, k > 0)
                                                 for k in (0, 2, 4)})
    config = GeneratorConfig(lrs=(0.01, 0.1), frozen_stages=(0, 2, 4), epochs=(1, 2, 4))
    predictor = make_predictor("adaptive", ["tiny"], seed=0)
    rec = recommend(describe(task, 0.5), 10.0, zoo, predictor, table, config=config,
                    settings=FinetuneSettings(batch_size=16))
    outcome, network = run(rec, task, pretrained, predictor=predictor, store=store, predictor_name="service",
                           cached=True, seed=0)
    assert 0 <= outcome.accuracy <= 1 and outcome.wall_seconds > 0 and network is None
    assert predictor.updates == 1 and load_predictor(store, "service").updates == 1
    # the same run again is a replay: same record, no training
    monkeypatch.setattr("nasoa_lib.finetune.finetune", lambda *a, **k: pytest.fail("trained again"))
    again, _ = run(rec, task, pretrained, store=store, cached=True, seed=0)
    assert again.accuracy == outcome.accuracy and again.wall_seconds == outcome.wall_seconds
    import dataclasses

    record = runs.cached_run(store, pretrained, task, rec.regime(), seed=0)
    assert record.charged_seconds == again.wall_seconds
    unmeasured = dataclasses.replace(record, wall_seconds=None,
                                     result=dataclasses.replace(record.result, train_seconds=1.0, eval_seconds=0.5))
    assert math.isclose(unmeasured.charged_seconds, 1.5)


def test_online_generator_learns_from_validation_when_the_task_has_it(tiny, tmp_path):
    """A later request on the same meta-test task must not be chosen with the help of its test images."""
    from nasoa_lib.data import make_task, sample_task_spec
    from nasoa_lib.generator import describe
    from nasoa_lib.generator.online import run
    from nasoa_lib.store import ArtifactStore

    _, pretrained = tiny
    task = make_task(sample_task_spec("cifar10", 2, 8, seed=0, test_per_class=6, validation_per_class=5))
    table = FinetuneTimeTable("cpu", 16, 32, 2, {("tiny", k): RunCost("tiny", k, 0.01, 0.001, 100, 0.001, 0.05, k > 0)
                                                 for k in (0, 2, 4)})
    features = describe(task, 0.5)
    assert features.n_validation == 10 and features.n_evaluated == 22
    config = GeneratorConfig(lrs=(0.1,), frozen_stages=(0,), epochs=(1, 2))

    class Recorder(ScorePredictor):
        def predict(self, features: pd.DataFrame) -> np.ndarray:
            return np.log(features["iterations"].to_numpy(dtype=float))

    predictor = Recorder()
    rec = recommend(features, 10.0, {"tiny": 0.1}, predictor, table, config=config,
                    settings=FinetuneSettings(batch_size=16))
    store = ArtifactStore(tmp_path / "s")
    outcome, _ = run(rec, task, pretrained, predictor=predictor, store=store, cached=True, seed=0)
    assert outcome.validation_accuracy is not None
    # an early-stopped run: evaluated at each rung, the predictor learns one row per checkpoint (its
    # steps, its validation accuracy), the outcome is the best-validation checkpoint's test accuracy
    assert rec.chosen.eval_epochs == (1, 2)
    from nasoa_lib.finetune import early_stopped
    from nasoa_lib.generator.runs import cached_run

    record = cached_run(store, pretrained, task, rec.regime(), seed=0, eval_steps=(1, 2))
    cps = record.result.checkpoints
    assert [c.step for c in cps] == [1, 2]
    assert [(u[0]["iterations"], u[1]) for u in predictor.updates] == [(c.step, c.validation_accuracy) for c in cps]
    kept = early_stopped(cps)
    assert (outcome.accuracy, outcome.validation_accuracy, outcome.selected_step) == (
        kept.test_accuracy, kept.validation_accuracy, kept.step)


def test_the_printed_recommendation_says_where_an_early_stopped_run_is_evaluated():
    from nasoa_lib.generator.commands import _format

    rec = recommend(VALIDATED, 6.0, ZOO, PeakedPredictor(), _table(), config=CONFIG, settings=SETTINGS)
    text = _format(rec)
    assert f"evaluated after epochs {', '.join(map(str, rec.chosen.eval_epochs))}" in text
    assert f"predicted best after {rec.chosen.predicted_epochs} epochs" in text
    plain = recommend(TASK, 6.0, ZOO, PeakedPredictor(), _table(), config=CONFIG, settings=SETTINGS)
    assert "early stopping" not in _format(plain)
