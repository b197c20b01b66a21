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
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn

from nasoa_lib.errors import ArtifactNotFoundError, InvalidArchitectureCode, ProfileConfigError, UnknownModelError
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.schedule import warmup_cosine
from nasoa_lib.staged import StagedNetwork

if TYPE_CHECKING:
    from nasoa_lib.store import ArtifactStore

log = logging.getLogger(__name__)

PRETRAINED_KIND = "pretrained"
CHECKPOINT_KIND = "pretrain_checkpoint"
WEIGHTS_FILE = "weights.pt"
CHECKPOINT_FILE = "checkpoint.pt"
EVAL_BATCH = 500


@dataclass(frozen=True)
class PretrainRecipe:
    """SGD + momentum with linear warm-up then cosine decay to 0, stepped per iteration.

    ``images_per_class`` / ``test_images_per_class`` subsample the source set (``None`` = all) so
    the smoke profile can pretrain on a few hundred images; ``small_image_stem`` is the stem choice
    of :func:`nasoa_lib.models.create` (it changes the weights, so it is part of the recipe).
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

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ProfileConfigError(
                f"pretrain recipe needs epochs >= 1, batch_size >= 2, lr > 0; got {self}",
                hint="fix epochs, batch_size and lr in the profile's pretrain: section",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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


def pretrain_spec(
    name_or_code: str, source: str, recipe: PretrainRecipe, profile: Profile | str, seed: int = 0
) -> dict[str, Any]:
    """Everything that determines the pretrained weights (hashed by :func:`pretrain_key`)."""
    prof = resolve_profile(profile)
    return {
        "stage": "pretrain",
        "model": name_or_code,
        "source": source,
        "recipe": recipe.to_dict(),
        "profile": prof.name,
        "image_size": prof.image_size,
        "seed": seed,
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
        except ArtifactNotFoundError:  # the store dropped the record whose weights are gone
            log.warning("pretrain %s: the stored weights are gone; training again", model_name_or_code)

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

    from nasoa_lib.data.transforms import random_flip_crop

    bar = _progress(total=total_steps, initial=start_epoch * steps_per_epoch, enabled=progress,
                    desc=f"pretrain {model_name_or_code}")
    n = len(y_train)
    for epoch in range(start_epoch, recipe.epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if recipe.augment:
                xb = random_flip_crop(xb, generator=generator)
            out = model(xb)
            loss = loss_fn(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            seen += len(idx)
            bar.update(1)
        train_seconds = time.perf_counter() - t0
        test_top1 = evaluate(model, x_test, y_test)
        epoch_log.append(
            {
                "epoch": epoch + 1,
                "train_loss": loss_sum / seen,
                "train_top1": correct / seen,
                "test_top1": test_top1,
                "train_seconds": train_seconds,
                "eval_seconds": time.perf_counter() - t0 - train_seconds,
                "images_per_second": seen / train_seconds,
                "pid": os.getpid(),
            }
        )
        bar.set_postfix(epoch=epoch + 1, top1=f"{test_top1:.3f}")
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
                "epoch": epoch + 1,
                "log": epoch_log,
            },
        )
    bar.close()

    store.save_torch(PRETRAINED_KIND, key, WEIGHTS_FILE, model.state_dict())
    from nasoa_lib.provenance import provenance

    record = {
        **pretrain_spec(model_name_or_code, source, recipe, prof, seed),
        "num_classes": num_classes,
        "train_images": n,
        "test_images": len(y_test),
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
    from nasoa_lib.data import load_dataset
    from nasoa_lib.data.transforms import to_tensor

    data = load_dataset(source)
    train_idx = _per_class_subset(data.y_train, recipe.images_per_class, seed)
    test_idx = _per_class_subset(data.y_test, recipe.test_images_per_class, seed + 1)
    return (
        to_tensor(data.x_train[train_idx], image_size),
        torch.from_numpy(data.y_train[train_idx].astype(np.int64)),
        to_tensor(data.x_test[test_idx], image_size),
        torch.from_numpy(data.y_test[test_idx].astype(np.int64)),
        int(data.num_classes),
    )


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
