"""The online evaluation behind NASOA Table 3 (section 4.3) and Theorem 1's regret (notebook 06).

Every predictor sees the meta-dataset as a **stream**: row ``t`` is predicted with what was learned
from rows ``0..t-1`` (network weights, alpha, and the statistics that standardise its inputs), then
learned (:meth:`AccuracyPredictor.update`'s protocol). The cumulative error of those online
predictions is reported over the whole stream, over the 20-40 % segment and over the 80-100 %
segment, as in Table 3. The offline fixed MLP is trained once on the first 80 %
of the same ordering (the paper's 24K/6K split) and scored on the remaining 80-100 % segment only.

**Runs, not rows.** A meta-dataset row is one checkpoint of a fine-tuning run (notebook 05: the
run after 1, 2, 3, 5, ... epochs); rows of one run share ``run``. A run's checkpoints become known
together, when the run ends, so the stream is a stream of **runs**: every row of a run is predicted
before any of them is learned from (the predictor never sees the 2-epoch accuracy of the run whose
5-epoch accuracy it predicts), then its rows are learned in epoch order. Orderings shuffle whole
runs. A frame without ``run`` is a stream of single rows (each its own run).

Orderings: ordering 0 is the arrival (collection) order of the meta-dataset; ordering ``k >= 1``
is a seeded random permutation of its runs. Ordering ``k`` also seeds every predictor's
initialisation, so the spread over orderings covers both the order of the stream and the initial
weights.

**Floors of Table 3** (not in the paper). The *running mean* predicts every row of a run by the
mean accuracy of the runs seen before it, ignoring every meta-feature. The *test-set noise floor*
is the error that even a perfect predictor of a run's expected accuracy ``p`` keeps, because the
target ``A`` is measured on ``n`` test images: :func:`noise_floor_per_row` estimates
``E|A - p|`` from the accuracies ``a``, ``b`` on the two halves (even- and odd-indexed test images,
``n_e + n_o = n``): ``Var(a - b) = p(1-p)(1/n_e + 1/n_o)`` and ``Var(A) = p(1-p)/n``, so
``sd(A) = sd(a - b) sqrt(n_e n_o) / n``, and for (near-)normal errors the mean absolute values
scale like the standard deviations: ``E|A - p| = E|a - b| sqrt(n_e n_o) / n`` (``|a - b| / 2`` for
equal halves); likewise ``E(A - p)^2 = E(a - b)^2 n_e n_o / n^2``. It counts only the test-set
noise, not the spread between training seeds, so it is a floor under the true floor.

Each (predictor, ordering) run is cached in the artifact store (kind :data:`STREAM_KIND`, keyed by
the meta-dataset's fingerprint, the predictor settings and the ordering), so an interrupted
notebook resumes where it stopped and a re-run costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nasoa_lib import verdict
from nasoa_lib.errors import InvalidMetaFeaturesError, NasoaError, UnknownRunError
from nasoa_lib.metafeatures import FEATURE_COLUMNS, TARGET_COLUMN
from nasoa_lib.online.encoding import FeatureEncoder
from nasoa_lib.online.predictor import AccuracyPredictor, PredictorConfig, make_predictor
from nasoa_lib.paper import PAPER_ADAPTIVE_LABEL

if TYPE_CHECKING:
    from nasoa_lib.store import ArtifactStore
    from nasoa_lib.profiles import Profile

log = logging.getLogger(__name__)

STREAM_KIND = "online_stream"
STREAM_VERSION = 3  # 2: issue 22 (normalised Hedge losses, inputs standardised online); 3: runs as blocks
SEGMENTS: dict[str, tuple[float, float]] = {"all": (0.0, 1.0), "20-40%": (0.2, 0.4), "80-100%": (0.8, 1.0)}
ADAPTIVE_LABEL = PAPER_ADAPTIVE_LABEL
OFFLINE_LABEL = "Offline fixed MLP (L=10)"
#: Table 3's floor, not in the paper: predict the mean accuracy of the runs seen so far, ignoring
#: every meta-feature. An online predictor that does not beat it has learned nothing from them.
REFERENCE_LABEL = "Running mean (no meta-features)"
#: Table 3's second floor: the error a perfect predictor of the expected accuracy keeps because each
#: target is measured on a finite test set (:func:`noise_floor_per_row`).
NOISE_LABEL = "Test-set noise floor (perfect predictor)"
#: Issue 22's bar: the adaptive MLP's 80-100 % MAE at most this multiple of the running mean's.
RATIO_BAR = 0.75



@dataclass(frozen=True)
class OnlineConfig:
    """The profile's ``online:`` section (notebook 06). Network settings are NASOA 4.3's in every
    profile; only the number of orderings and the offline fit's epochs change with scale."""

    hidden_units: int = 64
    adaptive_depth: int = 10
    fixed_depths: tuple[int, ...] = (3, 6, 10, 14)
    offline_depth: int = 10
    lr: float = 0.01
    beta: float = 0.99
    smoothing: float = 0.2
    loss: str = "absolute"
    orderings: int = 5
    train_fraction: float = 0.8
    offline_epochs: int = 100
    offline_batch_size: int = 32
    offline_lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.orderings < 1:
            raise NasoaError(f"online.orderings={self.orderings} must be >= 1", hint="Table 3 averages >= 5 orderings")
        if not 0.0 < self.train_fraction < 1.0:
            raise NasoaError(f"online.train_fraction={self.train_fraction} must be in (0, 1)",
                             hint="NASOA trains the offline MLP on 24K of 30K runs: 0.8")
        object.__setattr__(self, "fixed_depths", tuple(int(d) for d in self.fixed_depths))

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "OnlineConfig":
        from nasoa_lib.profiles import resolve_profile

        prof = resolve_profile(profile)
        return prof.section("online", cls)

    def predictor_config(self, depth: int) -> PredictorConfig:
        """The :class:`PredictorConfig` of a ``depth``-layer contender: every other field is this
        section's field of the same name."""
        shared = {name: getattr(self, name) for name in PredictorConfig.__dataclass_fields__ if name != "depth"}
        return PredictorConfig(depth=depth, **shared)

    def contenders(self) -> list[tuple[str, str, int]]:
        """``(label, kind, depth)`` of every predictor of Table 3, in the paper's row order."""
        rows = [(f"Fixed MLP (L={d})", "fixed", d) for d in self.fixed_depths]
        rows.append((ADAPTIVE_LABEL, "adaptive", self.adaptive_depth))
        rows.append((OFFLINE_LABEL, "offline", self.offline_depth))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StreamRun:
    """One predictor on one ordering: online predictions (NaN where not scored) and, for the
    adaptive MLP, alpha and every head's bounded loss at each step."""

    label: str
    kind: str
    depth: int
    ordering: int
    order: np.ndarray
    predictions: np.ndarray
    targets: np.ndarray
    seconds: float
    alphas: np.ndarray | None = None
    head_losses: np.ndarray | None = None
    predictor: AccuracyPredictor | None = field(default=None, repr=False)

    def errors(self) -> dict[str, float]:
        """MAE and MSE per Table 3 segment (NaN for a segment the run did not score in full)."""
        return segment_errors(self.predictions, self.targets)

    @property
    def updates_per_second(self) -> float:
        scored = int(np.isfinite(self.predictions).sum())
        return scored / self.seconds if self.kind != "offline" and self.seconds > 0 else float("nan")


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------


def segment_bounds(n: int, segment: str) -> tuple[int, int]:
    """Row range ``[start, stop)`` of a Table 3 segment of a stream of ``n`` rows."""
    low, high = SEGMENTS[segment]
    return int(math.floor(low * n)), int(math.floor(high * n))


def segment_errors(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Cumulative MAE / MSE of online predictions over each segment of :data:`SEGMENTS`."""
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    out = {}
    for name in SEGMENTS:
        start, stop = segment_bounds(len(targets), name)
        p, y = predictions[start:stop], targets[start:stop]
        ok = stop > start and bool(np.isfinite(p).all())
        out[f"{name} MAE"] = float(np.mean(np.abs(p - y))) if ok else float("nan")
        out[f"{name} MSE"] = float(np.mean((p - y) ** 2)) if ok else float("nan")
    return out


def block_starts(groups: np.ndarray | None, n: int) -> np.ndarray:
    """Start row of every block (run) of a stream whose rows of one group are contiguous; every row
    its own block when ``groups`` is None."""
    if groups is None:
        return np.arange(n)
    groups = np.asarray(groups)
    return np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]) if n else np.arange(0)


def running_mean_predictions(targets: np.ndarray, prior: float = 0.5, groups: np.ndarray | None = None) -> np.ndarray:
    """Online predictions of the running mean: every row of a block (run) gets the mean of the rows
    of the blocks before it (``prior`` for the first block), so it never sees a target of its own
    run. Without ``groups`` each row is its own block."""
    targets = np.asarray(targets, dtype=np.float64)
    n = len(targets)
    if not n:
        return targets.copy()
    starts = block_starts(groups, n)
    sums = np.r_[0.0, np.cumsum(targets)]
    seen = np.where(starts > 0, sums[starts] / np.maximum(starts, 1), prior)
    lengths = np.diff(np.r_[starts, n])
    return np.repeat(seen, lengths)


def stream_order(n: int, ordering: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Row order of stream ``ordering``: 0 = arrival order, k >= 1 = a seeded permutation of the
    blocks (runs; ``groups`` gives each row's run, rows of a run contiguous), each block's rows
    kept together and in their order. Without ``groups`` every row is a block."""
    if ordering == 0:
        return np.arange(n)
    if groups is None:
        return np.random.default_rng(ordering).permutation(n)
    starts = block_starts(groups, n)
    stops = np.r_[starts[1:], n]
    blocks = np.random.default_rng(ordering).permutation(len(starts))
    return np.concatenate([np.arange(starts[b], stops[b]) for b in blocks]) if n else np.arange(0)


def noise_floor_per_row(accuracy_a: np.ndarray, accuracy_b: np.ndarray, test_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the absolute and squared error a perfect predictor of the expected accuracy keeps
    against a target measured on ``test_images`` images, estimated from the accuracies on the two
    halves (``ceil(n/2)`` even-indexed, ``floor(n/2)`` odd-indexed images): ``|a - b| sqrt(n_e n_o) / n``
    and ``(a - b)^2 n_e n_o / n^2`` (derivation in the module docstring). Averaged over rows, they
    estimate the floor's MAE and MSE."""
    a, b = np.asarray(accuracy_a, dtype=np.float64), np.asarray(accuracy_b, dtype=np.float64)
    n = np.asarray(test_images, dtype=np.float64)
    if a.shape != b.shape or a.shape != np.broadcast_shapes(a.shape, n.shape) or np.any(n < 2):
        raise InvalidMetaFeaturesError(
            f"test halves of shapes {a.shape}/{b.shape} with test-image counts {n.shape} (min {n.min() if n.size else None})",
            hint="pass one even-half and one odd-half accuracy per row and each row's test images (>= 2)")
    n_even, n_odd = np.ceil(n / 2), np.floor(n / 2)
    weight = n_even * n_odd / n**2
    return np.abs(a - b) * np.sqrt(weight), (a - b) ** 2 * weight


def average_regret(alphas: np.ndarray, head_losses: np.ndarray) -> np.ndarray:
    """Empirical average regret of the alpha sequence against the best fixed alpha in hindsight
    (Theorem 1): ``1/T sum_t alpha_t . L_t - min_alpha 1/T sum_t alpha . L_t`` for every ``T``.
    The minimum over the simplex of a linear function sits at a vertex: the best single head.
    ``head_losses`` are the recorded bounded losses (what a user pays), not the per-step normalised
    ones Hedge updates with (:func:`~nasoa_lib.online.network.normalized_losses`), for which
    Theorem 1's bound is stated."""
    alphas = np.asarray(alphas, dtype=np.float64)
    head_losses = np.asarray(head_losses, dtype=np.float64)
    steps = np.arange(1, len(alphas) + 1, dtype=np.float64)
    learner = np.cumsum((alphas * head_losses).sum(axis=1)) / steps
    best_fixed = np.cumsum(head_losses, axis=0).min(axis=1) / steps
    return learner - best_fixed


def hedge_reference(steps: np.ndarray, heads: int) -> np.ndarray:
    """An O(1/sqrt(T)) reference: Hedge's average-regret bound ``sqrt(2 ln L / T) + ln L / T`` with
    beta tuned for horizon T (Freund & Schapire 1997), the rate Theorem 1 states."""
    steps = np.asarray(steps, dtype=np.float64)
    return np.sqrt(2.0 * math.log(heads) / steps) + math.log(heads) / steps


def fingerprint(x: np.ndarray, y: np.ndarray, models: Sequence[str]) -> str:
    """Content hash of a stream (its stage-1 rows, :meth:`FeatureEncoder.transform`; changes when
    any row, target or the model list changes)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(models).encode("utf-8"))
    digest.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Running predictors on a stream
# --------------------------------------------------------------------------------------------


def run_online(predictor: AccuracyPredictor, transformed: np.ndarray, y: np.ndarray,
               record_alpha: bool = True, groups: np.ndarray | None = None,
               ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Feed rows of :meth:`FeatureEncoder.transform` block by block (a block = the rows of one run,
    ``groups``; one row per block without it): predict every row of the block with what was learned
    before it (inputs standardised with the rows seen so far), then learn its rows one at a time
    (each added to the statistics after it is learned). Returns the clipped online predictions and,
    if ``record_alpha``, the alpha used and every head's loss at each learning step."""
    n = len(y)
    predictions = np.empty(n)
    heads = len(predictor.alpha)
    alphas = np.empty((n, heads)) if record_alpha else None
    losses = np.empty((n, heads)) if record_alpha else None
    starts = block_starts(groups, n)
    stops = np.r_[starts[1:], n]
    for start, stop in zip(starts, stops):
        if stop - start > 1:
            predictions[start:stop] = predictor.network.predict(predictor.encoder.standardize(transformed[start:stop]))
        for t in range(start, stop):
            prediction, head_losses, alpha = predictor.learn_transformed(transformed[t], float(y[t]))
            if stop - start == 1:
                predictions[t] = prediction
            if record_alpha:
                alphas[t] = alpha
                losses[t] = head_losses
    return np.clip(predictions, 0.0, 1.0), alphas, losses


def run_offline(predictor: AccuracyPredictor, frame: pd.DataFrame, train_fraction: float) -> np.ndarray:
    """Fit once on the first ``train_fraction`` of ``frame`` (already in stream order); predictions
    for the rest, NaN for the training rows. The split point is the segment boundary of Table 3 (a
    run cut by it has rows on both sides: its early checkpoints are training data, as a run whose
    first epochs finished before the split would be)."""
    n = len(frame)
    split = int(math.floor(train_fraction * n))
    predictions = np.full(n, np.nan)
    if split < 1 or split >= n:
        raise InvalidMetaFeaturesError(f"a stream of {n} rows cannot be split {train_fraction:.0%} / rest",
                                       hint="collect more meta-dataset rows (notebook 05)")
    predictor.fit(frame.iloc[:split])
    predictions[split:] = predictor.predict(frame.iloc[split:])
    return predictions


def check_stream(frame: pd.DataFrame, meta_test: Sequence[str] = ()) -> pd.DataFrame:
    """The meta-dataset as a stream: required columns present, at least 10 rows, no meta-test data."""
    missing = [c for c in (*FEATURE_COLUMNS, TARGET_COLUMN) if c not in frame.columns]
    if missing:
        raise InvalidMetaFeaturesError(f"the meta-dataset lacks columns {missing}",
                                       hint="load it with nasoa_lib.metadata.load_meta_dataset(profile)")
    if len(frame) < 10:
        raise InvalidMetaFeaturesError(f"the meta-dataset has {len(frame)} rows; a stream needs at least 10",
                                       hint="collect more runs (notebook 05)")
    if "dataset" in frame.columns and meta_test:
        leaked = sorted(set(frame["dataset"]) & set(meta_test))
        if leaked:
            raise InvalidMetaFeaturesError(f"meta-test datasets {leaked} are in the predictor's training stream",
                                           hint="the meta-dataset must hold meta-train datasets only (SPEC 3)")
    if "run" in frame.columns:
        runs = frame["run"].to_numpy()
        if len(block_starts(runs, len(runs))) != len(np.unique(runs)):
            raise InvalidMetaFeaturesError("rows of one run are not contiguous in the meta-dataset",
                                           hint="load it with nasoa_lib.metadata.load_meta_dataset (sorted by index)")
    return frame.reset_index(drop=True)


def stream_groups(frame: pd.DataFrame) -> np.ndarray | None:
    """Each row's run (rows of a run form one block of the stream), or None for a frame of single runs."""
    return frame["run"].to_numpy() if "run" in frame.columns else None


def _noise(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    if not {"accuracy_even", "accuracy_odd", "test_images"} <= set(frame.columns):
        return None
    return noise_floor_per_row(frame["accuracy_even"], frame["accuracy_odd"], frame["test_images"])


def _run_key(fp: str, label: str, kind: str, config: PredictorConfig, ordering: int, train_fraction: float,
             blocks: str | None = None) -> str:
    from nasoa_lib.store import spec_key

    return spec_key({"stage": STREAM_KIND, "version": STREAM_VERSION, "data": fp, "blocks": blocks, "label": label,
                     "kind": kind,
                     "config": config.to_dict(), "ordering": ordering,
                     "train_fraction": train_fraction if kind == "offline" else None})


def _save_run(store: ArtifactStore, key: str, run: StreamRun) -> None:
    arrays = {"order": run.order, "predictions": run.predictions, "targets": run.targets}
    if run.alphas is not None:
        arrays.update(alphas=run.alphas, head_losses=run.head_losses)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    store.write_bytes(STREAM_KIND, key, "stream.npz", buffer.getvalue())
    store.write_bytes(STREAM_KIND, key, "predictor.npz", run.predictor.to_bytes())
    store.put(STREAM_KIND, key, {"label": run.label, "kind": run.kind, "depth": run.depth, "ordering": run.ordering,
                                 "seconds": run.seconds, **run.errors()})


def _load_run(store: ArtifactStore, key: str) -> StreamRun:
    record = store.get(STREAM_KIND, key)
    with np.load(io.BytesIO(store.read_bytes(STREAM_KIND, key, "stream.npz")), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    predictor = AccuracyPredictor.from_bytes(store.read_bytes(STREAM_KIND, key, "predictor.npz"))
    return StreamRun(record["label"], record["kind"], record["depth"], record["ordering"], arrays["order"],
                     arrays["predictions"], arrays["targets"], record["seconds"], arrays.get("alphas"),
                     arrays.get("head_losses"), predictor)


def run_one(frame: pd.DataFrame, models: Sequence[str], label: str, kind: str, config: PredictorConfig,
            ordering: int, train_fraction: float = 0.8) -> StreamRun:
    """One predictor on one ordering of ``frame`` (no caching)."""
    groups = stream_groups(frame)
    order = stream_order(len(frame), ordering, groups)
    stream = frame.iloc[order].reset_index(drop=True)
    y = stream[TARGET_COLUMN].to_numpy(dtype=np.float64)
    predictor = make_predictor(kind, models, seed=ordering, **config.to_dict())
    start = time.perf_counter()
    alphas = losses = None
    if kind == "offline":
        predictions = run_offline(predictor, stream, train_fraction)
    else:
        predictions, alphas, losses = run_online(predictor, predictor.encoder.transform(stream), y,
                                                 record_alpha=kind == "adaptive",
                                                 groups=None if groups is None else groups[order])
    seconds = time.perf_counter() - start
    return StreamRun(label, kind, config.depth, ordering, order, predictions, y, seconds, alphas, losses, predictor)


@dataclass
class StreamEvaluation:
    """Every run of Table 3, with the helpers the notebook plots from."""

    runs: list[StreamRun]
    rows: int
    models: tuple[str, ...]
    config: OnlineConfig
    groups: np.ndarray | None = None
    noise: tuple[np.ndarray, np.ndarray] | None = None

    def errors(self) -> pd.DataFrame:
        """One row per (predictor, ordering): MAE / MSE per segment (fractions), time, updates/s;
        plus, on each ordering, the running-mean floor (:data:`REFERENCE_LABEL`) and, when the
        meta-dataset has test halves, the test-set noise floor (:data:`NOISE_LABEL`)."""
        rows = [{"predictor": r.label, "kind": r.kind, "depth": r.depth, "ordering": r.ordering,
                 **r.errors(), "seconds": r.seconds, "updates_per_s": r.updates_per_second} for r in self.runs]
        streams = {r.ordering: (r.order, r.targets) for r in self.runs}
        for o, (order, y) in sorted(streams.items()):
            groups = None if self.groups is None else self.groups[order]
            rows.append({"predictor": REFERENCE_LABEL, "kind": "reference", "depth": 0, "ordering": o,
                         **segment_errors(running_mean_predictions(y, groups=groups), y), "seconds": 0.0,
                         "updates_per_s": float("nan")})
            if self.noise is not None:
                rows.append({"predictor": NOISE_LABEL, "kind": "floor", "depth": 0, "ordering": o,
                             **_floor_errors(self.noise[0][order], self.noise[1][order]), "seconds": 0.0,
                             "updates_per_s": float("nan")})
        return pd.DataFrame(rows)

    def table3(self) -> pd.DataFrame:
        """Table 3: mean and standard deviation over orderings of each error, in percent."""
        errors = self.errors()
        metrics = [c for c in errors.columns if c.endswith(" MAE") or c.endswith(" MSE")]
        labels = [label for label, _, _ in self.config.contenders()] + [REFERENCE_LABEL, NOISE_LABEL]
        order = {label: i for i, label in enumerate(labels)}
        grouped = errors.groupby("predictor", sort=False)[metrics]
        mean = grouped.mean() * 100.0
        std = grouped.std(ddof=1) * 100.0 if errors.ordering.nunique() > 1 else mean * np.nan
        table = pd.DataFrame(index=mean.index)
        for metric in metrics:
            table[f"{metric} %"] = mean[metric]
            table[f"{metric} % sd"] = std[metric]
        table["orderings"] = grouped.size()
        table = table.reset_index()
        return table.sort_values("predictor", key=lambda s: s.map(order)).reset_index(drop=True)

    def error_curves(self, window: int | None = None) -> pd.DataFrame:
        """Each online predictor's error along the stream, mean over orderings: ``cumulative_mae``
        (mean |error| of steps 1..t, what Table 3 reports at the end) and ``moving_mae`` (mean
        |error| of the last ``window`` steps; default a twentieth of the stream), both in percent."""
        window = window or max(1, self.rows // 20)
        steps = np.arange(1, self.rows + 1)
        frames = []
        for label, _, _ in self.config.contenders():
            runs = [r for r in self.runs if r.label == label and r.kind != "offline"]
            if not runs:
                continue
            abs_err = np.array([np.abs(r.predictions - r.targets) for r in runs])
            cumulative = np.cumsum(abs_err, axis=1) / steps
            moving = np.array([pd.Series(e).rolling(window, min_periods=1).mean().to_numpy() for e in abs_err])
            frames.append(pd.DataFrame({"predictor": label, "step": steps, "window": window,
                                        "cumulative_mae": cumulative.mean(axis=0) * 100,
                                        "moving_mae": moving.mean(axis=0) * 100}))
        return pd.concat(frames, ignore_index=True)

    def paired_differences(self) -> pd.DataFrame:
        """Per ordering and segment (whole stream, 80-100 %): the adaptive MLP's MAE minus each fixed
        MLP's and minus the running mean's, in points (negative favours the adaptive MLP)."""
        errors = self.errors()
        out = []
        for segment in ("all MAE", "80-100% MAE"):
            per = errors.pivot(index="ordering", columns="predictor", values=segment) * 100
            if ADAPTIVE_LABEL not in per:
                continue
            for label in [c for c in self._fixed_labels() if c in per] + [REFERENCE_LABEL]:
                for ordering, diff in (per[ADAPTIVE_LABEL] - per[label]).items():
                    out.append({"segment": segment, "opponent": label, "ordering": ordering,
                                "adaptive_minus_opponent": float(diff)})
        return pd.DataFrame(out, columns=["segment", "opponent", "ordering", "adaptive_minus_opponent"])

    def segment_ratio(self, segment: str = "80-100% MAE") -> pd.DataFrame:
        """Per ordering: the adaptive MLP's MAE over ``segment`` divided by the running mean's, and the
        test-set noise floor's divided by the running mean's (issue 22's bar: <= :data:`RATIO_BAR`)."""
        per = self.errors().pivot(index="ordering", columns="predictor", values=segment)
        out = pd.DataFrame({"adaptive_over_running_mean": per[ADAPTIVE_LABEL] / per[REFERENCE_LABEL]})
        if NOISE_LABEL in per:
            out["noise_floor_over_running_mean"] = per[NOISE_LABEL] / per[REFERENCE_LABEL]
        return out.reset_index()

    def _fixed_labels(self) -> list[str]:
        return [label for label, kind, _ in self.config.contenders() if kind == "fixed"]

    def claims(self) -> pd.DataFrame:
        """Table 3's claims by the study's verdict rule (:mod:`nasoa_lib.verdict`), units = orderings
        of the stream, paired: the adaptive MLP has a lower MAE than **each** fixed-depth MLP, on the
        whole stream and on its last fifth (effect: adaptive minus fixed, in MAE points; the claim
        holds when the interval lies below 0); than the running mean that ignores every meta-feature;
        and its 80-100 % MAE is at most :data:`RATIO_BAR` x the running mean's (the mean of the
        per-ordering ratios with its t interval, threshold 0.75). The test-set noise floor of the
        segment is the noise floor beside each effect (points; for the ratio, as a ratio)."""
        errors = self.errors()
        out = []
        for segment, what in (("all MAE", "whole stream"), ("80-100% MAE", "last fifth of the stream")):
            per = errors.pivot(index="ordering", columns="predictor", values=segment) * 100
            if ADAPTIVE_LABEL not in per:
                continue
            floor = float(per[NOISE_LABEL].mean()) if NOISE_LABEL in per else float("nan")
            opponents = [c for c in self._fixed_labels() if c in per] + [REFERENCE_LABEL]
            for label in opponents:
                name = "the running mean that ignores the meta-features" if label == REFERENCE_LABEL else label
                out.append(verdict.paired(f"The adaptive MLP errs less than {name}, {what} (Table 3)",
                                          per[ADAPTIVE_LABEL], per[label], direction="less", unit="MAE points",
                                          noise_floor=floor,
                                          evidence="adaptive minus opponent MAE per ordering; noise floor = "
                                                   "test-set noise floor MAE of the segment"))
        ratios = self.segment_ratio()
        floor_ratio = (float(ratios["noise_floor_over_running_mean"].mean())
                       if "noise_floor_over_running_mean" in ratios else float("nan"))
        out.append(verdict.one_sample(
            f"The adaptive MLP's 80-100% MAE is at most {RATIO_BAR} x the running mean's (it learns from the "
            "meta-features; issue 22)", ratios["adaptive_over_running_mean"], "less", unit="x", threshold=RATIO_BAR,
            noise_floor=floor_ratio,
            evidence="per-ordering ratio adaptive / running mean; noise floor = test-set noise floor / running mean"))
        return verdict.table(out)

    def run(self, label: str, ordering: int = 0) -> StreamRun:
        for r in self.runs:
            if r.label == label and r.ordering == ordering:
                return r
        labels = sorted({r.label for r in self.runs})
        orderings = sorted({r.ordering for r in self.runs})
        raise UnknownRunError(f"no run {label!r} on ordering {ordering}",
                              hint=f"runs: {', '.join(map(repr, labels))}; orderings: {orderings}")

    def adaptive_runs(self) -> list[StreamRun]:
        return [r for r in self.runs if r.kind == "adaptive"]

    def final_predictor(self, label: str, ordering: int = 0) -> AccuracyPredictor:
        """The predictor as it stands after its stream (ordering 0: the whole meta-dataset in arrival
        order; for the offline MLP: trained on its first 80 %)."""
        predictor = self.run(label, ordering).predictor
        if predictor is None:
            kept = sorted({r.label for r in self.runs if r.predictor is not None})
            raise UnknownRunError(f"run {label!r} on ordering {ordering} kept no predictor",
                                  hint=f"runs that kept their predictor: {', '.join(map(repr, kept)) or 'none'}")
        return predictor


def _floor_errors(noise_abs: np.ndarray, noise_sq: np.ndarray) -> dict[str, float]:
    """The test-set noise floor's MAE / MSE per Table 3 segment (means of the per-row estimates)."""
    out = {}
    for name in SEGMENTS:
        start, stop = segment_bounds(len(noise_abs), name)
        ok = stop > start
        out[f"{name} MAE"] = float(np.mean(noise_abs[start:stop])) if ok else float("nan")
        out[f"{name} MSE"] = float(np.mean(noise_sq[start:stop])) if ok else float("nan")
    return out


def evaluate_stream(frame: pd.DataFrame, config: OnlineConfig, store: ArtifactStore | None = None, *, models: Sequence[str] = (),
                    meta_test: Sequence[str] = (), progress: bool = True) -> StreamEvaluation:
    """Every Table 3 predictor on ``config.orderings`` orderings of the meta-dataset (cached per run),
    the meta-dataset's runs (``run``) as blocks of the stream (module docstring).

    The encoders' one-hot covers the stream's models plus ``models`` (e.g. every candidate of the
    schedule generator), sorted, so a stored predictor can rank a candidate the stream has not shown.
    """
    from tqdm.auto import tqdm

    frame = check_stream(frame, meta_test)
    models = tuple(sorted({str(m) for m in frame["model"].unique()} | {str(m) for m in models}))
    encoder = FeatureEncoder(models)
    fp = fingerprint(encoder.transform(frame), frame[TARGET_COLUMN].to_numpy(dtype=np.float64), models)
    groups = stream_groups(frame)
    blocks = None if groups is None else hashlib.sha256(np.ascontiguousarray(groups, dtype=np.int64).tobytes()).hexdigest()[:16]
    jobs = [(label, kind, config.predictor_config(depth), ordering)
            for ordering in range(config.orderings) for label, kind, depth in config.contenders()]
    runs = []
    bar = tqdm(jobs, desc="online streams", disable=not progress)
    for label, kind, pconfig, ordering in bar:
        bar.set_postfix_str(f"{label}, ordering {ordering}")
        key = _run_key(fp, label, kind, pconfig, ordering, config.train_fraction, blocks)
        if store is not None and store.has(STREAM_KIND, key):
            runs.append(_load_run(store, key))
            continue
        run = run_one(frame, models, label, kind, pconfig, ordering, config.train_fraction)
        if store is not None:
            _save_run(store, key, run)
        runs.append(run)
    return StreamEvaluation(runs, len(frame), models, config, groups, _noise(frame))


def plan(frame: pd.DataFrame, config: OnlineConfig, probe_rows: int = 200) -> pd.DataFrame:
    """Expected seconds of :func:`evaluate_stream` on ``frame``, timed now on its own rows: each
    online predictor learns ``probe_rows`` rows, the offline MLP fits one epoch (x epochs)."""
    frame = check_stream(frame)
    models = tuple(sorted(str(m) for m in frame["model"].unique()))
    n = len(frame)
    probe = frame.iloc[: min(probe_rows, n)]
    rows_out = []
    for label, kind, depth in config.contenders():
        predictor = make_predictor(kind, models, seed=0, **config.predictor_config(depth).to_dict())
        start = time.perf_counter()
        if kind == "offline":
            predictor.fit(frame.iloc[: max(1, int(config.train_fraction * n))], epochs=1)
            seconds = (time.perf_counter() - start) * config.offline_epochs
            rate = float("nan")
        else:
            run_online(predictor, predictor.encoder.transform(probe), probe[TARGET_COLUMN].to_numpy(dtype=np.float64),
                       record_alpha=kind == "adaptive")
            rate = len(probe) / (time.perf_counter() - start)
            seconds = n / rate
        rows_out.append({"predictor": label, "orderings": config.orderings, "updates_per_s": rate,
                         "expected_s": seconds * config.orderings})
    return pd.DataFrame(rows_out)
