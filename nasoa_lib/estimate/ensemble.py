"""Classifier ensemble via feature histories (thesis 003, section 3.1.3, Algorithm 1 lines 9-14,
appendix A.1).

For each kept epoch k a linear classifier v_k is initialised from the network's head at epoch k and
optimised on that epoch's saved training features (cross-entropy, SGD momentum 0.9, weight decay
5e-4, lr 0.05 decaying linearly to 0, batch 1024, 5 epochs). The softmax outputs of the K refitted
classifiers on the validation features are averaged; the accuracy of the averaged distribution is
the estimate of the network's final accuracy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from nasoa_lib.errors import InvalidEstimatorInput, NoFeatureHistoryError
from nasoa_lib.estimate.history import EpochFeatures, FeatureHistory
from nasoa_lib.schedule import linear_decay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefitConfig:
    """Optimisation of each linear classifier of the ensemble (thesis appendix A.1)."""

    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 1024
    epochs: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 0 or not 0 <= self.momentum < 1:
            raise InvalidEstimatorInput(
                f"refit settings {self} are invalid",
                hint="lr > 0, batch_size >= 1, epochs >= 0, 0 <= momentum < 1 (A.1: 0.05, 1024, 5, 0.9)",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Estimate:
    """An estimate of the final accuracy and what it cost."""

    accuracy: float
    probabilities: torch.Tensor
    epochs: tuple[int, ...]
    seconds: float
    refits: int

    def __float__(self) -> float:
        return self.accuracy


def refit_linear(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    config: RefitConfig = RefitConfig(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimise a linear classifier on fixed ``features`` starting from ``(weight, bias)``
    (Algorithm 1 lines 10-11); returns new tensors, the inputs are not modified."""
    if features.ndim != 2 or weight.ndim != 2 or features.shape[1] != weight.shape[1] or features.shape[0] != labels.shape[0]:
        raise InvalidEstimatorInput(
            f"refit needs features (N, d), labels (N,), weight (C, d); got {tuple(features.shape)}, "
            f"{tuple(labels.shape)}, {tuple(weight.shape)}",
            hint="features are the input of the head's final linear layer",
        )
    w = weight.detach().clone().float().requires_grad_(True)
    b = bias.detach().clone().float().requires_grad_(True)
    optimizer = torch.optim.SGD([w, b], lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = features.shape[0]
    steps_per_epoch = max(1, -(-n // config.batch_size))
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: linear_decay(step, total))
    generator = torch.Generator().manual_seed(config.seed)
    x, y = features.float(), labels.long()
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            loss = F.cross_entropy(F.linear(x[idx], w, b), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return w.detach(), b.detach()


@torch.no_grad()
def linear_probabilities(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Softmax of a linear classifier on ``features`` (Algorithm 1 line 12)."""
    return F.softmax(F.linear(features.float(), weight, bias), dim=1)


def accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of (averaged) class distributions (Algorithm 1 line 14)."""
    if probabilities.shape[0] != labels.shape[0]:
        raise InvalidEstimatorInput(
            f"{probabilities.shape[0]} predictions for {labels.shape[0]} labels",
            hint="validation features and validation labels must describe the same images",
        )
    return float((probabilities.argmax(1) == labels).float().mean())


def refitted_probabilities(item: EpochFeatures, config: RefitConfig = RefitConfig()) -> torch.Tensor:
    """Validation class distribution of epoch ``item``'s refitted classifier v_k."""
    w, b = refit_linear(item.train_features, item.train_labels, item.head_weight, item.head_bias, config)
    return linear_probabilities(item.val_features, w, b)


def original_probabilities(item: EpochFeatures) -> torch.Tensor:
    """Validation class distribution of the network's own head at that epoch ("Original",
    thesis section 3.1.2: identical to evaluating the checkpoint)."""
    return linear_probabilities(item.val_features, item.head_weight, item.head_bias)


def refit_key(config: RefitConfig) -> tuple:
    """Memo key of a refit configuration in :class:`FeatureHistory`."""
    return tuple(sorted(config.to_dict().items()))


def estimate(
    history: FeatureHistory,
    config: RefitConfig = RefitConfig(),
    *,
    val_labels: torch.Tensor | None = None,
    reuse: bool = True,
) -> Estimate:
    """Estimated final accuracy from the kept feature history (Algorithm 1 lines 9-14).

    ``reuse=True`` takes classifiers already refitted for an epoch from the history's memo
    (same result, since v_k depends only on epoch k); ``reuse=False`` refits all K, which is the
    cost the thesis reports (about half a training epoch, appendix A.1).
    """
    if len(history) == 0:
        raise NoFeatureHistoryError(
            "no epoch's features have been saved yet, so there is nothing to estimate from",
            hint="train at least one epoch with the FeatureHistory as callback first",
        )
    labels = val_labels if val_labels is not None else history.val_labels
    if labels is None:
        raise InvalidEstimatorInput(
            "no validation labels: the history was made without val_labels and none were passed",
            hint="FeatureHistory(window, val_labels=y_val) or estimate(history, val_labels=y_val)",
        )
    labels = torch.as_tensor(labels).long()
    t0 = time.perf_counter()
    key = refit_key(config)
    total, refits = None, 0
    for item in history:
        probs = history.cached_refit(item.epoch, key) if reuse else None
        if probs is None:
            probs = refitted_probabilities(item, config)
            refits += 1
            history.cache_refit(item.epoch, key, probs)
        total = probs.clone() if total is None else total + probs
    mean = total / len(history)
    seconds = time.perf_counter() - t0
    return Estimate(accuracy(mean, labels), mean, history.epochs, seconds, refits)
