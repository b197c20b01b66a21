"""Fine-tuning tasks sampled from a dataset (NASOA section 4.1: "we sample subsets of classes and
images from each meta-train dataset").

A :class:`TaskSpec` is a small value (dataset, classes, images per class, seed); :func:`make_task`
turns it into arrays deterministically, so a run record stores the spec, never the images, and
re-running a spec gives the same pixels. Images of each class are drawn with their own generator
``default_rng([seed, class])``, so a class's images do not depend on which other classes were drawn.

Validation images (``validation_per_class``, for checkpoint selection without touching the test
split) come from the dataset's *train* split, drawn from the class's images that the task does not
train on, with a third stream ``default_rng([seed, class, 2])``: the training images stay exactly
those of the same spec without validation. A spec without validation has the same ``to_dict`` (so
the same run keys) as before the field existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from nasoa_lib.data.datasets import ImageDataset, load_dataset
from nasoa_lib.errors import InvalidDataError

_TEST_STREAM = 1  # second generator stream per class, for test subsets
_VALIDATION_STREAM = 2  # third stream per class, for validation images from the train split


@dataclass(frozen=True)
class TaskSpec:
    """Which classes and how many training images per class of ``dataset`` make one task."""

    dataset: str
    classes: tuple[int, ...]
    images_per_class: int
    seed: int
    test_per_class: int | None = None
    validation_per_class: int | None = None

    def __post_init__(self) -> None:
        classes = tuple(int(c) for c in self.classes)
        object.__setattr__(self, "classes", classes)
        if len(classes) < 2:
            raise InvalidDataError(
                f"task on {self.dataset!r} has {len(classes)} class(es); a task needs >= 2",
                hint="choose at least two classes",
            )
        if list(classes) != sorted(set(classes)) or classes[0] < 0:
            raise InvalidDataError(
                f"task classes {classes} must be distinct, sorted, non-negative class indices",
                hint="pass sorted(set(classes))",
            )
        if self.images_per_class < 1:
            raise InvalidDataError(
                f"images_per_class={self.images_per_class}; must be >= 1",
                hint="use at least one training image per class",
            )
        if self.test_per_class is not None and self.test_per_class < 1:
            raise InvalidDataError(
                f"test_per_class={self.test_per_class}; must be >= 1 or None (all test images)",
                hint="pass None to use every test image of the chosen classes",
            )
        if self.validation_per_class is not None and (
                isinstance(self.validation_per_class, bool) or not isinstance(self.validation_per_class, (int, np.integer))
                or self.validation_per_class < 1):
            raise InvalidDataError(
                f"validation_per_class={self.validation_per_class!r}; must be an int >= 1 or None (no validation)",
                hint="validation images come from the train split, beside the training images",
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "classes": list(self.classes),
            "images_per_class": self.images_per_class,
            "seed": self.seed,
            "test_per_class": self.test_per_class,
            **({} if self.validation_per_class is None else {"validation_per_class": int(self.validation_per_class)}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TaskSpec":
        return cls(
            dataset=str(data["dataset"]),
            classes=tuple(int(c) for c in data["classes"]),
            images_per_class=int(data["images_per_class"]),
            seed=int(data["seed"]),
            test_per_class=None if data.get("test_per_class") is None else int(data["test_per_class"]),
            validation_per_class=None if data.get("validation_per_class") is None else int(data["validation_per_class"]),
        )


@dataclass(frozen=True, eq=False)
class Task:
    """The arrays of one task; labels are relabelled ``0..k-1`` in the order of ``spec.classes``.
    ``x_val``/``y_val`` are empty when the spec has no validation images."""

    spec: TaskSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x_val is None:
            object.__setattr__(self, "x_val", self.x_train[:0])
        if self.y_val is None:
            object.__setattr__(self, "y_val", np.asarray(self.y_train)[:0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Task({self.spec.dataset!r}, classes={self.num_classes}, train={len(self.y_train)}, "
            f"test={len(self.y_test)}, seed={self.spec.seed})"
        )


def _resolve(dataset: str | ImageDataset) -> ImageDataset:
    return dataset if isinstance(dataset, ImageDataset) else load_dataset(dataset)


def sample_task_spec(
    dataset: str | ImageDataset,
    num_classes: int,
    images_per_class: int,
    seed: int,
    test_per_class: int | None = None,
    validation_per_class: int | None = None,
) -> TaskSpec:
    """Draw ``num_classes`` classes at random (``default_rng(seed)``) and check they can supply
    ``images_per_class`` training images (and ``test_per_class`` test images) each."""
    data = _resolve(dataset)
    if not 2 <= num_classes <= data.num_classes:
        raise InvalidDataError(
            f"num_classes={num_classes} for dataset {data.name!r} with {data.num_classes} classes",
            hint=f"choose 2..{data.num_classes} classes",
        )
    rng = np.random.default_rng(seed)
    classes = tuple(sorted(int(c) for c in rng.choice(data.num_classes, num_classes, replace=False)))
    spec = TaskSpec(data.name, classes, images_per_class, seed, test_per_class, validation_per_class)
    _check_counts(spec, data)
    return spec


def _check_counts(spec: TaskSpec, data: ImageDataset) -> None:
    if spec.classes[-1] >= data.num_classes:
        raise InvalidDataError(
            f"task classes {spec.classes} out of range for {data.name!r} ({data.num_classes} classes)",
            hint=f"class indices are 0..{data.num_classes - 1}",
        )
    val = spec.validation_per_class or 0
    for split, counts, wanted in (
        ("train", data.train_counts(), spec.images_per_class + val),
        ("test", data.test_counts(), spec.test_per_class),
    ):
        if wanted is None:
            continue
        chosen = counts[list(spec.classes)]
        smallest = int(chosen.min())
        if wanted > smallest:
            worst = spec.classes[int(chosen.argmin())]
            what = (f"{spec.images_per_class} training + {val} validation images per class (both from the train "
                    f"split)" if split == "train" and val else f"{wanted} {split} images per class")
            raise InvalidDataError(
                f"{what} requested from {data.name!r}, but class "
                f"{worst} ({data.class_names[worst]!r}) has only {smallest} {split} images",
                hint=(f"use at most {smallest} training + validation images per class for these classes"
                      if split == "train" and val else
                      f"use at most {smallest} {split} images per class for these classes"),
            )


def _pick(labels: np.ndarray, cls: int, count: int | None, seed_key: list[int]) -> np.ndarray:
    idx = np.flatnonzero(labels == cls)
    if count is None:
        return idx
    rng = np.random.default_rng(seed_key)
    return np.sort(rng.choice(idx, count, replace=False))


def make_task(spec: TaskSpec, dataset: ImageDataset | None = None) -> Task:
    """Build the arrays of ``spec`` (deterministic). ``dataset`` overrides loading by name, e.g.
    for a user's own data; its name must match ``spec.dataset``."""
    if dataset is not None and dataset.name != spec.dataset:
        raise InvalidDataError(
            f"task spec is for dataset {spec.dataset!r} but dataset {dataset.name!r} was given",
            hint="pass the dataset the spec was sampled from",
        )
    data = dataset if dataset is not None else load_dataset(spec.dataset)
    _check_counts(spec, data)
    train_parts, test_parts, val_parts = [], [], []
    for cls in spec.classes:
        picked = _pick(data.y_train, cls, spec.images_per_class, [spec.seed, cls])
        train_parts.append(picked)
        test_parts.append(
            _pick(data.y_test, cls, spec.test_per_class, [spec.seed, cls, _TEST_STREAM])
        )
        if spec.validation_per_class is not None:
            rest = np.setdiff1d(np.flatnonzero(data.y_train == cls), picked)
            rng = np.random.default_rng([spec.seed, cls, _VALIDATION_STREAM])
            val_parts.append(np.sort(rng.choice(rest, spec.validation_per_class, replace=False)))
    train_idx = np.concatenate(train_parts)
    test_idx = np.concatenate(test_parts)
    relabel = np.full(data.num_classes, -1, dtype=np.int64)
    relabel[list(spec.classes)] = np.arange(spec.num_classes)
    val_idx = np.concatenate(val_parts) if val_parts else None
    return Task(
        spec=spec,
        x_train=data.x_train[train_idx],
        y_train=relabel[data.y_train[train_idx]],
        x_test=data.x_test[test_idx],
        y_test=relabel[data.y_test[test_idx]],
        class_names=tuple(data.class_names[c] for c in spec.classes),
        x_val=None if val_idx is None else data.x_train[val_idx],
        y_val=None if val_idx is None else relabel[data.y_train[val_idx]],
    )


def sample_task(
    dataset: str | ImageDataset,
    num_classes: int,
    images_per_class: int,
    seed: int,
    test_per_class: int | None = None,
    validation_per_class: int | None = None,
) -> Task:
    """:func:`sample_task_spec` then :func:`make_task`."""
    data = _resolve(dataset)
    spec = sample_task_spec(data, num_classes, images_per_class, seed, test_per_class, validation_per_class)
    return make_task(spec, data)
