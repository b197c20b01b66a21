"""One verdict rule for every claim of the study (issue 18).

A claim of a paper says that an effect has a sign: "fine-tuning beats scratch" is
``accuracy(fine-tune) - accuracy(scratch) > 0``. Every notebook states its claims through this
module, so that one rule decides them all, and decides them the same way:

    **holds** when the 95 % confidence interval of the effect lies wholly on the claim's side
    of its threshold (zero, unless the claim names a margin such as "within 1 point"); **does
    not hold** when it lies wholly on the other side; **inconclusive** when it contains the
    threshold.

An effect inside its own interval's reach of zero is therefore never called a finding, whatever
its sign. Intervals:

* means of paired differences (same task, seed or dataset on both sides) and of one sample: the
  Student t interval (exact under normal errors, and honest at the small n this study has, where a
  percentile bootstrap is too narrow);
* differences of two independent means: Welch's t interval;
* rank correlations: the Fisher-z interval (:func:`correlation`), which stays honest at a handful
  of points;
* anything else (medians, ratios, differences of correlations): the percentile bootstrap over units
  (``BOOTSTRAP_RESAMPLES`` resamples with a fixed seed, so a report re-renders identically).

Each verdict carries the *noise floor* beside its effect where one is known: the standard error
of one task's test accuracy (binomial, :func:`accuracy_standard_error`), so a reader sees whether
an effect is larger than what re-drawing the test images alone would move.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import InvalidArgumentError

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE)

CONFIDENCE = 0.95
#: Fewer units than this give no interval, so the claim is inconclusive: two tasks that happen to
#: agree exactly would otherwise make a zero-width interval and a "finding".
MIN_UNITS = 3
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

RULE = ("holds if the 95 % confidence interval of the effect lies wholly on the claim's side of its "
        "threshold (0 unless the claim names a margin), "
        "does not hold if it lies wholly on the other side, inconclusive otherwise "
        f"and always below {MIN_UNITS} units "
        "(t intervals for means and paired differences, Welch for two groups, Fisher-z for rank "
        f"correlations, percentile bootstrap with {BOOTSTRAP_RESAMPLES:,} resamples for other statistics)")

Direction = Literal["greater", "less"]


@dataclass(frozen=True)
class Verdict:
    """One claim decided by :data:`RULE`: the effect, its interval and the number of units."""

    claim: str
    effect: float
    ci_low: float
    ci_high: float
    n: int
    verdict: str
    direction: Direction
    method: str
    unit: str = ""
    noise_floor: float = float("nan")
    evidence: str = ""
    threshold: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """``+3.10 points [0.40, 5.80], n=9: holds`` (the form the report index shows)."""
        return summary(self.to_dict())


def summary(row: Mapping[str, object] | pd.Series) -> str:
    """One claim (a :class:`Verdict`'s dict or a row of :func:`table`) as the report index shows
    it: ``+3.10 points [0.40, 5.80], n=9: holds``; a claim with too few units for an interval says
    so instead of printing ``[nan, nan]``."""
    unit = f" {row['unit']}" if row.get("unit") else ""
    lo, hi = float(row["ci_low"]), float(row["ci_high"])
    interval = f"[{lo:.3g}, {hi:.3g}]" if np.isfinite(lo) and np.isfinite(hi) else "(too few units for an interval)"
    return f"{float(row['effect']):+.3g}{unit} {interval}, n={int(row['n'])}: {row['verdict']}"


def classify(ci_low: float, ci_high: float, direction: Direction = "greater", threshold: float = 0.0) -> str:
    """The study's single rule applied to an interval (pure; see :data:`RULE`)."""
    _check_direction(direction)
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return INCONCLUSIVE
    ci_low, ci_high = ci_low - threshold, ci_high - threshold
    if direction == "less":
        ci_low, ci_high = -ci_high, -ci_low
    if ci_low > 0:
        return HOLDS
    if ci_high < 0:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and Student t interval of one sample; (mean, nan, nan) below :data:`MIN_UNITS` values."""
    x = _finite(values)
    mean = float(x.mean()) if len(x) else float("nan")
    if len(x) < MIN_UNITS:
        return mean, float("nan"), float("nan")
    se = float(x.std(ddof=1)) / math.sqrt(len(x))
    if se == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * se
    return mean, mean - half, mean + half


def one_sample(claim: str, values: Sequence[float], direction: Direction = "greater", *,
               unit: str = "", noise_floor: float = float("nan"), evidence: str = "",
               threshold: float = 0.0) -> Verdict:
    """The claim "the mean of ``values`` is above ``threshold``" (or below, ``direction="less"``);
    use it for per-seed or per-task effects already computed as differences."""
    x = _finite(values)
    mean, lo, hi = t_interval(x)
    return Verdict(claim, mean, lo, hi, len(x), classify(lo, hi, direction, threshold), direction, "t interval",
                   unit, noise_floor, evidence, threshold)


def paired(claim: str, a: Sequence[float], b: Sequence[float], direction: Direction = "greater", *,
           unit: str = "", noise_floor: float = float("nan"), evidence: str = "",
           threshold: float = 0.0) -> Verdict:
    """The claim "``a`` beats ``b``" on paired units (same task/seed on both sides): the mean of
    ``a - b`` with its paired t interval. Pairs with a missing side are dropped."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape:
        raise InvalidArgumentError(f"paired samples differ in length ({len(a_arr)} vs {len(b_arr)})",
                                   hint="pass one value per unit on both sides, in the same order")
    diff = a_arr - b_arr
    v = one_sample(claim, diff, direction, unit=unit, noise_floor=noise_floor, evidence=evidence, threshold=threshold)
    return Verdict(**{**v.to_dict(), "method": "paired t interval"})


def two_sample(claim: str, a: Sequence[float], b: Sequence[float], direction: Direction = "greater", *,
               unit: str = "", noise_floor: float = float("nan"), evidence: str = "") -> Verdict:
    """The claim "``a`` beats ``b``" on independent groups: difference of means, Welch interval."""
    x, y = _finite(a), _finite(b)
    effect = float(x.mean() - y.mean()) if len(x) and len(y) else float("nan")
    lo = hi = float("nan")
    if len(x) >= 2 and len(y) >= 2 and len(x) + len(y) >= MIN_UNITS:
        vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        se = math.sqrt(vx + vy)
        if se == 0.0:
            lo = hi = effect
        else:
            dof = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
            half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * se
            lo, hi = effect - half, effect + half
    return Verdict(claim, effect, lo, hi, len(x) + len(y), classify(lo, hi, direction), direction,
                   "Welch t interval", unit, noise_floor, evidence)


def ratio(claim: str, ratios: Sequence[float], direction: Direction = "greater", *, unit: str = "x",
          noise_floor: float = float("nan"), evidence: str = "") -> Verdict:
    """The claim "the typical ratio is above 1" (e.g. a step-time speed-up): the geometric mean of
    the ratios with the t interval of their logarithms, mapped back (threshold 1)."""
    x = _finite(ratios)
    x = x[x > 0]
    mean, lo, hi = t_interval(np.log(x))
    back = [float(np.exp(v)) if np.isfinite(v) else float("nan") for v in (mean, lo, hi)]
    return Verdict(claim, back[0], back[1], back[2], len(x), classify(lo, hi, direction), direction,
                   "t interval of log ratios", unit, noise_floor, evidence, 1.0)


def proportion(claim: str, accuracy: float, images: int, direction: Direction = "greater", *,
               threshold: float = 0.0, unit: str = "", noise_floor: float = float("nan"),
               evidence: str = "") -> Verdict:
    """The claim "this accuracy is above ``threshold``" for one accuracy measured on ``images``
    test images: :func:`one_sample` on its per-image 0/1 outcomes (the t interval of their mean),
    so a proportion is decided by the same rule as every other mean."""
    v = one_sample(claim, _outcomes(accuracy, images), direction, unit=unit, noise_floor=noise_floor,
                   evidence=evidence, threshold=threshold)
    return Verdict(**{**v.to_dict(), "method": "t interval of per-image outcomes"})


def two_proportions(claim: str, accuracy_a: float, images_a: int, accuracy_b: float, images_b: int,
                    direction: Direction = "greater", *, unit: str = "", noise_floor: float = float("nan"),
                    evidence: str = "") -> Verdict:
    """The claim "accuracy ``a`` beats accuracy ``b``", each measured on its own test images:
    :func:`two_sample` (Welch) on the two sets of per-image 0/1 outcomes."""
    v = two_sample(claim, _outcomes(accuracy_a, images_a), _outcomes(accuracy_b, images_b), direction,
                   unit=unit, noise_floor=noise_floor, evidence=evidence)
    return Verdict(**{**v.to_dict(), "method": "Welch interval of per-image outcomes"})


def _outcomes(accuracy: float, images: int) -> np.ndarray:
    """``images`` 0/1 outcomes whose mean is ``accuracy`` (rounded to whole images)."""
    if images < 1 or not 0.0 <= accuracy <= 1.0:
        raise InvalidArgumentError(f"accuracy {accuracy!r} on {images!r} images is not a proportion",
                                   hint="pass an accuracy in [0, 1] and a positive number of test images")
    correct = int(round(accuracy * images))
    return np.r_[np.ones(correct), np.zeros(images - correct)]


def bootstrap(claim: str, units: Sequence[object] | np.ndarray | pd.DataFrame,
              statistic: Callable[[np.ndarray | pd.DataFrame], float], direction: Direction = "greater", *,
              unit: str = "", noise_floor: float = float("nan"), evidence: str = "",
              resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Verdict:
    """The claim "``statistic`` of the units is above 0": the statistic on all units and its 95 %
    percentile bootstrap interval, resampling whole units (rows) with replacement."""
    data = units if isinstance(units, pd.DataFrame) else np.asarray(units)
    n = len(data)
    effect = float(statistic(data)) if n else float("nan")
    lo, hi = bootstrap_interval(data, statistic, resamples=resamples, seed=seed)
    return Verdict(claim, effect, lo, hi, n, classify(lo, hi, direction), direction,
                   "percentile bootstrap", unit, noise_floor, evidence)


def bootstrap_interval(data: np.ndarray | pd.DataFrame, statistic: Callable[[np.ndarray | pd.DataFrame], float], *,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the rows of ``data``; resamples on which
    the statistic is undefined (nan, e.g. a correlation of constant values) are left out."""
    n = len(data)
    if n < 3:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, n, n)
        sample = data.iloc[idx] if isinstance(data, pd.DataFrame) else data[idx]
        draws[i] = statistic(sample)
    draws = draws[np.isfinite(draws)]
    if len(draws) < resamples // 2:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return float(lo), float(hi)


def correlation(claim: str, x: Sequence[float], y: Sequence[float], method: Literal["spearman", "kendall"] = "spearman",
                direction: Direction = "greater", *, unit: str = "", noise_floor: float = float("nan"),
                evidence: str = "", threshold: float = 0.0) -> Verdict:
    """The claim "``x`` and ``y`` rise together" (Spearman rho or Kendall tau-b) with a Fisher-z
    interval: standard error ``sqrt((1 + rho^2 / 2) / (n - 3))`` for Spearman (Bonett & Wright
    2000) and ``sqrt(0.437 / (n - 4))`` for Kendall (Fieller, Hartley & Pearson 1957). Unlike a
    bootstrap over pairs, it stays honest at the handful of points a Pareto front has (a bootstrap
    of 5 points mostly redraws ties and calls rho = 0.7 a finding)."""
    xy = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    xy = xy[np.isfinite(xy).all(axis=1)]
    n = len(xy)
    r = rank_correlation(xy[:, 0], xy[:, 1], method) if n else float("nan")
    lo, hi = correlation_interval(r, n, method)
    return Verdict(claim, r, lo, hi, n, classify(lo, hi, direction, threshold), direction,
                   f"{method}, Fisher-z interval", unit, noise_floor, evidence, threshold)


def correlation_interval(r: float, n: int, method: Literal["spearman", "kendall"] = "spearman",
                         confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Fisher-z interval of a rank correlation (see :func:`correlation`); nan when too few points."""
    if method not in ("spearman", "kendall"):
        raise InvalidArgumentError(f"correlation method {method!r} is not 'spearman' or 'kendall'",
                                   hint="pass method='spearman' or method='kendall'")
    need = 4 if method == "spearman" else 5
    if not np.isfinite(r) or n < need:
        return float("nan"), float("nan")
    se = math.sqrt((1 + r * r / 2) / (n - 3)) if method == "spearman" else math.sqrt(0.437 / (n - 4))
    z = math.atanh(min(max(r, -0.999999), 0.999999))
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * se
    return math.tanh(z - half), math.tanh(z + half)


def rank_correlation(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                     method: Literal["spearman", "kendall"] = "spearman") -> float:
    """Spearman rho or Kendall tau-b (ties counted as scipy counts them); nan when either side is
    constant. Kendall's tau is computed over all pairs in numpy (O(n^2)), so the 10,000 bootstrap
    resamples of a few dozen networks take about a second."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if method == "spearman":
        return float(stats.spearmanr(x, y)[0])
    i, j = _pairs(len(x))
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    return float((dx * dy).sum() / math.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy)))


@functools.lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def accuracy_standard_error(accuracy: float | Sequence[float], test_images: int | Sequence[int]) -> float:
    """The noise floor of a test accuracy: the binomial standard error ``sqrt(p(1-p)/n)`` of one
    task's test accuracy (in the accuracy's own unit fraction; multiply by 100 for points). With
    several tasks, the root mean square of their standard errors."""
    p = np.atleast_1d(np.asarray(accuracy, dtype=float))
    n = np.broadcast_to(np.atleast_1d(np.asarray(test_images, dtype=float)), p.shape)
    ok = np.isfinite(p) & (n > 0)
    if not ok.any():
        return float("nan")
    se = np.sqrt(np.clip(p[ok], 0, 1) * (1 - np.clip(p[ok], 0, 1)) / n[ok])
    return float(np.sqrt(np.mean(se ** 2)))


def table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """A notebook's claims table: one row per claim, the same columns in every notebook."""
    cols = ["claim", "effect", "ci_low", "ci_high", "n", "noise_floor", "unit", "threshold", "verdict", "method",
            "evidence"]
    return pd.DataFrame([v.to_dict() for v in verdicts], columns=[*cols, "direction"])[cols]


def counts(verdicts: Sequence[Verdict] | pd.DataFrame) -> str:
    """``2 hold, 1 does not hold, 4 inconclusive (of 7)`` for a headline."""
    words = list(verdicts.verdict) if isinstance(verdicts, pd.DataFrame) else [v.verdict for v in verdicts]
    h, d, i = (sum(w == k for w in words) for k in VERDICTS)
    return f"{h} hold, {d} does not hold, {i} inconclusive (of {len(words)})"


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def _check_direction(direction: str) -> None:
    if direction not in ("greater", "less"):
        raise InvalidArgumentError(f"direction {direction!r} is not 'greater' or 'less'",
                                   hint="say on which side of 0 the claim puts the effect")
