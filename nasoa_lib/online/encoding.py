"""Meta-features -> the predictor's input vector ``h_0`` (NASOA Eq. 3).

The encoding is **fixed, not fitted**: an online predictor sees its data one row at a time, so it
cannot standardise with statistics of a stream it has not seen yet. Every transform maps the
feature's plausible range to roughly ``[0, 1]`` so that no input dominates the first layer:

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

Values outside the validity ranges of :data:`FEATURE_RANGES` (a similarity of 1.3, a negative
learning rate, 5 frozen stages, NaN) raise :class:`InvalidMetaFeaturesError` instead of producing a
confident prediction for an input the predictor was never meant to see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nasoa_lib.errors import InvalidMetaFeaturesError, UnknownModelError
from nasoa_lib.metafeatures import FEATURE_COLUMNS, NUMERIC_FEATURES

ENCODING_VERSION = 1


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


class FeatureEncoder:
    """Encodes meta-feature rows as ``float32`` vectors: model one-hot, then the numeric features."""

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

    @property
    def dim(self) -> int:
        """Length of an encoded row: one-hot models plus the numeric features."""
        return len(self.models) + len(NUMERIC_FEATURES)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureEncoder) and other.models == self.models

    def __repr__(self) -> str:
        return f"FeatureEncoder(models={list(self.models)!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"version": ENCODING_VERSION, "models": list(self.models)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureEncoder":
        version = data.get("version", ENCODING_VERSION)
        if version != ENCODING_VERSION:
            raise InvalidMetaFeaturesError(
                f"feature encoding version {version} is not this library's ({ENCODING_VERSION})",
                hint="re-train it with this version: nasoa reproduce --only 06 --force (with your --profile)",
            )
        return cls(data["models"])

    def frame(self, rows: Any) -> pd.DataFrame:
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

    def encode(self, rows: Any) -> np.ndarray:
        """Encode rows into an ``(n, dim)`` float32 matrix; bad input raises, naming row and column."""
        frame = self.frame(rows)
        n = len(frame)
        out = np.zeros((n, self.dim), dtype=np.float32)
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
