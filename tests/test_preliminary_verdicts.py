"""Notebook 01's findings decided by the study's verdict rule: a choice is judged on held-out seeds."""
import numpy as np
import pandas as pd

from nasoa_lib.studies import preliminary as pre
from nasoa_lib import verdict as V


def _frame(effect_of_option: dict, seeds=(0, 1, 2, 3), datasets=("a", "b"), noise=0.01, experiment="learning_rate"):
    rng = np.random.default_rng(0)
    rows = []
    for d in datasets:
        for s in seeds:
            for opt, eff in effect_of_option.items():
                rows.append({"experiment": experiment, "dataset": d, "seed": s, "setting": opt,
                             "accuracy": 0.5 + eff + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_held_out_gain_sees_no_effect_where_options_are_equal():
    # pure noise: the in-sample best-minus-worst is positive, the held-out gain is not
    frame = _frame({0.01: 0.0, 0.1: 0.0, 0.3: 0.0}, seeds=range(8), noise=0.05)
    in_sample = frame.groupby(["dataset", "setting"]).accuracy.mean().groupby(level=0).agg(np.ptp)
    assert (in_sample > 0).all()
    gain = pre.held_out_choice_gain(frame, "setting", per=("dataset",), versus="worst")
    assert len(gain) == 16
    assert V.one_sample("matters", gain).verdict != V.HOLDS


def test_held_out_gain_finds_a_real_effect():
    frame = _frame({0.01: 0.0, 0.1: 0.2, 0.3: 0.1})
    gain = pre.held_out_choice_gain(frame, "setting", per=("dataset",), versus="worst")
    assert gain.mean() > 0.15 and V.one_sample("matters", gain).verdict == V.HOLDS
    # one best option for all datasets: choosing per dataset gains nothing
    assert np.allclose(pre.held_out_choice_gain(frame, "setting", per=("dataset",), versus="global"), 0)
    assert len(pre.held_out_choice_gain(frame[frame.seed == 0], "setting", ("dataset",), "worst")) == 0
