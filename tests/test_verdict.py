"""The study's single verdict rule (issue 18): known intervals, the three words, the noise floor."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nasoa_lib import verdict as V
from nasoa_lib.errors import InvalidArgumentError


def test_classify_three_words_both_directions():
    assert V.classify(0.1, 2.0) == V.HOLDS
    assert V.classify(-2.0, -0.1) == V.DOES_NOT_HOLD
    assert V.classify(-0.1, 2.0) == V.INCONCLUSIVE
    assert V.classify(-2.0, -0.1, "less") == V.HOLDS
    assert V.classify(0.1, 2.0, "less") == V.DOES_NOT_HOLD
    assert V.classify(float("nan"), 1.0) == V.INCONCLUSIVE
    with pytest.raises(InvalidArgumentError):
        V.classify(0, 1, "up")


def test_t_interval_matches_scipy():
    x = [1.0, 2.5, 0.5, 3.0, 1.5]
    mean, lo, hi = V.t_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert mean == pytest.approx(np.mean(x))
    assert (lo, hi) == pytest.approx(ref)


def test_paired_effect_inside_noise_is_inconclusive():
    # the notebook-02 case of the issue: a positive mean whose interval contains 0 is no finding
    a = [10.0, 12.0, 9.0, 11.5, 10.2]
    b = [10.5, 10.0, 9.5, 10.0, 10.4]
    v = V.paired("a beats b", a, b)
    assert v.effect == pytest.approx(np.mean(np.subtract(a, b)))
    assert v.ci_low < 0 < v.ci_high and v.verdict == V.INCONCLUSIVE and v.n == 5


def test_paired_clear_effect_holds_and_reverse_does_not_hold():
    rng = np.random.default_rng(0)
    b = rng.normal(50, 5, 12)
    a = b + 3 + rng.normal(0, 0.5, 12)
    assert V.paired("a beats b", a, b).verdict == V.HOLDS
    assert V.paired("b beats a", b, a).verdict == V.DOES_NOT_HOLD
    with pytest.raises(InvalidArgumentError):
        V.paired("x", [1, 2], [1])


def test_two_sample_welch_matches_scipy():
    a, b = [5.0, 6.0, 7.5, 6.2], [4.0, 4.5, 5.1, 3.9, 4.4]
    v = V.two_sample("a above b", a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    lo, hi = res.confidence_interval(0.95)
    assert (v.ci_low, v.ci_high) == pytest.approx((lo, hi))
    assert v.verdict == V.HOLDS


def test_correlation_fisher_interval_decides():
    x = np.arange(30, dtype=float)
    y = x + np.random.default_rng(1).normal(0, 3, 30)
    v = V.correlation("rises", x, y)
    assert v.verdict == V.HOLDS and v.ci_low <= v.effect <= v.ci_high and v.n == 30
    noise = np.random.default_rng(2).normal(size=30)
    assert V.correlation("rises", x, noise).verdict == V.INCONCLUSIVE
    assert V.correlation("falls", x, -y, direction="less").verdict == V.HOLDS
    assert V.correlation("rises", x, y, "kendall").verdict == V.HOLDS


def test_correlation_of_a_five_point_front_is_no_finding():
    # the notebook-02 case: rho 0.71 on 5 points with ties (p = 0.18)
    v = V.correlation("simpler when faster", [21, 25, 31, 35, 64], [1, 1, 1, 1, 2])
    assert v.effect == pytest.approx(0.7071, abs=1e-3) and v.verdict == V.INCONCLUSIVE
    z, se = np.arctanh(v.effect), np.sqrt((1 + v.effect ** 2 / 2) / 2)
    assert (v.ci_low, v.ci_high) == pytest.approx((np.tanh(z - 1.959964 * se), np.tanh(z + 1.959964 * se)))
    assert np.isnan(V.correlation_interval(0.5, 4, "kendall")[0])


def test_bootstrap_interval_is_deterministic():
    data = np.random.default_rng(3).normal(1.0, 1.0, 40)
    v1, v2 = V.bootstrap("median above 0", data, np.median), V.bootstrap("median above 0", data, np.median)
    assert v1 == v2 and v1.verdict == V.HOLDS and v1.ci_low <= v1.effect <= v1.ci_high


def test_bootstrap_too_few_units_is_inconclusive():
    v = V.bootstrap("median above 0", [1.0, 2.0], np.median)
    assert v.verdict == V.INCONCLUSIVE and v.n == 2


def test_noise_floor_is_binomial_standard_error():
    assert V.accuracy_standard_error(0.5, 100) == pytest.approx(0.05)
    assert V.accuracy_standard_error([0.5, 0.5], [100, 100]) == pytest.approx(0.05)
    assert np.isnan(V.accuracy_standard_error([], []))


def test_table_and_counts():
    vs = [V.one_sample("c1", [1.9, 2, 2.1]), V.one_sample("c2", [-1, 1, 0.5]), V.one_sample("c3", [-3, -2, -2.5])]
    t = V.table(vs)
    assert list(t.verdict) == [V.HOLDS, V.INCONCLUSIVE, V.DOES_NOT_HOLD]
    assert {"effect", "ci_low", "ci_high", "n", "noise_floor"} <= set(t.columns)
    assert V.counts(vs) == "1 hold, 1 does not hold, 1 inconclusive (of 3)"
    assert V.counts(t) == V.counts(vs)
    assert "n=3: holds" in vs[0].summary()


def test_threshold_claims_a_margin():
    # "within 1 point or better": effect -0.5 [-0.8, -0.2] holds against threshold -1
    x = [-0.4, -0.6, -0.5, -0.45, -0.55]
    assert V.one_sample("within 1 point", x, threshold=-1.0).verdict == V.HOLDS
    assert V.one_sample("better", x).verdict == V.DOES_NOT_HOLD
    assert V.classify(-0.8, -0.2, threshold=-1.0) == V.HOLDS
    assert V.paired("a within 1 of b", [1.0, 2.0, 3.0], [1.5, 2.4, 3.6], threshold=-1.0).threshold == -1.0


def test_ratio_is_a_geometric_mean_with_threshold_one():
    v = V.ratio("faster", [2.0, 8.0])
    assert v.effect == pytest.approx(4.0) and v.threshold == 1.0 and v.n == 2
    assert V.ratio("faster", [3.0, 3.3, 2.8, 3.1]).verdict == V.HOLDS
    assert V.ratio("faster", [0.5, 2.0, 1.1, 0.9]).verdict == V.INCONCLUSIVE


def test_two_units_never_decide():
    # two tasks on which two methods agree exactly: no zero-width interval, no finding
    v = V.paired("within 2 points", [50.0, 60.0], [50.0, 60.0], threshold=-2.0)
    assert v.verdict == V.INCONCLUSIVE and np.isnan(v.ci_low)
    assert V.one_sample("x", [1.0, 1.0, 1.0], threshold=-1).verdict == V.HOLDS


def test_kendall_tau_b_matches_scipy_with_ties_and_is_nan_on_constants():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 5, 15).astype(float), rng.integers(0, 5, 15).astype(float)
        assert V.rank_correlation(x, y, "kendall") == pytest.approx(stats.kendalltau(x, y).statistic)
    assert V.rank_correlation([1, 2, 3], [3, 2, 1], "kendall") == pytest.approx(-1.0)
    assert np.isnan(V.rank_correlation([1, 1, 1], [1, 2, 3], "kendall"))


def test_proportion_is_the_t_interval_of_per_image_outcomes():
    """31.7 % of 5,000 images is far above a 10 % floor; 11 % of 200 images is not distinguishable from it."""
    v = V.proportion("above the floor", 0.317, 5000, threshold=0.10)
    p, n = 0.317, 5000
    half = stats.t.ppf(0.975, n - 1) * np.sqrt(p * (1 - p) / (n - 1))
    assert v.effect == pytest.approx(p) and v.n == n
    assert (v.ci_low, v.ci_high) == pytest.approx((p - half, p + half))
    assert v.verdict == V.HOLDS
    assert V.proportion("above the floor", 0.11, 200, threshold=0.10).verdict == V.INCONCLUSIVE
    assert V.proportion("above the floor", 0.02, 2000, threshold=0.10).verdict == V.DOES_NOT_HOLD
    with pytest.raises(InvalidArgumentError):
        V.proportion("bad", 1.5, 100)


def test_two_proportions_is_welch_on_outcomes():
    v = V.two_proportions("a beats b", 0.30, 5000, 0.25, 5000)
    assert v.effect == pytest.approx(0.05) and v.verdict == V.HOLDS
    assert V.two_proportions("a beats b", 0.30, 100, 0.29, 100).verdict == V.INCONCLUSIVE


def test_summary_says_when_too_few_units_leave_no_interval():
    """Three points leave a Spearman rho without a Fisher-z interval: the summary says so and the
    verdict stays inconclusive, instead of a headline reading ``[nan, nan]``."""
    few = V.correlation("rho on 3 points", [1, 2, 3], [1, 2, 4], unit="rho")
    assert few.verdict == V.INCONCLUSIVE
    assert few.summary() == "+1 rho (too few units for an interval), n=3: inconclusive"
    row = V.table([few]).iloc[0]
    assert V.summary(row) == few.summary()
    enough = V.one_sample("mean > 0", [1.0, 2.0, 3.0, 4.0], unit="points")
    assert V.summary(enough.to_dict()).startswith("+2.5 points [") and enough.summary().endswith(": holds")
