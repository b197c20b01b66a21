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
    EpochFeatures,
    FeatureHistory,
    HistoryData,
    RefitConfig,
    TabularBenchmark,
    TrainSettings,
    estimate,
    hyperband,
    proxy_accuracy,
    random_search,
    refit_linear,
    train_with_history,
)
from nasoa_lib.paths import data_dir
from nasoa_lib.studies.feature_histories.population import RUN_KIND, EstimateConfig, population, run_population
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
    from nasoa_lib.studies.feature_histories.population import task_data

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
    from nasoa_lib.studies.feature_histories.population import Member, measure_throughput

    member = Member("space", CODE, 0, TrainSettings(epochs=1, batch_size=16, lr=0.05))
    state = torch.get_rng_state()
    images_per_second = measure_throughput(member, tiny_data, 32)
    assert torch.equal(torch.get_rng_state(), state)  # planning leaves the seeded training untouched
    assert 0 < images_per_second < float("inf")


# ------------------------------------------------------------------------ evidence (issue 18)


@needs_data
def test_holdout_images_move_from_the_training_pool_to_the_test_set():
    task = sample_task("tinyimagenet100", 3, 20, seed=0, test_per_class=5)
    plain = HistoryData.from_task(task, val_per_class=4)
    held = HistoryData.from_task(task, val_per_class=4, holdout_per_class=6)
    assert plain.sizes() == {"train": 48, "val": 12, "test": 15}
    assert held.sizes() == {"train": 30, "val": 12, "test": 33}
    assert torch.equal(held.x_val, plain.x_val) and torch.equal(held.x_test[:15], plain.x_test)
    train_rows = {tuple(r) for r in held.x_train.flatten(1)[:, :64].tolist()}
    assert not any(tuple(r) in train_rows for r in held.x_test[15:].flatten(1)[:, :64].tolist())
    assert torch.bincount(held.y_test[15:]).tolist() == [6, 6, 6]
    with pytest.raises(InvalidEstimatorInput, match="held-out"):
        HistoryData.from_task(task, val_per_class=4, holdout_per_class=15)


def test_config_rejects_negative_holdout_and_single_search_runs():
    smoke = EstimateConfig.from_profile("smoke")
    with pytest.raises(InvalidEstimatorInput, match="holdout"):
        dataclasses.replace(smoke, holdout_per_class=-1)
    with pytest.raises(InvalidEstimatorInput, match="search_repeats"):
        dataclasses.replace(smoke, search_repeats=1)
    assert "holdout_per_class" in smoke.data_spec() and "holdout_per_class" not in dataclasses.replace(smoke, holdout_per_class=0).data_spec()


def test_laptop_profile_has_one_population_that_can_rank_and_repeated_searches():
    laptop = EstimateConfig.from_profile("laptop")
    assert len(laptop.seeds) * laptop.archs_per_seed >= 24 and len(laptop.stem_widths) >= 2
    assert laptop.search_repeats >= 10


def test_noise_floor_is_the_binomial_se_and_the_tau_ceiling_follows_the_spread():
    from nasoa_lib.studies.feature_histories.evidence import noise_floor

    wide = noise_floor(np.linspace(0.2, 0.6, 12), 1000, "wide")
    assert wide.networks == 12 and wide.test_images == 1000
    p = np.linspace(0.2, 0.6, 12)
    assert wide.se_points == pytest.approx(100 * np.sqrt(np.mean(p * (1 - p) / 1000)))
    assert wide.range_points == pytest.approx(40.0)
    narrow = noise_floor(np.linspace(0.30, 0.31, 12), 1000, "narrow")
    assert wide.tau_ceiling > 0.9 and narrow.tau_ceiling < 0.5
    assert wide.spread_over_se > 5 > narrow.spread_over_se
    with pytest.raises(InvalidEstimatorInput):
        noise_floor([], 1000)


def _curves(estimate_noise: float, original_noise: float, n: int = 20, epochs: int = 4, seed: int = 0) -> "pd.DataFrame":
    import pandas as pd

    rng = np.random.default_rng(seed)
    true = np.linspace(0.2, 0.5, n)
    rows = []
    for i in range(n):
        for e in range(1, epochs + 1):
            rows.append({"group": "space", "member": f"a{i}", "seed": i % 3, "epoch": e, "true": true[i],
                         "original": true[i] - 0.05 + original_noise * rng.standard_normal(),
                         "optimized": true[i] + 0.01, "estimate": true[i] + estimate_noise * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_error_tau_intervals_and_claims_follow_the_data():
    from nasoa_lib import verdict
    from nasoa_lib.studies.feature_histories.evidence import error_and_tau_ci, estimator_claims, gain_by_epoch, noise_floor

    good = _curves(estimate_noise=0.005, original_noise=0.15)
    frame = error_and_tau_ci(good)
    assert set(frame["method"]) == {"original", "optimized", "estimate"} and frame["n"].eq(20).all()
    est = frame[frame["method"] == "estimate"]
    assert (est["abs_error_ci_low"] <= est["abs_error_pts"]).all() and (est["abs_error_pts"] <= est["abs_error_ci_high"]).all()
    assert (est["tau"] > 0.9).all() and (est["tau_ci_low"] <= est["tau"]).all()
    assert frame[frame["method"] == "optimized"]["abs_error_pts"].to_numpy() == pytest.approx(1.0)
    floor = noise_floor(np.linspace(0.2, 0.5, 20), 2000, "space")
    gains = gain_by_epoch(good, noise=floor, resamples=500)
    assert gains["error_verdict"].eq(verdict.HOLDS).all() and gains["tau_verdict"].eq(verdict.HOLDS).all()
    claims = estimator_claims(good, 2, floor, resamples=500)
    assert [c.verdict for c in claims] == [verdict.HOLDS] * 4
    assert all(c.n == 20 and c.noise_floor == pytest.approx(floor.se_points) for c in claims)
    bad = estimator_claims(_curves(estimate_noise=0.15, original_noise=0.0), 2, floor, resamples=500)
    assert [c.verdict for c in bad] == [verdict.DOES_NOT_HOLD] * 4
    with pytest.raises(InvalidEstimatorInput, match="epoch 9"):
        estimator_claims(good, 9, floor)


def test_search_table_pairs_runs_by_seed_and_decides_the_gain():
    import pandas as pd

    from nasoa_lib import verdict
    from nasoa_lib.studies.feature_histories.evidence import search_claims, search_table

    seeds = range(10)
    runs = pd.DataFrame([{"method": "hyperband", "metric": metric, "seed": s,
                          "true_acc": 0.30 + 0.001 * s + (0.02 if metric == "estimate" else 0.0)}
                         for metric in ("original", "estimate") for s in seeds])
    true = np.linspace(0.2, 0.35, 9)
    table = search_table(runs, true, 2000)
    row = table.iloc[0]
    assert row["runs"] == 10 and row["gain_points"] == pytest.approx(2.0) and row["verdict"] == verdict.HOLDS
    assert row["without_ci_low"] < row["without_mean"] < row["without_ci_high"]
    assert row["configs_mean"] == pytest.approx(100 * true.mean()) and row["configs_best"] == pytest.approx(35.0)
    claims = search_claims({"HPO: x": table}, {"HPO: x": runs}, {"HPO: x": true}, 2000)
    assert len(claims) == 1 and claims[0].verdict == verdict.HOLDS and claims[0].n == 10
    shuffled = runs.copy()
    shuffled.loc[shuffled["metric"] == "estimate", "seed"] += 100
    with pytest.raises(InvalidEstimatorInput, match="different seeds"):
        search_table(shuffled, true, 2000)
