"""Classic networks encoded in our space: the block level covers ResNet, ResNeXt and MobileNet blocks
(NASOA section 3.1, Fig. 2). Tests build each with :func:`nasoa_lib.builder.build` and compare it with
its torchvision twin at 224x224 / 1000 classes.

* ``resnet18`` ``020-_64_11-21-21-21``: basic block (conv3x3 x1, conv3x3 x1), stages 2-2-2-2.
* ``resnet50`` ``10001-_64_411-2111-211111-211``: bottleneck (conv1x1 x0.25, conv3x3 x0.25,
  conv1x1 x1; stride on the 3x3 as in torchvision's V1.5), stages 3-4-6-3.
* ``resnext50_4x32d`` ``11311-_64_411-2111-211111-211``: ResNeXt bottleneck with a 4-group 3x3 on
  x0.5 of the block output, i.e. torchvision ``ResNet(Bottleneck, [3, 4, 6, 3], groups=4,
  width_per_group=32)`` (torchvision's own ResNeXts use 32 groups; our grouped ops have 2 or 4).
* ``mobilenetv2_style`` ``14441-_32_11-111-2111211-211``: inverted bottleneck (conv1x1 to x4,
  depthwise conv3x3 x4, conv1x1 to x1), expansion x4 of the block *output*.

Differences from the twins, each pinned by an exact test:

* every one has the ET-NAS 3-convolution stem (3 -> W/2 -> W/2 -> W, stride 4) instead of
  torchvision's 7x7 conv + max-pool (ResNet family) or single 3x3 conv (MobileNetV2); everything after
  the stem of the ResNet family is identical, parameter for parameter;
* MobileNetV2: our widths are powers of 2 times the stem width (multipliers 1/2/4) instead of
  16-24-32-64-96-160-320; so the twin is torchvision ``MobileNetV2`` built with
  :func:`mobilenetv2_setting` (one row per block, ``t = 4 x out / in``: 4, or 8 where a block doubles
  its channels, since torchvision expands the block *input*). Its block bodies equal ours; ours add a
  1x1 conv + BN projection on the residual of every block that changes shape (torchvision drops the
  residual there), and we have no final 1x1 conv to 1280 channels: the classifier reads the last
  block's channels directly.
"""

from __future__ import annotations

from nasoa_lib.errors import InvalidArchitectureCode, UnknownModelError
from nasoa_lib.space.codes import ArchCode, parse

REFERENCE_CODES: dict[str, str] = {
    "resnet18": "020-_64_11-21-21-21",
    "resnet50": "10001-_64_411-2111-211111-211",
    "resnext50_4x32d": "11311-_64_411-2111-211111-211",
    "mobilenetv2_style": "14441-_32_11-111-2111211-211",
}
INVERTED_BOTTLENECK_BLOCK = "14441-"
INVERTED_BOTTLENECK_EXPANSION = 4


def reference_code(name: str) -> ArchCode:
    """The code of a reference network (``"resnet50"``)."""
    try:
        return parse(REFERENCE_CODES[name])
    except KeyError:
        raise UnknownModelError(f"no reference network {name!r}; known: {', '.join(REFERENCE_CODES)}",
                                hint="pass one of the known names, or parse(code) for any other network") from None


def mobilenetv2_setting(code: ArchCode | str) -> list[list[int]]:
    """torchvision ``inverted_residual_setting`` rows ``[t, c, n, s]`` whose block bodies equal ours.

    One row per block, since torchvision expands the block input and we the block output:
    ``t = 4 x out / in``.
    """
    code = parse(code) if isinstance(code, str) else code
    if str(code.block) != INVERTED_BOTTLENECK_BLOCK:
        raise InvalidArchitectureCode(
            f"only the inverted bottleneck {INVERTED_BOTTLENECK_BLOCK!r} has a MobileNetV2 twin",
            hint=f"give a code whose block is {INVERTED_BOTTLENECK_BLOCK!r}, e.g. reference_code('mobilenetv2_style')")
    return [
        [INVERTED_BOTTLENECK_EXPANSION * cout // cin, cout, 1, stride]
        for _, cin, cout, stride in code.macro.blocks()
    ]
