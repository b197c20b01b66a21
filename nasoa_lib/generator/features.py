"""The task side of G(D, T): D's meta-features (NASOA section 3.2.1) and the sizes the time model needs.

"Those variables can be easily calculated ahead of the fine-tuning": number of classes, average
images per class and the domain similarity to the source set (Cui et al. 2018's exp(-0.01 EMD),
:mod:`nasoa_lib.metafeatures`). A task of a prepared dataset gets exactly the collector's formula
(the dataset's class means of the chosen classes, weighted by the task's images per class), so a
meta-test task is described the way the predictor's training rows were; a user's own data is one
whole dataset (its class means weighted by its class sizes, Cui et al.'s weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from nasoa_lib.errors import InvalidDataError

if TYPE_CHECKING:
    from nasoa_lib.data import ImageDataset, Task
    from nasoa_lib.profiles import Profile
    from nasoa_lib.store import ArtifactStore


@dataclass(frozen=True)
class TaskFeatures:
    """What G(D, T) knows about D: its meta-features plus its sizes (for the time model).

    ``n_validation``: validation images a run also evaluates at its end (a meta-test task of
    notebook 07 has them; a user's data has none), counted with ``n_test`` by :attr:`n_evaluated`."""

    name: str
    num_classes: int
    n_train: int
    n_test: int
    domain_similarity: float
    smallest_class: int
    n_validation: int = 0

    @property
    def images_per_class(self) -> float:
        """NASOA's "average #. images per class"."""
        return self.n_train / self.num_classes

    @property
    def n_evaluated(self) -> int:
        """Images a run evaluates at its end (test plus validation): the time model's evaluation size."""
        return self.n_test + self.n_validation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TaskFeatures":
        fields = cls.__dataclass_fields__
        return cls(**{k: d[k] for k in fields if k in d or k != "n_validation"})


def describe(data: ImageDataset | Task, domain_similarity: float, name: str | None = None) -> TaskFeatures:
    """:class:`TaskFeatures` of a :class:`~nasoa_lib.data.Task` or :class:`~nasoa_lib.data.ImageDataset`."""
    y_train = np.asarray(data.y_train)
    counts = np.bincount(y_train, minlength=int(data.num_classes)) if y_train.size else np.zeros(int(data.num_classes))
    label = name or (data.spec.dataset if hasattr(data, "spec") else data.name)
    y_val = getattr(data, "y_val", None)
    return TaskFeatures(str(label), int(data.num_classes), int(len(y_train)), int(len(data.y_test)),
                        float(domain_similarity), int(counts.min()) if counts.size else 0,
                        0 if y_val is None else int(len(y_val)))


def check_size(features: TaskFeatures, min_images_per_class: int) -> None:
    """A task the engine cannot fine-tune and evaluate meaningfully is refused before any work."""
    if features.num_classes < 2:
        raise InvalidDataError(f"{features.name!r} has {features.num_classes} class(es); a classifier needs >= 2",
                               hint="give at least two classes (one folder per class)")
    if features.smallest_class < min_images_per_class:
        raise InvalidDataError(
            f"dataset {features.name!r} is too small: its smallest class has {features.smallest_class} training "
            f"image(s); fine-tuning needs at least {min_images_per_class} per class",
            hint=f"add images so every class has >= {min_images_per_class} for training (plus test images)",
        )
    if features.n_test < 1:
        raise InvalidDataError(f"dataset {features.name!r} has no test images, so accuracy cannot be measured",
                               hint="keep some images for testing (an image folder is split 80/20 automatically)")


def task_similarity(task: Task, profile: Profile | str, store: ArtifactStore | None = None) -> float:
    """Domain similarity of a task of a prepared dataset, exactly as the meta-dataset computes it."""
    from nasoa_lib import metafeatures as mf

    config = mf.MetaFeatureConfig.from_profile(profile)
    reference = mf.reference_network(profile, store, config)
    source = mf.source_class_features(profile, store, config, reference)
    target = mf.dataset_class_features(task.spec.dataset, profile, store, config, reference)
    _, similarity = mf.task_similarity(source, target, task.spec.classes, task.spec.images_per_class, config.gamma)
    return float(similarity)


def dataset_similarity(dataset: ImageDataset, profile: Profile | str, store: ArtifactStore | None = None) -> float:
    """Domain similarity of a whole dataset (e.g. a user's :class:`~nasoa_lib.data.ImageDataset`):
    its class means weighted by class sizes against the source's (Cui et al. 2018)."""
    from nasoa_lib import metafeatures as mf

    config = mf.MetaFeatureConfig.from_profile(profile)
    reference = mf.reference_network(profile, store, config)
    source = mf.source_class_features(profile, store, config, reference)
    target = mf.dataset_class_features(dataset, profile, store, config, reference)
    return float(mf.domain_similarity(source, target, config.gamma))
