"""A training loop with per-epoch feature-history callbacks (thesis 003, Algorithm 1 lines 1-8;
appendix A.2 for the recipe), and the NAS proxy metric built on it.

The epochs run on :func:`nasoa_lib.train.run_epochs`, the supervised form of the library's one
epoch loop, as pretraining does; what differs is the recipe and the hooks: the thesis trains with a *linear* learning-rate
decay to zero at the epoch budget (appendix A.2, after Li et al.'s budgeted training) over batches
that use every image, keeps the training images' features from the epoch's own forward passes
(``on_batch_end``) and refits and logs after every epoch (``on_epoch_end``), where a search reads
the curve. Both use the same data tensors (``data.to_tensor``), the same augmentation
(``data.random_flip_crop``) and the same model factory (``train.build_model``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasoa_lib.data import Task, to_tensor
from nasoa_lib.errors import InvalidEstimatorInput, StopTraining
from nasoa_lib.estimate.ensemble import RefitConfig, accuracy, estimate, original_probabilities, refit_key
from nasoa_lib.estimate.history import DEFAULT_WINDOW, FeatureHistory, classifier_layer
from nasoa_lib.schedule import linear_decay
from nasoa_lib.train import EpochStats, even_batches, run_epochs

log = logging.getLogger(__name__)

AUGMENTATIONS: Mapping[str, int | None] = {"none": None, "flip": 0, "flip_crop": 4}
"""Augmentation levels -> padding of :func:`nasoa_lib.data.random_flip_crop` (``None``: none)."""

EVAL_BATCH = 500


@dataclass(frozen=True)
class TrainSettings:
    """SGD with momentum and a linear lr decay to 0 at ``epochs`` (thesis appendix A.2)."""

    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: str = "flip_crop"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise InvalidEstimatorInput(
                f"training settings {self} are invalid", hint="epochs >= 1, batch_size >= 2, lr > 0"
            )
        if self.augment not in AUGMENTATIONS:
            raise InvalidEstimatorInput(
                f"augmentation {self.augment!r} is unknown", hint=f"choose one of {sorted(AUGMENTATIONS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class HistoryData:
    """Training, validation and test tensors of one task (validation: what an estimate sees;
    test: where the "true" final accuracy is measured, as in thesis appendix A.3.1)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @classmethod
    def from_task(cls, task: Task, val_per_class: int, image_size: int = 32, holdout_per_class: int = 0) -> "HistoryData":
        """Split ``val_per_class`` images of each class off the task's training images (the first
        ones of each class, deterministic) as validation set; the task's test images stay test.

        ``holdout_per_class`` further images of each class (the next ones after the validation
        images) are moved from the training pool to the *test* set: the true accuracy is then
        measured on more images, so its binomial standard error (the noise floor of every ranking
        against it) shrinks as ``1 / sqrt(test images)``; they are never trained on or looked at
        before the last epoch."""
        y = np.asarray(task.y_train)
        if val_per_class < 1 or holdout_per_class < 0:
            raise InvalidEstimatorInput(
                f"cannot split {val_per_class} validation and {holdout_per_class} held-out images per class off {task!r}",
                hint="use val_per_class >= 1 and holdout_per_class >= 0",
            )
        per_class = [np.flatnonzero(y == c) for c in range(task.num_classes)]
        val_idx = np.concatenate([idx[:val_per_class] for idx in per_class])
        hold_idx = np.concatenate([idx[val_per_class : val_per_class + holdout_per_class] for idx in per_class])
        train_mask = np.ones(len(y), dtype=bool)
        train_mask[val_idx] = False
        train_mask[hold_idx] = False
        short = min(len(idx) for idx in per_class)
        if short < val_per_class + holdout_per_class + 2:
            raise InvalidEstimatorInput(
                f"cannot split {val_per_class} validation and {holdout_per_class} held-out images per class off "
                f"{task!r}: a class has only {short} training images",
                hint="use val_per_class + holdout_per_class <= images per class - 2",
            )
        x_test = task.x_test if holdout_per_class == 0 else np.concatenate([task.x_test, task.x_train[hold_idx]])
        y_test = np.asarray(task.y_test) if holdout_per_class == 0 else np.concatenate([np.asarray(task.y_test), y[hold_idx]])
        return cls(
            x_train=to_tensor(task.x_train[train_mask], image_size),
            y_train=torch.from_numpy(y[train_mask].astype(np.int64)),
            x_val=to_tensor(task.x_train[val_idx], image_size),
            y_val=torch.from_numpy(y[val_idx].astype(np.int64)),
            x_test=to_tensor(x_test, image_size),
            y_test=torch.from_numpy(y_test.astype(np.int64)),
            num_classes=task.num_classes,
        )

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


class _FeatureTap:
    """Forward hook on the classifier layer that copies its input (the penultimate features)."""

    def __init__(self, layer: nn.Linear) -> None:
        self.last: torch.Tensor | None = None
        self.handle = layer.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.last = inputs[0].detach()

    def close(self) -> None:
        self.handle.remove()


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _forward_features(model: nn.Module, tap: _FeatureTap, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    device = _device_of(model)
    feats, logits = [], []
    for start in range(0, len(x), EVAL_BATCH):
        logits.append(model(x[start : start + EVAL_BATCH].to(device)).cpu())
        feats.append(tap.last.cpu().clone())
    return torch.cat(feats), torch.cat(logits)


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` in eval mode on CPU tensors ``x``, ``y`` (batches go to the
    model's device)."""
    model.eval()
    device = _device_of(model)
    correct = 0
    for start in range(0, len(y), EVAL_BATCH):
        out = model(x[start : start + EVAL_BATCH].to(device)).cpu()
        correct += int((out.argmax(1) == y[start : start + EVAL_BATCH]).sum())
    return correct / max(1, len(y))


def train_with_history(
    model: nn.Module,
    data: HistoryData,
    settings: TrainSettings,
    *,
    history: FeatureHistory | None = None,
    refit: RefitConfig | None = RefitConfig(),
    seed: int = 0,
    evaluate_test: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    progress: Any = None,
    device: torch.device | str | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` for ``settings.epochs`` epochs (Algorithm 1), saving feature histories.

    After each epoch the row of the returned log holds the validation accuracy of the network
    ("original"), and, when ``history`` is given, of the epoch's refitted classifier alone
    ("optimized") and of the ensemble over the kept window ("estimate", with ``refit`` settings;
    ``refit=None`` skips the refits), plus the seconds each part took. Test accuracy is measured
    after the last epoch only (the "true" accuracy; ``evaluate_test=False`` skips it).
    ``on_epoch_end(row)`` is called after each epoch; ``progress`` is a tqdm bar updated per step.
    ``device`` (default: where the model is) runs the network; data and features stay on the CPU.
    """
    if device is not None:
        model.to(device)
    device = _device_of(model)
    layer = classifier_layer(model)
    tap = _FeatureTap(layer)
    generator = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    batches = max(1, -(-n // settings.batch_size))
    if n // batches < 2:
        raise InvalidEstimatorInput(f"{n} training images cannot make batches of >= 2", hint="use more images")
    total_steps = batches * settings.epochs
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr, momentum=settings.momentum,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: linear_decay(step, total_steps))
    train_features = torch.empty((n, layer.in_features), dtype=torch.float32)
    rows: list[dict[str, Any]] = []

    def keep_features(idx: torch.Tensor, outputs: torch.Tensor) -> None:
        train_features[idx] = tap.last.cpu()  # Algorithm 1 line 4: features of this very pass

    def refit_and_log(stats: EpochStats) -> None:
        t1 = time.perf_counter()
        val_features, val_logits = _forward_features(model, tap, data.x_val)  # line 7
        val_acc = float((val_logits.argmax(1) == data.y_val).float().mean())
        row: dict[str, Any] = {
            "epoch": stats.epoch,
            "lr_end": optimizer.param_groups[0]["lr"],
            "train_loss": stats.train_loss,
            "train_acc": stats.train_top1,
            "val_acc": val_acc,
            "train_seconds": stats.seconds,
            "val_seconds": time.perf_counter() - t1,
        }
        if history is not None:
            t2 = time.perf_counter()
            item = history.record(model, stats.epoch, train_features.clone(), data.y_train, val_features)
            row["save_seconds"] = time.perf_counter() - t2
            row["history_bytes"] = history.nbytes
            row["original_acc"] = accuracy(original_probabilities(item), data.y_val)
            if refit is not None:
                est = estimate(history, refit, val_labels=data.y_val)
                row["optimized_acc"] = accuracy(history.cached_refit(stats.epoch, refit_key(refit)), data.y_val)
                row["estimate_acc"] = est.accuracy
                row["refit_seconds"] = est.seconds
        rows.append(row)
        if on_epoch_end is not None:
            on_epoch_end(row)

    try:
        run_epochs(
            model, data.x_train, data.y_train, optimizer=optimizer, scheduler=scheduler,
            loss_fn=F.cross_entropy, generator=generator, batches=even_batches(batches),
            epochs=settings.epochs, augment_padding=AUGMENTATIONS[settings.augment], device=device,
            on_batch_end=keep_features, on_epoch_end=refit_and_log, progress=progress,
        )
        if evaluate_test:
            rows[-1]["test_acc"] = evaluate_accuracy(model, data.x_test, data.y_test)
    finally:
        tap.close()
    return rows


def proxy_accuracy(
    model: nn.Module,
    data: HistoryData,
    epochs: int,
    use_estimator: bool = True,
    *,
    settings: TrainSettings | None = None,
    window: int = DEFAULT_WINDOW,
    refit: RefitConfig = RefitConfig(),
    seed: int = 0,
) -> float:
    """Proxy accuracy of a NAS candidate after ``epochs`` epochs of training on ``data``.

    ``use_estimator=True`` returns the feature-history estimate of the final accuracy (thesis
    section 3.2: the search ranks candidates by the improved estimate); ``False`` returns the
    validation accuracy of the network after the last epoch (the usual proxy). ``settings``
    defaults to :class:`TrainSettings` with ``epochs``; its lr decays to 0 at ``settings.epochs``,
    so passing a longer schedule with a smaller ``epochs`` trains a prefix of it, as HyperBand does.
    """
    settings = settings or TrainSettings(epochs=epochs)
    if not 1 <= epochs <= settings.epochs:
        raise InvalidEstimatorInput(
            f"proxy epochs {epochs} outside the schedule of {settings.epochs} epochs",
            hint="1 <= epochs <= settings.epochs",
        )
    history = FeatureHistory(window, data.y_val) if use_estimator else None
    rows: list[dict[str, Any]] = []

    def stop_after(row: dict[str, Any]) -> None:
        rows.append(row)
        if row["epoch"] >= epochs:
            raise StopTraining

    try:
        train_with_history(model, data, settings, history=history, refit=None, seed=seed,
                           evaluate_test=False, on_epoch_end=stop_after)
    except StopTraining:
        pass
    if not use_estimator:
        return float(rows[-1]["val_acc"])
    return estimate(history, refit).accuracy
