"""Feature histories (thesis 003, section 3.1.2 and Algorithm 1 lines 4, 7, 8).

After every training epoch the network's penultimate features of the training images (collected
during the epoch's own forward passes, line 4) and of the validation images (one extra forward pass
at the end of the epoch, line 7) are saved together with the head's weights at that epoch (line 8).
Only the most recent ``window`` (K) epochs are kept, so memory stays bounded by
``K * (N_train + N_val) * d`` floats however long the network trains.

"Penultimate features" are the input of the head's *final* linear layer: for the usual linear head
(ResNet, RegNet, our codes) that is the pooled trunk output; for an MLP head (MobileNetV3) it is the
hidden layer the last ``nn.Linear`` reads, so the refitted classifier of :mod:`.ensemble` is exactly
"the network's linear classifier" h(.; w_cls) of thesis section 3.1.1 in both cases. The
training features are taken from the training pass itself (Algorithm 1 line 4), so they are
features of the augmented images in train mode (batch-norm batch statistics; for a head with
dropout before its last layer, after dropout); the validation features come from eval mode.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Iterator

import torch
from torch import nn

from nasoa_lib.errors import InvalidEstimatorInput, NoFeatureHistoryError

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 10
"""K = 10 most recent epochs (thesis section 3.1.2 and appendix A.1)."""


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The final ``nn.Linear`` of ``model.head`` (or of ``model`` itself): the linear classifier
    h(.; w_cls) whose input is what a feature history saves."""
    head = getattr(model, "head", model)
    if isinstance(head, nn.Linear):
        return head
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise InvalidEstimatorInput(
            f"{type(model).__name__} has no nn.Linear classifier in its head",
            hint="feature histories need a StagedNetwork (nasoa_lib.train.build_model) or a model "
            "whose last layer is an nn.Linear",
        )
    return linears[-1]


@dataclass(frozen=True, eq=False)
class EpochFeatures:
    """What one epoch leaves behind: features of training and validation images and the head."""

    epoch: int
    train_features: torch.Tensor
    train_labels: torch.Tensor
    val_features: torch.Tensor
    head_weight: torch.Tensor
    head_bias: torch.Tensor

    def __post_init__(self) -> None:
        tf, vf, w, b, y = self.train_features, self.val_features, self.head_weight, self.head_bias, self.train_labels
        shapes = (
            f"train_features {tuple(tf.shape)}, train_labels {tuple(y.shape)}, val_features "
            f"{tuple(vf.shape)}, head_weight {tuple(w.shape)}, head_bias {tuple(b.shape)}"
        )
        ok = (
            tf.ndim == 2 and vf.ndim == 2 and w.ndim == 2 and b.ndim == 1 and y.ndim == 1
            and tf.shape[1] == vf.shape[1] == w.shape[1]
            and tf.shape[0] == y.shape[0] and w.shape[0] == b.shape[0]
            and tf.shape[0] > 0 and vf.shape[0] > 0
        )
        if not ok:
            raise InvalidEstimatorInput(
                f"epoch {self.epoch}: mismatched feature-history shapes ({shapes})",
                hint="train/val features must be (N, d) with the head's d = in_features, one label "
                "per training feature row, head weight (C, d) and bias (C,)",
            )
        if y.dtype not in (torch.int64, torch.int32) or int(y.min()) < 0 or int(y.max()) >= w.shape[0]:
            raise InvalidEstimatorInput(
                f"epoch {self.epoch}: training labels must be integers in 0..{w.shape[0] - 1}, got "
                f"{y.dtype} in [{int(y.min())}, {int(y.max())}]",
                hint="pass the task's relabelled targets (nasoa_lib.data.Task.y_train)",
            )

    @property
    def feature_dim(self) -> int:
        return int(self.train_features.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.head_weight.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(
            t.element_size() * t.nelement()
            for t in (self.train_features, self.train_labels, self.val_features, self.head_weight, self.head_bias)
        )

    def to_dict(self, dtype: torch.dtype = torch.float16) -> dict[str, Any]:
        """Tensors for ``torch.save`` (features in ``dtype``, half precision by default to halve
        the stored size; the refit runs in float32 after loading)."""
        return {
            "epoch": self.epoch,
            "train_features": self.train_features.to(dtype),
            "train_labels": self.train_labels,
            "val_features": self.val_features.to(dtype),
            "head_weight": self.head_weight,
            "head_bias": self.head_bias,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpochFeatures":
        return cls(
            epoch=int(data["epoch"]),
            train_features=data["train_features"].float(),
            train_labels=data["train_labels"].long(),
            val_features=data["val_features"].float(),
            head_weight=data["head_weight"].float(),
            head_bias=data["head_bias"].float(),
        )


class FeatureHistory:
    """The K most recent epochs of features (a ring buffer), plus the validation labels.

    ``add`` evicts the oldest epoch once K are held, so :attr:`nbytes` never exceeds K epochs'
    worth. Refit results are memoised per kept epoch (:mod:`.ensemble`), since classifier
    v_k depends only on epoch k's features (Algorithm 1 lines 10-11): estimating after every epoch
    then refits one classifier per epoch instead of K, with the same result.
    """

    def __init__(self, window: int = DEFAULT_WINDOW, val_labels: torch.Tensor | None = None) -> None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise InvalidEstimatorInput(
                f"feature-history window K={window!r}; it must be an integer >= 1",
                hint="the thesis uses K = 10 (appendix A.1); K = 1 is a single refitted classifier",
            )
        self.window = window
        self.val_labels = None if val_labels is None else torch.as_tensor(val_labels).long()
        self._epochs: OrderedDict[int, EpochFeatures] = OrderedDict()
        self._refits: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._epochs)

    def __iter__(self) -> Iterator[EpochFeatures]:
        return iter(self._epochs.values())

    def __repr__(self) -> str:
        return f"FeatureHistory(K={self.window}, epochs={self.epochs}, {self.nbytes / 2**20:.1f} MiB)"

    @property
    def epochs(self) -> tuple[int, ...]:
        """Epoch numbers held, oldest first."""
        return tuple(self._epochs)

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept features, labels and heads (the estimator's memory cost)."""
        return sum(e.nbytes for e in self._epochs.values())

    @property
    def latest(self) -> EpochFeatures:
        if not self._epochs:
            raise NoFeatureHistoryError(
                "no epoch's features have been saved yet",
                hint="train at least one epoch with the FeatureHistory as callback "
                "(nasoa_lib.estimate.train_with_history) before estimating",
            )
        return next(reversed(self._epochs.values()))

    def add(self, features: EpochFeatures) -> None:
        """Keep ``features`` as the newest epoch, dropping the oldest beyond the window."""
        if self._epochs:
            last = self.latest
            if features.epoch <= last.epoch:
                raise InvalidEstimatorInput(
                    f"epoch {features.epoch} added after epoch {last.epoch}",
                    hint="add epochs in increasing order, once each",
                )
            if (features.feature_dim, features.num_classes) != (last.feature_dim, last.num_classes):
                raise InvalidEstimatorInput(
                    f"epoch {features.epoch} has d={features.feature_dim}, C={features.num_classes} "
                    f"but earlier epochs have d={last.feature_dim}, C={last.num_classes}",
                    hint="one FeatureHistory belongs to one network",
                )
        if self.val_labels is not None and features.val_features.shape[0] != self.val_labels.shape[0]:
            raise InvalidEstimatorInput(
                f"epoch {features.epoch}: {features.val_features.shape[0]} validation feature rows "
                f"but {self.val_labels.shape[0]} validation labels",
                hint="compute validation features on the same validation images every epoch",
            )
        self._epochs[features.epoch] = features
        while len(self._epochs) > self.window:
            oldest, _ = self._epochs.popitem(last=False)
            self._refits.pop(oldest, None)

    def record(
        self,
        model: nn.Module,
        epoch: int,
        train_features: torch.Tensor,
        train_labels: torch.Tensor,
        val_features: torch.Tensor,
    ) -> EpochFeatures:
        """Save one epoch (Algorithm 1 lines 4, 7, 8): features plus a copy of the head's final
        linear layer as it is now."""
        layer = classifier_layer(model)
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
        item = EpochFeatures(
            epoch=int(epoch),
            train_features=train_features.detach().float().cpu(),
            train_labels=torch.as_tensor(train_labels).long().cpu(),
            val_features=val_features.detach().float().cpu(),
            head_weight=layer.weight.detach().float().cpu().clone(),
            head_bias=bias.detach().float().cpu().clone(),
        )
        self.add(item)
        return item

    # -- refit memo (filled and read by ensemble.estimate) ---------------------------------------

    def cached_refit(self, epoch: int, key: Hashable) -> Any:
        found = self._refits.get(epoch)
        return None if found is None or found[0] != key else found[1]

    def cache_refit(self, epoch: int, key: Hashable, value: Any) -> None:
        if epoch in self._epochs:
            self._refits[epoch] = (key, value)

    # -- persistence --------------------------------------------------------------------------------

    def state_dict(self, dtype: torch.dtype = torch.float16) -> dict[str, Any]:
        """The kept epochs as plain tensors (features stored in ``dtype``)."""
        return {
            "window": self.window,
            "val_labels": self.val_labels,
            "epochs": [e.to_dict(dtype) for e in self._epochs.values()],
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "FeatureHistory":
        history = cls(int(state["window"]), state.get("val_labels"))
        for item in state["epochs"]:
            history.add(EpochFeatures.from_dict(item))
        return history
