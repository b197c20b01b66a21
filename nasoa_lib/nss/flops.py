"""Analytic FLOPs of Expanded-Search-Space networks and of network spaces (NSS Sec. 3.4, Eq. 4).

FLOPs follow the convention of the NSS paper and of RegNet [24] ("600MF"): multiply-adds of the
convolutions and of the linear head; BatchNorm, ReLU, additions and pooling are not counted.
``torch.utils.flop_counter`` counts 2 FLOPs per multiply-add, so ``2 * architecture_flops(a) ==``
its total (checked in ``tests/test_nss.py``).

Stage ``i`` (input width ``c``, width ``w``, depth ``d``, output side ``R``) costs
``R^2 (10 c w + 9 w^2 (2d - 1))``: the first block's two 3x3 convs and its 1x1 projection, then
``d - 1`` blocks of two ``w -> w`` 3x3 convs. Since stages are drawn independently and uniformly in a
network space, the space's expected FLOPs is the same polynomial in E[d], E[w], E[w^2] per stage,
which keeps the FLOPs loss of Eq. 4 exact for a sampled space and differentiable in the Gumbel gates.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from nasoa_lib.nss.spaces import STAGE_STRIDES, STEM_WIDTH, Architecture, NetworkSpace


def stage_sides(image_size: int, strides: Sequence[int] = STAGE_STRIDES) -> list[int]:
    """Output side length of each stage (3x3 convs with padding 1, stride 2 gives ceil(R/2))."""
    sides, r = [], image_size
    for s in strides:
        r = math.ceil(r / s)
        sides.append(r)
    return sides


def _polynomial(ed, ew, ew2, image_size: int, num_classes: int, stem_width: int):
    sides = stage_sides(image_size)
    total = 9 * 3 * stem_width * image_size * image_size
    c = stem_width
    for i, r in enumerate(sides):
        total = total + r * r * (10 * c * ew[i] + 9 * ew2[i] * (2 * ed[i] - 1))
        c = ew[i]
    return total + ew[-1] * num_classes


def architecture_flops(arch: Architecture, image_size: int, num_classes: int,
                       stem_width: int = STEM_WIDTH) -> int:
    """Multiply-adds of one architecture at ``image_size`` with a ``num_classes`` head."""
    ed = [float(d) for d in arch.depths]
    ew = [float(w) for w in arch.widths]
    ew2 = [float(w * w) for w in arch.widths]
    return int(round(_polynomial(ed, ew, ew2, image_size, num_classes, stem_width)))


def architecture_params(arch: Architecture, num_classes: int, stem_width: int = STEM_WIDTH) -> int:
    """Parameters of ``supernet.build(arch, num_classes)``: conv weights, BatchNorm scale and shift,
    the linear head (the first block of each stage has a 1x1 + BN projection)."""
    total = 9 * 3 * stem_width + 2 * stem_width
    c = stem_width
    for d, w in zip(arch.depths, arch.widths):
        total += 9 * c * w + 9 * w * w + 4 * w + c * w + 2 * w
        total += (d - 1) * (18 * w * w + 4 * w)
        c = w
    return total + c * num_classes + num_classes


def space_expected_flops(space: NetworkSpace, image_size: int, num_classes: int,
                         stem_width: int = STEM_WIDTH) -> float:
    """Expected multiply-adds of an architecture drawn uniformly from ``space`` (FLOPs(A) of Eq. 4)."""
    m = space.moments()
    return float(_polynomial(m["d"], m["w"], m["w2"], image_size, num_classes, stem_width))


def expected_flops_from_moments(ed: torch.Tensor, ew: torch.Tensor, ew2: torch.Tensor,
                                image_size: int, num_classes: int,
                                stem_width: int = STEM_WIDTH) -> torch.Tensor:
    """Differentiable FLOPs(A) from per-stage moments mixed by Gumbel gates (Eq. 4 inside Eq. 5)."""
    return _polynomial(ed, ew, ew2, image_size, num_classes, stem_width)


def flops_loss(flops: torch.Tensor | float, target: float) -> torch.Tensor | float:
    """|FLOPs(A) / FLOPs_target - 1| (NSS Eq. 4, the absolute reward of TuNAS [1])."""
    return abs(flops / target - 1.0)


def format_flops(value: float) -> str:
    """``'612 MF'`` / ``'1.6 GF'`` / ``'35.2 KF'`` as in the paper's tables."""
    for scale, unit in ((1e9, "GF"), (1e6, "MF"), (1e3, "KF")):
        if value >= scale:
            v = value / scale
            return f"{v:.1f} {unit}" if v < 10 else f"{v:.0f} {unit}"
    return f"{value:.0f} F"
