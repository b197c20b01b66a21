"""The five node operations and the five channel ratios of NASOA's block-level space (section 3.1).

The paper searches "1-3 successive nodes of 5 different operations" and a per-node channel ratio of
x0.25, x0.5, x1, x2 or x4. It does not name the five operations; the released ET-NAS definition
(``etnas.py`` in NAS-OA/NASOA) numbers seven. We keep the released numbers for the five we use, so a
code reads the same in our notation and in the authors':

====  ==============  ==================================================================
 0    ``conv3x3``     dense 3x3 convolution (ResNet basic block)
 1    ``conv1x1``     dense 1x1 convolution (bottleneck reduce/expand, projections)
 2    ``conv3x3_g2``  3x3 convolution with 2 groups
 3    ``conv3x3_g4``  3x3 convolution with 4 groups (ResNeXt-style)
 4    ``conv3x3_dw``  depthwise 3x3 convolution (MobileNet inverted bottleneck)
====  ==============  ==================================================================

All 12 released architectures use only 0-3; 4 is what makes MobileNet blocks expressible. The
released operations 5 (group width 32) and 6 (separable conv) are not in our space.

Depthwise (4) uses ``groups = gcd(in, out)``: that is exactly the released ``groups = in`` whenever
``out`` is a multiple of ``in`` (every inverted bottleneck), and it keeps a node valid when a ratio
makes ``out`` smaller than ``in`` (the released definition raises there). So every code of the space
builds, which keeps the space's size a clean product formula.

Every operation is followed by BatchNorm; bias-free convolutions, padding keeps the spatial size.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd


@dataclass(frozen=True)
class Operation:
    """One node operation: ``index`` is the digit in a code."""

    index: int
    name: str
    kernel_size: int
    fixed_groups: int | None  # None: depthwise, groups = gcd(in, out)

    def groups(self, in_channels: int, out_channels: int) -> int:
        """Number of convolution groups for a node mapping ``in_channels`` to ``out_channels``."""
        if self.fixed_groups is None:
            return gcd(in_channels, out_channels)
        return self.fixed_groups


OPERATIONS: tuple[Operation, ...] = (
    Operation(0, "conv3x3", 3, 1),
    Operation(1, "conv1x1", 1, 1),
    Operation(2, "conv3x3_g2", 3, 2),
    Operation(3, "conv3x3_g4", 3, 4),
    Operation(4, "conv3x3_dw", 3, None),
)
CONV1X1 = 1
"""Index of the 1x1 convolution: a block's stride sits on its first node that is *not* this one (a
block of 1x1 nodes only down-samples by average pooling + 1x1 instead, see :mod:`nasoa_lib.builder`)."""

RATIO_DIGITS: tuple[int, ...] = (0, 1, 2, 3, 4)
"""Ratio digit ``r`` gives a node ``block_out * 2**r / 4`` channels: x0.25, x0.5, x1, x2, x4."""
LAST_NODE_RATIO = 2
"""The last node always has x1 (the block's output width); codes leave its digit out."""


def ratio_multiplier(digit: int) -> float:
    """Channel ratio of a ratio digit (0 -> 0.25 ... 4 -> 4.0)."""
    return 2.0**digit / 4.0


def describe_operations() -> str:
    """``"0 conv3x3, 1 conv1x1, ..."``: the operation list that error messages show."""
    return ", ".join(f"{op.index} {op.name}" for op in OPERATIONS)
