"""NASOA's meta-features of one fine-tuning run (section 3.2.1): the one place their names live.

A run is described by the model (one-hot over the candidate models), the task's domain
similarity to the source set (EMD, Cui et al. 2018), its average images per class and number of
classes, the model's source accuracy, and the regime (iterations, learning rate, frozen stages).
The meta-dataset (notebook 05), the online predictors (notebook 06) and the schedule generator
(notebook 07) all read these names from here.

**Domain similarity** (Cui et al. 2018, "Large scale fine-grained categorization and
domain-specific transfer learning", section 4.1): every image goes through one fixed
source-pretrained network (the profile's ``metafeatures.reference_model``) to its penultimate
(pooled) features; a dataset is summarised by its per-class mean features, each class weighted by
its number of images. The Earth Mover's Distance between the source's and the target's weighted
class means, with Euclidean ground distance, is solved exactly by POT's network simplex
(``ot.emd2``); similarity is ``exp(-gamma * EMD)`` with ``gamma = 0.01``, so it lies in (0, 1]
and equals 1 only for identical class-mean distributions.

A dataset's class means are computed once (on at most ``images_per_class`` images per class) and
cached in the artifact store under the dataset's content digest (sha256 of images and labels), never
its name. A task is a subset of a dataset's classes, so its target
distribution is those classes' means weighted by the task's images per class.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from nasoa_lib.errors import InvalidDataError, ProfileConfigError
from nasoa_lib.profiles import Profile, resolve_profile

if TYPE_CHECKING:
    from torch import nn

    from nasoa_lib.store import ArtifactStore
    from nasoa_lib.train import Pretrained

log = logging.getLogger(__name__)

#: Numeric meta-features, in the order the predictors' encoders use them (model one-hot comes first).
NUMERIC_FEATURES: tuple[str, ...] = (
    "domain_similarity",
    "images_per_class",
    "num_classes",
    "source_accuracy",
    "iterations",
    "lr",
    "frozen_stages",
)
#: Every meta-feature column of a meta-dataset row: the categorical model plus the numeric ones.
FEATURE_COLUMNS: tuple[str, ...] = ("model", *NUMERIC_FEATURES)
#: The prediction target: test accuracy of the fine-tuned model, a fraction in [0, 1].
TARGET_COLUMN = "accuracy"

#: Cui et al. 2018's temperature of the similarity ``exp(-gamma * EMD)``; NASOA uses their measure.
GAMMA = 0.01
CLASS_FEATURES_KIND = "class_features"
CLASS_FEATURES_FILE = "class_features.npz"


@dataclass(frozen=True)
class MetaFeatures:
    """The meta-features of one (task, model, regime) combination."""

    model: str
    domain_similarity: float
    images_per_class: float
    num_classes: int
    source_accuracy: float
    iterations: int
    lr: float
    frozen_stages: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MetaFeatures":
        return cls(**{name: data[name] for name in FEATURE_COLUMNS})


def make_meta_features(
    model: str,
    source_accuracy: float,
    domain_similarity: float,
    num_classes: int,
    images_per_class: float,
    iterations: int,
    lr: float,
    frozen_stages: int,
) -> MetaFeatures:
    """:class:`MetaFeatures` with every value checked (a bad value here would silently poison the
    predictor's training data, so it is an :class:`InvalidDataError` instead)."""
    checks = (
        ("domain_similarity", domain_similarity, 0.0 < domain_similarity <= 1.0, "a similarity exp(-gamma*EMD) is in (0, 1]"),
        ("source_accuracy", source_accuracy, 0.0 <= source_accuracy <= 1.0, "a top-1 fraction in [0, 1]"),
        ("num_classes", num_classes, num_classes >= 2, "a task has at least 2 classes"),
        ("images_per_class", images_per_class, images_per_class > 0, "at least one image per class"),
        ("iterations", iterations, iterations >= 1, "at least one optimizer step"),
        ("lr", lr, lr > 0 and math.isfinite(lr), "a finite learning rate > 0"),
        ("frozen_stages", frozen_stages, 0 <= frozen_stages <= 4, "0 (none) .. 4 (all but the head)"),
    )
    for name, value, ok, expected in checks:
        if not ok:
            raise InvalidDataError(f"meta-feature {name}={value!r} is out of range", hint=f"expected {expected}")
    return MetaFeatures(
        model=str(model), domain_similarity=float(domain_similarity), images_per_class=float(images_per_class),
        num_classes=int(num_classes), source_accuracy=float(source_accuracy), iterations=int(iterations),
        lr=float(lr), frozen_stages=int(frozen_stages),
    )


# ----------------------------------------------------------------------------------------------
# Pure formulas (Cui et al. 2018)
# ----------------------------------------------------------------------------------------------


def class_means(features: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean feature vectors ``(num_classes, dim)`` and images per class; a class without
    images is an error (its mean would be undefined)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise InvalidDataError(
            f"features {features.shape} and labels {labels.shape} do not match",
            hint="pass (N, dim) features and (N,) labels",
        )
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    if (counts == 0).any():
        raise InvalidDataError(
            f"classes {np.flatnonzero(counts == 0).tolist()} have no images; their mean feature is undefined",
            hint="every class needs at least one image",
        )
    sums = np.zeros((num_classes, features.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, features)
    return sums / counts[:, None], counts.astype(np.int64)


def _normalised(weights: np.ndarray, what: str) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or not weights.sum() > 0:
        raise InvalidDataError(f"{what} weights {weights!r} must be non-negative with a positive sum",
                               hint="use images per class")
    return weights / weights.sum()


def earth_movers_distance(
    source_means: np.ndarray, source_weights: np.ndarray, target_means: np.ndarray, target_weights: np.ndarray
) -> float:
    """EMD between two weighted sets of class means, Euclidean ground distance (Cui et al. Eq. 1).

    Weights are normalised to sum to 1 each, so the EMD is the optimal transport cost
    ``sum_ij f_ij d_ij`` with ``sum_ij f_ij = 1``, solved exactly by ``ot.emd2``.
    """
    import ot

    source_means = np.ascontiguousarray(source_means, dtype=np.float64)
    target_means = np.ascontiguousarray(target_means, dtype=np.float64)
    if source_means.ndim != 2 or target_means.ndim != 2 or source_means.shape[1] != target_means.shape[1]:
        raise InvalidDataError(
            f"class means of shapes {source_means.shape} and {target_means.shape} cannot be compared",
            hint="both sides must come from the same reference network (same feature width)",
        )
    a = _normalised(source_weights, "source")
    b = _normalised(target_weights, "target")
    if len(a) != len(source_means) or len(b) != len(target_means):
        raise InvalidDataError("one weight per class mean is needed", hint="pass images per class")
    cost = ot.dist(source_means, target_means, metric="euclidean")
    return max(0.0, float(ot.emd2(a, b, cost)))


def similarity_from_emd(emd: float, gamma: float = GAMMA) -> float:
    """Cui et al.'s domain similarity ``exp(-gamma * EMD)``: 1 for identical sets, falling with EMD."""
    if not emd >= 0 or not math.isfinite(emd):
        raise InvalidDataError(f"EMD {emd!r} must be a finite number >= 0", hint="compute it with earth_movers_distance")
    return math.exp(-gamma * emd)


@dataclass(frozen=True, eq=False)
class ClassFeatures:
    """A dataset summarised for the EMD: per-class mean penultimate features and class weights.

    ``counts`` are the classes' training images in the dataset (Cui et al.'s weights), even when
    the means were computed on a per-class subset; ``reference`` is the pretrain key of the network
    that produced the features (features of different networks are never compared).
    """

    dataset: str
    means: np.ndarray
    counts: np.ndarray
    reference: str

    def select(self, classes: Sequence[int], counts: Sequence[float] | None = None) -> "ClassFeatures":
        """The classes of a task (optionally re-weighted by the task's images per class)."""
        idx = np.asarray(list(classes), dtype=np.int64)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(self.means):
            raise InvalidDataError(f"classes {list(classes)} out of range for {self.dataset!r} "
                                   f"({len(self.means)} classes)", hint=f"class indices are 0..{len(self.means) - 1}")
        weights = self.counts[idx] if counts is None else np.asarray(counts, dtype=np.float64)
        return ClassFeatures(self.dataset, self.means[idx], weights, self.reference)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, means=self.means, counts=self.counts, dataset=np.array(self.dataset),
                 reference=np.array(self.reference))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ClassFeatures":
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return cls(str(npz["dataset"]), npz["means"], npz["counts"], str(npz["reference"]))


def emd_between(source: ClassFeatures, target: ClassFeatures) -> float:
    """EMD between two :class:`ClassFeatures` of the same reference network."""
    if source.reference != target.reference:
        raise InvalidDataError(
            f"class features of {source.dataset!r} and {target.dataset!r} come from different reference "
            f"networks ({source.reference} vs {target.reference})",
            hint="compute both with the same profile's metafeatures.reference_model",
        )
    return earth_movers_distance(source.means, source.counts, target.means, target.counts)


def domain_similarity(source: ClassFeatures, target: ClassFeatures, gamma: float = GAMMA) -> float:
    """``exp(-gamma * EMD(source, target))`` (Cui et al. 2018), the meta-feature ``domain_similarity``."""
    return similarity_from_emd(emd_between(source, target), gamma)


# ----------------------------------------------------------------------------------------------
# Features of real datasets (cached)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetaFeatureConfig:
    """The profile's ``metafeatures:`` section.

    ``reference_model`` is the source-pretrained network whose penultimate features define
    domain similarity for every dataset (Cui et al. use one fixed network); it is pretrained with
    the profile's shared recipe like every other model. Class means use at most
    ``images_per_class`` training images per class (``None``: all), drawn with ``seed``.
    """

    reference_model: str
    gamma: float = GAMMA
    images_per_class: int | None = None
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise ProfileConfigError(f"metafeatures.gamma={self.gamma!r} must be > 0", hint="Cui et al. use 0.01")
        if self.images_per_class is not None and self.images_per_class < 1:
            raise ProfileConfigError(f"metafeatures.images_per_class={self.images_per_class!r} must be >= 1 or null",
                                     hint="null uses every training image")
        if self.batch_size < 1:
            raise ProfileConfigError(f"metafeatures.batch_size={self.batch_size!r} must be >= 1", hint="e.g. 256")

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "MetaFeatureConfig":
        return resolve_profile(profile).section("metafeatures", cls)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def penultimate_features(net: nn.Module, images: np.ndarray, image_size: int, batch_size: int = 256) -> np.ndarray:
    """Pooled penultimate features ``(N, dim)`` of uint8 NHWC ``images`` (eval mode, no gradient)."""
    import torch

    from nasoa_lib.data.transforms import to_tensor

    was_training = net.training
    net.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = to_tensor(np.asarray(images[start : start + batch_size]), image_size)
            parts.append(net.forward_features(x).to(torch.float64).numpy())
    net.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, net.feature_dim))


def _subset(labels: np.ndarray, num_classes: int, per_class: int | None, seed: int) -> np.ndarray:
    if per_class is None:
        return np.arange(len(labels))
    parts = []
    for cls in range(num_classes):
        idx = np.flatnonzero(labels == cls)
        if len(idx) > per_class:
            idx = np.sort(np.random.default_rng([seed, cls]).choice(idx, per_class, replace=False))
        parts.append(idx)
    return np.concatenate(parts)


def extract_class_features(
    net: Any, dataset: Any, image_size: int, reference: str, images_per_class: int | None = None,
    seed: int = 0, batch_size: int = 256,
) -> ClassFeatures:
    """Class means of ``dataset``'s training images through ``net`` (no caching: see
    :func:`dataset_class_features`)."""
    idx = _subset(dataset.y_train, dataset.num_classes, images_per_class, seed)
    features = penultimate_features(net, dataset.x_train[idx], image_size, batch_size)
    means, _ = class_means(features, dataset.y_train[idx], dataset.num_classes)
    return ClassFeatures(dataset.name, means, dataset.train_counts().astype(np.int64), reference)


def reference_network(profile: Profile | str, store: ArtifactStore | None = None, config: MetaFeatureConfig | None = None) -> Pretrained:
    """The source-pretrained reference network (:class:`~nasoa_lib.train.Pretrained`), loaded from
    the store or pretrained with the profile's shared recipe."""
    from nasoa_lib.train import pretrain

    prof = resolve_profile(profile)
    config = config or MetaFeatureConfig.from_profile(prof)
    return pretrain(config.reference_model, profile=prof, store=_store(prof, store), progress=False)


def dataset_class_features(
    dataset: Any, profile: Profile | str, store: ArtifactStore | None = None, config: MetaFeatureConfig | None = None, reference: Pretrained | None = None
) -> ClassFeatures:
    """Class means of a dataset (name or :class:`~nasoa_lib.data.ImageDataset`), computed once per
    (dataset content, reference network, subset size) and kept in the store (kind ``class_features``).

    The cache key holds the dataset's content digest (:attr:`ImageDataset.content_sha256`), never
    its name: a user's images saved as ``gtsrb.npz`` get their own class means, and the same
    images under another name reuse them (returned under the caller's name)."""
    from nasoa_lib.data import load_dataset
    from nasoa_lib.provenance import provenance
    from nasoa_lib.store import spec_key

    prof = resolve_profile(profile)
    store = _store(prof, store)
    config = config or MetaFeatureConfig.from_profile(prof)
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    ref = reference or reference_network(prof, store, config)
    spec = {"stage": CLASS_FEATURES_KIND, "content": data.content_sha256, "reference": ref.key,
            "image_size": prof.image_size, "images_per_class": config.images_per_class, "seed": config.seed}
    key = spec_key(spec)
    if store.has(CLASS_FEATURES_KIND, key):
        cached = ClassFeatures.from_bytes(store.read_bytes(CLASS_FEATURES_KIND, key, CLASS_FEATURES_FILE))
        return ClassFeatures(data.name, cached.means, cached.counts, cached.reference)
    feats = extract_class_features(ref.model, data, prof.image_size, ref.key, config.images_per_class,
                                   config.seed, config.batch_size)
    store.write_bytes(CLASS_FEATURES_KIND, key, CLASS_FEATURES_FILE, feats.to_bytes())
    store.put(CLASS_FEATURES_KIND, key, {**spec, "dataset": data.name, "num_classes": len(feats.means),
                                         "dim": int(feats.means.shape[1]), "file": CLASS_FEATURES_FILE},
              provenance=provenance(prof.name, config.seed, "cpu"))
    return feats


def source_class_features(profile: Profile | str, store: ArtifactStore | None = None, config: MetaFeatureConfig | None = None,
                          reference: Any = None) -> ClassFeatures:
    """Class means of the profile's source set (the EMD's fixed reference distribution)."""
    prof = resolve_profile(profile)
    return dataset_class_features(prof.source_dataset, prof, store, config, reference)


def task_similarity(source: ClassFeatures, dataset_features: ClassFeatures, classes: Sequence[int],
                    images_per_class: float, gamma: float = GAMMA) -> tuple[float, float]:
    """``(EMD, similarity)`` of a task: ``classes`` of a dataset, each weighted by the task's
    ``images_per_class`` (equal weights), against the source's class means."""
    target = dataset_features.select(classes, counts=[float(images_per_class)] * len(classes))
    emd = emd_between(source, target)
    return emd, similarity_from_emd(emd, gamma)


def similarity_table(profile: Profile | str, datasets: Sequence[str] | None = None, store: ArtifactStore | None = None,
                     config: MetaFeatureConfig | None = None) -> Any:
    """EMD and domain similarity of whole datasets (all classes, class-size weights) to the source:
    the last column of NASOA Table 1 at our scale."""
    import pandas as pd

    from nasoa_lib.data import DATASET_ROLES

    prof = resolve_profile(profile)
    store = _store(prof, store)
    config = config or MetaFeatureConfig.from_profile(prof)
    ref = reference_network(prof, store, config)
    source = source_class_features(prof, store, config, ref)
    rows = []
    for name in datasets or prof.datasets:
        target = dataset_class_features(name, prof, store, config, ref)
        emd = emd_between(source, target)
        rows.append({"dataset": name, "role": DATASET_ROLES.get(name, "user"), "classes": len(target.means),
                     "emd": emd, "domain_similarity": similarity_from_emd(emd, config.gamma)})
    return pd.DataFrame(rows)


def _store(prof: Profile, store: ArtifactStore | None) -> ArtifactStore:
    from nasoa_lib.store import ArtifactStore

    return store or ArtifactStore.for_profile(prof.name)
