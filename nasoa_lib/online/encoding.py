"""Meta-features -> the predictor's input vector ``h_0`` (NASOA Eq. 3), in two stages.

**1. Fixed transforms** (:meth:`FeatureEncoder.transform`, stateless): the model as a one-hot, and
each numeric feature mapped from its plausible range to roughly ``[0, 1]``:

=====================  ===============================  ===========================================
column                 transform                        why
=====================  ===============================  ===========================================
``model``              one-hot over the encoder's       the paper's dummy variable; the order is
                       ``models`` (first columns)       the encoder's, stored with the predictor
``domain_similarity``  as is, must lie in (0, 1]        exp(-0.01 EMD) is already in (0, 1]
``images_per_class``   log10(x) / 3                     1..1000 images -> 0..1 (scale is ratio-like)
``num_classes``        log10(x) / 3                     2..1000 classes -> 0.1..1
``source_accuracy``    as is, must lie in [0, 1]        a fraction already
``iterations``         log10(x) / 5                     1..100 000 steps -> 0..1
``lr``                 log10(x) / 4 + 1                 1e-4..1 -> 0..1 (rates are compared by ratio)
``frozen_stages``      x / 4, an int in 0..4            0 = train all ... 4 = head only
=====================  ===============================  ===========================================

**2. Online standardisation** (:class:`RunningStandardizer`, issue 22): a plausible range is not
the range the data uses. Our meta-train datasets have domain similarities 0.90-0.96 (EMD 4-10), so
after stage 1 the one feature that tells datasets apart spans 0.06 while the one-hot spans 1 and
the others 0.3-1: to the first layer it is nearly a constant. Each numeric column is therefore
centred and scaled by the running mean and standard deviation of the rows the predictor has
*already learned from* (Welford's update, one row at a time), never by statistics of rows still to
come, which an online learner cannot know: row ``t`` of a stream is encoded with the statistics of
rows ``0..t-1`` (:meth:`FeatureEncoder.observe` is called after learning it). Details:

* the variance is shrunk towards ``1/12`` (a column spread uniformly over stage 1's ``[0, 1]``) with
  the weight of :data:`PRIOR_ROWS` row, so it is defined from the first row on and a column that has
  been constant so far is not divided by ~0; after ``n`` rows the prior's weight is ``1 / (n + 1)``;
* before any row, the centre is ``0.5`` (the middle of stage 1's range);
* standardised values are clipped to ``+-`` :data:`CLIP_SD`: a value further from everything seen
  (a user's dataset far less similar than any meta-train one) is treated as that far, since the
  network never saw the region beyond and a 20-sd input would only extrapolate its ReLUs;
* the one-hot columns are left as 0/1.

The offline MLP sees its training split in full, so :meth:`AccuracyPredictor.fit` observes that split
first, then trains and stays frozen. The statistics are part of the predictor's saved state.

Values outside the validity ranges of :data:`FEATURE_RANGES` (a similarity of 1.3, a negative
learning rate, 5 frozen stages, NaN) raise :class:`InvalidMetaFeaturesError` instead of producing a
confident prediction for an input the predictor was never meant to see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, Union

import numpy as np
import pandas as pd

from nasoa_lib.errors import InvalidMetaFeaturesError, UnknownModelError
from nasoa_lib.metafeatures import FEATURE_COLUMNS, NUMERIC_FEATURES

ENCODING_VERSION = 2
"""2: stage 1 + online standardisation (issue 22). Version 1 (fixed transforms only) is refused on load."""

FeatureRows: TypeAlias = Union[pd.DataFrame, pd.Series, Mapping[str, Any], Sequence[Mapping[str, Any]]]
"""What the encoders and predictors accept as meta-feature rows: a frame, one row (a mapping or a
pandas row), or a list of mappings, each with :data:`~nasoa_lib.metafeatures.FEATURE_COLUMNS`."""

#: Weight, in rows, of the prior variance ``1/12`` the running variance is shrunk towards.
PRIOR_ROWS = 1.0
#: Variance of a column spread uniformly over stage 1's ``[0, 1]``: the prior.
PRIOR_VARIANCE = 1.0 / 12.0
#: Centre before any row is seen: the middle of stage 1's ``[0, 1]``.
PRIOR_CENTRE = 0.5
#: Standardised values are clipped to ``[-CLIP_SD, CLIP_SD]``.
CLIP_SD = 5.0


#: Validity range of each numeric meta-feature: (low, high, low_inclusive, integer).
FEATURE_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "domain_similarity": (0.0, 1.0, False, False),
    "images_per_class": (0.0, 1e6, False, False),
    "num_classes": (2.0, 1e6, True, False),
    "source_accuracy": (0.0, 1.0, True, False),
    "iterations": (1.0, 1e9, True, False),
    "lr": (0.0, 10.0, False, False),
    "frozen_stages": (0.0, 4.0, True, True),
}

_RANGE_HINTS = {
    "domain_similarity": "exp(-0.01 * EMD) lies in (0, 1]; compute it with nasoa_lib.metafeatures",
    "images_per_class": "average training images per class, > 0",
    "num_classes": "number of classes of the task, >= 2",
    "source_accuracy": "source (ImageNet-stand-in) top-1 accuracy as a fraction in [0, 1], not a percentage",
    "iterations": "optimizer steps, >= 1",
    "lr": "learning rate, 0 < lr <= 10",
    "frozen_stages": "an integer 0..4 (0 trains everything, 4 only the head)",
}


def _transform(name: str, values: np.ndarray) -> np.ndarray:
    if name in ("domain_similarity", "source_accuracy"):
        return values
    if name in ("images_per_class", "num_classes"):
        return np.log10(values) / 3.0
    if name == "iterations":
        return np.log10(values) / 5.0
    if name == "lr":
        return np.log10(values) / 4.0 + 1.0
    if name == "frozen_stages":
        return values / 4.0
    raise AssertionError(f"no transform for {name}")  # pragma: no cover - NUMERIC_FEATURES is fixed


class RunningStandardizer:
    """Running mean and variance of the stage-1 numeric columns (module docstring, stage 2).

    :meth:`observe` absorbs rows in order (Welford's update); :meth:`apply` standardises with the
    statistics absorbed so far and changes nothing, so predicting never moves the statistics.
    """

    def __init__(self, columns: int) -> None:
        self.rows = 0
        self.mean = np.zeros(int(columns))
        self.m2 = np.zeros(int(columns))

    @property
    def centre(self) -> np.ndarray:
        return self.mean.copy() if self.rows else np.full_like(self.mean, PRIOR_CENTRE)

    @property
    def scale(self) -> np.ndarray:
        """Standard deviation with the prior: ``sqrt((PRIOR_ROWS * PRIOR_VARIANCE + M2) / (PRIOR_ROWS + n))``."""
        return np.sqrt((PRIOR_ROWS * PRIOR_VARIANCE + self.m2) / (PRIOR_ROWS + self.rows))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``(values - centre) / scale`` per column, clipped to ``+-CLIP_SD``."""
        return np.clip((np.asarray(values, dtype=np.float64) - self.centre) / self.scale, -CLIP_SD, CLIP_SD)

    def observe(self, values: np.ndarray) -> None:
        """Absorb rows ``(n, columns)`` one at a time, in order."""
        for row in np.atleast_2d(np.asarray(values, dtype=np.float64)):
            self.rows += 1
            delta = row - self.mean
            self.mean += delta / self.rows
            self.m2 += delta * (row - self.mean)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, RunningStandardizer) and other.rows == self.rows
                and np.array_equal(other.mean, self.mean) and np.array_equal(other.m2, self.m2))

    def to_dict(self) -> dict[str, Any]:
        """Plain values; JSON keeps every float64 exactly (``repr`` round-trips)."""
        return {"rows": self.rows, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], columns: int) -> "RunningStandardizer":
        out = cls(columns)
        mean, m2 = np.asarray(data["mean"], dtype=np.float64), np.asarray(data["m2"], dtype=np.float64)
        if mean.shape != (columns,) or m2.shape != (columns,) or int(data["rows"]) < 0:
            raise InvalidMetaFeaturesError(
                f"saved feature statistics have shapes {mean.shape} / {m2.shape}, expected ({columns},)",
                hint="the predictor file was not written by this library version; re-train it: "
                     "nasoa reproduce --only 06 --force (with your --profile)")
        out.rows, out.mean, out.m2 = int(data["rows"]), mean, m2
        return out


class FeatureEncoder:
    """Encodes meta-feature rows as ``float32`` vectors: model one-hot, then the numeric features,
    standardised online (module docstring). Holds the running statistics of the rows it observed."""

    def __init__(self, models: Sequence[str]) -> None:
        names = [str(m) for m in models]
        if not names:
            raise InvalidMetaFeaturesError("a FeatureEncoder needs at least one model name",
                                           hint="pass the candidate models (zoo + baselines) the predictor will rank")
        if len(set(names)) != len(names):
            dupes = sorted({m for m in names if names.count(m) > 1})
            raise InvalidMetaFeaturesError(f"duplicate model names {dupes}", hint="give each model once")
        self.models: tuple[str, ...] = tuple(names)
        self._index = {m: i for i, m in enumerate(self.models)}
        self.statistics = RunningStandardizer(len(NUMERIC_FEATURES))

    @property
    def dim(self) -> int:
        """Length of an encoded row: one-hot models plus the numeric features."""
        return len(self.models) + len(NUMERIC_FEATURES)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureEncoder) and other.models == self.models and other.statistics == self.statistics

    def __repr__(self) -> str:
        return f"FeatureEncoder(models={list(self.models)!r}, rows_observed={self.statistics.rows})"

    def to_dict(self) -> dict[str, Any]:
        return {"version": ENCODING_VERSION, "models": list(self.models), "statistics": self.statistics.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureEncoder":
        version = data.get("version", 1)
        if version != ENCODING_VERSION:
            raise InvalidMetaFeaturesError(
                f"feature encoding version {version} is not this library's ({ENCODING_VERSION}); version 2 "
                "standardises the meta-features online (issue 22)",
                hint="re-train it with this version: nasoa reproduce --only 06 --force (with your --profile)",
            )
        encoder = cls(data["models"])
        encoder.statistics = RunningStandardizer.from_dict(data["statistics"], len(NUMERIC_FEATURES))
        return encoder

    def frame(self, rows: FeatureRows) -> pd.DataFrame:
        """``rows`` (DataFrame, one mapping, or a list of mappings) as a DataFrame of FEATURE_COLUMNS."""
        if isinstance(rows, pd.DataFrame):
            frame = rows
        elif isinstance(rows, Mapping):
            frame = pd.DataFrame([dict(rows)])
        elif hasattr(rows, "to_dict") and not isinstance(rows, (list, tuple)):
            frame = pd.DataFrame([rows.to_dict()])
        else:
            frame = pd.DataFrame([dict(r) if isinstance(r, Mapping) else r.to_dict() for r in rows])
        missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
        if missing:
            raise InvalidMetaFeaturesError(
                f"meta-features missing: {missing}",
                hint=f"every row needs the columns {list(FEATURE_COLUMNS)} (nasoa_lib.metafeatures.FEATURE_COLUMNS)",
            )
        return frame

    def transform(self, rows: FeatureRows) -> np.ndarray:
        """Stage 1 only: one-hot + fixed transforms, ``(n, dim)`` float64; stateless. Bad input
        raises, naming row and column."""
        frame = self.frame(rows)
        n = len(frame)
        out = np.zeros((n, self.dim), dtype=np.float64)
        if n == 0:
            return out
        models = frame["model"].astype(object).to_numpy()
        unknown = sorted({str(m) for m in models if m not in self._index})
        if unknown:
            raise UnknownModelError(
                f"model(s) {unknown} unknown to this predictor (it knows {list(self.models)})",
                hint="rank only models the predictor was built for, or build a new one with these models",
            )
        out[np.arange(n), [self._index[m] for m in models]] = 1.0
        for j, name in enumerate(NUMERIC_FEATURES):
            column = frame[name]
            try:
                values = column.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise InvalidMetaFeaturesError(f"meta-feature {name!r} is not numeric ({err})",
                                               hint=_RANGE_HINTS[name]) from err
            self._check(name, values, frame.index)
            out[:, len(self.models) + j] = _transform(name, values)
        return out

    def standardize(self, transformed: np.ndarray) -> np.ndarray:
        """Stage 2 on rows of :meth:`transform`: numeric columns standardised with the statistics
        observed so far (nothing is updated); ``(n, dim)`` float32."""
        out = np.array(np.atleast_2d(transformed), dtype=np.float64)
        numeric = len(self.models)
        out[:, numeric:] = self.statistics.apply(out[:, numeric:])
        return out.astype(np.float32)

    def encode(self, rows: FeatureRows) -> np.ndarray:
        """Encode rows into an ``(n, dim)`` float32 matrix with the current statistics (stages 1+2)."""
        return self.standardize(self.transform(rows))

    def observe(self, transformed: np.ndarray) -> None:
        """Add rows of :meth:`transform` (in order) to the running statistics: call it only for
        rows already learned from, after learning them."""
        self.statistics.observe(np.atleast_2d(transformed)[:, len(self.models):])

    @staticmethod
    def _check(name: str, values: np.ndarray, index: pd.Index) -> None:
        low, high, low_inclusive, integer = FEATURE_RANGES[name]
        bad = ~np.isfinite(values)
        bad |= (values < low) if low_inclusive else (values <= low)
        bad |= values > high
        if integer:
            bad |= np.isfinite(values) & (np.round(values) != values)
        if bad.any():
            where = int(np.flatnonzero(bad)[0])
            value = values[where]
            shown = "NaN/missing" if not math.isfinite(value) else repr(float(value))
            interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
            raise InvalidMetaFeaturesError(
                f"meta-feature {name!r} = {shown} in row {index[where]!r} is outside {interval}"
                f" ({int(bad.sum())} bad row(s))",
                hint=_RANGE_HINTS[name],
            )
