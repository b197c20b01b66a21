"""Baseline registry: torchvision's families as StagedNetworks (SPEC section 4)."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from nasoa_lib import models
from nasoa_lib.errors import UnknownModelError
from nasoa_lib.measure import count_macs
from nasoa_lib.profiles import available_profiles, load_profile
from nasoa_lib.staged import STAGE_NAMES, StagedNetwork, freeze_stages

# Too slow for a forward/backward on 2 cores in the default suite: parameter checks only.
BIG = {"resnet101", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf"}
SMALL = [n for n in models.available() if n not in BIG]
ONE_PER_FAMILY = ["resnet18", "regnet_y_400mf", "efficientnet_b0", "mobilenet_v3_small"]
NOT_IN_TORCHVISION = {"regnet_y_200mf"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_registry_holds_every_family_member_the_spec_names():
    expected = {
        "resnet": ["resnet18", "resnet34", "resnet50", "resnet101"],
        "regnet_y": ["regnet_y_200mf", "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf",
                     "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf"],
        "efficientnet": [f"efficientnet_b{i}" for i in range(4)],
        "mobilenet_v3": ["mobilenet_v3_small", "mobilenet_v3_large"],
    }
    for family, names in expected.items():
        assert models.available(family) == names
        assert all(models.family_of(n) == family for n in names)
    assert sorted(models.available()) == sorted(sum(expected.values(), []))


@pytest.mark.parametrize("name", SMALL)
def test_small_models_train_one_step_as_staged_networks(name):
    torch.manual_seed(0)
    model = models.create(name, num_classes=7, image_size=32)
    assert isinstance(model, StagedNetwork)
    assert [n for n, _ in model.named_children()] == [*STAGE_NAMES, "pool", "head"]
    assert model.num_classes == 7
    model.train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    nn.functional.cross_entropy(out, torch.tensor([0, 6])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("name", [n for n in models.available() if n not in NOT_IN_TORCHVISION])
def test_parameter_count_equals_torchvision_original(name):
    original = torchvision.models.get_model(name, weights=None, num_classes=37)
    staged = models.create(name, num_classes=37)
    assert n_params(staged) == n_params(original)
    assert len(list(staged.parameters())) == len(list(original.parameters()))


def test_regnet_y_200mf_matches_pycls_published_size():
    # pycls model zoo, RegNetY-200MF: 3.2M parameters, 0.2 GF (multiply-adds) at 224x224.
    model = models.create("regnet_y_200mf", num_classes=1000, image_size=224)
    assert abs(n_params(model) - 3.16e6) < 0.02e6
    assert abs(count_macs(model, 224) - 0.20e9) < 0.01e9


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_staged_network_computes_the_same_function_as_torchvision(name):
    torch.manual_seed(1)
    original = models.torchvision_model(name, 5).eval()
    staged = models.from_torchvision(name, copy.deepcopy(original)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(staged(x), original(x))


@pytest.mark.parametrize("name", SMALL)
def test_stages_end_at_output_strides_4_8_16_32(name):
    model = models.create(name, num_classes=3).eval()
    x = torch.randn(1, 3, 32, 32)
    sizes = []
    with torch.no_grad():
        for module in model.trunk:
            x = module(x)
            sizes.append(x.shape[-1])
    assert sizes[1:] == [8, 4, 2, 1]
    assert sizes[0] in (8, 16)  # ResNet's stem includes the max-pool (stride 4), others stride 2


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
@pytest.mark.parametrize("k", range(5))
def test_freeze_stages_freezes_exactly_stem_and_first_k_stages(name, k):
    model = freeze_stages(models.create(name, num_classes=4), k)
    frozen_prefixes = STAGE_NAMES[: k + 1] if k > 0 else ()
    expected_frozen = {n for n, _ in model.named_parameters() if n.split(".")[0] in frozen_prefixes}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == expected_frozen
    assert all(p.requires_grad for p in model.head.parameters())
    if k == 4:
        assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"head"}


@pytest.mark.parametrize("name", ONE_PER_FAMILY + ["mobilenet_v3_large"])
def test_small_image_stem_halves_the_stem_stride_and_keeps_parameters(name):
    plain = models.create(name, num_classes=10).eval()
    small = models.create(name, num_classes=10, small_image_stem=True).eval()
    assert models.stem_stride(small) * 2 == models.stem_stride(plain)
    assert n_params(small) == n_params(plain)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert small.stem(x).shape[-1] == 2 * plain.stem(x).shape[-1]
        assert small.run_trunk(x).shape[-1] == 2 * plain.run_trunk(x).shape[-1]
        assert small(x).shape == (1, 10)


def test_small_image_stem_changes_only_the_first_strided_conv():
    plain = models.create("resnet18", 10)
    small = models.create("resnet18", 10, small_image_stem=True)
    changed = [
        n for (n, a), (_, b) in zip(plain.named_modules(), small.named_modules())
        if isinstance(a, nn.Conv2d) and a.stride != b.stride
    ]
    assert changed == ["stem.conv1"]
    assert small.stem.maxpool.stride == plain.stem.maxpool.stride


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownModelError) as info:
        models.create("resnet19", num_classes=10)
    message = str(info.value)
    assert "resnet19" in message
    for known in ("resnet18", "regnet_y_400mf", "efficientnet_b0", "mobilenet_v3_large"):
        assert known in message
    with pytest.raises(UnknownModelError):
        models.family_of("vgg16")


def test_bad_arguments_are_errors():
    for num_classes in (0, True, 2.0):  # True is an int to isinstance: builder.build refuses it too
        with pytest.raises(ValueError, match="num_classes"):
            models.create("resnet18", num_classes=num_classes)
    with pytest.raises(ValueError, match="image_size"):
        models.create("resnet18", num_classes=10, image_size=0)
    with pytest.raises(ValueError, match="family"):
        models.available("vgg")


def test_register_adds_a_model_and_rejects_duplicates_and_unknown_families():
    name = "test_tiny_resnet"

    @models.register(name, "resnet")
    def tiny(num_classes: int) -> nn.Module:
        return torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes)

    try:
        assert name in models.available("resnet")
        model = models.create(name, num_classes=3)
        assert isinstance(model, StagedNetwork) and model.num_classes == 3
        with pytest.raises(ValueError, match="already registered"):
            models.register(name, "resnet")(tiny)
    finally:
        models._REGISTRY.pop(name, None)
    with pytest.raises(ValueError, match="unknown family"):
        models.register("x", "vgg")


@pytest.mark.parametrize("profile", available_profiles())
def test_every_profile_names_registered_baselines(profile):
    config = load_profile(profile).section("models", models.ModelsConfig)
    assert config.baselines and all(models.is_registered(n) for n in config.baselines)
    assert isinstance(config.small_image_stem, bool)


def test_models_config_rejects_unknown_baseline():
    with pytest.raises(UnknownModelError):
        models.ModelsConfig(small_image_stem=False, baselines=("resnet18", "alexnet"))
