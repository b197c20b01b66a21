"""Feature-history estimation (thesis 003): the refit, the bounded history, a real tiny run, the
errors people see, and the search drivers on a tiny tabular benchmark."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasoa_lib.data import sample_task
from nasoa_lib.errors import (
    InvalidEstimatorInput,
    InvalidSearchSetup,
    NasoaError,
    NoFeatureHistoryError,
)
from nasoa_lib.estimate import (
    RUN_KIND,
    EpochFeatures,
    EstimateConfig,
    FeatureHistory,
    HistoryData,
    RefitConfig,
    TabularBenchmark,
    TrainSettings,
    estimate,
    hyperband,
    population,
    proxy_accuracy,
    random_search,
    refit_linear,
    run_population,
    train_with_history,
)
from nasoa_lib.paths import data_dir
from nasoa_lib.store import ArtifactStore
from nasoa_lib.train import build_model

needs_data = pytest.mark.skipif(
    not (data_dir() / "tinyimagenet100.npz").exists(), reason="prepared datasets not found; set NASOA_DATA_DIR"
)
CODE = "03233-a02_16_1-22-2-1"


@pytest.fixture(scope="module")
def tiny_data() -> HistoryData:
    task = sample_task("tinyimagenet100", 4, 24, seed=0, test_per_class=8)
    return HistoryData.from_task(task, val_per_class=8, image_size=32)


def _model(num_classes: int, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(CODE, num_classes, 32)


def _epoch(epoch: int, n: int = 40, m: int = 12, d: int = 6, c: int = 3, seed: int = 0) -> EpochFeatures:
    g = torch.Generator().manual_seed(seed + epoch)
    return EpochFeatures(epoch, torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g),
                         torch.randn(m, d, generator=g), torch.randn(c, d, generator=g), torch.zeros(c))


# ---------------------------------------------------------------------------------------- refit


@needs_data
@pytest.mark.slow
def test_refit_from_the_heads_weights_does_not_get_worse_on_training_features(tiny_data):
    history = FeatureHistory(1, tiny_data.y_val)
    train_with_history(_model(tiny_data.num_classes), tiny_data, TrainSettings(epochs=2, batch_size=16, lr=0.05),
                       history=history, refit=None)
    item = history.latest
    assert history.epochs == (2,)
    w, b = refit_linear(item.train_features, item.train_labels, item.head_weight, item.head_bias, RefitConfig())
    head_loss = F.cross_entropy(F.linear(item.train_features, item.head_weight, item.head_bias), item.train_labels)
    refit_loss = F.cross_entropy(F.linear(item.train_features, w, b), item.train_labels)
    head_acc = (F.linear(item.train_features, item.head_weight, item.head_bias).argmax(1) == item.train_labels).float().mean()
    refit_acc = (F.linear(item.train_features, w, b).argmax(1) == item.train_labels).float().mean()
    assert float(refit_loss) < float(head_loss)
    assert float(refit_acc) >= float(head_acc) - 1e-6
    assert not torch.equal(w, item.head_weight)  # the refit moved the weights; the head is untouched


def test_refit_with_zero_epochs_is_the_head():
    item = _epoch(1)
    w, b = refit_linear(item.train_features, item.train_labels, item.head_weight, item.head_bias, RefitConfig(epochs=0))
    assert torch.equal(w, item.head_weight) and torch.equal(b, item.head_bias)


# -------------------------------------------------------------------------------------- history


def test_history_keeps_at_most_k_epochs_and_reports_its_bytes():
    history = FeatureHistory(3, torch.zeros(12, dtype=torch.long))
    one = _epoch(1).nbytes
    for epoch in range(1, 8):
        history.add(_epoch(epoch))
        assert len(history) <= 3
        assert history.nbytes == min(epoch, 3) * one
    assert history.epochs == (5, 6, 7)
    restored = FeatureHistory.from_state_dict(history.state_dict())
    assert restored.epochs == (5, 6, 7) and restored.window == 3


@needs_data
@pytest.mark.slow
def test_real_run_keeps_k_epochs_and_estimates_a_valid_accuracy(tiny_data):
    history = FeatureHistory(2, tiny_data.y_val)
    rows = train_with_history(_model(tiny_data.num_classes), tiny_data, TrainSettings(epochs=3, batch_size=16, lr=0.05),
                              history=history)
    assert history.epochs == (2, 3)
    per_epoch = history.latest.nbytes
    assert all(r["history_bytes"] <= 2 * per_epoch for r in rows)
    assert rows[-1]["history_bytes"] == 2 * per_epoch
    cold = estimate(history, reuse=False)
    assert 0.0 <= cold.accuracy <= 1.0
    assert cold.refits == 2 and cold.epochs == (2, 3)
    assert torch.allclose(cold.probabilities.sum(1), torch.ones(len(tiny_data.y_val)), atol=1e-5)
    assert cold.accuracy == pytest.approx(rows[-1]["estimate_acc"])  # memoised refits give the same answer
    assert 0.0 <= rows[-1]["test_acc"] <= 1.0


@needs_data
@pytest.mark.slow
def test_proxy_accuracy_with_and_without_estimator(tiny_data):
    settings = TrainSettings(epochs=3, batch_size=16, lr=0.05)
    with_est = proxy_accuracy(_model(tiny_data.num_classes), tiny_data, 2, True, settings=settings, window=2)
    without = proxy_accuracy(_model(tiny_data.num_classes), tiny_data, 2, False, settings=settings, window=2)
    assert 0.0 <= with_est <= 1.0 and 0.0 <= without <= 1.0
    with pytest.raises(InvalidEstimatorInput):
        proxy_accuracy(_model(tiny_data.num_classes), tiny_data, 4, settings=settings)


# --------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("window", [0, -1, 1.5])
def test_window_below_one_is_a_clear_error(window):
    with pytest.raises(InvalidEstimatorInput, match="window K"):
        FeatureHistory(window)


def test_estimate_before_any_epoch_is_a_clear_error():
    with pytest.raises(NoFeatureHistoryError, match="no epoch"):
        estimate(FeatureHistory(2, torch.zeros(4, dtype=torch.long)))


def test_mismatched_shapes_are_clear_errors():
    good = _epoch(1)
    with pytest.raises(InvalidEstimatorInput, match="mismatched"):
        dataclasses.replace(good, val_features=torch.randn(12, 5))
    with pytest.raises(InvalidEstimatorInput, match="mismatched"):
        dataclasses.replace(good, train_labels=good.train_labels[:-1])
    with pytest.raises(InvalidEstimatorInput, match="labels must be integers"):
        dataclasses.replace(good, train_labels=torch.full_like(good.train_labels, 7))
    history = FeatureHistory(2, torch.zeros(5, dtype=torch.long))
    with pytest.raises(InvalidEstimatorInput, match="validation labels"):
        history.add(good)
    history = FeatureHistory(2)
    history.add(good)
    with pytest.raises(InvalidEstimatorInput, match="d=7"):
        history.add(_epoch(2, d=7))
    assert issubclass(InvalidEstimatorInput, NasoaError) and issubclass(NoFeatureHistoryError, NasoaError)


# --------------------------------------------------------------------------------------- search


def _bench() -> TabularBenchmark:
    rng = np.random.default_rng(0)
    n, epochs = 8, 4
    base = np.sort(rng.uniform(0.1, 0.5, (n, epochs)), axis=1)
    by_a, by_b = base.copy(), base.copy()
    by_a[3] += 0.4  # config 3 leads metric "a" at every budget
    by_b[6] += 0.4  # config 6 leads metric "b" at every budget
    true = np.linspace(0.5, 0.6, n)
    return TabularBenchmark(tuple(f"c{i}" for i in range(n)), {"a": by_a, "b": by_b}, true)


@pytest.mark.parametrize("bayesian", [False, True])
def test_hyperband_and_bohb_return_the_best_config_by_their_metric(bayesian):
    bench = _bench()
    for metric, best in (("a", 3), ("b", 6)):
        res = hyperband(bench, metric, budget_epochs=200, min_budget=1, max_budget=4, eta=2, seed=1, bayesian=bayesian)
        assert res.chosen == best, (metric, res)
        assert res.true_acc == pytest.approx(bench.true[best])
        assert res.regret == pytest.approx(bench.true.max() - bench.true[best])
        assert 0 < res.spent_epochs <= 200


def test_random_search_returns_the_best_config_it_saw():
    bench = _bench()
    res = random_search(bench, "b", budget_epochs=8 * 4, epochs_per_config=4, seed=0)
    assert res.chosen == 6 and res.trials == 8 and res.spent_epochs == 32
    small = random_search(bench, "a", budget_epochs=8, epochs_per_config=4, seed=0)
    assert small.trials == 2 and small.spent_epochs == 8


def test_search_setup_errors():
    bench = _bench()
    with pytest.raises(InvalidSearchSetup, match="metric"):
        hyperband(bench, "accuracy", 40, 1, 4)
    with pytest.raises(InvalidSearchSetup, match="budgets"):
        random_search(bench, "a", 100, epochs_per_config=9)
    with pytest.raises(InvalidSearchSetup, match="total budget"):
        hyperband(bench, "a", 3, 1, 4)


# ----------------------------------------------------------------------------------- population


@needs_data
@pytest.mark.slow
def test_population_member_is_trained_once_and_cached(tmp_path):
    cfg = dataclasses.replace(EstimateConfig.from_profile("smoke"), seeds=(0,), archs_per_seed=1)
    members = population(cfg, groups=("space",))
    assert len(members) == 1
    from nasoa_lib.estimate import task_data

    data = task_data(cfg, 32)
    store = ArtifactStore(tmp_path)
    first = run_population(members, cfg, data, store, 32, progress=False)
    second = run_population(members, cfg, data, store, 32, progress=False)
    assert store.count(RUN_KIND) == 1
    assert first == second
    record = first[0]
    assert len(record["curve"]) == cfg.epochs and record["history_epochs"] == [cfg.epochs - 1, cfg.epochs]
    assert 0.0 <= record["true_acc"] <= 1.0 and record["estimate_cost_epochs"] > 0


@needs_data
def test_planned_throughput_times_real_images_and_draws_no_random_numbers(tiny_data):
    from nasoa_lib.estimate.population import Member, measure_throughput

    member = Member("space", CODE, 0, TrainSettings(epochs=1, batch_size=16, lr=0.05))
    state = torch.get_rng_state()
    images_per_second = measure_throughput(member, tiny_data, 32)
    assert torch.equal(torch.get_rng_state(), state)  # planning leaves the seeded training untouched
    assert 0 < images_per_second < float("inf")
