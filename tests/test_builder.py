"""build(): released ET-NAS figures, torchvision twins, the StagedNetwork shape, training on sampled codes,
every input pixel seen (issue 17) and the down-sampling rule in store keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import MobileNetV2
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from nasoa_lib.builder import (
    AVGPOOL_1X1,
    PooledConv2d,
    blind_pixels,
    unseen_pixels,
    build,
    complexity,
    count_params,
    downsampling_rule,
    key_fields,
    plan_block,
    stride_node,
)
from nasoa_lib.errors import InvalidArchitectureCode
from nasoa_lib.space import (
    RELEASED,
    BlockSpace,
    ArchCode,
    MacroCode,
    MacroSpace,
    mobilenetv2_setting,
    parse,
    parse_block,
    reference_code,
    sample_arch,
    sample_block,
)
from nasoa_lib.staged import StagedNetwork

TINY_MACROS = MacroSpace(stem_widths=(16,), max_stage_depth=2, max_blocks=6, max_doublings=3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks on a shared 2-core machine: one thread avoids OpenMP contention (100x here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def counted_macs(model: nn.Module, image_size: int, device: str = "cpu") -> int:
    """Multiply-adds by torch's flop counter (flops / 2) for one image."""
    model.eval()  # batch 1 at 1x1 is fine for BatchNorm only in eval mode
    x = torch.zeros(1, 3, image_size, image_size, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


# ----------------------------------------------------------------------------- released zoo


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_models_reproduce_the_published_figures(name):
    released = RELEASED[name]
    with torch.device("meta"):  # shapes only: a 130M-parameter model costs nothing here
        model = build(released.code, num_classes=1000, image_size=224)
        macs_224, macs_32 = counted_macs(model, 224, "meta"), counted_macs(model, 32, "meta")
    params = n_params(model)
    assert round(params / 1e6, 1) == pytest.approx(released.mparams, abs=1e-9)
    assert round(macs_224 / 1e9, 2) == pytest.approx(released.gmacs, abs=1e-9)
    assert round(macs_32 / 1e6, 1) == pytest.approx(released.mmacs_32, abs=1e-9)
    cost = complexity(released.code, 1000, image_size=224)
    assert (cost.params, cost.macs) == (params, macs_224)
    assert complexity(released.code, 1000, image_size=32).macs == macs_32
    assert count_params(released.code, 1000) == params


@pytest.mark.parametrize("name", ["ET-NAS-A", "ET-NAS-B"])
def test_real_forward_counts_equal_the_shape_only_counts(name):
    model = build(RELEASED[name].code, num_classes=1000, image_size=224).eval()
    assert counted_macs(model, 224) == complexity(RELEASED[name].code, 1000, 224).macs


# ----------------------------------------------------------------------------- the network shape


def test_stages_split_at_the_down_sampling_blocks():
    code = parse("011-_32_2-211-2-111122")
    model = build(code, num_classes=10, image_size=64)
    assert isinstance(model, StagedNetwork)
    assert [len(stage) for stage in model.trunk[1:]] == [1, 3, 1, 6]
    assert model.head.in_features == 32 * 2**5 and model.num_classes == 10
    x = torch.zeros(2, 3, 64, 64)
    sizes = [model.run_trunk(x, 0, k).shape[-1] for k in range(1, 6)]
    assert sizes == [16, 16, 8, 4, 2]
    widths = [model.run_trunk(x, 0, k).shape[1] for k in range(1, 6)]
    assert widths == [32, 64, 128, 256, 1024]
    assert (model.code, model.image_size, model.small_image_stem) == (str(code), 64, False)


def test_stem_is_the_released_three_convolutions_and_small_image_stem_halves_the_stride():
    code = parse("2-_32_2-11-112-1121112")
    convs = [m for m in build(code, 10).stem.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 16, (3, 3), (2, 2)),
        (16, 16, (3, 3), (1, 1)),
        (16, 32, (3, 3), (2, 2)),
    ]
    small = build(code, 10, image_size=32, small_image_stem=True)
    assert [m.stride for m in small.stem.modules() if isinstance(m, nn.Conv2d)][0] == (1, 1)
    assert small.run_trunk(torch.zeros(1, 3, 32, 32)).shape[-1] == 2
    assert build(code, 10).eval().run_trunk(torch.zeros(1, 3, 32, 32)).shape[-1] == 1
    assert n_params(small) == n_params(build(code, 10))


def test_block_plan_follows_the_released_semantics():
    bottleneck = plan_block(parse_block("10001-"), 256, 512, stride=2)
    assert stride_node(parse_block("10001-")) == 1  # the stride sits on the 3x3, not the 1x1
    assert [(n.in_channels, n.out_channels, n.stride) for n in bottleneck.nodes] == [
        (256, 128, 1), (128, 128, 2), (128, 512, 1)]
    residual = bottleneck.merges[-1][-1]
    assert (residual.source, residual.projection.in_channels, residual.projection.stride) == (0, 256, 2)
    assert stride_node(parse_block("11111-")) == 2  # all 1x1: the last node
    dense = plan_block(parse_block("23311-a02c12"), 64, 64, stride=1)
    assert [n.groups for n in dense.nodes] == [2, 4, 1]
    assert dense.nodes[2].in_channels == 32 + 128  # the concat of node 1 widened node 2
    add, concat = dense.merges[1]
    assert add.projection is not None and add.projection.out_channels == 32 and concat.projection is None
    assert dense.merges[2][-1].projection is None  # residual: same width, same stride
    shrinking_dw = plan_block(parse_block("14401-"), 64, 64, stride=1)
    assert shrinking_dw.nodes[1].groups == 16  # depthwise 256 -> 16 channels: gcd groups


def test_block_forward_is_the_released_computation():
    torch.manual_seed(0)
    model = build("23311-a02c12_16_1-1-1-1", num_classes=3).eval()
    block = model.stage1[0]
    x = torch.randn(2, 16, 8, 8)
    n1 = F.relu(block.nodes[0](x))
    y2 = block.nodes[1](n1) + block.projections["a02"](x)
    n2 = F.relu(torch.cat([n1, y2], dim=1))
    expected = F.relu(block.nodes[2](n2) + x)
    assert torch.allclose(block(x), expected)


def test_build_rejects_bad_arguments():
    with pytest.raises(InvalidArchitectureCode, match="operation 7 unknown"):
        build("701-_32_2-211-2-111122", num_classes=10)
    with pytest.raises(ValueError, match="smaller than the network's total stride 32"):
        build("2-_32_2-11-112-1121112", num_classes=10, image_size=16)
    build("2-_32_2-11-112-1121112", num_classes=10, image_size=16, small_image_stem=True)
    with pytest.raises(ValueError, match="num_classes"):
        build("2-_32_2-11-112-1121112", num_classes=0)


@pytest.mark.parametrize("code", [None, 42, 3.5, b"011-_32_2-211-2-111122", ["011-_32_2-211-2-111122"]])
def test_build_and_complexity_of_a_non_code_are_clear_errors(code):
    """Issue 20 (6): build(None) raised AttributeError deep inside plan_network."""
    with pytest.raises(InvalidArchitectureCode, match="an architecture code is a string"):
        build(code, num_classes=10)
    with pytest.raises(InvalidArchitectureCode, match="an architecture code is a string"):
        complexity(code, 10)


@pytest.mark.parametrize("num_classes, image_size, fragment", [
    (True, 32, "num_classes"), (2.0, 32, "num_classes"), ("10", 32, "num_classes"), (10, 32.0, "must be an int"),
    (10, None, "must be an int"),
])
def test_build_rejects_wrongly_typed_sizes_with_a_hint(num_classes, image_size, fragment):
    with pytest.raises(InvalidArchitectureCode, match=fragment) as info:
        build("2-_32_2-11-112-1121112", num_classes=num_classes, image_size=image_size)
    assert info.value.hint


# ----------------------------------------------------------------------------- sampled codes


@pytest.mark.parametrize("seed", range(12))
def test_sampled_codes_build_and_train(seed):
    rng = np.random.default_rng(seed)
    code = sample_arch(rng, BlockSpace(), TINY_MACROS)
    model = build(code, num_classes=5, image_size=32, small_image_stem=seed % 3 == 0)
    assert n_params(model) == count_params(code, 5)
    for size in (32, 64):
        model.zero_grad()
        out = model(torch.randn(2, 3, size, size))
        assert out.shape == (2, 5) and torch.isfinite(out).all()
        out.square().mean().backward()
        assert all(p.grad is not None for p in model.parameters())
        expected = complexity(code, 5, image_size=size, small_image_stem=model.small_image_stem).macs
        assert counted_macs(model, size) == expected
        model.train()


# ----------------------------------------------------------------------------- torchvision twins


@pytest.mark.parametrize(
    "name, twin",
    [
        ("resnet18", lambda: ResNet(BasicBlock, [2, 2, 2, 2])),
        ("resnet50", lambda: ResNet(Bottleneck, [3, 4, 6, 3])),
        ("resnext50_4x32d", lambda: ResNet(Bottleneck, [3, 4, 6, 3], groups=4, width_per_group=32)),
    ],
)
def test_resnet_family_equals_torchvision_but_for_the_stem(name, twin):
    with torch.device("meta"):
        ours, theirs = build(reference_code(name), 1000, image_size=224), twin()
    assert n_params(ours) - n_params(ours.stem) == n_params(theirs) - n_params(theirs.conv1) - n_params(theirs.bn1)
    for stage, layer in zip(ours.trunk[1:], (theirs.layer1, theirs.layer2, theirs.layer3, theirs.layer4)):
        assert n_params(stage) == n_params(layer)
        ours_convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
        their_convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
        shapes = lambda convs: sorted((tuple(c.weight.shape), c.stride, c.groups) for c in convs)  # noqa: E731
        assert shapes(ours_convs) == shapes(their_convs)
    # the stems differ: ET-NAS 3x conv3x3 (3->32->32->64) vs conv7x7 (3->64)
    assert n_params(ours.stem) - (n_params(theirs.conv1) + n_params(theirs.bn1)) == 19_232


def test_mobilenetv2_style_equals_torchvision_inverted_residuals_with_t4():
    code = reference_code("mobilenetv2_style")
    with torch.device("meta"):
        ours = build(code, 1000, image_size=224)
        theirs = MobileNetV2(num_classes=1000, inverted_residual_setting=mobilenetv2_setting(code))
    stages = ours.trunk[1:]
    projections = sum(n_params(block.projections) for stage in stages for block in stage)
    their_blocks = theirs.features[1:-1]
    assert sum(n_params(s) for s in stages) - projections == n_params(their_blocks)
    ours_blocks = [block for stage in stages for block in stage]
    assert [n_params(b) - n_params(b.projections) for b in ours_blocks] == [n_params(b) for b in their_blocks]
    # the rest: stems, our residual projections, their 1x1 conv to 1280 and a wider classifier
    their_rest = n_params(theirs.features[0]) + n_params(theirs.features[-1]) + n_params(theirs.classifier)
    ours_rest = n_params(ours.stem) + projections + n_params(ours.head)
    assert n_params(ours) - n_params(theirs) == ours_rest - their_rest
    assert sum(1 for b in ours_blocks if len(b.projections)) == 4  # 3 stage starts + 1 in-stage doubling


# ----------------------------------------------------------------- every input pixel is seen (issue 17)

ALL_1X1_CODES = (
    "1-_16_1-1-1-1",
    "1-_16_2-11-112-1121112",  # the macro of ET-NAS-A with the all-1x1 block
    "131-_16_1-2-12-1",
    "131-c01_16_1-1-1-1",
    "10101-a13_16_1-2-1-1",  # a strided add projection from node 1 into the carrier
    "14121-a02a13_16_2-1-1-1",
)
PROFILE_SKELETONS = ("smoke", "laptop", "paper")


def at_width_16(code) -> ArchCode:
    """The same block and stages at stem width 16: the receptive field does not depend on widths."""
    code = parse(code)
    return ArchCode(code.block, MacroCode(16, code.macro.stages))


def receptive_field_codes(group: str) -> list[str]:
    """Codes of one group at stem width 16: the 12 released codes, explicit all-1x1 codes, a sample of
    the macro-level search space, or (a profile's name) the block search's fastest candidate ``1-``
    and a sample of the block space on that profile's skeleton."""
    from nasoa_lib.search.config import SearchConfig
    from nasoa_lib.search.operators import CodeSpace
    from nasoa_lib.search.stages import FASTEST_BLOCK

    rng = np.random.default_rng(17)
    if group == "released":
        return [str(at_width_16(m.code)) for m in RELEASED.values()]
    if group == "all-1x1":
        return list(ALL_1X1_CODES)
    if group == "macro":  # the macro-level search space, with all-1x1 blocks among its blocks
        blocks = ("1-", "131-", "10101-a13") + tuple(str(sample_block(rng)) for _ in range(3))
        space = CodeSpace("macro", macro_space=TINY_MACROS, blocks=blocks)
        return [space.sample(rng) for _ in range(10)]
    skeleton = MacroCode(16, SearchConfig.from_profile(group).skeleton.stages)  # a profile's block-level space
    space = CodeSpace("block", skeleton=skeleton)
    return [str(ArchCode(parse_block(FASTEST_BLOCK), skeleton))] + [space.sample(rng) for _ in range(10)]


@pytest.mark.parametrize("group", ("released", "all-1x1", "macro", *PROFILE_SKELETONS))
def test_every_input_pixel_reaches_the_output(group):
    """Issue 17: a stride on a 1x1 convolution saw 36 of 1,024 pixels; now every pixel counts."""
    blind = [(code, small, n) for code in receptive_field_codes(group) for small in (False, True)
             if (n := blind_pixels(code, small_image_stem=small))]
    assert blind == [], f"(code, small_image_stem, blind pixels of 1024): {blind}"


def test_all_1x1_blocks_down_sample_by_average_pooling_and_keep_their_counts():
    plan = plan_block(parse_block("10101-a13"), 64, 128, stride=2)
    assert [(n.stride, n.pool_first) for n in plan.nodes] == [(1, False), (1, False), (2, True)]
    projections = [m.projection for merges in plan.merges for m in merges if m.projection is not None]
    assert [(p.stride, p.pool_first) for p in projections] == [(2, True), (2, True)]
    assert not any(n.pool_first for n in plan_block(parse_block("10101-a13"), 64, 128, stride=1).nodes)
    assert not any(n.pool_first for n in plan_block(parse_block("10001-"), 64, 128, stride=2).nodes)
    assert not any(n.pool_first for n in plan_block(parse_block("11111-"), 64, 128, stride=2).nodes[:2])

    code = "10101-a13_16_1-2-1-1"
    model = build(code, num_classes=5, image_size=33).eval()  # odd sizes: ceil-mode windows, same sizes
    pooled = [m for m in model.modules() if isinstance(m, PooledConv2d)]
    assert len(pooled) == 3 * 3  # per down-sampling block: the carrier, a13 and the residual
    assert all(m.stride == (1, 1) and m.pool == 2 for m in pooled)
    assert n_params(model) == count_params(code, 5)
    for size in (32, 33):
        assert counted_macs(model, size) == complexity(code, 5, image_size=size).macs
    assert model.run_trunk(torch.zeros(1, 3, 33, 33)).shape[-1] == 2  # 33 -> 17 -> 9 -> 5 -> 3 -> 2
    conv = pooled[0]
    x = torch.randn(2, conv.in_channels, 5, 5)
    expected = F.conv2d(F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False), conv.weight)
    assert torch.allclose(conv(x), expected)
    assert all("PooledConv2d" not in type(m).__name__ for m in build("011-_16_1-1-1-1", 5).modules())


def test_no_released_code_has_a_pooled_block():
    assert [name for name, m in RELEASED.items() if downsampling_rule(m.code)] == []
    assert downsampling_rule("1-_16_1-1-1-1") == AVGPOOL_1X1 and downsampling_rule("131-_16_1-1-1-1") == AVGPOOL_1X1
    assert downsampling_rule("13110-_16_1-1-1-1") is None  # the last node is a 3x3: it carries the stride
    assert downsampling_rule("resnet18") is None and key_fields("resnet18") == {}


# ----------------------------------------------------------------- the rule in store keys


def test_store_keys_change_only_for_codes_whose_blocks_pool():
    """Caches of unaffected codes stay valid; results of an all-1x1 code built the old way are not
    read back for the new network."""
    from nasoa_lib.device import describe_device
    from nasoa_lib.finetune import FinetuneRunSpec, FinetuneSettings, Regime
    from nasoa_lib.generator.config import GeneratorConfig
    from nasoa_lib.generator.timing import cost_spec
    from nasoa_lib.profiles import resolve_profile
    from nasoa_lib.search.config import SearchConfig
    from nasoa_lib.search.evaluate import StepSpec, cost_key, eval_key
    from nasoa_lib.store import spec_key
    from nasoa_lib.train import PretrainRecipe, pretrain_key

    prof = resolve_profile("smoke")
    step, proxy = StepSpec.from_profile(prof), SearchConfig.from_profile(prof).proxy
    recipe = PretrainRecipe.from_profile(prof)
    device = describe_device().split(":")[0]

    def legacy(code):  # the keys as the builder without the rule computed them
        return (
            spec_key({"stage": "nas_cost", "code": code, "step": step, "profile": "smoke", "device": device,
                      "t_max_ms": 40.0}),
            spec_key({"stage": "nas_eval", "code": code, "proxy": proxy, "step": step, "t_max_ms": 40.0,
                      "profile": "smoke"}),
            spec_key({"stage": "pretrain", "model": code, "source": prof.source_dataset, "recipe": recipe.to_dict(),
                      "profile": "smoke", "image_size": prof.image_size, "seed": 0}),
        )

    def now(code):
        return (cost_key(code, step, "smoke", 40.0), eval_key(code, proxy, step, 40.0, "smoke"),
                pretrain_key(code, prof.source_dataset, recipe, prof))

    for unaffected in (RELEASED["ET-NAS-C"].code, "13110-_16_1-1-1-1", "resnet18"):
        assert now(unaffected) == legacy(unaffected)
    pooled = "1-_16_1-1-1-1"
    assert all(a != b for a, b in zip(now(pooled), legacy(pooled)))

    settings, cfg = FinetuneSettings.from_profile(prof), GeneratorConfig.from_profile(prof)
    regime = Regime(lr=0.01, iterations=10)
    for code, extra in ((RELEASED["ET-NAS-C"].code, {}), (pooled, {"downsampling": AVGPOOL_1X1})):
        spec = cost_spec(code, 0, settings, prof, cfg, 1)
        assert {k: v for k, v in spec.items() if k == "downsampling"} == extra
        run = FinetuneRunSpec(None, code, {"task": 1}, regime, None, 0, 1).to_dict()
        assert {k: v for k, v in run.items() if k == "downsampling"} == extra


def test_unseen_pixels_finds_a_strided_1x1_blind_spot():
    """The check itself can fail: a toy network whose only down-sampling is a stride-2 1x1
    convolution (the old rule) sees a quarter of its input, and the count says so."""
    from torch import nn

    class Strided1x1(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1, stride=2)

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    assert unseen_pixels(Strided1x1(), 32) == 1024 - 256
    assert blind_pixels("1-_16_2-11-112-1121112") == 0
