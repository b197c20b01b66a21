"""Replayed searches on a surrogate of real evaluations (issue 17 item 3): fit, held-out rank
fidelity, and the live proposers replayed with other seeds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from nasoa_lib import search, verdict
from nasoa_lib.measure import count_flops, count_params
from nasoa_lib.search import surrogate
from nasoa_lib.search.evaluate import StepSpec
from nasoa_lib.search.run import SearchSpec, make_proposer
from nasoa_lib.space import MacroSpace
from nasoa_lib.train import build_model

T_MAX = 40.0


def _spec(algorithm: str) -> SearchSpec:
    space = search.CodeSpace("macro", macro_space=MacroSpace(stem_widths=(16, 32), max_stage_depth=3, max_blocks=8,
                                                             max_doublings=3), blocks=("011-", "10001-"))
    return SearchSpec("t", algorithm, space, population=8, generations=4, offspring=4, t_max_ms=T_MAX,
                      proxy=search.SearchConfig.from_profile("smoke").proxy, step=StepSpec(8, 1, 1, 1, 32),
                      profile="smoke")


@pytest.fixture(scope="module")
def evaluations() -> pd.DataFrame:
    """48 distinct codes of the space with a known truth: accuracy rises with log FLOPs, step time
    is proportional to FLOPs (so the test needs no training)."""
    spec = _spec("random")
    rows = []
    for seed in range(4):
        proposer = make_proposer(replace(spec, seed=seed))
        for _ in range(2):
            codes = proposer.ask()
            proposer.tell(codes, [])
            for code in codes:
                net = build_model(code, 10, 32)
                flops, params = count_flops(net, 32), count_params(net)
                step = flops / 1e6 * 2.0
                rows.append({"code": code, "flops": flops, "params": params, "step_ms": step,
                             "feasible": step <= T_MAX, "proxy_top1": 0.05 * np.log(flops / 1e5) if step <= T_MAX else None})
    return pd.DataFrame(rows).drop_duplicates("code").reset_index(drop=True)


def test_held_out_predictions_rank_a_learnable_truth(evaluations):
    held = surrogate.held_out_predictions(evaluations, 10, 32, T_MAX, folds=4)
    assert set(held.code) == set(evaluations.code)
    trained = held.dropna(subset=["proxy_top1"])
    tau = verdict.rank_correlation(trained.proxy_top1, trained.predicted_top1, "kendall")
    step_tau = verdict.rank_correlation(held.step_ms, held.predicted_step_ms, "kendall")
    assert tau > 0.6 and step_tau > 0.6


def test_replay_runs_the_live_proposers_per_seed(evaluations):
    s = surrogate.fit(evaluations, 10, 32, T_MAX)
    for algorithm in ("nsga2", "random"):
        spec = _spec(algorithm)
        runs = surrogate.replay(spec, s, seeds=[0, 1])
        assert (runs.groupby("repetition").size() == spec.evaluations).all()
        assert runs[~runs.feasible].proxy_top1.isna().all() and (runs[runs.feasible].step_ms <= T_MAX).all()
        first, second = (runs[runs.repetition == r].code.tolist() for r in (0, 1))
        assert first != second  # another seed is another search
        again = surrogate.replay(spec, s, seeds=[0])
        assert again.code.tolist() == first  # and the same seed the same one
        curve = search.hypervolume_curve(runs[runs.repetition == 0].reset_index(drop=True), T_MAX)
        assert curve.hypervolume.is_monotonic_increasing
