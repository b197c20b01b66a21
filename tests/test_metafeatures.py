"""Meta-features: EMD domain similarity (Cui et al. 2018) on known values, and cached class means."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nasoa_lib import metafeatures as mf
from nasoa_lib import models
from nasoa_lib.data import load_dataset
from nasoa_lib.errors import InvalidDataError, ProfileConfigError
from nasoa_lib.store import ArtifactStore


def test_emd_of_a_set_with_itself_is_zero_and_similarity_one():
    rng = np.random.default_rng(0)
    means, weights = rng.normal(size=(7, 16)), rng.integers(1, 50, size=7)
    emd = mf.earth_movers_distance(means, weights, means, weights)
    assert emd == pytest.approx(0.0, abs=1e-9)
    assert mf.similarity_from_emd(emd) == pytest.approx(1.0)


def test_emd_known_values_and_weights():
    origin, far = np.zeros((1, 2)), np.array([[3.0, 4.0]])
    assert mf.earth_movers_distance(origin, [1], far, [1]) == pytest.approx(5.0)
    assert mf.similarity_from_emd(5.0) == pytest.approx(math.exp(-0.05))
    two = np.array([[0.0, 0.0], [10.0, 0.0]])
    # half of the mass travels 10: EMD 5; with weights 3:1 a quarter travels: 2.5
    assert mf.earth_movers_distance(two, [1, 1], origin, [7]) == pytest.approx(5.0)
    assert mf.earth_movers_distance(two, [3, 1], origin, [1]) == pytest.approx(2.5)
    # a target class between two source classes takes from both at the nearest cost
    assert mf.earth_movers_distance(two, [1, 1], np.array([[2.0, 0.0], [8.0, 0.0]]), [1, 1]) == pytest.approx(2.0)


def test_emd_is_symmetric_and_shifted_sets_are_less_similar():
    rng = np.random.default_rng(1)
    source, weights = rng.normal(size=(10, 8)), rng.integers(1, 9, size=10)
    target = source[:4] + 0.1
    sims = []
    for shift in (0.0, 1.0, 5.0, 20.0, 200.0):
        moved = target + shift
        emd = mf.earth_movers_distance(source, weights, moved, [1, 2, 3, 4])
        assert emd == pytest.approx(mf.earth_movers_distance(moved, [1, 2, 3, 4], source, weights))
        sims.append(mf.similarity_from_emd(emd))
    assert all(0.0 < s <= 1.0 for s in sims)
    assert sims == sorted(sims, reverse=True) and len(set(sims)) == len(sims)


def test_class_means_known_values_and_empty_class():
    features = np.array([[1.0, 0.0], [3.0, 2.0], [10.0, 10.0]])
    means, counts = mf.class_means(features, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(means, [[2.0, 1.0], [10.0, 10.0]])
    assert counts.tolist() == [2, 1]
    with pytest.raises(InvalidDataError, match="no images"):
        mf.class_means(features, np.array([0, 0, 2]), 3)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(InvalidDataError, match="cannot be compared"):
        mf.earth_movers_distance(np.zeros((2, 3)), [1, 1], np.zeros((2, 4)), [1, 1])
    with pytest.raises(InvalidDataError, match="weights"):
        mf.earth_movers_distance(np.zeros((2, 3)), [0, 0], np.zeros((2, 3)), [1, 1])
    with pytest.raises(InvalidDataError, match="EMD"):
        mf.similarity_from_emd(float("nan"))
    with pytest.raises(InvalidDataError, match="domain_similarity"):
        mf.make_meta_features("resnet18", 0.5, 0.0, 3, 10, 20, 0.01, 0)
    with pytest.raises(InvalidDataError, match="frozen_stages"):
        mf.make_meta_features("resnet18", 0.5, 0.5, 3, 10, 20, 0.01, 5)
    with pytest.raises(ProfileConfigError, match="gamma"):
        mf.MetaFeatureConfig(reference_model="resnet18", gamma=0.0)
    features = mf.make_meta_features("resnet18", 0.5, 0.8, 3, 10, 20, 0.01, 2)
    assert mf.MetaFeatures.from_dict(features.to_dict()) == features
    assert tuple(features.to_dict()) == mf.FEATURE_COLUMNS


def test_class_features_of_real_data_select_round_trip_and_reference_check():
    torch.manual_seed(0)
    net = models.create("resnet18", 10)
    data = load_dataset("dtd10")
    feats = mf.extract_class_features(net, data, 32, "random-resnet18", images_per_class=4)
    assert feats.means.shape == (10, net.feature_dim) and feats.counts.tolist() == data.train_counts().tolist()
    back = mf.ClassFeatures.from_bytes(feats.to_bytes())
    np.testing.assert_array_equal(back.means, feats.means)
    assert back.dataset == "dtd10" and back.reference == "random-resnet18"
    assert mf.domain_similarity(feats, back) == pytest.approx(1.0)
    emd, sim = mf.task_similarity(feats, feats, [1, 4, 7], images_per_class=5)
    assert emd > 0 and 0 < sim < 1
    other = mf.ClassFeatures("x", feats.means, feats.counts, "another-network")
    with pytest.raises(InvalidDataError, match="reference"):
        mf.emd_between(feats, other)


def test_dataset_class_features_are_computed_once(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = models.create("resnet18", 10)

    class Reference:  # what reference_network returns: a Pretrained-like value
        key, model = "test-reference", net

    store = ArtifactStore(tmp_path)
    config = mf.MetaFeatureConfig(reference_model="resnet18", images_per_class=3)
    first = mf.dataset_class_features("dtd10", "smoke", store, config, Reference())

    def fail(*args, **kwargs):
        raise AssertionError("class features were computed again")

    monkeypatch.setattr(mf, "extract_class_features", fail)
    again = mf.dataset_class_features("dtd10", "smoke", store, config, Reference())
    np.testing.assert_array_equal(first.means, again.means)
    assert store.count(mf.CLASS_FEATURES_KIND) == 1


class _Reference:
    """What reference_network returns (a Pretrained-like value) around a seeded random network."""

    key = "test-reference"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = models.create("resnet18", 10)


def _renamed(data, name: str):
    from nasoa_lib.data import ImageDataset

    return ImageDataset(name, data.x_train, data.y_train, data.x_test, data.y_test, data.class_names)


def test_user_data_named_like_a_study_dataset_gets_its_own_class_features(tmp_path):
    """Issue 20 (4): textures saved as 'gtsrb' got gtsrb's cached class means (and so its similarity)."""
    store, ref = ArtifactStore(tmp_path), _Reference()
    config = mf.MetaFeatureConfig(reference_model="resnet18", images_per_class=2)
    gtsrb = mf.dataset_class_features("gtsrb", "smoke", store, config, ref)
    impostor = _renamed(load_dataset("dtd10"), "gtsrb")
    theirs = mf.dataset_class_features(impostor, "smoke", store, config, ref)
    assert theirs.means.shape[0] == 10 != gtsrb.means.shape[0]
    assert store.count(mf.CLASS_FEATURES_KIND) == 2
    source = mf.dataset_class_features("dtd10", "smoke", store, config, ref)
    assert mf.domain_similarity(source, theirs) == pytest.approx(1.0)
    assert mf.domain_similarity(source, gtsrb) < 1.0


def test_class_features_are_keyed_by_content_not_by_name(tmp_path, monkeypatch):
    store, ref = ArtifactStore(tmp_path), _Reference()
    config = mf.MetaFeatureConfig(reference_model="resnet18", images_per_class=2)
    first = mf.dataset_class_features("dtd10", "smoke", store, config, ref)
    monkeypatch.setattr(mf, "extract_class_features", lambda *a, **k: pytest.fail("computed again for a new name"))
    copy = mf.dataset_class_features(_renamed(load_dataset("dtd10"), "my_textures"), "smoke", store, config, ref)
    np.testing.assert_array_equal(copy.means, first.means)
    assert copy.dataset == "my_textures" and store.count(mf.CLASS_FEATURES_KIND) == 1


def test_content_digest_sees_every_array_and_class_name():
    data = load_dataset("dtd10")
    assert _renamed(data, "other").content_sha256 == data.content_sha256
    x_test = data.x_test.copy()
    x_test[0, 0, 0, 0] ^= 1
    changed = [
        (data.x_train, data.y_train, x_test, data.y_test, data.class_names),
        (data.x_train, data.y_train, data.x_test, data.y_test, ("renamed-class",) + data.class_names[1:]),
        (data.x_train[:-1], data.y_train[:-1], data.x_test, data.y_test, data.class_names),
    ]
    from nasoa_lib.data import ImageDataset

    digests = {ImageDataset("dtd10", *arrays).content_sha256 for arrays in changed}
    assert len(digests) == 3 and data.content_sha256 not in digests
