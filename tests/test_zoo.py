"""The ET-NAS zoo (NASOA section 3.1): selection spanning the step-time range, naming, model cards
with sha256-checked weights, the step-time table, and the matched-accuracy comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nasoa_lib import zoo
from nasoa_lib.studies import zoo_comparison
from nasoa_lib.errors import StoreCorruptedError, UnknownModelError
from nasoa_lib.store import ArtifactStore
from nasoa_lib.train import PRETRAINED_KIND, WEIGHTS_FILE, load_pretrained


def _evaluations() -> pd.DataFrame:
    """A front of 10 codes (step time 5..100 ms, accuracy rising), 5 dominated ones, 2 infeasible."""
    rng = np.random.default_rng(0)
    steps = np.geomspace(5, 100, 10)
    front = pd.DataFrame({"code": [f"front{i}" for i in range(10)], "step_ms": steps,
                          "proxy_top1": np.linspace(0.1, 0.4, 10), "feasible": True})
    dominated = pd.DataFrame({"code": [f"dom{i}" for i in range(5)], "step_ms": rng.uniform(20, 100, 5) * 1.5,
                              "proxy_top1": rng.uniform(0.0, 0.09, 5), "feasible": True})
    infeasible = pd.DataFrame({"code": ["slow0", "slow1"], "step_ms": [500.0, 900.0], "proxy_top1": [0.9, 0.95],
                               "feasible": False})
    return pd.concat([front, dominated, infeasible], ignore_index=True)


def test_selection_spans_the_front_and_names_by_size():
    chosen = zoo.select_zoo(_evaluations(), 4)
    assert chosen["name"].tolist() == ["ours/ET-NAS-A", "ours/ET-NAS-B", "ours/ET-NAS-C", "ours/ET-NAS-D"]
    assert chosen["code"].str.startswith("front").all()  # only Pareto points, never infeasible ones
    assert chosen["step_ms"].is_monotonic_increasing
    assert chosen["step_ms"].iloc[0] == pytest.approx(5) and chosen["step_ms"].iloc[-1] == pytest.approx(100)
    assert zoo.select_zoo(_evaluations(), 20)["code"].tolist() == [f"front{i}" for i in range(10)]


def test_selection_keeps_only_front_models_above_the_floor():
    """Issue 17: the zoo spans the front *above* the smallest baseline's proxy accuracy."""
    chosen = zoo.select_zoo(_evaluations(), 4, floor=0.25)
    assert (chosen["proxy_top1"] >= 0.25).all() and len(chosen) == 4
    assert chosen["step_ms"].iloc[0] > 5  # the fast, inaccurate end of the front is gone
    assert chosen["code"].iloc[-1] == "front9"
    few = zoo.select_zoo(_evaluations(), 4, floor=0.38)  # only front9 (0.4) reaches it: a zoo of one
    assert few["code"].tolist() == ["front9"]
    none = zoo.select_zoo(_evaluations(), 4, floor=0.99)  # nothing reaches it: the most accurate alone
    assert none["code"].tolist() == ["front9"]


def test_names_are_prefixed_apart_from_the_released_models():
    assert zoo.canonical_name("ET-NAS-C") == "ours/ET-NAS-C"
    assert zoo.canonical_name("released/ET-NAS-C") == "released/ET-NAS-C"


def test_model_card_round_trip_and_sha256_checked_on_load(tmp_path):
    store = ArtifactStore(tmp_path)
    card = zoo.make_card("ours/ET-NAS-A", "011-_16_1-2-2-1", "smoke", store, proxy_top1=0.1, progress=False)
    assert zoo.ModelCard.from_dict(card.to_dict()) == card
    assert store.read_json(zoo.CARD_KIND, card.key, zoo.CARD_FILE) == card.to_dict()
    assert card.recipe["epochs"] >= 1 and card.step_ms > 0 and card.params > 0 and len(card.weights_sha256) == 64
    evaluations = pd.DataFrame({"code": [card.code], "step_ms": [1.0], "proxy_top1": [0.1], "feasible": [True]})
    cards = zoo.build_zoo("smoke", evaluations, store, progress=False)
    assert [c.name for c in cards] == ["ours/ET-NAS-A"] and cards[0] == card  # same card, stored once
    assert store.count(zoo.CARD_KIND) == 1

    model = zoo.load("ET-NAS-A", "smoke", store)
    reference = load_pretrained(card.code, "smoke", store=store).model
    for a, b in zip(model.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)
    assert not model.training
    table = zoo.step_time_table("smoke", store)
    assert table.names == ["ours/ET-NAS-A"] and table.step_ms("ours/ET-NAS-A") > 0

    path = store.artifact_path(PRETRAINED_KIND, card.pretrain_key, WEIGHTS_FILE)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptedError, match="sha256"):
        zoo.load("ours/ET-NAS-A", "smoke", store)
    with pytest.raises(UnknownModelError):
        zoo.load("ET-NAS-Z", "smoke", store)


def test_matched_accuracy_ratio_and_dominance():
    table = pd.DataFrame([
        {"model": "ours/ET-NAS-A", "group": "ours", "source_top1": 0.20, "step_ms": 10.0},
        {"model": "ours/ET-NAS-B", "group": "ours", "source_top1": 0.30, "step_ms": 20.0},
        {"model": "resnet18", "group": "baseline", "source_top1": 0.25, "step_ms": 80.0},
        {"model": "resnet50", "group": "baseline", "source_top1": 0.35, "step_ms": 150.0},
        {"model": "tiny", "group": "baseline", "source_top1": 0.10, "step_ms": 5.0},
    ])
    r = zoo_comparison.matched_accuracy_ratios(table).set_index("baseline")
    assert r.loc["resnet18", "matched_zoo_model"] == "ours/ET-NAS-B"
    assert r.loc["resnet18", "step_time_ratio"] == pytest.approx(4.0) and r.loc["resnet18", "dominated"]
    assert np.isnan(r.loc["resnet50", "step_time_ratio"]) and not r.loc["resnet50", "dominated"]
    assert r.loc["tiny", "step_time_ratio"] == pytest.approx(0.5) and not r.loc["tiny", "dominated"]


def test_matched_accuracy_tolerance_and_floor():
    """A zoo model within the tolerance matches; nothing below the floor matches or is matched."""
    table = pd.DataFrame([
        {"model": "ours/ET-NAS-A", "group": "ours", "source_top1": 0.05, "step_ms": 5.0},
        {"model": "ours/ET-NAS-B", "group": "ours", "source_top1": 0.295, "step_ms": 20.0},
        {"model": "resnet18", "group": "baseline", "source_top1": 0.30, "step_ms": 80.0},
        {"model": "weak", "group": "baseline", "source_top1": 0.04, "step_ms": 40.0},
    ])
    r = zoo_comparison.matched_accuracy_ratios(table, tolerance=0.01, floor=0.10).set_index("baseline")
    assert r.loc["resnet18", "matched_zoo_model"] == "ours/ET-NAS-B"
    assert not r.loc["resnet18", "dominated"]  # 0.5 points short: matched within tolerance, not dominated
    assert np.isnan(r.loc["weak", "step_time_ratio"]) and not r.loc["weak", "baseline_above_floor"]
    assert not r.loc["weak", "dominated"]  # an untrained baseline is not a comparison
    strict = zoo_comparison.matched_accuracy_ratios(table, tolerance=0.0, floor=0.10).set_index("baseline")
    assert np.isnan(strict.loc["resnet18", "step_time_ratio"])


def test_spread_over_log_takes_log_spaced_nearest_unused_values():
    values = np.array([1.0, 1.1, 2.0, 10.0, 100.0])
    assert zoo.spread_over_log(values, 3) == [0, 3, 4]  # targets 1, 10, 100
    assert zoo.spread_over_log(values, 10) == [0, 1, 2, 3, 4]


def test_zoo_table_reports_margin_over_chance_and_blind_pixels():
    """Issue 17's two zoo checks in the report's table: top-1 as a multiple of chance, and blind
    pixels (0 for codes the builder's down-sampling rule makes, including the all-1x1 block)."""
    from types import SimpleNamespace

    cards = [SimpleNamespace(to_dict=lambda code=code, top1=top1: {"name": code, "code": code, "source_top1": top1,
                                                                      "recipe": {}})
             for code, top1 in (("1-_16_1-111-1112-112", 0.15), ("102-c01_32_1-21-21-2", 0.30))]
    table = zoo_comparison.zoo_table(cards, num_classes=100, image_size=32)
    assert list(table.source_top1_times_chance) == pytest.approx([15.0, 30.0])
    assert list(table.blind_pixels) == [0, 0] and "recipe" not in table
    assert list(table.blocks) == [11, 6] and list(table.block_complexity) == [1, 3]
