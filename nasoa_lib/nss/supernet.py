"""Weight-sharing super network of the Expanded Search Space (NSS supplementary 6.3.1, Figs 7-8).

One super kernel per convolution holds ``w_max`` channels; a width ``w`` is *channel masking* [33]:
keep the first ``w`` channels, zero the rest. One deepest stage holds ``d_max`` blocks; a depth
``d`` is *block masking*: the output of block ``d`` is the stage output. Zeroed channels contribute
nothing to the next convolution, so running the first ``w`` channels only (slicing) gives the same
values as masking at a fraction of the cost; :class:`SuperNet` slices by default and masks with
``mask=True`` (the test pins the two to equal outputs).

BatchNorm in the super network uses batch statistics (no running averages), because one set of
running statistics cannot serve every width and depth; evaluation therefore runs on batches of a
few hundred images, as the usual BN recalibration of one-shot evaluation does.

:func:`build` gives the stand-alone network of one architecture (ordinary BatchNorm), and
:meth:`SuperNet.extract` copies the shared weights into it.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasoa_lib.nss.spaces import STAGE_STRIDES, Architecture, ExpandedSpace


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, width: int) -> torch.Tensor:
    return F.batch_norm(x, None, None, bn.weight[:width], bn.bias[:width], training=True,
                        eps=bn.eps)


class SuperBlock(nn.Module):
    """Basic residual block [8] with super kernels (two 3x3 convs, BN + ReLU; Fig 8)."""

    def __init__(self, in_max: int, out_max: int, stride: int, project: bool) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_max, out_max, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_max, track_running_stats=False)
        self.conv2 = nn.Conv2d(out_max, out_max, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_max, track_running_stats=False)
        self.proj = nn.Conv2d(in_max, out_max, 1, stride, 0, bias=False) if project else None
        self.proj_bn = nn.BatchNorm2d(out_max, track_running_stats=False) if project else None

    def forward(self, x: torch.Tensor, in_width: int, width: int, mask: bool) -> torch.Tensor:
        """``x`` carries ``in_width`` live channels (all of its channels when slicing)."""
        if mask:
            return self._forward_masked(x, in_width, width)
        cin = x.shape[1]
        h = F.conv2d(x, self.conv1.weight[:width, :cin], None, self.stride, 1)
        h = F.relu(_bn(h, self.bn1, width))
        h = F.conv2d(h, self.conv2.weight[:width, :width], None, 1, 1)
        h = _bn(h, self.bn2, width)
        if self.proj is not None:
            s = _bn(F.conv2d(x, self.proj.weight[:width, :cin], None, self.stride), self.proj_bn, width)
        else:
            s = x
        return F.relu(h + s)

    def _forward_masked(self, x: torch.Tensor, in_width: int, width: int) -> torch.Tensor:
        out_max = self.conv1.weight.shape[0]
        m = torch.zeros(1, out_max, 1, 1, dtype=x.dtype, device=x.device)
        m[:, :width] = 1.0

        def bn_full(t: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
            return F.batch_norm(t, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)

        h = F.relu(bn_full(F.conv2d(x, self.conv1.weight, None, self.stride, 1), self.bn1)) * m
        h = bn_full(F.conv2d(h, self.conv2.weight, None, 1, 1), self.bn2) * m
        if self.proj is not None:
            s = bn_full(F.conv2d(x, self.proj.weight, None, self.stride), self.proj_bn) * m
        else:
            s = x
        return F.relu(h + s) * m


class SuperNet(nn.Module):
    """Stem (3x3, 16 ch) + 3 stages of ``d_max`` super blocks of ``w_max`` channels + GAP + FC (Fig 7).

    ``forward(x, arch, depth_gates, width_gates)``: the gates are per-stage scalars from the hard
    Gumbel-softmax (value 1, gradient to the space logits; GDAS [6]); the width gate multiplies every
    block output of its stage, the depth gate the stage output, so a single path is computed.
    """

    def __init__(self, expanded: ExpandedSpace, num_classes: int) -> None:
        super().__init__()
        self.expanded = expanded
        self.num_classes = num_classes
        w0 = expanded.stem_width
        self.stem = nn.Conv2d(3, w0, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(w0, track_running_stats=False)
        stages = []
        in_max = w0
        for stride in STAGE_STRIDES[: expanded.num_stages]:
            blocks = [SuperBlock(in_max, expanded.w_max, stride, project=True)]
            blocks += [SuperBlock(expanded.w_max, expanded.w_max, 1, project=False)
                       for _ in range(expanded.d_max - 1)]
            stages.append(nn.ModuleList(blocks))
            in_max = expanded.w_max
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(expanded.w_max, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, arch: Architecture, *, mask: bool = False,
                depth_gates: Sequence[torch.Tensor] | None = None,
                width_gates: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        self.expanded.check(arch)
        h = F.relu(_bn(F.conv2d(x, self.stem.weight, None, 1, 1), self.stem_bn,
                       self.expanded.stem_width))
        in_width = self.expanded.stem_width
        for i, (blocks, d, w) in enumerate(zip(self.stages, arch.depths, arch.widths)):
            for block in blocks[:d]:
                h = block(h, in_width, w, mask)
                in_width = w
                if width_gates is not None:
                    h = h * width_gates[i]
            if depth_gates is not None:
                h = h * depth_gates[i]
        pooled = h.mean(dim=(2, 3))
        width = arch.widths[-1]
        if mask:
            return F.linear(pooled, self.head.weight, self.head.bias)
        return F.linear(pooled, self.head.weight[:, :width], self.head.bias)

    @torch.no_grad()
    def extract(self, arch: Architecture) -> "StandaloneNet":
        """The stand-alone network of ``arch`` holding a copy of the shared weights it uses."""
        net = build(arch, self.num_classes, self.expanded.stem_width)
        net.stem.weight.copy_(self.stem.weight)
        _copy_bn(net.stem_bn, self.stem_bn, self.expanded.stem_width)
        cin = self.expanded.stem_width
        for blocks, sblocks, d, w in zip(net.stages, self.stages, arch.depths, arch.widths):
            for block, sblock in zip(blocks, sblocks[:d]):
                block.conv1.weight.copy_(sblock.conv1.weight[:w, :cin])
                block.conv2.weight.copy_(sblock.conv2.weight[:w, :w])
                _copy_bn(block.bn1, sblock.bn1, w)
                _copy_bn(block.bn2, sblock.bn2, w)
                if block.proj is not None:
                    block.proj.weight.copy_(sblock.proj.weight[:w, :cin])
                    _copy_bn(block.proj_bn, sblock.proj_bn, w)
                cin = w
        net.head.weight.copy_(self.head.weight[:, :cin])
        net.head.bias.copy_(self.head.bias)
        return net


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, width: int) -> None:
    dst.weight.copy_(src.weight[:width])
    dst.bias.copy_(src.bias[:width])


class BasicBlock(nn.Module):
    """Stand-alone basic residual block (Fig 8); the first block of a stage projects its input."""

    def __init__(self, cin: int, width: int, stride: int, project: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.proj = nn.Conv2d(cin, width, 1, stride, 0, bias=False) if project else None
        self.proj_bn = nn.BatchNorm2d(width) if project else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        s = self.proj_bn(self.proj(x)) if self.proj is not None else x
        return F.relu(h + s)


class StandaloneNet(nn.Module):
    """One network of the Expanded Search Space (Fig 7), built only by :func:`build`."""

    def __init__(self, arch: Architecture, num_classes: int, stem_width: int) -> None:
        super().__init__()
        self.arch = arch
        self.stem = nn.Conv2d(3, stem_width, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(stem_width)
        stages, cin = [], stem_width
        for stride, d, w in zip(STAGE_STRIDES, arch.depths, arch.widths):
            blocks = [BasicBlock(cin, w, stride, True)] + [BasicBlock(w, w, 1, False) for _ in range(d - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem_bn(self.stem(x)))
        for stage in self.stages:
            h = stage(h)
        return self.head(h.mean(dim=(2, 3)))


def build(arch: Architecture, num_classes: int, stem_width: int = 16) -> StandaloneNet:
    """The one way from an :class:`Architecture` to a stand-alone ``nn.Module``."""
    return StandaloneNet(arch, num_classes, stem_width)
