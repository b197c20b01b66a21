"""Baseline model families (SPEC section 4): torchvision's own definitions as :class:`StagedNetwork`.

NASOA compares its ET-NAS zoo with ResNet, RegNetY, EfficientNet and MobileNetV3 trained with the
same recipe (NASOA section 4.1, Table 2). We take the families straight from torchvision (no
copies, random initialisation: every weight comes from our own pretraining on the source set,
never from a hub download) and re-hang their modules as ``stem -> stage1..stage4 -> head``, so a
fine-tuning regime's "first k stages frozen" means the same thing for every model of the study.

Stage mapping (by output resolution, i.e. the cumulative stride of each block's output):

- ``resnet`` (18/34/50/101): stem = ``conv1, bn1, relu, maxpool`` (stride 4); stages =
  ``layer1..layer4``; head = ``fc``.
- ``regnet_y`` (200MF..32GF; torchvision does not list 200MF, so it is torchvision's own
  ``RegNet``/``BlockParams`` with pycls's published RegNetY-200MF design values): stem = ``stem`` (stride 2); stages = ``trunk_output.block1..block4``;
  head = ``fc``.
- ``efficientnet`` (B0..B3): stem = ``features[0]`` (stride 2); ``features[1..8]`` grouped by
  output stride, so stage 1 = ``features[1..2]`` (the stride-2 MBConv1 joins the first stride-4
  group), stage 2 = ``[3]``, stage 3 = ``[4..5]``, stage 4 = ``[6..8]`` (with the final 1x1 conv);
  head = ``classifier`` (dropout, linear).
- ``mobilenet_v3`` (Small/Large): the same rule on ``features``; Small: ``[1] [2..3] [4..8]
  [9..12]``, Large: ``[1..3] [4..6] [7..12] [13..16]``, the final 1x1 conv in stage 4; head =
  ``classifier`` (its hidden linear, hardswish, dropout and the output linear all stay in the head).

Every block whose output stride is at most 4 belongs to stage 1, stride 8 to stage 2, 16 to
stage 3 and 32 to stage 4. Global average pooling is :class:`StagedNetwork`'s ``pool``, exactly
where torchvision pools, so the staged network computes the same function with the same
parameters as torchvision's original (checked in ``tests/test_models.py``).

**Small-image adaptation** (``small_image_stem=True``; the study's one documented change, applied
identically to every family here and to our own ``builder``): the *first* stride-2 convolution of
the stem gets stride 1, so the total stride goes from 32 to 16 and a 32x32 image leaves stage 4
at 2x2 instead of 1x1. Nothing else changes (kernel sizes, max-pool, widths, parameter count),
so the parameter count stays torchvision's and only the spatial work grows: every convolution
does 4x the multiply-adds (ResNet-18 at 32x32: 37 -> 148 MMACs), the linear head does not. The default is off: SPEC section 2's calibration is for the unchanged stems, and
profiles choose (``models.small_image_stem``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torchvision
from torch import nn

from nasoa_lib.builder import check_num_classes
from nasoa_lib.errors import InvalidArchitectureCode, UnknownModelError, UnsupportedNetworkError
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.staged import StagedNetwork

# A family's splitter: torchvision model -> (stem, [stage1..stage4], head).
Splitter = Callable[[nn.Module], tuple[nn.Module, list[nn.Module], nn.Module]]
Constructor = Callable[[int], nn.Module]

FAMILIES: tuple[str, ...] = ("resnet", "regnet_y", "efficientnet", "mobilenet_v3")
STAGE_STRIDES: tuple[int, ...] = (4, 8, 16, 32)


@dataclass(frozen=True)
class BaselineEntry:
    """One registered model: its name, family and a constructor ``num_classes -> nn.Module``."""

    name: str
    family: str
    constructor: Constructor


_REGISTRY: dict[str, BaselineEntry] = {}


@dataclass(frozen=True)
class ModelsConfig:
    """Profile section ``models``: which baselines a profile uses and whether they (and our
    builder's networks) get the small-image stem. Names are checked against the registry."""

    small_image_stem: bool
    baselines: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "baselines", tuple(self.baselines))
        for name in self.baselines:
            _entry(name)

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "ModelsConfig":
        return resolve_profile(profile).section("models", cls)


def register(name: str, family: str) -> Callable[[Constructor], Constructor]:
    """Decorator: register ``constructor(num_classes) -> nn.Module`` (a torchvision-shaped model)
    under ``name`` in ``family``, whose splitter turns it into a :class:`StagedNetwork`."""
    if family not in _SPLITTERS:
        raise UnsupportedNetworkError(f"unknown family {family!r}; families are {', '.join(FAMILIES)}",
                                      hint="register under one of these families (each has a stage splitter)")

    def decorator(constructor: Constructor) -> Constructor:
        if name in _REGISTRY:
            raise UnsupportedNetworkError(f"model name {name!r} is already registered ({_REGISTRY[name].family})",
                                          hint="register the model under a new name")
        _REGISTRY[name] = BaselineEntry(name=name, family=family, constructor=constructor)
        return constructor

    return decorator


def available(family: str | None = None) -> list[str]:
    """Registered model names (registration order), optionally of one family."""
    if family is not None and family not in FAMILIES:
        raise UnsupportedNetworkError(f"unknown family {family!r}; families are {', '.join(FAMILIES)}",
                                      hint="pass one of these families, or None for every model")
    return [n for n, e in _REGISTRY.items() if family is None or e.family == family]


def family_of(name: str) -> str:
    return _entry(name).family


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def torchvision_model(name: str, num_classes: int) -> nn.Module:
    """The unstaged original (random init) — what the staged network must equal."""
    return _entry(name).constructor(num_classes)


def create(name: str, num_classes: int, image_size: int = 32, small_image_stem: bool = False) -> StagedNetwork:
    """Build baseline ``name`` with random weights as a :class:`StagedNetwork`.

    ``image_size`` is checked, not used to change the network: torchvision's families are
    resolution-agnostic (adaptive pooling). It keeps the signature of ``builder.build``.
    """
    entry = _entry(name)
    check_num_classes(num_classes)
    if not isinstance(image_size, int) or image_size < 1:
        raise InvalidArchitectureCode(f"image_size must be a positive int, got {image_size!r}",
                                      hint="pass the image side in pixels, e.g. 32")
    return from_torchvision(name, entry.constructor(num_classes), small_image_stem=small_image_stem)


def from_torchvision(name: str, model: nn.Module, small_image_stem: bool = False) -> StagedNetwork:
    """Re-hang an existing torchvision model of registered ``name`` as a :class:`StagedNetwork`.

    The modules are shared, not copied: the staged network computes the same function.
    """
    entry = _entry(name)
    stem, stages, head = _SPLITTERS[entry.family](model)
    if small_image_stem:
        _unstride_first_conv(stem, name)
    return StagedNetwork(stem, stages, head)


def stem_stride(model: StagedNetwork) -> int:
    """Product of the strides of every convolution and pooling layer in the stem."""
    return _module_stride(model.stem)


def _entry(name: str) -> BaselineEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown baseline model {name!r}",
            hint=f"known names: {', '.join(_REGISTRY)}",
        ) from None


# --- splitters -------------------------------------------------------------------------------


def _split_resnet(m: nn.Module) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    stem = nn.Sequential()
    for part in ("conv1", "bn1", "relu", "maxpool"):
        stem.add_module(part, getattr(m, part))
    return stem, [m.layer1, m.layer2, m.layer3, m.layer4], m.fc


def _split_regnet(m: nn.Module) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    t = m.trunk_output
    return m.stem, [t.block1, t.block2, t.block3, t.block4], m.fc


def _split_features(m: nn.Module) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    """EfficientNet / MobileNetV3: ``features[0]`` is the stem; later blocks go to the stage of
    their output stride (<= 4, 8, 16, 32); the final 1x1 conv (stride 1) stays with stage 4."""
    features = list(m.features.named_children())
    stem_name, stem = features[0]
    stages: list[nn.Sequential] = [nn.Sequential() for _ in STAGE_STRIDES]
    stride = _module_stride(stem)
    for child_name, block in features[1:]:
        stride *= _module_stride(block)
        index = next((i for i, s in enumerate(STAGE_STRIDES) if stride <= s), None)
        if index is None:
            raise UnsupportedNetworkError(f"block features.{child_name} has output stride {stride} > 32",
                                          hint="only networks with output strides 4/8/16/32 can be staged")
        stages[index].add_module(child_name, block)
    empty = [i + 1 for i, s in enumerate(stages) if len(s) == 0]
    if empty:
        raise UnsupportedNetworkError(f"stages {empty} received no block; strides do not follow 4/8/16/32",
                                      hint="only networks with a block at each output stride 4/8/16/32 can be staged")
    return stem, list(stages), m.classifier


_SPLITTERS: dict[str, Splitter] = {
    "resnet": _split_resnet,
    "regnet_y": _split_regnet,
    "efficientnet": _split_features,
    "mobilenet_v3": _split_features,
}


def _stride_of(layer: nn.Module) -> int:
    s = getattr(layer, "stride", 1)
    s = s[0] if isinstance(s, tuple) else s
    return int(s) if s is not None else 1


def _module_stride(module: nn.Module) -> int:
    """Stride of a block's main path: the product over its strided convolutions and pools.

    Correct for these families because no block has a strided side branch in series with its
    main path (ResNet downsample projections run in parallel and are excluded by name).
    """
    stride = 1
    for name, layer in module.named_modules():
        if "downsample" in name.split(".") or "proj" in name.split("."):
            continue
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            stride *= _stride_of(layer)
    return stride


def _unstride_first_conv(stem: nn.Module, name: str) -> None:
    for layer in stem.modules():
        if isinstance(layer, nn.Conv2d) and _stride_of(layer) == 2:
            layer.stride = (1, 1)
            return
    raise UnsupportedNetworkError(f"{name}: the stem has no stride-2 convolution to adapt for small images",
                                  hint="use small_image_stem=False for this model")


# --- torchvision registrations -----------------------------------------------------------------


def _torchvision_constructor(name: str) -> Constructor:
    def construct(num_classes: int) -> nn.Module:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    construct.__name__ = f"torchvision_{name}"
    construct.__doc__ = f"torchvision.models.{name}(weights=None, num_classes=...)"
    return construct


def _regnet_y_200mf(num_classes: int) -> nn.Module:
    """RegNetY-200MF, which torchvision does not list: its own ``RegNet``/``BlockParams`` with
    pycls's published RegNetY-200MF design (depth 13, w0 24, wa 36.44, wm 2.49, group width 8,
    SE 0.25; pycls model zoo: 3.2M parameters, 0.2 GF), built exactly as torchvision builds the
    other RegNetYs (its ``_regnet`` norm layer)."""
    from torchvision.models.regnet import BlockParams, RegNet

    params = BlockParams.from_init_params(depth=13, w_0=24, w_a=36.44, w_m=2.49, group_width=8, se_ratio=0.25)
    return RegNet(params, num_classes=num_classes, norm_layer=partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1))


_TORCHVISION_FAMILIES: dict[str, tuple[str, ...]] = {
    "resnet": ("resnet18", "resnet34", "resnet50", "resnet101"),
    "regnet_y": (
        "regnet_y_200mf",
        "regnet_y_400mf",
        "regnet_y_800mf",
        "regnet_y_1_6gf",
        "regnet_y_3_2gf",
        "regnet_y_8gf",
        "regnet_y_16gf",
        "regnet_y_32gf",
    ),
    "efficientnet": ("efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"),
    "mobilenet_v3": ("mobilenet_v3_small", "mobilenet_v3_large"),
}

for _family, _names in _TORCHVISION_FAMILIES.items():
    for _name in _names:
        _constructor = _regnet_y_200mf if _name == "regnet_y_200mf" else _torchvision_constructor(_name)
        register(_name, _family)(_constructor)
