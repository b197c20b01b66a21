"""Pretraining on the source set: one recipe shared by every baseline, zoo model and code.

NASOA pretrains every zoo model and every baseline on ImageNet "following common practice"
(section 4.2) and feeds each model's ImageNet accuracy to the predictor (section 3.2.1). Our
stand-in for ImageNet is the profile's source set (``tinyimagenet100``); :func:`pretrain` trains
any registered baseline (``models.create``) or architecture code (``builder.build``) on it with
the profile's :class:`PretrainRecipe`, so accuracy and speed comparisons between models are fair.

Reliability (SPEC 13): a checkpoint (model, optimizer, scheduler position, RNG states, epoch,
per-epoch log) is written atomically after every epoch; a run killed at any point resumes from the
last finished epoch and never trains an epoch twice. A finished pretraining is a store record of
kind ``pretrained`` plus its ``weights.pt`` artifact, keyed by :func:`pretrain_key` of (model,
source, recipe, profile, image size, seed); asking again loads it instead of training, and a
record whose weights file is gone is trained again (the store drops it) instead of failing.

:func:`epoch_loop` is the one epoch loop of the library: per epoch a batch order, a step per batch
that returns a record, ``progress`` after each step and ``on_epoch_end`` with the epoch's records.
:func:`run_epochs` is its supervised form over shuffled batches (augmentation, forward, backward,
optimizer and scheduler step, per-epoch loss/accuracy/seconds, ``on_batch_end`` / ``on_epoch_end``
hooks); ``pretrain`` and the feature-history training (:mod:`nasoa_lib.estimate.training`) both run
on it. The NSS super networks (:mod:`nasoa_lib.nss`) run on :func:`epoch_loop` with their own steps:
each draws an architecture (path) from the epoch's own numpy generator, sets its learning rate by
hand and clips gradients, and the search follows each weight step with an architecture step on the
other half of the data.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, Mapping, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

from nasoa_lib.errors import ArtifactNotFoundError, InvalidArchitectureCode, ProfileConfigError, UnknownModelError
from nasoa_lib.kinds import PRETRAINED_KIND
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.schedule import warmup_cosine
from nasoa_lib.staged import StagedNetwork

if TYPE_CHECKING:
    import pandas as pd

    from nasoa_lib.store import ArtifactStore

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "pretrain_checkpoint"
WEIGHTS_FILE = "weights.pt"
CHECKPOINT_FILE = "checkpoint.pt"
EVAL_BATCH = 500
AUGMENT_PADDING = 4
"""Padding (pixels) of the pretraining's random flip + crop (``recipe.augment``)."""
SUBSET_SEED = 0
"""Seed of a recipe's class subset and validation hold-out: fixed, so every seed of a proxy trains
on the same classes and is scored on the same images."""
LATER_FIELDS = ("classes", "validation_per_class")


@dataclass(frozen=True)
class PretrainRecipe:
    """SGD + momentum with linear warm-up then cosine decay to 0, stepped per iteration.

    ``images_per_class`` / ``test_images_per_class`` subsample the source set (``None`` = all) so
    the smoke profile can pretrain on a few hundred images; ``small_image_stem`` is the stem choice
    of :func:`nasoa_lib.models.create` (it changes the weights, so it is part of the recipe).

    A search's proxy (:class:`nasoa_lib.search.ProxySpec`) also uses ``classes`` (train on a fixed
    subset of that many source classes, drawn once with seed :data:`SUBSET_SEED`) and
    ``validation_per_class`` (score the model on that many *training-split* images per class held out
    from its training, the same images for every seed, instead of the test split: a search selects
    on validation, never on the test images its models are later reported on).
    """

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    augment: bool = True
    label_smoothing: float = 0.0
    images_per_class: int | None = None
    test_images_per_class: int | None = None
    small_image_stem: bool = False
    classes: int | None = None
    validation_per_class: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ProfileConfigError(
                f"pretrain recipe needs epochs >= 1, batch_size >= 2, lr > 0; got {self}",
                hint="fix epochs, batch_size and lr in the profile's pretrain: section",
            )
        for name in ("classes", "validation_per_class"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ProfileConfigError(f"pretrain recipe {name}={value!r} must be >= 1 or null",
                                         hint=f"set {name} to a positive number, or null for the default")

    def to_dict(self) -> dict[str, Any]:
        """The recipe as stored and hashed. ``classes`` and ``validation_per_class`` (added later)
        are left out while unset, so the keys of pretrainings stored before them stay valid."""
        d = asdict(self)
        for name in LATER_FIELDS:
            if d[name] is None:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PretrainRecipe":
        return cls(**dict(data))

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "PretrainRecipe":
        """The profile's ``pretrain:`` section (``configs/profiles.yaml``); the stem choice comes
        from the ``models:`` section (``small_image_stem``), shared with step-time measurements."""
        from nasoa_lib.models import ModelsConfig

        prof = resolve_profile(profile)
        recipe = prof.section("pretrain", cls)
        return replace(recipe, small_image_stem=ModelsConfig.from_profile(prof).small_image_stem)


@dataclass(frozen=True, eq=False)
class Pretrained:
    """A source-pretrained model: the network (source head), its source top-1 and its record."""

    name: str
    model: StagedNetwork
    source_top1: float
    record: Mapping[str, Any]
    key: str

    @property
    def image_size(self) -> int:
        return int(self.record["image_size"])

    @property
    def small_image_stem(self) -> bool:
        return bool(self.record["recipe"]["small_image_stem"])


def build_model(
    name_or_code: str, num_classes: int, image_size: int = 32, small_image_stem: bool = False
) -> StagedNetwork:
    """The one place a name or an architecture code becomes a network: a registered baseline
    name goes to :func:`nasoa_lib.models.create`, anything else is parsed as an architecture code
    by :func:`nasoa_lib.builder.build`."""
    from nasoa_lib import models

    if models.is_registered(name_or_code):
        return models.create(name_or_code, num_classes, image_size=image_size, small_image_stem=small_image_stem)
    try:
        from nasoa_lib import builder
    except ImportError as err:  # pragma: no cover - builder always ships with the library
        raise UnknownModelError(
            f"{name_or_code!r} is not a registered baseline and the architecture builder is unavailable",
            hint=f"registered baselines: {', '.join(models.available())}",
        ) from err
    try:
        return builder.build(name_or_code, num_classes, image_size=image_size, small_image_stem=small_image_stem)
    except InvalidArchitectureCode as err:
        raise UnknownModelError(
            f"{name_or_code!r} is neither a registered baseline nor a valid architecture code ({err})",
            hint=f"registered baselines: {', '.join(models.available())}; codes look like "
            "'011-_32_2-211-2-111122'",
        ) from err


Batch = TypeVar("Batch")
Record = TypeVar("Record")


@dataclass(frozen=True)
class EpochRecords(Generic[Record]):
    """What one epoch of :func:`epoch_loop` produced: ``epoch`` counts from 1 (it is also the number
    of finished epochs, what a checkpoint stores), ``records`` are the step's return values in batch
    order, ``seconds`` the wall-clock of the epoch's batch order and steps (``progress`` included,
    ``on_epoch_end`` not)."""

    epoch: int
    records: list[Record]
    seconds: float


def epoch_loop(
    epochs: Iterable[int],
    batches: Callable[[int], Iterable[Batch]],
    step: Callable[[Batch], Record],
    *,
    on_epoch_end: Callable[[EpochRecords[Record]], None] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> None:
    """The one epoch loop of the library: for each 0-based ``epoch`` of ``epochs``, ``batches(epoch)``
    gives the epoch's batches, then per batch ``record = step(batch)`` and ``progress(1)``; after the
    batches ``on_epoch_end(EpochRecords(epoch + 1, records, seconds))`` (logs, evaluation,
    checkpoints; an exception there, e.g. :class:`~nasoa_lib.errors.StopTraining`, ends the run).

    ``batches`` is called once at the start of each epoch, before any step: it draws the epoch's
    order and sets whatever the epoch's steps share (train mode, per-epoch generators carried in
    the batches). Resuming is the caller's: restore the state its steps read, then pass
    ``range(finished epochs, total epochs)``.
    """
    for epoch in epochs:
        t0 = time.perf_counter()
        records = []
        for batch in batches(epoch):
            records.append(step(batch))
            if progress is not None:
                progress(1)
        if on_epoch_end is not None:
            on_epoch_end(EpochRecords(epoch + 1, records, time.perf_counter() - t0))


@dataclass(frozen=True)
class EpochStats:
    """What one epoch of :func:`run_epochs` measured on its training batches (``epoch`` counts from
    1; ``loss_sum`` is the sum of each batch's mean loss times its size; ``seconds`` is the wall-clock
    of the epoch's batches, ``on_batch_end`` included, ``on_epoch_end`` not: :class:`EpochRecords`)."""

    epoch: int
    loss_sum: float
    correct: int
    seen: int
    seconds: float

    @property
    def train_loss(self) -> float:
        return self.loss_sum / self.seen

    @property
    def train_top1(self) -> float:
        return self.correct / self.seen

    @property
    def images_per_second(self) -> float:
        return self.seen / self.seconds


def full_batches(batch_size: int) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """Batches of :func:`run_epochs`: consecutive slices of ``batch_size`` of the shuffled order, the
    short remainder dropped (one batch of everything when there are fewer images than that)."""

    def split(order: torch.Tensor) -> list[torch.Tensor]:
        steps = max(1, len(order) // batch_size)
        return [order[step * batch_size : (step + 1) * batch_size] for step in range(steps)]

    return split


def even_batches(count: int) -> Callable[[torch.Tensor], Sequence[torch.Tensor]]:
    """Batches of :func:`run_epochs`: the shuffled order split into ``count`` batches whose sizes
    differ by at most one (every image is used every epoch)."""

    def split(order: torch.Tensor) -> Sequence[torch.Tensor]:
        return torch.tensor_split(order, count)

    return split


def run_epochs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    generator: torch.Generator,
    batches: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    epochs: int,
    start_epoch: int = 0,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    augment_padding: int | None = None,
    device: torch.device | str | None = None,
    on_batch_end: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    on_epoch_end: Callable[[EpochStats], None] | None = None,
    progress: Any = None,
) -> None:
    """Train ``model`` on ``x``, ``y`` for epochs ``start_epoch + 1 .. epochs`` (:func:`epoch_loop`
    with a plain supervised step).

    Each epoch puts the model in train mode, shuffles with ``torch.randperm(n, generator)``, splits
    the order with ``batches`` (:func:`full_batches`, :func:`even_batches`) and per batch: random
    flip + crop with ``augment_padding`` (``None``: none) from the same ``generator``, moves the
    batch to ``device`` (``None``: leave it where it is), forward, ``loss_fn``, zero_grad, backward,
    optimizer step, scheduler step, then ``on_batch_end(image indices, outputs)`` and
    ``progress.update(1)``. After the batches, ``on_epoch_end(EpochStats)`` (evaluation, logs,
    checkpoints; an exception there, e.g. :class:`~nasoa_lib.errors.StopTraining`, ends the run).
    Resuming is the caller's: restore model, optimizer, scheduler and ``generator`` state, then pass
    the number of finished epochs as ``start_epoch``.
    """
    from nasoa_lib.data.transforms import random_flip_crop

    n = len(y)

    def epoch_batches(epoch: int) -> Sequence[torch.Tensor]:
        model.train()
        return batches(torch.randperm(n, generator=generator))

    def train_step(idx: torch.Tensor) -> tuple[float, int, int]:
        """One supervised step; its record is (mean loss, correct predictions, images)."""
        xb, yb = x[idx], y[idx]
        if augment_padding is not None:
            xb = random_flip_crop(xb, padding=augment_padding, generator=generator)
        if device is not None:
            xb, yb = xb.to(device), yb.to(device)
        out = model(xb)
        loss = loss_fn(out, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        record = (float(loss.detach()), int((out.detach().argmax(1) == yb).sum()), len(idx))
        if on_batch_end is not None:
            on_batch_end(idx, out)
        return record

    def epoch_stats(epoch: EpochRecords[tuple[float, int, int]]) -> None:
        loss_sum, correct, seen = 0.0, 0, 0
        for loss, right, size in epoch.records:
            loss_sum += loss * size
            correct += right
            seen += size
        on_epoch_end(EpochStats(epoch.epoch, loss_sum, correct, seen, epoch.seconds))

    epoch_loop(range(start_epoch, epochs), epoch_batches, train_step,
               on_epoch_end=None if on_epoch_end is None else epoch_stats,
               progress=None if progress is None else progress.update)


def pretrain_spec(
    name_or_code: str, source: str, recipe: PretrainRecipe, profile: Profile | str, seed: int = 0
) -> dict[str, Any]:
    """Everything that determines the pretrained weights (hashed by :func:`pretrain_key`), with the
    builder's down-sampling rule for a code whose blocks pool (:func:`nasoa_lib.builder.key_fields`)."""
    from nasoa_lib.builder import key_fields

    prof = resolve_profile(profile)
    return {
        "stage": "pretrain",
        "model": name_or_code,
        "source": source,
        "recipe": recipe.to_dict(),
        "profile": prof.name,
        "image_size": prof.image_size,
        "seed": seed,
        **key_fields(name_or_code),
    }


def pretrain_key(
    name_or_code: str, source: str, recipe: PretrainRecipe, profile: Profile | str, seed: int = 0
) -> str:
    from nasoa_lib.store import spec_key

    return spec_key(pretrain_spec(name_or_code, source, recipe, profile, seed))


def pretrain(
    model_name_or_code: str,
    source: str | None = None,
    recipe: PretrainRecipe | None = None,
    profile: Profile | str = "laptop",
    store: ArtifactStore | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Pretrained:
    """Pretrain on ``source`` (default: the profile's source set) with ``recipe`` (default: the
    profile's ``pretrain:`` section), resuming from the last epoch checkpoint; a finished run is
    loaded from the store instead of trained again."""
    from nasoa_lib.store import ArtifactStore

    prof = resolve_profile(profile)
    source = source or prof.source_dataset
    recipe = recipe or PretrainRecipe.from_profile(prof)
    store = store or ArtifactStore.for_profile(prof.name)
    key = pretrain_key(model_name_or_code, source, recipe, prof, seed)
    if store.has(PRETRAINED_KIND, key):
        try:
            return _load(store, key, model_name_or_code)
        except ArtifactNotFoundError:  # a record whose weights file is gone but not listed with it
            log.warning("pretrain %s: the stored weights are gone; training again", model_name_or_code)
            store.delete(PRETRAINED_KIND, key)

    x_train, y_train, x_test, y_test, num_classes = _source_tensors(source, recipe, prof.image_size, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(model_name_or_code, num_classes, prof.image_size, recipe.small_image_stem)
    steps_per_epoch = max(1, len(y_train) // recipe.batch_size)
    total_steps = steps_per_epoch * recipe.epochs
    warmup_steps = int(round(recipe.warmup_epochs * steps_per_epoch))
    params_decay = [p for p in model.parameters() if p.ndim > 1]
    params_no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [
            {"params": params_decay, "weight_decay": recipe.weight_decay},
            {"params": params_no_decay, "weight_decay": 0.0},
        ],
        lr=recipe.lr,
        momentum=recipe.momentum,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps)
    )
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    start_epoch, epoch_log = 0, []
    if store.artifact_exists(CHECKPOINT_KIND, key, CHECKPOINT_FILE):
        ckpt = store.load_torch(CHECKPOINT_KIND, key, CHECKPOINT_FILE)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        generator.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        start_epoch, epoch_log = int(ckpt["epoch"]), list(ckpt["log"])
        log.info("pretrain %s: resuming after epoch %d of %d", model_name_or_code, start_epoch, recipe.epochs)
    else:
        torch.manual_seed(seed)

    bar = _progress(total=total_steps, initial=start_epoch * steps_per_epoch, enabled=progress,
                    desc=f"pretrain {model_name_or_code}")

    def evaluate_and_checkpoint(stats: EpochStats) -> None:
        t0 = time.perf_counter()
        test_top1 = evaluate(model, x_test, y_test)
        epoch_log.append(
            {
                "epoch": stats.epoch,
                "train_loss": stats.train_loss,
                "train_top1": stats.train_top1,
                "test_top1": test_top1,
                "train_seconds": stats.seconds,
                "eval_seconds": time.perf_counter() - t0,
                "images_per_second": stats.images_per_second,
                "pid": os.getpid(),
            }
        )
        bar.set_postfix(epoch=stats.epoch, top1=f"{test_top1:.3f}")
        store.save_torch(
            CHECKPOINT_KIND,
            key,
            CHECKPOINT_FILE,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": stats.epoch,
                "log": epoch_log,
            },
        )

    run_epochs(
        model, x_train, y_train, optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn,
        generator=generator, batches=full_batches(recipe.batch_size), epochs=recipe.epochs,
        start_epoch=start_epoch, augment_padding=AUGMENT_PADDING if recipe.augment else None,
        on_epoch_end=evaluate_and_checkpoint, progress=bar,
    )
    bar.close()

    store.save_torch(PRETRAINED_KIND, key, WEIGHTS_FILE, model.state_dict())
    from nasoa_lib.provenance import provenance

    record = {
        **pretrain_spec(model_name_or_code, source, recipe, prof, seed),
        "num_classes": num_classes,
        "train_images": len(y_train),
        "test_images": len(y_test),
        "scored_on": "test" if recipe.validation_per_class is None else "validation",
        "source_top1": epoch_log[-1]["test_top1"],
        "curve": epoch_log,
        "train_seconds": sum(e["train_seconds"] for e in epoch_log),
        "images_per_second": float(np.median([e["images_per_second"] for e in epoch_log])),
        "num_params": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "weights": WEIGHTS_FILE,
    }
    store.put(PRETRAINED_KIND, key, record, provenance=provenance(prof.name, seed, "cpu"))
    store.delete(CHECKPOINT_KIND, key)
    return _load(store, key, model_name_or_code)


def load_pretrained(
    name_or_code: str,
    profile: Profile | str = "laptop",
    source: str | None = None,
    recipe: PretrainRecipe | None = None,
    store: ArtifactStore | None = None,
    seed: int = 0,
) -> Pretrained:
    """The finished pretraining of ``name_or_code`` under the profile's recipe (never trains)."""
    from nasoa_lib.reporting.runner import service_build_command
    from nasoa_lib.store import ArtifactStore

    prof = resolve_profile(profile)
    source = source or prof.source_dataset
    recipe = recipe or PretrainRecipe.from_profile(prof)
    store = store or ArtifactStore.for_profile(prof.name)
    key = pretrain_key(name_or_code, source, recipe, prof, seed)
    if not store.has(PRETRAINED_KIND, key):
        raise ArtifactNotFoundError(
            f"no finished pretraining of {name_or_code!r} on {source!r} for profile {prof.name!r} "
            f"(key {key}) in {store.root}",
            hint=(f"run the notebooks that pretrain it: {service_build_command(prof.name)}; "
                  f"or nasoa_lib.train.pretrain({name_or_code!r}, profile={prof.name!r})"),
        )
    return _load(store, key, name_or_code)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on tensors ``x``, ``y``; restores the train flag."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(y), batch_size):
        correct += int((model(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(1, len(y))


def _source_tensors(
    source: str, recipe: PretrainRecipe, image_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Training and scoring tensors of ``recipe`` on ``source``: the class subset (relabelled
    0..k-1), the training images (a per-class subset drawn with ``seed``) and the scoring images
    (the held-out validation images, or a per-class subset of the test split)."""
    from nasoa_lib.data import load_dataset
    from nasoa_lib.data.transforms import to_tensor

    data = load_dataset(source)
    keep = _class_subset(int(data.num_classes), recipe.classes)
    labels = {int(c): i for i, c in enumerate(keep)}
    train_pool = np.flatnonzero(np.isin(data.y_train, keep))
    if recipe.validation_per_class is not None:
        held = _per_class_subset(data.y_train[train_pool], recipe.validation_per_class, SUBSET_SEED)
        score_x, score_y = data.x_train, data.y_train
        score_idx = train_pool[held]
        train_pool = np.delete(train_pool, held)
    else:
        score_x, score_y = data.x_test, data.y_test
        test_pool = np.flatnonzero(np.isin(data.y_test, keep))
        score_idx = test_pool[_per_class_subset(data.y_test[test_pool], recipe.test_images_per_class, seed + 1)]
    train_idx = train_pool[_per_class_subset(data.y_train[train_pool], recipe.images_per_class, seed)]

    def relabel(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array([labels[int(v)] for v in y], dtype=np.int64))

    return (
        to_tensor(data.x_train[train_idx], image_size),
        relabel(data.y_train[train_idx]),
        to_tensor(score_x[score_idx], image_size),
        relabel(score_y[score_idx]),
        len(keep),
    )


def _class_subset(num_classes: int, classes: int | None) -> np.ndarray:
    """All classes, or ``classes`` of them drawn once with :data:`SUBSET_SEED` (sorted)."""
    if classes is None or classes >= num_classes:
        return np.arange(num_classes)
    return np.sort(np.random.default_rng(SUBSET_SEED).choice(num_classes, classes, replace=False))


def _per_class_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    parts = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        parts.append(np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False)))
    return np.concatenate(parts)


def _load(store: ArtifactStore, key: str, name: str) -> Pretrained:
    record = store.get(PRETRAINED_KIND, key)
    model = build_model(
        record["model"], int(record["num_classes"]), int(record["image_size"]),
        bool(record["recipe"]["small_image_stem"]),
    )
    model.load_state_dict(store.load_torch(PRETRAINED_KIND, key, WEIGHTS_FILE))
    model.eval()
    return Pretrained(name=name, model=model, source_top1=float(record["source_top1"]), record=record, key=key)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, initial: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False)


# ------------------------------------------------------------------------ planning a pretraining stage


def split_size(manifest: Any, split: str, per_class: int | None) -> int:
    """Images of a split after the recipe's per-class subset (``None``: the whole split)."""
    total = int(getattr(manifest, f"n_{split}"))
    if per_class is None:
        return total
    return min(total, per_class * int(manifest.num_classes))


def pretraining_plan(profile: Profile | str, models: Sequence[str], store: ArtifactStore | None = None) -> pd.DataFrame:
    """Expected pretraining minutes per model (measured training images/s at the recipe's batch;
    models already in the store cost nothing)."""
    import pandas as pd

    from nasoa_lib.data import load_manifest
    from nasoa_lib.measure import MeasureConfig, measure_step_time
    from nasoa_lib.store import ArtifactStore

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    recipe = PretrainRecipe.from_profile(prof)
    manifest = load_manifest(prof.source_dataset)
    n_train = split_size(manifest, "train", recipe.images_per_class)
    rows = []
    for name in models:
        done = store.has(PRETRAINED_KIND, pretrain_key(name, prof.source_dataset, recipe, prof))
        model = build_model(name, manifest.num_classes, prof.image_size, recipe.small_image_stem)
        m = MeasureConfig.from_profile(prof)
        timing = measure_step_time(model, recipe.batch_size, prof.image_size, warmup=m.warmup, steps=m.steps,
                                   threads=prof.threads)
        minutes = 0.0 if done else recipe.epochs * n_train / timing.images_per_second / 60 * 1.1
        rows.append({"model": name, "train_images_per_second": timing.images_per_second, "epochs": recipe.epochs,
                     "train_images": n_train, "cached": done, "expected_minutes": minutes})
    return pd.DataFrame(rows)


def pretrain_models(profile: Profile | str, models: Sequence[str] | Mapping[str, str],
                    store: ArtifactStore | None = None, progress: bool = True) -> dict[str, Pretrained]:
    """Pretrain (or load) every model with the profile's shared recipe: ``models`` is a list of
    names/codes, or ``{display name: name or code}`` (e.g. ``released/ET-NAS-A`` -> its code)."""
    from nasoa_lib.store import ArtifactStore

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    targets = dict(models) if isinstance(models, Mapping) else {name: name for name in models}
    return {name: pretrain(target, profile=prof, store=store, progress=progress) for name, target in targets.items()}
