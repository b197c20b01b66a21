"""Scale profiles (SPEC section 2): every profile loads, typos are errors, roles never leak."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from nasoa_lib.data import DATASET_ROLES, ROLE_META_TEST, ROLE_META_TRAIN, ROLE_SOURCE, list_manifests
from nasoa_lib.data.summary import DataReportConfig
from nasoa_lib.errors import ProfileConfigError, UnknownProfileError
from nasoa_lib.finetune import FinetuneSettings
from nasoa_lib.measure import MeasureConfig
from nasoa_lib.models import ModelsConfig
from nasoa_lib.profiles import (
    DEFAULT_PROFILE,
    PROFILES_FILE,
    Profile,
    available_profiles,
    load_profile,
    resolve_profile,
)
from nasoa_lib.search.config import small_image_stem
from nasoa_lib.train import PretrainRecipe

PROFILE_NAMES = ("smoke", "laptop", "paper")


@pytest.fixture
def profiles_copy(tmp_path):
    """A writable copy of configs/profiles.yaml and its parsed content."""
    raw = yaml.safe_load(PROFILES_FILE.read_text())

    def write(content) -> Path:
        path = tmp_path / "profiles.yaml"
        path.write_text(yaml.safe_dump(content))
        return path

    return raw, write


def test_the_three_profiles_exist_and_laptop_is_default():
    assert set(PROFILE_NAMES) <= set(available_profiles())
    assert DEFAULT_PROFILE == "laptop"


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_loads_with_typed_fields(name):
    profile = load_profile(name)
    assert isinstance(profile, Profile) and profile.name == name
    assert isinstance(profile.seeds, tuple) and profile.seeds
    assert profile.image_size >= 32 and profile.batch_size >= 1 and profile.threads >= 1
    config = profile.section("data", DataReportConfig)
    assert config.sample_grid_per_dataset >= 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.image_size = 8  # type: ignore[misc]


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_datasets_have_manifests_and_keep_their_roles(name):
    profile = load_profile(name)
    assert set(profile.datasets) <= set(list_manifests())
    assert DATASET_ROLES[profile.source_dataset] == ROLE_SOURCE
    assert all(DATASET_ROLES[d] == ROLE_META_TRAIN for d in profile.meta_train)
    assert all(DATASET_ROLES[d] == ROLE_META_TEST for d in profile.meta_test)
    assert not set(profile.meta_train) & set(profile.meta_test)  # no meta-test leak
    assert len(profile.datasets) == len(set(profile.datasets))


def test_smoke_is_no_bigger_than_laptop():
    smoke, laptop = load_profile("smoke"), load_profile("laptop")
    assert smoke.image_size <= laptop.image_size
    assert (
        smoke.section("data", DataReportConfig).sample_grid_per_dataset
        <= laptop.section("data", DataReportConfig).sample_grid_per_dataset
    )


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(UnknownProfileError) as err:
        load_profile("desktop")
    text = str(err.value)
    assert "desktop" in text
    for name in PROFILE_NAMES:
        assert name in text


def test_section_with_unknown_key_is_an_error(profiles_copy):
    raw, write = profiles_copy
    raw["laptop"]["sections"]["data"]["sample_grid_per_datset"] = 4  # typo
    profile = load_profile("laptop", path=write(raw))
    with pytest.raises(ProfileConfigError, match="sample_grid_per_datset") as err:
        profile.section("data", DataReportConfig)
    assert "sample_grid_per_dataset" in err.value.hint


def test_missing_section_and_missing_key_are_errors(profiles_copy):
    raw, write = profiles_copy
    profile = load_profile("laptop")
    with pytest.raises(ProfileConfigError, match="no section 'nowhere'"):
        profile.section("nowhere", DataReportConfig)
    raw["smoke"]["sections"]["data"] = {}
    with pytest.raises(ProfileConfigError, match="sample_grid_per_dataset"):
        load_profile("smoke", path=write(raw)).section("data", DataReportConfig)
    raw["smoke"]["sections"]["data"] = {"sample_grid_per_dataset": 0}
    with pytest.raises(ProfileConfigError, match="must be >= 1"):
        load_profile("smoke", path=write(raw)).section("data", DataReportConfig)


def test_top_level_typo_is_an_error(profiles_copy):
    raw, write = profiles_copy
    raw["paper"]["imge_size"] = raw["paper"].pop("image_size")
    with pytest.raises(ProfileConfigError, match="imge_size"):
        load_profile("paper", path=write(raw))


def test_resolve_profile_loads_a_name_and_keeps_a_profile():
    laptop = load_profile("laptop")
    assert resolve_profile(laptop) is laptop
    assert resolve_profile("smoke") == load_profile("smoke")
    with pytest.raises(UnknownProfileError):
        resolve_profile("desktop")


def test_with_sections_from_swaps_only_the_named_sections():
    smoke, laptop = load_profile("smoke"), load_profile("laptop")
    mixed = smoke.with_sections_from(laptop, "finetune", "metadata")
    assert mixed.name == "smoke" and mixed.image_size == smoke.image_size
    assert mixed.section("finetune", FinetuneSettings) == laptop.section("finetune", FinetuneSettings)
    assert mixed.section("measure", MeasureConfig) == smoke.section("measure", MeasureConfig)


def test_measure_section_typo_is_an_error_with_a_hint(profiles_copy):
    raw, write = profiles_copy
    raw["smoke"]["sections"]["measure"]["warmpu"] = raw["smoke"]["sections"]["measure"].pop("warmup")
    profile = load_profile("smoke", path=write(raw))
    with pytest.raises(ProfileConfigError, match="warmpu") as err:
        MeasureConfig.from_profile(profile)
    assert "warmup" in err.value.hint


def test_models_section_typo_is_an_error_where_the_stem_is_read(profiles_copy):
    """The stem choice used to fall back to False when ``models:`` lacked the key."""
    raw, write = profiles_copy
    raw["smoke"]["sections"]["models"]["small_image_sterm"] = raw["smoke"]["sections"]["models"].pop("small_image_stem")
    profile = load_profile("smoke", path=write(raw))
    with pytest.raises(ProfileConfigError, match="small_image_sterm") as err:
        PretrainRecipe.from_profile(profile)
    assert "small_image_stem" in err.value.hint


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_stage_reads_of_models_and_measure_match_the_yaml(name):
    raw = yaml.safe_load(PROFILES_FILE.read_text())[name]["sections"]
    profile = load_profile(name)
    assert small_image_stem(profile) is raw["models"]["small_image_stem"]
    assert PretrainRecipe.from_profile(profile).small_image_stem is raw["models"]["small_image_stem"]
    assert ModelsConfig.from_profile(profile).baselines == tuple(raw["models"]["baselines"])
    m = MeasureConfig.from_profile(name)
    assert (m.warmup, m.steps, m.batch_size) == tuple(raw["measure"][k] for k in ("warmup", "steps", "batch_size"))


def _python_sources() -> list[Path]:
    root = PROFILES_FILE.parents[1]
    return sorted([*(root / "nasoa_lib").rglob("*.py"), *(root / "benchmarks").rglob("*.py")])


def test_profile_sections_are_read_only_through_typed_sections():
    """Outside profiles.py nothing reads ``profile.sections`` raw (a ``.get`` with a silent default
    hides a YAML typo) and nothing re-implements :func:`resolve_profile`."""
    offenders = []
    for path in _python_sources():
        if path.name == "profiles.py" and path.parent.name == "nasoa_lib":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "sections":
                offenders.append(f"{path.name}:{node.lineno}: .sections")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
                    and len(node.args) == 2 and isinstance(node.args[1], ast.Name) and node.args[1].id == "Profile"):
                offenders.append(f"{path.name}:{node.lineno}: isinstance(..., Profile)")
    assert _python_sources() and not offenders, offenders
