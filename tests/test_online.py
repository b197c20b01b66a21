"""The online accuracy predictor (NASOA 3.2.1, Eq. 3-4): Hedge steps, gradients, protocol, state.

Inputs are small deterministic meta-feature rows built here: these tests pin the algorithm's
behaviour; the reported numbers of notebook 06 come from the real meta-dataset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nasoa_lib.errors import ArtifactNotFoundError, NasoaError, UnknownModelError
from nasoa_lib.metafeatures import NUMERIC_FEATURES
from nasoa_lib.online import (
    AccuracyPredictor,
    FeatureEncoder,
    HedgeMLP,
    InvalidMetaFeaturesError,
    InvalidPredictorConfig,
    NetworkConfig,
    OnlineConfig,
    PredictorNotFittedError,
    average_regret,
    evaluate_stream,
    hedge_update,
    load_predictor,
    make_predictor,
    running_mean_predictions,
    segment_errors,
    store_predictor,
    stream_order,
)
from nasoa_lib.online import stream as stream_module
from nasoa_lib.store import ArtifactStore

MODELS = ("mobilenet_v3_small", "resnet18", "ours/ET-NAS-A")


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "model": rng.choice(MODELS, n),
        "domain_similarity": rng.uniform(0.05, 1.0, n),
        "images_per_class": rng.integers(5, 300, n),
        "num_classes": rng.integers(2, 40, n),
        "source_accuracy": rng.uniform(0.2, 0.7, n),
        "iterations": rng.integers(10, 3000, n),
        "lr": 10 ** rng.uniform(-3, -1, n),
        "frozen_stages": rng.integers(0, 5, n),
    })


def shallow_stream(n: int, seed: int = 0) -> pd.DataFrame:
    """Accuracy linear in domain similarity: a relation the first hidden layer already captures."""
    frame = rows(n, seed)
    frame["accuracy"] = 0.15 + 0.7 * frame.domain_similarity
    return frame


# ---- the encoder -------------------------------------------------------------------------------


def test_encoder_one_hot_first_then_documented_transforms():
    enc = FeatureEncoder(MODELS)
    row = {"model": "resnet18", "domain_similarity": 0.5, "images_per_class": 100, "num_classes": 10,
           "source_accuracy": 0.6, "iterations": 1000, "lr": 0.01, "frozen_stages": 2}
    stage1 = [0, 1, 0, 0.5, 2 / 3, 1 / 3, 0.6, 3 / 5, 0.5, 0.5]
    np.testing.assert_allclose(enc.transform([row])[0], stage1, rtol=1e-12)
    x = enc.encode([row])
    assert x.dtype == np.float32 and x.shape == (1, enc.dim) and enc.dim == len(MODELS) + len(NUMERIC_FEATURES)
    # before any row is observed: centre 0.5, scale sqrt(1/12) (the prior); the one-hot stays 0/1
    expected = [0, 1, 0, *((np.array(stage1[3:]) - 0.5) * np.sqrt(12.0))]
    np.testing.assert_allclose(x[0], expected, rtol=1e-6)
    assert FeatureEncoder.from_dict(enc.to_dict()) == enc
    enc.observe(enc.transform(rows(30)))
    again = FeatureEncoder.from_dict(enc.to_dict())
    assert again == enc and again != FeatureEncoder(MODELS)
    np.testing.assert_array_equal(again.encode(rows(5, seed=1)), enc.encode(rows(5, seed=1)))


def realistic_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Our laptop meta-train datasets' domain similarities (reports/laptop/05_domain_similarity.csv)
    and class counts, with plausible regimes."""
    rng = np.random.default_rng(seed)
    datasets = {"cifar10": (0.9587, 10), "gtsrb": (0.9464, 43), "dtd10": (0.9458, 10), "fashion_mnist": (0.9041, 10)}
    which = rng.choice(list(datasets), n)
    return pd.DataFrame({
        "model": rng.choice(MODELS, n),
        "domain_similarity": [datasets[d][0] for d in which],
        "images_per_class": rng.choice([10, 30, 100, 300], n),
        "num_classes": [datasets[d][1] for d in which],
        "source_accuracy": rng.uniform(0.09, 0.18, n),
        "iterations": rng.choice([50, 200, 800], n),
        "lr": 10 ** rng.uniform(-3, -1, n),
        "frozen_stages": rng.integers(0, 5, n),
    })


def test_standardised_similarity_spreads_like_the_other_columns_on_realistic_values():
    frame = realistic_rows(400)
    enc = FeatureEncoder(MODELS)
    numeric = slice(len(MODELS), None)
    similarity = NUMERIC_FEATURES.index("domain_similarity")

    def spreads(x: np.ndarray) -> np.ndarray:
        return np.ptp(x[:, numeric], axis=0)

    before = spreads(enc.transform(frame))
    # the defect of issue 22: stage 1 alone leaves similarity a 0.055 sliver, 4x narrower than the
    # median numeric column and 18x narrower than the one-hot's 0..1
    assert before[similarity] < 0.06 and before[similarity] < 0.25 * np.median(before)
    enc.observe(enc.transform(frame))
    after = spreads(enc.encode(frame))
    assert after[similarity] > 2.0 and after[similarity] > 0.5 * np.median(after), after
    assert after[similarity] < 2.0 * np.median(after)
    # a dataset far less similar than any seen is clipped at CLIP_SD, not extrapolated
    far = frame.iloc[[0]].assign(domain_similarity=0.5)
    assert enc.encode(far)[0, len(MODELS) + similarity] == -5.0


def test_online_statistics_never_use_a_future_row():
    frame = realistic_rows(60).assign(accuracy=np.linspace(0.2, 0.8, 60))
    cut = 30
    changed = frame.copy()
    changed.loc[cut:, "domain_similarity"] = 0.5  # the future differs wildly
    changed.loc[cut:, "images_per_class"] = 900

    def inputs_seen(stream: pd.DataFrame) -> tuple[np.ndarray, AccuracyPredictor]:
        predictor = make_predictor("adaptive", MODELS, seed=0)
        seen = []
        for i in range(len(stream)):
            seen.append(predictor.encoder.encode(stream.iloc[[i]])[0])
            predictor.update(stream.iloc[[i]], float(stream.accuracy.iat[i]))
        return np.array(seen), predictor

    original, predictor = inputs_seen(frame)
    altered, _ = inputs_seen(changed)
    np.testing.assert_array_equal(original[:cut], altered[:cut])
    assert not np.array_equal(original[cut + 1:, len(MODELS):], altered[cut + 1:, len(MODELS):])
    # row t was standardised with the mean and prior-shrunk variance of rows 0..t-1 exactly
    stage1 = FeatureEncoder(MODELS).transform(frame)[:, len(MODELS):]
    for t in (1, 2, 17, cut):
        past = stage1[:t]
        scale = np.sqrt((1.0 / 12.0 + ((past - past.mean(axis=0)) ** 2).sum(axis=0)) / (1.0 + t))
        np.testing.assert_allclose(original[t, len(MODELS):], (stage1[t] - past.mean(axis=0)) / scale, rtol=1e-5)
    assert predictor.encoder.statistics.rows == len(frame)
    # the stream evaluation (stage-1 rows, learn_transformed) and update() are one protocol
    streamed = make_predictor("adaptive", MODELS, seed=0)
    stream_module.run_online(streamed, streamed.encoder.transform(frame), frame.accuracy.to_numpy())
    assert streamed.encoder == predictor.encoder
    np.testing.assert_array_equal(streamed.predict(frame), predictor.predict(frame))


def test_predicting_does_not_move_the_statistics():
    predictor = make_predictor("adaptive", MODELS)
    predictor.update(rows(1), 0.4)
    state = predictor.encoder.to_dict()
    predictor.predict(rows(50, seed=3))
    assert predictor.encoder.to_dict() == state


@pytest.mark.parametrize("column,value", [
    ("domain_similarity", 1.3), ("domain_similarity", 0.0), ("source_accuracy", 65.0), ("lr", -0.01),
    ("frozen_stages", 5), ("frozen_stages", 1.5), ("iterations", 0), ("num_classes", 1), ("images_per_class", np.nan),
])
def test_out_of_range_meta_features_raise_clear_error(column, value):
    frame = rows(4)
    frame[column] = frame[column].astype(float)
    frame.loc[2, column] = value
    predictor = make_predictor("adaptive", MODELS)
    with pytest.raises(InvalidMetaFeaturesError, match=column) as err:
        predictor.predict(frame)
    assert err.value.hint


def test_missing_columns_and_unknown_models_raise():
    predictor = make_predictor("fixed", MODELS, depth=3)
    with pytest.raises(InvalidMetaFeaturesError, match="lr") as err:
        predictor.predict(rows(3).drop(columns=["lr"]))
    assert "FEATURE_COLUMNS" in err.value.hint
    bad = rows(3)
    bad.loc[1, "model"] = "vgg16"
    with pytest.raises(UnknownModelError, match="vgg16"):
        predictor.predict(bad)
    with pytest.raises(InvalidMetaFeaturesError, match="outside"):
        predictor.update(rows(1).iloc[0].to_dict(), 1.2)


# ---- Hedge (Eq. 4) ------------------------------------------------------------------------------


def test_one_hedge_step_matches_hand_computation():
    # alpha_l * 0.99 ** L_l = (0.5, 0.3 * 0.99 ** 0.5, 0.2 * 0.99) / 0.996496231
    alpha = hedge_update(np.array([0.5, 0.3, 0.2]), np.array([0.0, 0.5, 1.0]), beta=0.99)
    np.testing.assert_allclose(alpha, [0.50175804, 0.29954577, 0.19869619], atol=1e-8)
    # floor s / L = 0.2 / 3 lifts the small weights, then renormalises: (0.98, 1/15, 1/15) / (0.98 + 2/15)
    floored = hedge_update(np.array([0.98, 0.01, 0.01]), np.zeros(3), beta=0.99, smoothing=0.2)
    np.testing.assert_allclose(floored, [0.88023952, 0.05988024, 0.05988024], atol=1e-8)


def test_alpha_stays_a_distribution_above_the_floor():
    rng = np.random.default_rng(0)
    alpha = np.full(10, 0.1)
    for _ in range(2000):
        alpha = hedge_update(alpha, rng.uniform(0, 1, 10) * (np.arange(10) / 10), beta=0.9, smoothing=0.2)
        # floor s / L = 0.02 before normalising; the sum is then at most 1 + s
        assert abs(alpha.sum() - 1.0) < 1e-12 and alpha.min() >= 0.02 / 1.2 - 1e-12
    predictor = make_predictor("adaptive", MODELS)
    frame = shallow_stream(200)
    for i in range(len(frame)):
        predictor.update(frame.iloc[[i]], float(frame.accuracy.iat[i]))
        assert abs(predictor.alpha.sum() - 1.0) < 1e-9 and (predictor.alpha > 0).all()


def test_a_head_with_zero_loss_gains_weight():
    net = HedgeMLP(NetworkConfig(depth=4, hedge=True, smoothing=0.0), input_dim=5, seed=0)
    x = np.linspace(0.1, 0.5, 5)
    target = 0.73
    net.head_weights[2] = 0.0
    net.head_biases[2] = target  # head 3 predicts the target exactly: loss 0
    before = net.alpha.copy()
    _, losses, _ = net.learn(x, target)
    assert losses[2] == 0.0 and (np.delete(losses, 2) > 0).all()
    assert net.alpha[2] > before[2] and (np.delete(net.alpha, 2) < np.delete(before, 2)).all()


def test_alpha_concentrates_on_the_shallow_head_when_a_shallow_relation_holds():
    # the target is exactly what the first (1-hidden-layer) head computes at the start, shifted into
    # [0, 1]: a relation the shallowest head holds from step 1, the deeper ones have to learn
    predictor = make_predictor("adaptive", MODELS, seed=0)
    net = predictor.network
    x = predictor.encoder.encode(rows(600)).astype(np.float64)
    net.head_biases[0] += 0.5 - net.head_outputs(x)[:, 0].mean()
    target = np.clip(net.head_outputs(x)[:, 0], 0.0, 1.0)
    assert target.std() > 0.05
    for i in range(len(target)):
        predictor.learn_encoded(x[i], float(target[i]))
    alpha = predictor.alpha
    # most of the mass within 600 steps (uniform is 0.1; raw-loss Hedge reaches ~0.32 here)
    assert alpha.argmax() == 0 and alpha[0] > 0.5, alpha
    assert alpha[0] > alpha[5:].max() * 10, alpha


# ---- backpropagation (Eq. 4) and the online protocol ----------------------------------------------


@pytest.mark.parametrize("loss", ["absolute", "squared"])
def test_hand_written_gradients_match_autograd_of_the_alpha_weighted_loss(loss):
    net = HedgeMLP(NetworkConfig(depth=5, hidden_units=7, loss=loss), input_dim=6, seed=3)
    net.alpha = np.array([0.1, 0.3, 0.2, 0.15, 0.25])
    x = np.random.default_rng(1).uniform(0, 1, (1, 6))
    target = 0.4
    params = [torch.tensor(p, requires_grad=True) for p in (*net.weights, *net.biases)]
    head_w = torch.tensor(net.head_weights, requires_grad=True)
    head_b = torch.tensor(net.head_biases, requires_grad=True)
    h = torch.tensor(x)
    total = torch.zeros((), dtype=torch.float64)
    for layer in range(5):
        h = torch.relu(h @ params[layer] + params[5 + layer])
        f = h[0] @ head_w[layer] + head_b[layer]
        err = f - target
        total = total + float(net.alpha[layer]) * (err.abs() if loss == "absolute" else err * err)
    total.backward()
    outputs, hidden = net.forward(x)
    grad_out = (net.alpha * (np.sign(outputs[0] - target) if loss == "absolute" else 2 * (outputs[0] - target)))[None]
    ours = net.gradients(x, hidden, grad_out)
    for layer in range(5):
        np.testing.assert_allclose(ours["weights"][layer], params[layer].grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(ours["biases"][layer], params[5 + layer].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours["head_weights"], head_w.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours["head_biases"], head_b.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("hedge", [True, False])
def test_fused_online_step_equals_batched_gradients_plus_sgd(hedge):
    config = NetworkConfig(depth=4, hidden_units=9, hedge=hedge, lr=0.05, loss="squared")
    fused, reference = HedgeMLP(config, 5, seed=4), HedgeMLP(config, 5, seed=4)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, target = rng.uniform(0, 1, 5), float(rng.uniform(0, 1))
        prediction, losses, _ = fused.learn(x, target)
        outputs, hidden = reference.forward(x[None])
        assert prediction == pytest.approx(float(outputs[0] @ reference.alpha), abs=1e-12)
        np.testing.assert_allclose(losses, (np.clip(outputs[0], 0, 1) - target) ** 2, atol=1e-12)
        grad_out = (reference.alpha * 2 * (outputs[0] - target))[None]
        reference._apply(reference.gradients(x[None], hidden, grad_out), config.lr)
        if hedge:
            reference.alpha = hedge_update(reference.alpha, losses, 0.99, 0.2)
    for a, b in zip(fused.state_arrays().values(), reference.state_arrays().values()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_update_predicts_first_then_learns():
    predictor = make_predictor("adaptive", MODELS, seed=1)
    row = rows(1, seed=5)
    x = predictor.encoder.encode(row)
    raw = float(predictor.network.predict(x)[0])
    before = float(predictor.predict(row)[0])
    assert before == min(max(raw, 0.0), 1.0)
    loss = predictor.update(row.iloc[0].to_dict(), 0.9)
    assert loss == pytest.approx(abs(before - 0.9))
    assert predictor.last_prediction == pytest.approx(before)
    assert predictor.updates == 1
    assert float(predictor.network.predict(x)[0]) != raw


def test_fixed_predictor_has_one_head_and_predictions_are_clipped():
    predictor = make_predictor("fixed", MODELS, depth=6)
    assert predictor.alpha.tolist() == [1.0] and len(predictor.network.weights) == 6
    predictor.network.head_biases[:] = 5.0
    assert (predictor.predict(rows(20)) == 1.0).all()


def test_offline_predictor_fits_once_then_only_reports_loss():
    predictor = make_predictor("offline", MODELS, offline_epochs=3)
    frame = shallow_stream(120)
    with pytest.raises(PredictorNotFittedError):
        predictor.predict(frame)
    with pytest.raises(InvalidPredictorConfig):
        make_predictor("adaptive", MODELS).fit(frame)
    predictor.fit(frame.iloc[:100])
    assert predictor.encoder.statistics.rows == 100  # the training split, seen in full
    before = predictor.predict(frame)
    predictor.update(frame.iloc[[110]], 0.5)
    np.testing.assert_array_equal(predictor.predict(frame), before)
    assert predictor.encoder.statistics.rows == 100


def test_bad_settings_raise():
    with pytest.raises(InvalidPredictorConfig):
        make_predictor("adaptive", MODELS, beta=1.0)
    with pytest.raises(InvalidPredictorConfig):
        make_predictor("boosted", MODELS)
    with pytest.raises(InvalidPredictorConfig, match="widht"):
        make_predictor("fixed", MODELS, widht=3)


# ---- state ----------------------------------------------------------------------------------------


def test_save_load_round_trip_is_exact_and_learning_continues_identically(tmp_path):
    predictor = make_predictor("adaptive", MODELS, seed=2)
    frame = shallow_stream(60)
    for i in range(40):
        predictor.update(frame.iloc[[i]], float(frame.accuracy.iat[i]))
    predictor.save(tmp_path / "p.npz")
    loaded = AccuracyPredictor.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded.predict(frame), predictor.predict(frame))
    np.testing.assert_array_equal(loaded.alpha, predictor.alpha)
    assert loaded.updates == 40 and loaded.kind == "adaptive" and loaded.describe()["alpha"] == predictor.describe()["alpha"]
    for i in range(40, 60):
        assert loaded.update(frame.iloc[[i]], float(frame.accuracy.iat[i])) == \
            predictor.update(frame.iloc[[i]], float(frame.accuracy.iat[i]))
    np.testing.assert_array_equal(loaded.predict(frame), predictor.predict(frame))


def test_store_round_trip_and_missing_predictor(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    predictor = make_predictor("offline", MODELS, offline_epochs=2)
    frame = shallow_stream(50)
    predictor.fit(frame)
    store_predictor(store, "offline", predictor)
    np.testing.assert_array_equal(load_predictor(store, "offline").predict(frame), predictor.predict(frame))
    with pytest.raises(ArtifactNotFoundError) as err:
        load_predictor(store, "adaptive")
    assert "nasoa reproduce --only 05,06" in err.value.hint


def test_corrupt_predictor_file_is_a_clear_error(tmp_path):
    (tmp_path / "p.npz").write_bytes(b"not a zip")
    with pytest.raises(NasoaError, match="cannot be read"):
        AccuracyPredictor.load(tmp_path / "p.npz")


def test_a_predictor_saved_before_issue_22_is_refused_with_a_hint():
    # format 1: fixed-transform inputs and raw-loss Hedge; its weights mean nothing with the new inputs
    state = make_predictor("adaptive", MODELS).state_dict()
    state["meta"] = {**state["meta"], "format": 1, "encoder": {"version": 1, "models": list(MODELS)}}
    with pytest.raises(InvalidPredictorConfig, match="format 1") as err:
        AccuracyPredictor.from_state_dict(state)
    assert "re-train" in err.value.hint and "--only 06" in err.value.hint
    with pytest.raises(InvalidMetaFeaturesError, match="version 1") as err:
        FeatureEncoder.from_dict({"version": 1, "models": list(MODELS)})
    assert "re-train" in err.value.hint


# ---- stream evaluation (Table 3, Theorem 1) --------------------------------------------------------


def test_segment_errors_and_regret_on_known_values():
    targets = np.zeros(10)
    predictions = np.arange(10) / 10
    errors = segment_errors(predictions, targets)
    assert errors["all MAE"] == pytest.approx(0.45)
    assert errors["20-40% MAE"] == pytest.approx(0.25)  # rows 2, 3
    assert errors["80-100% MSE"] == pytest.approx((0.64 + 0.81) / 2)  # rows 8, 9
    offline = np.where(np.arange(10) >= 8, predictions, np.nan)
    assert np.isnan(segment_errors(offline, targets)["all MAE"]) and segment_errors(offline, targets)["80-100% MAE"] > 0
    # two heads; head 0 always loses 0; alpha stuck at uniform -> average regret 0.5 * 1 - 0 = 0.5
    regret = average_regret(np.full((4, 2), 0.5), np.tile([0.0, 1.0], (4, 1)))
    np.testing.assert_allclose(regret, 0.5)
    np.testing.assert_allclose(running_mean_predictions(np.array([0.2, 0.4, 0.9])), [0.5, 0.2, 0.3])
    assert (stream_order(5, 0) == np.arange(5)).all() and sorted(stream_order(5, 3)) == list(range(5))


def test_evaluate_stream_is_cached_and_refuses_meta_test_data(tmp_path, monkeypatch):
    frame = shallow_stream(40)
    frame["dataset"] = "cifar10"
    config = OnlineConfig(fixed_depths=(3,), orderings=2, offline_epochs=2)
    store = ArtifactStore(tmp_path / "store")
    first = evaluate_stream(frame, config, store, progress=False)
    table = first.table3()
    assert list(table.predictor) == ["Fixed MLP (L=3)", "Ours Adaptive MLP", "Offline fixed MLP (L=10)",
                                     "Running mean (no meta-features)"]
    assert table.orderings.tolist() == [2, 2, 2, 2]
    assert np.isnan(table.loc[2, "all MAE %"]) and np.isfinite(table.loc[2, "80-100% MAE %"])
    assert first.run("Ours Adaptive MLP", 1).alphas.shape == (40, 10)

    def no_work(*args, **kwargs):
        raise AssertionError("a cached run was recomputed")

    monkeypatch.setattr(stream_module, "run_one", no_work)
    again = evaluate_stream(frame, config, store, progress=False)
    pd.testing.assert_frame_equal(again.table3(), table)
    np.testing.assert_array_equal(again.final_predictor("Ours Adaptive MLP").predict(frame),
                                  first.final_predictor("Ours Adaptive MLP").predict(frame))
    leaked = frame.assign(dataset=["brain_mri"] + ["cifar10"] * 39)
    with pytest.raises(InvalidMetaFeaturesError, match="brain_mri"):
        evaluate_stream(leaked, config, store, meta_test=("brain_mri", "trashnet"), progress=False)


def run_stream(runs: int, seed: int = 0) -> pd.DataFrame:
    """A meta-dataset of checkpointed runs: each run 1-4 rows (epochs 1, 2, 3, 5), contiguous, with
    test halves; accuracy rises with epochs and similarity."""
    rng = np.random.default_rng(seed)
    parts = []
    for run in range(runs):
        k = int(rng.integers(1, 5))
        base = rows(1, seed * 1000 + run)
        frame = pd.concat([base] * k, ignore_index=True)
        frame["run"] = run
        frame["epochs"] = [1, 2, 3, 5][:k]
        frame["iterations"] = frame["epochs"] * 4
        frame["accuracy"] = np.clip(0.1 + 0.6 * frame.domain_similarity + 0.03 * frame.epochs, 0, 1)
        frame["test_images"] = 80
        frame["accuracy_even"] = np.clip(frame.accuracy + rng.normal(0, 0.04, k), 0, 1)
        frame["accuracy_odd"] = np.clip(2 * frame.accuracy - frame.accuracy_even, 0, 1)
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    out["dataset"] = "cifar10"
    return out


def test_orderings_shuffle_whole_runs_and_keep_their_rows_in_order():
    groups = np.array([0, 0, 1, 2, 2, 2, 3])
    assert (stream_order(7, 0, groups) == np.arange(7)).all()
    for ordering in (1, 2, 5):
        order = stream_order(7, ordering, groups)
        assert sorted(order) == list(range(7))
        shuffled = groups[order]
        # every run is one contiguous block, its rows in their original order
        starts = stream_module.block_starts(shuffled, 7)
        assert len(starts) == 4 and all(np.all(np.diff(order[shuffled == g]) == 1) for g in range(4))
    assert not all((stream_order(7, o, groups) == np.arange(7)).all() for o in range(1, 6))


def test_running_mean_predicts_a_run_from_earlier_runs_only():
    y = np.array([0.2, 0.4, 0.9, 0.5, 0.1])
    groups = np.array([7, 7, 3, 3, 3])
    np.testing.assert_allclose(running_mean_predictions(y, groups=groups), [0.5, 0.5, 0.3, 0.3, 0.3])
    np.testing.assert_allclose(running_mean_predictions(y, groups=np.arange(5)), running_mean_predictions(y))


def test_block_protocol_predicts_every_row_of_a_run_before_learning_it():
    frame = run_stream(30)
    predictor = make_predictor("adaptive", MODELS, seed=0)
    twin = make_predictor("adaptive", MODELS, seed=0)
    x = predictor.encoder.transform(frame)
    y = frame.accuracy.to_numpy()
    groups = frame.run.to_numpy()
    predictions, alphas, losses = stream_module.run_online(predictor, x, y, groups=groups)
    # replay: before each run, the twin's predictions of the whole run are the recorded ones
    for start, stop in zip(stream_module.block_starts(groups, len(y)), [*stream_module.block_starts(groups, len(y))[1:], len(y)]):
        np.testing.assert_allclose(np.clip(twin.predict(frame.iloc[start:stop]), 0, 1), predictions[start:stop])
        for t in range(start, stop):
            twin.learn_transformed(x[t], float(y[t]))
    assert alphas.shape == (len(y), 10) and np.allclose(alphas.sum(axis=1), 1)
    # single-row blocks are the old row-by-row protocol, bit for bit
    a = make_predictor("adaptive", MODELS, seed=1)
    b = make_predictor("adaptive", MODELS, seed=1)
    np.testing.assert_array_equal(stream_module.run_online(a, x, y)[0],
                                  stream_module.run_online(b, x, y, groups=np.arange(len(y)))[0])


def test_noise_floor_from_test_halves_matches_simulated_test_noise():
    """|a - b| sqrt(n_e n_o) / n estimates E|A - p| for a target A measured on n test images."""
    rng = np.random.default_rng(0)
    for n in (80, 81, 240):
        p = rng.uniform(0.2, 0.9, 20000)
        hits = rng.random((20000, n)) < p[:, None]
        full = hits.mean(axis=1)
        even, odd = hits[:, 0::2].mean(axis=1), hits[:, 1::2].mean(axis=1)
        est_abs, est_sq = stream_module.noise_floor_per_row(even, odd, np.full(20000, n))
        assert est_abs.mean() == pytest.approx(np.abs(full - p).mean(), rel=0.03)
        assert est_sq.mean() == pytest.approx(((full - p) ** 2).mean(), rel=0.03)
    # equal halves: exactly |a - b| / 2
    np.testing.assert_allclose(stream_module.noise_floor_per_row(np.array([0.5]), np.array([0.7]), np.array([40]))[0], 0.1)
    with pytest.raises(InvalidMetaFeaturesError):
        stream_module.noise_floor_per_row(np.array([0.5]), np.array([0.7]), np.array([1]))


def test_stream_of_runs_has_both_floors_paired_claims_and_the_ratio(tmp_path):
    frame = run_stream(40)
    config = OnlineConfig(fixed_depths=(3, 6), orderings=3, offline_epochs=2)
    evaluation = evaluate_stream(frame, config, ArtifactStore(tmp_path / "store"), progress=False)
    table = evaluation.table3()
    assert list(table.predictor)[-2:] == [stream_module.REFERENCE_LABEL, stream_module.NOISE_LABEL]
    noise = table.set_index("predictor").loc[stream_module.NOISE_LABEL]
    abs_floor, _ = stream_module.noise_floor_per_row(frame.accuracy_even, frame.accuracy_odd, frame.test_images)
    assert noise["all MAE %"] == pytest.approx(100 * abs_floor.mean())
    diffs = evaluation.paired_differences()
    assert set(diffs.opponent) == {"Fixed MLP (L=3)", "Fixed MLP (L=6)", stream_module.REFERENCE_LABEL}
    assert len(diffs) == 2 * 3 * 3
    claims = evaluation.claims()
    assert len(claims) == 2 * 3 + 1 and (claims.n == 3).all()
    assert set(claims.verdict) <= {"holds", "does not hold", "inconclusive"}
    ratio = claims.iloc[-1]
    per = evaluation.segment_ratio()
    assert ratio.threshold == 0.75 and ratio.effect == pytest.approx(per.adaptive_over_running_mean.mean())
    assert ratio.noise_floor == pytest.approx(per.noise_floor_over_running_mean.mean())
    split_run = int(frame.run[frame.run.duplicated()].iloc[0])
    first = int(frame.index[frame.run == split_run][0])
    torn = pd.concat([frame.drop(index=first), frame.loc[[first]]])  # one row of a run moved to the end
    with pytest.raises(InvalidMetaFeaturesError, match="contiguous"):
        evaluate_stream(torn, config, progress=False)


# ---- updates of a stored predictor (issue 20: concurrent finetunes) --------------------------------


def test_update_stored_predictor_learns_on_the_latest_saved_state_and_reports_its_loss(tmp_path):
    from nasoa_lib.online import update_stored_predictor

    store = ArtifactStore(tmp_path / "store")
    frame = shallow_stream(3)
    store_predictor(store, "service", make_predictor("adaptive", MODELS, seed=0))
    stale = load_predictor(store, "service")
    elsewhere = load_predictor(store, "service")
    elsewhere.update(frame.iloc[[0]], float(frame.accuracy.iat[0]))
    store_predictor(store, "service", elsewhere)
    expected_loss = load_predictor(store, "service").update(frame.iloc[[1]], float(frame.accuracy.iat[1]))

    updated, loss = update_stored_predictor(store, "service", frame.iloc[[1]], float(frame.accuracy.iat[1]),
                                            predictor=stale)

    assert updated is stale and stale.updates == 2 and load_predictor(store, "service").updates == 2
    assert loss == expected_loss
    np.testing.assert_array_equal(load_predictor(store, "service").predict(frame), stale.predict(frame))


def test_update_stored_predictor_starts_from_the_given_predictor_when_none_is_saved(tmp_path):
    from nasoa_lib.online import update_stored_predictor

    store = ArtifactStore(tmp_path / "store")
    frame = shallow_stream(2)
    start = make_predictor("adaptive", MODELS, seed=0)
    with pytest.raises(ArtifactNotFoundError, match="no predictor 'service'"):
        update_stored_predictor(store, "service", frame.iloc[[0]], 0.5)
    update_stored_predictor(store, "service", frame.iloc[[0]], 0.5, predictor=start)
    assert start.updates == 1 and load_predictor(store, "service").updates == 1


def test_predictor_lock_held_elsewhere_times_out_with_a_hint(tmp_path):
    from nasoa_lib.errors import StoreLockTimeoutError
    from nasoa_lib.online import predictor_lock

    store = ArtifactStore(tmp_path / "store")
    with predictor_lock(store, "service"):
        with pytest.raises(StoreLockTimeoutError, match="still locked") as err:
            with predictor_lock(store, "service", timeout=0.05):
                pass
        assert "finetune" in err.value.hint
        with predictor_lock(store, "adaptive", timeout=0.05):  # one lock per predictor name
            pass
    with predictor_lock(store, "service", timeout=0.05):  # released on exit
        pass
    with pytest.raises(ValueError, match="not a safe file name"):
        with predictor_lock(store, "../escape"):
            pass
