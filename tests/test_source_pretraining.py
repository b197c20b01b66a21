"""Notebook 00's shared pretraining stage: which models, its curves, floors and ranking stability."""
import numpy as np
import pandas as pd
import pytest

from nasoa_lib import verdict
from nasoa_lib.studies import source_pretraining as sp


def _record(curve, classes=100, test_images=5000):
    return {"curve": [{"epoch": i + 1, "test_top1": t, "train_top1": t, "train_loss": 1.0, "train_seconds": 30.0}
                      for i, t in enumerate(curve)],
            "num_classes": classes, "test_images": test_images, "num_params": 1_000_000,
            "train_seconds": 30.0 * len(curve), "images_per_second": 700.0}


class _Fake:
    def __init__(self, curve):
        self.record = _record(curve)
        self.source_top1 = curve[-1]


def test_stage_models_are_the_profiles_baselines_and_released():
    stage = sp.stage_models("laptop")
    assert list(stage)[:3] == ["resnet18", "regnet_y_400mf", "mobilenet_v3_small"]
    assert stage["released/ET-NAS-A"] == "2-_32_2-11-112-1121112"
    assert "resnet50" not in stage and "efficientnet_b0" not in stage


def test_curves_accumulate_minutes_per_model():
    curve = sp.curves({"a": _record([0.1, 0.2]), "b": _record([0.05, 0.3, 0.31])})
    assert len(curve) == 5
    assert curve[curve.model == "b"].minutes.tolist() == pytest.approx([0.5, 1.0, 1.5])


def test_floor_claims_decide_each_model_against_ten_times_chance():
    table = sp.summary({"good": _Fake([0.2, 0.317]), "near": _Fake([0.05, 0.101]), "bad": _Fake([0.02, 0.03])})
    claims = sp.floor_claims(table).set_index("claim")
    words = dict(zip(table.model, claims.verdict))
    assert words == {"good": verdict.HOLDS, "near": verdict.INCONCLUSIVE, "bad": verdict.DOES_NOT_HOLD}
    assert claims.threshold.tolist() == pytest.approx([0.10] * 3)


def test_ranking_stability_is_kendall_against_the_last_epoch():
    records = {f"m{i}": _record(c) for i, c in enumerate(
        [[0.1, 0.5], [0.2, 0.4], [0.3, 0.3], [0.4, 0.2], [0.5, 0.1]])}  # order flips completely
    table = sp.ranking_stability(sp.curves(records)).set_index("epoch")
    assert table.loc[1, "kendall_tau_vs_last"] == pytest.approx(-1.0)
    assert table.loc[2, "kendall_tau_vs_last"] == pytest.approx(1.0)
    assert table.loc[1, "models"] == 5


def test_stem_claims_compare_the_two_stems_of_each_model():
    rows = []
    for e in range(1, 4):  # an ablation with the ImageNet stem must not be taken as the stem's arm
        rows.append({"arm": "resnet18: old", "model": "resnet18", "stem": "imagenet", "augment": False,
                     "label_smoothing": 0.0, "batch_size": 64, "lr": 0.05, "epochs": 3, "epoch": e,
                     "test_top1": 0.05 * e, "train_top1": 0.0, "train_seconds": 40.0, "test_images": 5000})
    for stem, top1, epochs in (("small", 0.22, 3), ("imagenet", 0.31, 16)):
        for e in range(1, epochs + 1):
            rows.append({"arm": f"resnet18: {stem}", "model": "resnet18", "stem": stem, "augment": True,
                         "label_smoothing": 0.1, "batch_size": 128, "lr": 0.2, "epochs": epochs, "epoch": e,
                         "test_top1": top1 * e / epochs, "train_top1": 0.0, "train_seconds": 600.0 / epochs,
                         "test_images": 5000})
    evidence = pd.DataFrame(rows)
    arms = sp.recipe_arms_table(evidence).set_index("arm")
    assert arms.loc["resnet18: small", "train_minutes"] == pytest.approx(10.0)
    claims = sp.stem_claims(evidence, ["resnet18"])
    assert claims.effect.iloc[0] == pytest.approx(0.09) and claims.verdict.iloc[0] == verdict.HOLDS
    se = lambda p: (p * (1 - p) / 5000) ** 0.5  # noqa: E731  the noise floor: the arms' binomial test SE (RMS)
    assert claims.noise_floor.iloc[0] == pytest.approx(((se(0.31) ** 2 + se(0.22) ** 2) / 2) ** 0.5)
