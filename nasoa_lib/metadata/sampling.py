"""Which run index ``i`` of a collection is: a pure function of (config, index, datasets, models).

Every draw of run ``i`` comes from ``numpy.random.default_rng([seed, i, stream])``, so run ``i``
is the same whatever ran before it, in whichever process and order: a resumed or extended
collection plans exactly the runs a single uninterrupted one would have. The model is drawn from
a stream of its own, so adding zoo models later changes only which model new indices get.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nasoa_lib.data import DATASET_ROLES, ROLE_META_TRAIN, ImageDataset, TaskSpec
from nasoa_lib.errors import InvalidDataError
from nasoa_lib.finetune import FinetuneSettings, Regime
from nasoa_lib.metadata.config import MetaDatasetConfig
from nasoa_lib.run_length import RunLengthConfig, checkpoint_steps, checkpointed

_TASK, _MODEL, _SPLIT = 0, 1, 2
SPLIT_TRAIN, SPLIT_VALIDATION = "train", "validation"


@dataclass(frozen=True)
class DatasetCounts:
    """Images per class of one meta-train dataset (all that task sampling needs to know)."""

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]

    @classmethod
    def of(cls, dataset: ImageDataset) -> "DatasetCounts":
        return cls(dataset.name, tuple(int(c) for c in dataset.train_counts()),
                   tuple(int(c) for c in dataset.test_counts()))


@dataclass(frozen=True)
class SampledRun:
    """Run ``index`` of a collection: the task, the model's name, the regime (constant rate,
    ``iterations`` = the steps of its longest checkpoint), the seeds, and the checkpoints: ``epochs``
    (rungs of the ladder up to the run's length) and ``eval_steps`` (the same in optimizer steps)."""

    index: int
    task: TaskSpec
    model: str
    regime: Regime
    seed: int
    split: str
    epochs: tuple[int, ...] = ()
    eval_steps: tuple[int, ...] = ()

    @property
    def max_epochs(self) -> int:
        return self.epochs[-1]


def check_meta_train(datasets: Sequence[str], meta_test: Sequence[str] = ()) -> None:
    """Only meta-train datasets may enter the meta-dataset (SPEC 3: a meta-test dataset in the
    predictor's training data would leak into the final comparison)."""
    for name in datasets:
        role = DATASET_ROLES.get(name)
        if name in meta_test or role != ROLE_META_TRAIN:
            raise InvalidDataError(
                f"dataset {name!r} (role {role or 'unknown'}) cannot enter the meta-dataset: only "
                f"meta-train datasets may ({', '.join(n for n, r in DATASET_ROLES.items() if r == ROLE_META_TRAIN)})",
                hint="meta-test datasets are kept for the final NASOA vs HPO comparison; fix the profile's meta_train",
            )


def log_uniform_int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high]`` with ``P(n)`` proportional to ``log((n + 1) / n)``."""
    if low >= high:
        return int(low)
    value = math.floor(math.exp(rng.uniform(math.log(low), math.log(high + 1))))
    return int(min(max(value, low), high))


def log_uniform(rng: np.random.Generator, low: float, high: float, digits: int = 4) -> float:
    """A float log-uniform in ``[low, high]``, rounded to ``digits`` significant digits (readable rows)."""
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if low < high else float(low)
    return float(f"{value:.{digits}g}")


def sample_run(
    config: MetaDatasetConfig, index: int, datasets: Sequence[DatasetCounts], models: Sequence[str],
    settings: FinetuneSettings, run_length: RunLengthConfig,
) -> SampledRun:
    """Run ``index``: task, model, regime and length drawn from ``config``'s ranges and
    ``run_length``'s ladder (see :mod:`nasoa_lib.metadata.config`)."""
    if not datasets:
        raise InvalidDataError("no meta-train dataset to sample tasks from", hint="set the profile's meta_train")
    if not models:
        raise InvalidDataError("no model to sample", hint="pretrain the profile's baselines or build the zoo")
    check_meta_train([d.name for d in datasets])
    rng = np.random.default_rng([config.seed, index, _TASK])
    data = datasets[int(rng.integers(len(datasets)))]
    n_classes = len(data.train)
    k_high = min(config.num_classes[1], n_classes)
    k = int(rng.integers(min(config.num_classes[0], k_high), k_high + 1))
    classes = tuple(sorted(int(c) for c in rng.choice(n_classes, k, replace=False)))
    train_cap = min(data.train[c] for c in classes)
    test_cap = min(data.test[c] for c in classes)
    if train_cap < 1 or test_cap < 1:
        raise InvalidDataError(f"dataset {data.name!r}: classes {classes} have a class without train or test images",
                               hint="check the dataset's manifest and file")
    ipc_high = min(config.images_per_class[1], train_cap)
    images_per_class = log_uniform_int(rng, min(config.images_per_class[0], ipc_high), ipc_high)
    task_seed = int(rng.integers(2**31))
    task = TaskSpec(data.name, classes, images_per_class, task_seed, min(config.test_per_class, test_cap))
    lr = log_uniform(rng, *config.lr)
    ladder = run_length.ladder()
    epochs = ladder[: int(rng.integers(len(ladder))) + 1]
    frozen = int(config.frozen_stages[int(rng.integers(len(config.frozen_stages)))])
    train_images = k * images_per_class
    eval_steps = checkpoint_steps(epochs, train_images, settings.batch_size)
    regime = checkpointed(settings).regime(lr=lr, iterations=eval_steps[-1], frozen_stages=frozen)
    seed = int(rng.integers(2**31))
    model = models[int(np.random.default_rng([config.seed, index, _MODEL]).integers(len(models)))]
    in_validation = np.random.default_rng([config.seed, index, _SPLIT]).random() < config.validation_fraction
    return SampledRun(index, task, model, regime, seed, SPLIT_VALIDATION if in_validation else SPLIT_TRAIN,
                      tuple(epochs), eval_steps)
