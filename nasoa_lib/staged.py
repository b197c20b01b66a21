"""The uniform network shape every model of the study has: ``stem -> stage1..stage4 -> head``.

Our searched codes (``builder``), the torchvision baseline families (``models``) and the zoo all
become a :class:`StagedNetwork`, so fine-tuning freezes "the first k stages" identically across
them (NASOA section 3.2: frozen stages are part of the fine-tuning regime).

Frozen-stage convention (NASOA Fig. 6 / our ``Regime.frozen_stages``): ``k = 0`` trains
everything; ``k >= 1`` freezes the stem and stages ``1..k``; ``k = 4`` leaves only the head.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nasoa_lib.errors import InvalidArchitectureCode, InvalidRegimeError, UnsupportedNetworkError

STAGE_NAMES: tuple[str, ...] = ("stem", "stage1", "stage2", "stage3", "stage4")
MAX_FROZEN_STAGES = 4


class StagedNetwork(nn.Module):
    """``stem``, ``stage1``..``stage4``, global average pooling, ``head`` (ends in ``nn.Linear``)."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        if len(stages) != 4:
            raise UnsupportedNetworkError(f"a StagedNetwork has exactly 4 stages, got {len(stages)}",
                                          hint="split the trunk at output strides 4, 8, 16 and 32 (one stage each)")
        self.stem = stem
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = head
        if _last_linear(head) is None:
            raise UnsupportedNetworkError("the head must contain an nn.Linear classifier",
                                          hint="end the head with nn.Linear(features, num_classes)")

    @property
    def trunk(self) -> tuple[nn.Module, ...]:
        """Stem and the four stages in order (index 0 is the stem)."""
        return (self.stem, self.stage1, self.stage2, self.stage3, self.stage4)

    @property
    def num_classes(self) -> int:
        return _last_linear(self.head).out_features  # type: ignore[union-attr]

    @property
    def feature_dim(self) -> int:
        """Width of the pooled penultimate features the head reads."""
        first = next(m for m in self.head.modules() if isinstance(m, nn.Linear))
        return first.in_features

    def run_trunk(self, x: torch.Tensor, start: int = 0, stop: int = 5) -> torch.Tensor:
        """Run trunk modules ``start..stop-1`` (0 = stem ... 4 = stage4)."""
        for module in self.trunk[start:stop]:
            x = module(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features (what the head and feature-history estimators see)."""
        return torch.flatten(self.pool(self.run_trunk(x)), 1)

    def forward_head(self, trunk_out: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(trunk_out), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.run_trunk(x))


def num_frozen_modules(frozen_stages: int) -> int:
    """How many trunk modules ``frozen_stages`` freezes (stem counts with stage 1)."""
    _check_frozen_stages(frozen_stages)
    return 0 if frozen_stages == 0 else frozen_stages + 1


def frozen_modules(model: StagedNetwork, frozen_stages: int) -> tuple[nn.Module, ...]:
    return model.trunk[: num_frozen_modules(frozen_stages)]


def freeze_stages(model: StagedNetwork, frozen_stages: int) -> StagedNetwork:
    """Freeze the stem and stages ``1..frozen_stages`` (``requires_grad=False``); unfreeze the rest."""
    n = num_frozen_modules(frozen_stages)
    for index, module in enumerate(model.trunk):
        for param in module.parameters():
            param.requires_grad_(index >= n)
    for param in model.head.parameters():
        param.requires_grad_(True)
    return model


def train_mode(model: StagedNetwork, frozen_stages: int) -> StagedNetwork:
    """``model.train()`` but frozen modules in eval mode, so their BatchNorm statistics stay fixed."""
    model.train()
    for module in frozen_modules(model, frozen_stages):
        module.eval()
    return model


def replace_head(model: StagedNetwork, num_classes: int, generator: torch.Generator | None = None) -> StagedNetwork:
    """Give the final linear layer ``num_classes`` outputs, freshly initialised (a new task's head)."""
    if num_classes < 1:
        raise InvalidArchitectureCode(f"num_classes must be >= 1, got {num_classes}",
                                      hint="pass the number of classes of the task, e.g. 10")
    old = _last_linear(model.head)
    assert old is not None
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    if generator is not None:
        bound = 1.0 / old.in_features**0.5
        with torch.no_grad():
            new.weight.uniform_(-bound, bound, generator=generator)
            if new.bias is not None:
                new.bias.uniform_(-bound, bound, generator=generator)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    _set_last_linear(model, new)
    return model


def _check_frozen_stages(frozen_stages: int) -> None:
    if not isinstance(frozen_stages, int) or not 0 <= frozen_stages <= MAX_FROZEN_STAGES:
        raise InvalidRegimeError(f"frozen_stages must be an int in 0..{MAX_FROZEN_STAGES}, got {frozen_stages!r}",
                                 hint=f"use an int from 0 to {MAX_FROZEN_STAGES}, e.g. frozen_stages=2")


def _last_linear(head: nn.Module) -> nn.Linear | None:
    if isinstance(head, nn.Linear):
        return head
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def _set_last_linear(model: StagedNetwork, new: nn.Linear) -> None:
    if isinstance(model.head, nn.Linear):
        model.head = new
        return
    names = [name for name, m in model.head.named_modules() if isinstance(m, nn.Linear)]
    parent_name, _, attr = names[-1].rpartition(".")
    parent = model.head.get_submodule(parent_name) if parent_name else model.head
    setattr(parent, attr, new)
