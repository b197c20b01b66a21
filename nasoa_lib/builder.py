"""From an architecture code to a network: the only way to a module (NASOA section 3.1).

``build(code)`` turns a :class:`~nasoa_lib.space.ArchCode` into a :class:`~nasoa_lib.staged.StagedNetwork`
with the released ET-NAS semantics (``ETNAS_REFERENCE.md``): the 3-convolution stem, one block
structure repeated over four stages split at the down-sampling blocks, global average pooling and one
linear layer. A block's layout (channels, strides, groups, projections) is planned once by
:func:`plan_block`; the modules and the analytic cost (:func:`complexity`, pycls-style, no forward
pass) both read that plan, so they cannot disagree.

Down-sampling sees every pixel (issue 17). The released rule puts a down-sampling block's stride
on its first node that is not a 1x1 convolution (:func:`stride_node`). A block of 1x1 convolutions
only (``1-``, ``131-``, ...) has no such node: its stride sits on a 1x1 conv, and so does its
strided 1x1 projection shortcut, so each of stages 2-4 keeps one pixel of every 2x2 and the network
sees a corner of its input (36 of 1,024 pixels of a 32x32 image; 121 with ``small_image_stem``).
For those blocks, and only those, the carrier and every strided 1x1 projection of the block
average-pool first: 2x2 average pooling (stride 2, ``ceil_mode``, padding not counted), then the
1x1 convolution at stride 1 -- the ResNet-D down-sampling of He et al. 2019, "Bag of Tricks for
Image Classification with CNNs", section 4.1. Blocks whose carrier is a 3x3 operation are built
exactly as released (same modules, same initialisation, same outputs). Pooling has no parameters
and keeps every output size, so parameter counts and MACs (:func:`complexity`, which counts no
pooling) are unchanged; none of the 12 released ET-NAS codes has an all-1x1 block, so none
changes. Store keys of results of a code whose blocks pool carry :func:`downsampling_rule`
(:func:`key_fields`); every other code's keys are unchanged.

``small_image_stem=True`` is the study's small-image adaptation, applied identically to every
family: the stem's first stride-2 convolution gets stride 1, so the network's total stride is 16
instead of 32 (a 32x32 image ends at 2x2 rather than 1x1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasoa_lib.errors import InvalidArchitectureCode
from nasoa_lib.space.codes import ArchCode, BlockCode, MacroCode, Skip, is_int, parse
from nasoa_lib.space.ops import CONV1X1, OPERATIONS
from nasoa_lib.staged import StagedNetwork

STEM_STRIDE = 4
NETWORK_STRIDE = 32
AVGPOOL_1X1 = "avgpool-1x1"
"""The down-sampling rule of all-1x1 blocks (ResNet-D); what :func:`downsampling_rule` returns."""


@dataclass(frozen=True)
class ConvSpec:
    """A bias-free convolution followed by BatchNorm.

    ``pool_first``: down-sample by ``stride`` x ``stride`` average pooling (ceil mode, so every
    pixel is in one window) and convolve at stride 1 (ResNet-D); only for strided 1x1 convolutions
    of all-1x1 blocks. Same output size, parameters and MACs as the strided convolution.
    """

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    groups: int = 1
    pool_first: bool = False

    @property
    def params(self) -> int:
        conv = self.out_channels * (self.in_channels // self.groups) * self.kernel_size**2
        return conv + 2 * self.out_channels

    def macs(self, size: int) -> tuple[int, int]:
        """Multiply-adds on a ``size`` x ``size`` input, and the output size."""
        out = (size - 1) // self.stride + 1
        return self.out_channels * out * out * (self.in_channels // self.groups) * self.kernel_size**2, out


@dataclass(frozen=True)
class MergePlan:
    """A skip merged into node ``target``: add (``"a"``) or concat (``"c"``), optional projection."""

    kind: str
    source: int
    target: int
    projection: ConvSpec | None


@dataclass(frozen=True)
class BlockPlan:
    """Everything a block's modules and cost need: per node its conv and the skips merged into it."""

    in_channels: int
    out_channels: int
    stride: int
    nodes: tuple[ConvSpec, ...]
    merges: tuple[tuple[MergePlan, ...], ...]
    place_strides: tuple[int, ...]  # stride of the block input (0) and of each node's output


def stride_node(block: BlockCode) -> int:
    """0-based index of the node that carries a down-sampling block's stride: the first non-1x1 node."""
    for i, node in enumerate(block.nodes[:-1]):
        if node.op != CONV1X1:
            return i
    return block.num_nodes - 1


def pools_to_down_sample(block: BlockCode) -> bool:
    """Whether ``block`` down-samples by average pooling + 1x1 (its stride carrier is a 1x1 conv,
    i.e. every node is one): the ResNet-D rule of the module docstring."""
    return OPERATIONS[block.nodes[stride_node(block)].op].kernel_size == 1


def plan_block(block: BlockCode, in_channels: int, out_channels: int, stride: int) -> BlockPlan:
    """Channels, strides, groups and projections of one block (released ``EncodedBlock`` semantics,
    except that an all-1x1 block's strided convolutions average-pool first: module docstring)."""
    n = block.num_nodes
    carrier = stride_node(block)
    pool = stride > 1 and pools_to_down_sample(block)
    strides = [1] * (carrier + 1) + [stride] * (n - carrier)
    channels = [in_channels]
    nodes, merges = [], []
    for i, node in enumerate(block.nodes, start=1):
        op = OPERATIONS[node.op]
        node_in = channels[-1]
        node_out = out_channels * 2**node.ratio // 4
        carries = i - 1 == carrier
        nodes.append(ConvSpec(node_in, node_out, op.kernel_size, stride if carries else 1,
                              op.groups(node_in, node_out), pool_first=pool and carries))
        channels.append(node_out)
        into = [s for s in block.skips if s.target == i]
        if i == n:
            into.append(Skip("a", 0, n))  # the fixed residual, merged last as released
        node_merges = []
        for skip in into:
            src, step = skip.source, strides[i] // strides[skip.source]
            if skip.kind == "a":
                differ = step != 1 or channels[src] != channels[i]
                proj = ConvSpec(channels[src], channels[i], 1, step, pool_first=pool and step != 1) if differ else None
            else:
                proj = ConvSpec(channels[src], channels[src], 1, step, pool_first=pool) if step != 1 else None
                channels[i] += channels[src]
            node_merges.append(MergePlan(skip.kind, src, i, proj))
        merges.append(tuple(node_merges))
    assert channels[-1] == out_channels
    return BlockPlan(in_channels, out_channels, stride, tuple(nodes), tuple(merges), tuple(strides))


def downsampling_rule(name_or_code: ArchCode | str) -> str | None:
    """:data:`AVGPOOL_1X1` when a block of the code down-samples by average pooling + 1x1, else
    ``None`` (the released rule; also for a name that is not a code, such as ``"resnet18"``). Every
    code down-samples (stages 2-4 start with a stride-2 block), so this is a property of its block.

    Store keys of results computed from a built code (step times, proxy evaluations, pretrained
    weights, ...) add this as ``"downsampling"`` only when it is not ``None``: the keys of codes the
    rule leaves unchanged stay what they were, and results of an all-1x1 code measured or trained
    on the old builder are not read back for the new network."""
    try:
        code = parse(name_or_code)
    except InvalidArchitectureCode:
        return None
    return AVGPOOL_1X1 if pools_to_down_sample(code.block) else None


def key_fields(name_or_code: ArchCode | str) -> dict[str, str]:
    """The fields a store key of a built model adds: ``{"downsampling": rule}`` or ``{}``
    (:func:`downsampling_rule`)."""
    rule = downsampling_rule(name_or_code)
    return {} if rule is None else {"downsampling": rule}


def plan_network(code: ArchCode) -> list[tuple[int, BlockPlan]]:
    """``(stage index 0..3, plan)`` for every block of the network in order."""
    return [
        (stage, plan_block(code.block, cin, cout, stride))
        for stage, cin, cout, stride in code.macro.blocks()
    ]


def stem_specs(macro: MacroCode, small_image_stem: bool = False) -> tuple[ConvSpec, ...]:
    """The released stem: conv3x3 s2 (3 -> W/2), conv3x3 (W/2 -> W/2), conv3x3 s2 (W/2 -> W)."""
    half = macro.stem_width // 2
    return (
        ConvSpec(3, half, 3, 1 if small_image_stem else 2),
        ConvSpec(half, half, 3, 1),
        ConvSpec(half, macro.stem_width, 3, 2),
    )


# ------------------------------------------------------------------------------------- modules


class PooledConv2d(nn.Conv2d):
    """A stride-1 convolution that first down-samples by ``pool`` x ``pool`` average pooling (ceil
    mode, padding not counted): ResNet-D's shortcut (He et al. 2019, section 4.1), used for the
    strided 1x1 convolutions of all-1x1 blocks. A ``Conv2d``, so parameter names and counts are
    those of the strided convolution it replaces."""

    def __init__(self, *args, pool: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.avg_pool2d(x, self.pool, self.pool, ceil_mode=True, count_include_pad=False))

    def extra_repr(self) -> str:
        return f"avgpool {self.pool}x{self.pool} first, " + super().extra_repr()


def _conv_bn(spec: ConvSpec) -> nn.Sequential:
    if spec.pool_first:
        conv = PooledConv2d(spec.in_channels, spec.out_channels, spec.kernel_size, padding=spec.kernel_size // 2,
                            groups=spec.groups, bias=False, pool=spec.stride)
    else:
        conv = nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel_size, stride=spec.stride,
                         padding=spec.kernel_size // 2, groups=spec.groups, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(spec.out_channels))


class EncodedBlock(nn.Module):
    """One block of the space: nodes in sequence, skips merged before each node's ReLU."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.plan = plan
        self.nodes = nn.ModuleList(_conv_bn(spec) for spec in plan.nodes)
        self.projections = nn.ModuleDict(
            {f"{m.kind}{m.source}{m.target}": _conv_bn(m.projection)
             for merges in plan.merges for m in merges if m.projection is not None}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        for node, merges in zip(self.nodes, self.plan.merges):
            y = node(outs[-1])
            for m in merges:
                key = f"{m.kind}{m.source}{m.target}"
                src = self.projections[key](outs[m.source]) if key in self.projections else outs[m.source]
                y = y + src if m.kind == "a" else torch.cat([src, y], dim=1)
            outs.append(F.relu(y))
        return outs[-1]


def _stem(specs: tuple[ConvSpec, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for spec in specs:
        layers += [_conv_bn(spec), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def build(
    code: ArchCode | str, num_classes: int, image_size: int = 32, small_image_stem: bool = False
) -> StagedNetwork:
    """The network of ``code`` for ``num_classes`` classes, as a :class:`StagedNetwork`.

    ``image_size`` is the input resolution the network is built for; it must be at least the total
    stride (32, or 16 with ``small_image_stem``) so the last stage sees a whole pixel. The model
    keeps ``code``, ``image_size`` and ``small_image_stem`` as attributes for measurement and reports.
    """
    code = parse(code)
    check_num_classes(num_classes)
    stride = total_stride(small_image_stem)
    if not is_int(image_size) or image_size < stride:
        what = "is smaller than" if is_int(image_size) else "must be an int of at least"
        raise InvalidArchitectureCode(
            f"image_size {image_size!r} {what} the network's total stride {stride}",
            hint="use a larger image or small_image_stem=True (stride 16)",
        )
    stages: list[list[nn.Module]] = [[] for _ in range(4)]
    for stage, plan in plan_network(code):
        stages[stage].append(EncodedBlock(plan))
    model = StagedNetwork(
        _stem(stem_specs(code.macro, small_image_stem)),
        [nn.Sequential(*blocks) for blocks in stages],
        nn.Linear(code.macro.out_channels, num_classes),
    )
    model.code = str(code)
    model.image_size = image_size
    model.small_image_stem = small_image_stem
    return model


def blind_pixels(code: ArchCode | str, image_size: int = 32, small_image_stem: bool = False) -> int:
    """Input pixels the network of ``code`` never looks at (:func:`unseen_pixels` of the built
    network; issue 17: a stride on a 1x1 convolution, with a strided 1x1 projection beside it, saw
    36 of 1,024 pixels). Weights are seeded, so the count is reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(code, num_classes=3, image_size=image_size, small_image_stem=small_image_stem)
    return unseen_pixels(model, image_size)


def unseen_pixels(model: nn.Module, image_size: int, images: int = 4) -> int:
    """Pixels where the gradient of the outputs' sum with respect to ``images`` seeded random
    inputs is zero for every image and channel, in eval mode. Several images, because one image's
    dead ReLUs can hide a pixel by chance; a blind spot of the architecture hides it for all."""
    model = model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        x = torch.randn(images, 3, image_size, image_size, requires_grad=True)
    model(x).sum().backward()
    return int((x.grad.abs().sum(dim=(0, 1)) == 0).sum())


def check_num_classes(num_classes: object) -> None:
    """Raise :class:`InvalidArchitectureCode` unless ``num_classes`` is a positive int (not a bool):
    the head size of every network, ours (:func:`build`) and the baselines (:func:`nasoa_lib.models.create`)."""
    if not is_int(num_classes) or num_classes < 1:
        raise InvalidArchitectureCode(f"num_classes must be a positive int, got {num_classes!r}",
                                      hint="pass the number of classes of the task, e.g. 10")


def total_stride(small_image_stem: bool = False) -> int:
    return NETWORK_STRIDE // 2 if small_image_stem else NETWORK_STRIDE


# ---------------------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class Complexity:
    """Analytic cost of a network (pycls ``complexity``): parameters and multiply-adds per image.

    MACs count convolutions and the linear layer (what ``torch.utils.flop_counter`` counts, halved);
    BatchNorm, ReLU, adds and pooling are not counted: neither the head's global pooling nor the
    ResNet-D average pooling of all-1x1 blocks (about one addition per input element).
    """

    params: int
    macs: int


def block_complexity(plan: BlockPlan, size: int) -> tuple[int, int, int]:
    """``(params, macs, output size)`` of one block on a ``size`` x ``size`` input."""
    sizes = [size if s == 1 else (size - 1) // s + 1 for s in plan.place_strides]
    params = macs = 0
    for i, (spec, merges) in enumerate(zip(plan.nodes, plan.merges), start=1):
        m, _ = spec.macs(sizes[i - 1])
        params, macs = params + spec.params, macs + m
        for merge in merges:
            if merge.projection is not None:
                m, _ = merge.projection.macs(sizes[merge.source])
                params, macs = params + merge.projection.params, macs + m
    return params, macs, sizes[-1]


def complexity(
    code: ArchCode | str, num_classes: int, image_size: int = 224, small_image_stem: bool = False
) -> Complexity:
    """Parameters and MACs of ``build(code, num_classes, ...)`` without building it."""
    code = parse(code)
    params = macs = 0
    size = image_size
    for spec in stem_specs(code.macro, small_image_stem):
        m, size = spec.macs(size)
        params, macs = params + spec.params, macs + m
    for _, plan in plan_network(code):
        p, m, size = block_complexity(plan, size)
        params, macs = params + p, macs + m
    features = code.macro.out_channels
    return Complexity(params + features * num_classes + num_classes, macs + features * num_classes)


def count_params(code: ArchCode | str, num_classes: int) -> int:
    """Trainable parameters of the built network (independent of the image size)."""
    return complexity(code, num_classes, image_size=NETWORK_STRIDE).params
