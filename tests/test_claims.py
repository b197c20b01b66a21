"""Every notebook's claims go through the one verdict rule (issue 18): 02, 03, 04, 06, 07."""
import numpy as np
import pandas as pd
import pytest

from nasoa_lib import verdict as V
from nasoa_lib import online
from nasoa_lib.studies import zoo_comparison
from nasoa_lib.studies import nasoa_vs_hpo as comparison
from nasoa_lib.online.stream import StreamEvaluation, StreamRun
from nasoa_lib.studies import nas_search as search_claims


def test_front_margin_and_block_claims():
    front = pd.DataFrame({"code": ["1-_16_1-2", "431-_16_1-2", "0-_16_1-2"],
                          "step_ms": [10.0, 20.0, 40.0], "proxy_top1": [0.10, 0.12, 0.15]})
    refs = pd.DataFrame({"step_ms": [5.0, 15.0, 45.0], "proxy_top1": [0.2, 0.08, 0.16]})
    margins = search_claims.front_margin_over_references(refs, front)
    assert np.isnan(margins[0]) and margins[1] == pytest.approx(2.0) and margins[2] == pytest.approx(-1.0)
    table = search_claims.block_claims(refs, front, test_images=1000)
    assert list(table.verdict) == [V.INCONCLUSIVE, V.INCONCLUSIVE]  # n = 2 margins; 3 front points
    assert table.n.tolist() == [2, 3]
    assert table.noise_floor.iloc[0] == pytest.approx(
        V.accuracy_standard_error([0.2, 0.08, 0.16, 0.10, 0.12, 0.15], 1000) * 100)


def test_one_search_repetition_is_inconclusive_five_decide():
    def curve(hv, rep):
        return pd.DataFrame({"evaluations": [1, 2], "hypervolume": [0.0, hv], "algorithm": "NSGA-II",
                             "repetition": rep})
    def rand(hv, rep):
        return curve(hv, rep).assign(algorithm="random search")
    one = search_claims.final_hypervolumes([curve(0.06, 0), rand(0.05, 0)])
    assert search_claims.search_claims(one).verdict.iloc[0] == V.INCONCLUSIVE
    five = search_claims.final_hypervolumes([f(h, r) for r in range(5)
                                             for f, h in ((curve, 0.06 + r / 1000), (rand, 0.05 + r / 2000))])
    assert search_claims.search_claims(five).verdict.iloc[0] == V.HOLDS


def test_table2_claim_is_a_geometric_mean_of_matched_ratios():
    ratios = pd.DataFrame({"baseline": ["a", "b", "c"], "baseline_top1": [0.1, 0.2, 0.3],
                           "matched_zoo_model": ["z", "z", None], "zoo_top1": [0.15, 0.25, np.nan],
                           "step_time_ratio": [2.0, 8.0, np.nan]})
    row = zoo_comparison.table2_claims(ratios, 5000).iloc[0]
    assert row.effect == pytest.approx(4.0) and row.n == 2 and row.threshold == 1.0
    assert "unmatched: c" in row.evidence


def _stream_run(label, kind, depth, ordering, err, rng):
    y = rng.uniform(0.2, 0.8, 200)
    return StreamRun(label, kind, depth, ordering, np.arange(200), y + rng.choice([-1, 1], 200) * err, y, 1.0)


def test_stream_claims_and_curves():
    cfg = online.OnlineConfig.from_profile("smoke")
    rng = np.random.default_rng(0)
    runs = []
    for o in range(4):
        for label, kind, depth in cfg.contenders():
            if kind == "offline":
                continue
            err = 0.05 if kind == "adaptive" else 0.10
            runs.append(_stream_run(label, kind, depth, o, err + rng.normal(0, 0.002), rng))
    ev = StreamEvaluation(runs, 200, (), cfg)
    claims = ev.claims()
    fixed_vs_adaptive = claims[claims.claim.str.contains("Fixed MLP")]  # each fixed MLP, two segments
    assert len(fixed_vs_adaptive) == 2 * len(cfg.fixed_depths) and (fixed_vs_adaptive.verdict == V.HOLDS).all()
    assert (fixed_vs_adaptive.effect < -4).all() and (claims.n == 4).all()  # adaptive minus fixed, MAE points
    curves = ev.error_curves(window=10)
    adaptive = curves[curves.predictor == online.ADAPTIVE_LABEL]
    assert len(adaptive) == 200 and adaptive.cumulative_mae.iloc[-1] == pytest.approx(5.0, abs=0.5)


def test_comparison_claims_pair_tasks_and_apply_margins():
    """NASOA (x1, live) against a search (replayed) pairs (task, search seed); generators pair
    (task, constraint); margins are thresholds on the paired difference."""
    rows = []
    for d in ("x", "y"):
        for c in (0, 1):
            base = 0.5 + 0.02 * c
            for method, acc in (("nasoa", base), ("oa_only", base - 0.05), ("zoo_offline", base)):
                rows.append({"dataset": d, "task_seed": 0, "constraint": c, "method": method, "search_seed": np.nan,
                             "source": "live", "test_accuracy": acc})
        for s in (0, 1, 2):
            for method, acc in (("bohb", 0.505 + 0.001 * s), ("zoo_bohb", 0.6 + 0.001 * s), ("bohb_hpo_only", 0.5)):
                rows.append({"dataset": d, "task_seed": 0, "constraint": 0, "method": method, "search_seed": s,
                             "source": "table", "test_accuracy": acc})
    empty = pd.DataFrame()
    results = comparison.Results(pd.DataFrame(rows), empty, empty, empty, empty, empty, empty, empty)
    cfg = comparison.ComparisonConfig(images_per_class=8, validation_per_class=4, classes=4)
    ses = pd.DataFrame({"dataset": ["x", "y"], "task_seed": [0, 0], "test_images": 500, "test_se_points": [2.0, 2.0]})
    table = comparison.claims(results, cfg, None, ses).set_index("claim")
    close = table.loc[[c for c in table.index if "within 1 point" in c][0]]
    assert close.threshold == -1.0 and close.effect == pytest.approx(-0.6, abs=0.2) and close.verdict == V.HOLDS
    assert close.n == 6  # 2 tasks x 3 search seeds
    zoo_gain = table.loc[[c for c in table.index if "main gain" in c][0]]
    assert zoo_gain.effect == pytest.approx(15.1, abs=0.2) and zoo_gain.verdict == V.HOLDS and zoo_gain.n == 6
    oa = table.loc[[c for c in table.index if "NASOA beats OA only" in c][0]]
    assert oa.n == 4 and oa.effect == pytest.approx(5.0)  # 2 tasks x 2 constraints, live
    assert table.noise_floor.iloc[0] == pytest.approx(2.0)


def test_proxy_fidelity_ranks_proxies_by_their_taus():
    """A proxy that orders 10 architectures like the full recipe has fidelity tau 1; one whose
    second seed reverses the first has repeatability -1; CPU-minutes come from training seconds."""
    rows = []
    for a in range(10):
        for seed in (0, 1):
            rows.append({"arch": f"a{a}", "proxy": "good", "seed": seed, "proxy_top1": 0.1 + 0.01 * a + 0.001 * seed,
                         "full_top1": 0.2 + 0.02 * a, "proxy_train_seconds": 60.0, "scored_on": "validation"})
            rows.append({"arch": f"a{a}", "proxy": "noisy", "seed": seed,
                         "proxy_top1": 0.1 + 0.01 * (a if seed == 0 else 9 - a), "full_top1": 0.2 + 0.02 * a,
                         "proxy_train_seconds": 30.0, "scored_on": "validation"})
    table = search_claims.proxy_fidelity(pd.DataFrame(rows)).set_index("proxy")
    assert table.loc["good", "fidelity_tau"] == pytest.approx(1.0)
    assert table.loc["good", "repeatability_tau"] == pytest.approx(1.0)
    assert table.loc["noisy", "repeatability_tau"] == pytest.approx(-1.0)
    assert table.loc["good", "cpu_minutes_per_evaluation"] == pytest.approx(1.0)
    assert table.loc["good", "fidelity_verdict"] == V.HOLDS and table.loc["good", "architectures"] == 10


def test_proxy_choice_says_plainly_when_the_chosen_proxy_misses_the_bar():
    """The chosen proxy is the best fidelity per CPU-minute; below tau 0.5 the sentence names the
    cheapest proxy above the bar and its price relative to the chosen one."""
    table = pd.DataFrame([
        {"proxy": "cheap", "fidelity_tau": 0.47, "fidelity_ci": "[-0.02, 0.78]", "cpu_minutes_per_evaluation": 0.16,
         "fidelity_per_cpu_minute": 0.47 / 0.16},
        {"proxy": "dear", "fidelity_tau": 0.56, "fidelity_ci": "[0.10, 0.82]", "cpu_minutes_per_evaluation": 0.32,
         "fidelity_per_cpu_minute": 0.56 / 0.32},
    ])
    text = search_claims.proxy_choice(table)
    assert text.startswith("chosen proxy: cheap") and "below the bar of tau >= 0.5" in text
    assert "dear" in text and "2.0x as much" in text and "50% of its evaluations" in text
    assert "reaches the bar" in search_claims.proxy_choice(table, bar=0.4)
    assert "no measured proxy reaches it" in search_claims.proxy_choice(table, bar=0.9)
