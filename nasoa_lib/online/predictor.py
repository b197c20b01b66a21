"""The accuracy predictor ``Acc_P`` (NASOA 3.2.1): an encoder plus one learner, one interface.

Three kinds, built by :func:`make_predictor`:

* ``"adaptive"``: the L = 10 Hedge Backpropagation MLP (NASOA Eq. 3-4), learning online;
* ``"fixed"``: a fixed-depth MLP (``depth=L``, NASOA's baselines use 3, 6, 10, 14), learning online
  with the same protocol;
* ``"offline"``: a fixed L = 10 MLP trained once by :meth:`AccuracyPredictor.fit` (NASOA 4.3's
  24K split), then frozen: its :meth:`~AccuracyPredictor.update` reports the loss but learns nothing.

Online protocol (:meth:`AccuracyPredictor.update`): predict the arriving run first, record that
prediction's loss, learn from the observed accuracy, then add the run's meta-features to the
encoder's running statistics (:mod:`~nasoa_lib.online.encoding`: inputs are standardised only with
rows already learned from). The schedule generator (notebook 07) uses the same object:
:meth:`predict` ranks a grid of candidate regimes, :meth:`update` learns from the run it
recommended, and :func:`store_predictor` / :func:`load_predictor` carry the state (weights, alpha,
update count, feature statistics) across sessions exactly. Runs that share a store learn through
:func:`update_stored_predictor` (lock, reload, update, save), so concurrent runs lose no update.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasoa_lib.errors import (
    ArtifactNotFoundError, InvalidMetaFeaturesError, InvalidPredictorConfig, PredictorNotFittedError,
    StoreCorruptedError,
)
from nasoa_lib.metafeatures import TARGET_COLUMN
from nasoa_lib.online.encoding import FeatureEncoder, RunningStandardizer
from nasoa_lib.online.network import HedgeMLP, NetworkConfig, bounded_loss
from nasoa_lib.store import ArtifactStore, atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd

    from nasoa_lib.online.encoding import FeatureRows

log = logging.getLogger(__name__)

KINDS = ("adaptive", "fixed", "offline")
PREDICTOR_KIND = "online_predictor"
"""Artifact-store kind under which :func:`store_predictor` keeps predictors (key = name)."""
PREDICTOR_FILE = "predictor.npz"
FORMAT_VERSION = 2
"""2 (issue 22): normalised Hedge losses and online-standardised inputs; a format-1 predictor learned
with other inputs and another Hedge step, so loading it is refused with a hint to re-train."""
LOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PredictorConfig:
    """Every knob of a predictor: the network (:class:`NetworkConfig`) plus offline training.

    NASOA 4.3: L = 10 layers of 64 units, learning rate 0.01, beta = 0.99. The offline fit
    (mini-batch Adam) is ours: the paper does not state how its offline MLP was trained.
    """

    depth: int = 10
    hidden_units: int = 64
    lr: float = 0.01
    beta: float = 0.99
    smoothing: float = 0.2
    loss: str = "absolute"
    offline_epochs: int = 100
    offline_batch_size: int = 32
    offline_lr: float = 1e-3

    def network(self, kind: str) -> NetworkConfig:
        """The network settings (the fields :class:`NetworkConfig` shares with this one); Hedge
        weighting only for the adaptive kind."""
        shared = {name: getattr(self, name) for name in NetworkConfig.__dataclass_fields__ if name != "hedge"}
        return NetworkConfig(hedge=kind == "adaptive", **shared)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PredictorConfig":
        return cls(**dict(data))


class AccuracyPredictor:
    """Predicts fine-tuning accuracy from meta-features and keeps learning from observed runs."""

    def __init__(self, kind: str, encoder: FeatureEncoder, config: PredictorConfig, seed: int = 0) -> None:
        if kind not in KINDS:
            raise InvalidPredictorConfig(f"unknown predictor kind {kind!r}", hint=f"choose one of {KINDS}")
        self.kind = kind
        self.encoder = encoder
        self.config = config
        self.seed = int(seed)
        self.network = HedgeMLP(config.network(kind), encoder.dim, seed=self.seed)
        self.fitted_rows = 0
        self.last_prediction: float | None = None

    # ---- the interface ---------------------------------------------------------------------------

    @property
    def alpha(self) -> np.ndarray:
        """Weights of the output heads (one per depth for ``adaptive``, ``[1.0]`` otherwise)."""
        return self.network.alpha.copy()

    @property
    def updates(self) -> int:
        """Online updates learned so far."""
        return self.network.updates

    def predict(self, features: FeatureRows) -> np.ndarray:
        """Predicted accuracy per row of ``features`` (a DataFrame or mappings), clipped to [0, 1]."""
        self._check_fitted()
        return np.clip(self.network.predict(self.encoder.encode(features)), 0.0, 1.0)

    def update(self, features: FeatureRows, accuracy: float) -> float:
        """NASOA's online step for one observed run: predict, return that prediction's bounded loss
        (the configured loss of the clipped prediction, in [0, 1]), then learn (Eq. 4) and add the
        run's meta-features to the input statistics.

        An ``offline`` predictor is frozen after :meth:`fit`: it only reports the loss.
        """
        transformed = self.encoder.transform(features)
        if transformed.shape[0] != 1:
            raise InvalidMetaFeaturesError(f"update takes one run, got {transformed.shape[0]} rows",
                                           hint="call update once per observed fine-tuning run, in arrival order")
        target = _check_accuracy(accuracy)
        if self.kind == "offline":
            self._check_fitted()
            prediction = float(self.network.predict(self.encoder.standardize(transformed))[0])
        else:
            prediction, _, _ = self.learn_transformed(transformed[0], target)
        self.last_prediction = float(np.clip(prediction, 0.0, 1.0))
        return float(bounded_loss(prediction, target, self.config.loss))

    def learn_transformed(self, transformed: np.ndarray, accuracy: float) -> tuple[float, np.ndarray, np.ndarray]:
        """:meth:`update` on one row of :meth:`FeatureEncoder.transform` (stage 1): standardise it
        with the statistics of the rows learned so far, learn, then add it to the statistics.
        Returns the network's ``(prediction, head losses, alpha used)`` for stream evaluations."""
        self._check_online()
        result = self.network.learn(self.encoder.standardize(transformed)[0], accuracy)
        self.encoder.observe(transformed)
        return result

    def learn_encoded(self, x: np.ndarray, accuracy: float) -> tuple[float, np.ndarray, np.ndarray]:
        """The network's online step on an already encoded input vector, leaving the encoder's
        statistics as they are (for benchmarks and tests of the network alone; the protocol is
        :meth:`update` / :meth:`learn_transformed`)."""
        self._check_online()
        return self.network.learn(x, accuracy)

    def _check_online(self) -> None:
        if self.kind == "offline":
            raise InvalidPredictorConfig("an offline predictor does not learn online",
                                         hint="train it once with fit(frame), then only predict")

    def fit(self, frame: pd.DataFrame, *, epochs: int | None = None) -> list[float]:
        """Train an ``offline`` predictor once on ``frame`` (meta-features + ``accuracy``); the
        input statistics are those of ``frame``, which the offline MLP sees in full."""
        if self.kind != "offline":
            raise InvalidPredictorConfig(f"fit() is for the offline predictor, not {self.kind!r}",
                                         hint="online predictors learn one run at a time with update()")
        if TARGET_COLUMN not in frame.columns:
            raise InvalidMetaFeaturesError(f"the training frame lacks the target column {TARGET_COLUMN!r}",
                                           hint="pass meta-dataset rows (nasoa_lib.metadata.load_meta_dataset)")
        if len(frame) == 0:
            raise InvalidMetaFeaturesError("cannot fit on an empty frame", hint="collect meta-dataset rows first")
        transformed = self.encoder.transform(frame)
        y = np.array([_check_accuracy(v) for v in frame[TARGET_COLUMN]], dtype=np.float64)
        self.encoder.statistics = RunningStandardizer(self.encoder.statistics.mean.size)
        self.encoder.observe(transformed)
        x = self.encoder.standardize(transformed)
        history = self.network.fit(x, y, epochs=epochs or self.config.offline_epochs,
                                   batch_size=self.config.offline_batch_size, lr=self.config.offline_lr,
                                   seed=self.seed)
        self.fitted_rows = len(frame)
        return history

    def describe(self) -> dict[str, Any]:
        """Kind, settings and learning state in plain values (for logs, cards and tables)."""
        return {"kind": self.kind, "depth": self.config.depth, "heads": len(self.network.alpha),
                "models": list(self.encoder.models), "updates": self.updates, "fitted_rows": self.fitted_rows,
                "alpha": [round(float(a), 6) for a in self.network.alpha], "seed": self.seed,
                "config": self.config.to_dict()}

    def __repr__(self) -> str:
        return (f"AccuracyPredictor(kind={self.kind!r}, depth={self.config.depth}, models={len(self.encoder.models)}, "
                f"updates={self.updates})")

    def _check_fitted(self) -> None:
        if self.kind == "offline" and self.fitted_rows == 0:
            raise PredictorNotFittedError("the offline predictor has not been fitted",
                                          hint="call fit(frame) on the meta-dataset's training split first")

    # ---- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: metadata (JSON-able) plus the network arrays."""
        meta = {"format": FORMAT_VERSION, "kind": self.kind, "seed": self.seed, "encoder": self.encoder.to_dict(),
                "config": self.config.to_dict(), "updates": self.network.updates, "fitted_rows": self.fitted_rows}
        return {"meta": meta, "arrays": self.network.state_arrays()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "AccuracyPredictor":
        meta = _check_format(state["meta"])
        predictor = cls(meta["kind"], FeatureEncoder.from_dict(meta["encoder"]),
                        PredictorConfig.from_dict(meta["config"]), seed=meta["seed"])
        predictor.network.load_state_arrays(state["arrays"], meta["updates"])
        predictor.fitted_rows = int(meta["fitted_rows"])
        return predictor

    def _assign(self, other: "AccuracyPredictor") -> None:
        """Become ``other`` in place, so callers holding this object see another process's newer state."""
        self.kind, self.encoder, self.config, self.seed = other.kind, other.encoder, other.config, other.seed
        self.network, self.fitted_rows = other.network, other.fitted_rows
        self.last_prediction = None

    def to_bytes(self) -> bytes:
        state = self.state_dict()
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.array(json.dumps(state["meta"])), **state["arrays"])
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<bytes>") -> "AccuracyPredictor":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(str(npz["__meta__"]))
                arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
        except (ValueError, KeyError, OSError, EOFError) as err:
            raise StoreCorruptedError(f"predictor file {source} cannot be read ({err})",
                                      hint=f"delete {source} and re-train: nasoa reproduce --only 06 --force (with your --profile)") from err
        return cls.from_state_dict({"meta": meta, "arrays": arrays})

    def save(self, path: str | Path) -> Path:
        """Atomically write the predictor (``.npz``: arrays + JSON metadata, no pickle)."""
        return atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> "AccuracyPredictor":
        path = Path(path)
        if not path.is_file():
            raise ArtifactNotFoundError(f"no predictor file at {path}", hint="save one with predictor.save(path)")
        return cls.from_bytes(path.read_bytes(), source=str(path))


def _check_format(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    if meta.get("format") != FORMAT_VERSION:
        raise InvalidPredictorConfig(
            f"predictor format {meta.get('format')} is not this library's {FORMAT_VERSION} (format 2, issue 22: "
            "Hedge on normalised losses, meta-features standardised online); it cannot continue learning here",
            hint="re-train it with this version: nasoa reproduce --only 06 --force (with your --profile); "
                 "a 'service' predictor then restarts from the new 'adaptive' one (delete its folder "
                 "online_predictor/service in the store)")
    return meta


def _check_accuracy(value: Any) -> float:
    try:
        target = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidMetaFeaturesError(f"accuracy {value!r} is not a number",
                                       hint="give the observed test accuracy as a fraction in [0, 1]") from err
    if not math.isfinite(target) or not 0.0 <= target <= 1.0:
        raise InvalidMetaFeaturesError(f"accuracy {value!r} is outside [0, 1]",
                                       hint="give the observed test accuracy as a fraction, not a percentage")
    return target


def make_predictor(kind: str, models: Sequence[str], seed: int = 0, **config: Any) -> AccuracyPredictor:
    """Build a predictor: ``"adaptive"`` (L = 10 Hedge MLP), ``"fixed"`` (``depth=L``) or
    ``"offline"`` (fixed L = 10, train with :meth:`AccuracyPredictor.fit`).

    ``config`` overrides :class:`PredictorConfig` fields (``depth``, ``lr``, ``beta``, ``smoothing``,
    ``loss``, ...); ``adaptive`` and ``offline`` default to depth 10 as in NASOA.
    """
    if kind not in KINDS:
        raise InvalidPredictorConfig(f"unknown predictor kind {kind!r}", hint=f"choose one of {KINDS}")
    known = set(PredictorConfig.__dataclass_fields__)
    unknown = sorted(set(config) - known)
    if unknown:
        raise InvalidPredictorConfig(f"unknown predictor settings {unknown}", hint=f"allowed: {sorted(known)}")
    return AccuracyPredictor(kind, FeatureEncoder(models), replace(PredictorConfig(), **config), seed=seed)


def store_predictor(store: ArtifactStore, name: str, predictor: AccuracyPredictor) -> Path:
    """Save ``predictor`` in the artifact store under ``name`` (atomic; replaces an older version)."""
    return store.write_bytes(PREDICTOR_KIND, name, PREDICTOR_FILE, predictor.to_bytes())


def load_predictor(store: ArtifactStore, name: str) -> AccuracyPredictor:
    """The predictor saved under ``name`` by :func:`store_predictor`."""
    try:
        data = store.read_bytes(PREDICTOR_KIND, name, PREDICTOR_FILE)
    except ArtifactNotFoundError as err:
        raise ArtifactNotFoundError(
            f"no predictor {name!r} in the store {store.root}",
            hint="train it: nasoa reproduce --only 05,06 (with your --profile; notebook 06 stores 'adaptive' and 'offline')",
        ) from err
    return AccuracyPredictor.from_bytes(data, source=str(store.artifact_path(PREDICTOR_KIND, name, PREDICTOR_FILE)))


@contextmanager
def predictor_lock(store: ArtifactStore, name: str, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold the store-wide exclusive lock of predictor ``name``
    (:meth:`~nasoa_lib.store.ArtifactStore.lock` ``online_predictor.<name>``) across processes and threads."""
    with store.lock(f"{PREDICTOR_KIND}.{name}", timeout) as path:
        yield path


def update_stored_predictor(store: ArtifactStore, name: str, features: FeatureRows, accuracy: float, *,
                            predictor: AccuracyPredictor | None = None,
                            timeout: float = LOCK_TIMEOUT_S) -> tuple[AccuracyPredictor, float]:
    """One online update (NASOA 3.2.1) applied to the *latest* stored predictor ``name``:
    lock, reload, :meth:`~AccuracyPredictor.update`, save atomically, unlock.

    Concurrent fine-tunings on one store therefore never lose an update: each is learned on top
    of every update saved before it (in lock order), instead of on the copy its process loaded at
    start. ``predictor``, when given, is the caller's in-memory copy: it is brought up to the
    stored state in place before learning (so the caller sees the saved state afterwards), and it
    is the starting point when nothing is stored under ``name`` yet (e.g. the first ``nasoa
    finetune`` starting from notebook 06's ``"adaptive"``).

    The returned loss is the reloaded predictor's loss on this run *before* learning from it. The
    prediction that ranked the recommendation came from the copy loaded earlier, so the two can
    differ when another process updated the predictor in between.
    """
    with predictor_lock(store, name, timeout=timeout):
        try:
            latest = load_predictor(store, name)
        except ArtifactNotFoundError:
            if predictor is None:
                raise ArtifactNotFoundError(f"no predictor {name!r} in the store {store.root} to update",
                                            hint="pass the starting predictor (predictor=...) or store one first "
                                                 "with store_predictor") from None
            current = predictor
        else:
            if predictor is None:
                current = latest
            else:
                predictor._assign(latest)
                current = predictor
        loss = current.update(features, accuracy)
        store_predictor(store, name, current)
    return current, loss
