"""Data layer: prepared datasets, manifests, tasks, transforms, user data (SPEC sections 3, 13)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import one_error
from PIL import Image

from nasoa_lib.data import (
    DATASET_ROLES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageDataset,
    Manifest,
    TaskSpec,
    list_manifests,
    load_dataset,
    load_manifest,
    load_user_dataset,
    make_task,
    manifest_path,
    random_flip_crop,
    sample_task,
    sample_task_spec,
    to_tensor,
)
from nasoa_lib.errors import (
    ChecksumMismatchError,
    DatasetNotFoundError,
    InvalidDataError,
    NasoaError,
    UnknownDatasetError,
)
from nasoa_lib.paths import data_dir

SHARED = data_dir()
pytestmark = pytest.mark.skipif(
    not (SHARED / "dtd10.npz").is_file(),
    reason=f"prepared datasets not found in {SHARED}; set NASOA_DATA_DIR",
)


# --- prepared datasets -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dtd10", "brain_mri"])
def test_load_small_dataset_shapes_and_counts(name):
    data = load_dataset(name)
    manifest = load_manifest(name)
    assert data.x_train.shape == (manifest.n_train, 32, 32, 3)
    assert data.x_test.shape == (manifest.n_test, 32, 32, 3)
    assert data.x_train.dtype == data.x_test.dtype == np.uint8
    assert data.y_train.dtype == data.y_test.dtype == np.int64
    assert data.class_names == manifest.class_names
    assert data.num_classes == manifest.num_classes
    assert set(np.unique(data.y_train)) == set(range(data.num_classes))
    assert set(np.unique(data.y_test)) == set(range(data.num_classes))
    assert data.role == DATASET_ROLES[name] == manifest.role
    assert data.train_counts().sum() == manifest.n_train


def test_loaded_dataset_is_cached_and_read_only():
    first = load_dataset("dtd10")
    assert load_dataset("dtd10") is first
    with pytest.raises(ValueError):
        first.x_train[0, 0, 0, 0] = 1


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UnknownDatasetError) as err:
        load_dataset("imagenet22k")
    assert "imagenet22k" in str(err.value)
    for name in ("cifar10", "brain_mri", "tinyimagenet100"):
        assert name in str(err.value)


def test_missing_file_names_manifest_and_how_to_obtain(tmp_path, monkeypatch):
    monkeypatch.setenv("NASOA_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("dtd10")
    message = str(err.value)
    assert str(manifest_path("dtd10")) in message
    assert "NASOA_DATA_DIR" in message
    assert "pan8915/DeepTexture" in message


def test_checksum_mismatch_after_flipping_one_byte(tmp_path, monkeypatch):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    shutil.copy(SHARED / "dtd10.npz", good / "dtd10.npz")
    shutil.copy(SHARED / "dtd10.npz", bad / "dtd10.npz")
    monkeypatch.setenv("NASOA_DATA_DIR", str(good))
    assert load_dataset("dtd10").x_train.shape[0] == 960

    raw = bytearray((bad / "dtd10.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (bad / "dtd10.npz").write_bytes(bytes(raw))
    monkeypatch.setenv("NASOA_DATA_DIR", str(bad))
    with pytest.raises(ChecksumMismatchError) as err:
        load_dataset("dtd10")
    assert load_manifest("dtd10").sha256 in str(err.value)
    assert "replace" in err.value.hint


def test_manifests_agree_with_shared_json():
    assert set(list_manifests()) == set(DATASET_ROLES)
    for name in list_manifests():
        manifest = load_manifest(name)
        shared = json.loads((SHARED / f"{name}.json").read_text())
        assert manifest.name == shared["name"] == name
        assert manifest.role == DATASET_ROLES[name]
        assert manifest.num_classes == shared["num_classes"]
        assert list(manifest.class_names) == shared["class_names"]
        assert (manifest.n_train, manifest.n_test) == (shared["n_train"], shared["n_test"])
        assert manifest.license == shared["license"]
        assert manifest.sha256 == shared["sha256"]
        assert manifest.npz_bytes == shared["npz_bytes"] == (SHARED / manifest.file).stat().st_size
        assert manifest.file == f"{name}.npz"
        src = shared["source"]
        pinned = (src["repo"], src["commit"]) if "repo" in src else (src["apt_package"], src["version"])
        for part in pinned:
            assert part in manifest.source and part in manifest.how_to_obtain
        assert Manifest.from_dict(manifest.to_dict()) == manifest


def test_manifest_with_unknown_key_is_rejected():
    data = load_manifest("dtd10").to_dict()
    data["colour_space"] = "rgb"
    with pytest.raises(InvalidDataError, match="colour_space"):
        Manifest.from_dict(data)


def test_image_dataset_rejects_out_of_range_labels():
    x = np.zeros((4, 8, 8, 3), np.uint8)
    y = np.array([0, 1, 2, 1], np.int64)
    with pytest.raises(InvalidDataError, match="labels"):
        ImageDataset("bad", x, y, x, y, ("a", "b"))
    with pytest.raises(InvalidDataError, match="x_train"):
        ImageDataset("bad", x[..., 0], y, x, y, ("a", "b", "c"))


# --- tasks -------------------------------------------------------------------------------------


def _label_of_image(data: ImageDataset) -> dict[bytes, int]:
    return {img.tobytes(): int(lbl) for img, lbl in zip(data.x_train, data.y_train)}


def test_task_sampling_is_reproducible_and_exact():
    data = load_dataset("dtd10")
    a = sample_task("dtd10", num_classes=4, images_per_class=7, seed=3)
    b = sample_task(data, num_classes=4, images_per_class=7, seed=3)
    c = sample_task("dtd10", num_classes=4, images_per_class=7, seed=4)
    assert a.spec == b.spec
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert a.spec != c.spec
    assert not np.array_equal(a.x_train, c.x_train)

    assert a.num_classes == 4 and len(a.spec.classes) == 4
    assert np.bincount(a.y_train).tolist() == [7, 7, 7, 7]
    assert np.bincount(a.y_test).tolist() == [24, 24, 24, 24]  # all test images of the classes
    assert list(a.spec.classes) == sorted(a.spec.classes)


def test_task_relabelling_maps_back_to_the_original_classes():
    data = load_dataset("dtd10")
    task = sample_task(data, num_classes=3, images_per_class=5, seed=11, test_per_class=4)
    assert task.class_names == tuple(data.class_names[c] for c in task.spec.classes)
    original = _label_of_image(data)
    for img, new_label in zip(task.x_train, task.y_train):
        assert original[img.tobytes()] == task.spec.classes[new_label]
    assert len({img.tobytes() for img in task.x_train}) == 15  # no image drawn twice
    assert np.bincount(task.y_test).tolist() == [4, 4, 4]


def test_class_images_do_not_depend_on_the_other_classes():
    one = make_task(TaskSpec("dtd10", (1, 2), 6, seed=5))
    two = make_task(TaskSpec("dtd10", (2, 7, 9), 6, seed=5))
    np.testing.assert_array_equal(one.x_train[one.y_train == 1], two.x_train[two.y_train == 0])


def test_task_spec_round_trips_through_json():
    spec = sample_task_spec("brain_mri", 3, 20, seed=1, test_per_class=10)
    again = TaskSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    task = make_task(again)
    assert len(task.y_train) == 60 and len(task.y_test) == 30


def test_task_errors_are_clear():
    with pytest.raises(InvalidDataError, match="num_classes=1"):
        sample_task_spec("dtd10", 1, 5, seed=0)
    with pytest.raises(InvalidDataError, match="num_classes=11"):
        sample_task_spec("dtd10", 11, 5, seed=0)
    with pytest.raises(InvalidDataError, match="images_per_class=0"):
        sample_task_spec("dtd10", 2, 0, seed=0)
    with pytest.raises(InvalidDataError, match="trash") as err:
        sample_task_spec("trashnet", 6, 111, seed=0)  # class 'trash' has 110 train images
    assert "at most 110" in err.value.hint
    with pytest.raises(InvalidDataError, match="distinct, sorted"):
        TaskSpec("dtd10", (3, 1), 5, seed=0)
    with pytest.raises(InvalidDataError, match="out of range"):
        make_task(TaskSpec("dtd10", (1, 10), 5, seed=0))
    with pytest.raises(InvalidDataError, match="brain_mri"):
        make_task(TaskSpec("dtd10", (0, 1), 5, seed=0), dataset=load_dataset("brain_mri"))


def test_validation_images_come_from_train_disjoint_and_leave_the_task_unchanged():
    data = load_dataset("dtd10")
    plain = make_task(TaskSpec("dtd10", (1, 4, 6), 9, seed=2, test_per_class=5))
    with_val = make_task(TaskSpec("dtd10", (1, 4, 6), 9, seed=2, test_per_class=5, validation_per_class=4))
    # the training and test images of the task do not change when validation images are added
    np.testing.assert_array_equal(plain.x_train, with_val.x_train)
    np.testing.assert_array_equal(plain.x_test, with_val.x_test)
    assert plain.x_val.shape == (0, *plain.x_train.shape[1:]) and plain.y_val.shape == (0,)
    assert np.bincount(with_val.y_val).tolist() == [4, 4, 4]
    train_images = {img.tobytes() for img in with_val.x_train}
    original = _label_of_image(data)  # train split only: validation images are all in it
    for img, label in zip(with_val.x_val, with_val.y_val):
        assert img.tobytes() not in train_images
        assert original[img.tobytes()] == with_val.spec.classes[label]
    # a spec without validation keeps its dict (and so every stored run key)
    assert "validation_per_class" not in plain.spec.to_dict()
    assert TaskSpec.from_dict(json.loads(json.dumps(with_val.spec.to_dict()))) == with_val.spec


def test_too_few_train_images_for_train_and_validation_is_a_clear_error():
    # trashnet's class 'trash' has 110 train images
    sample_task_spec("trashnet", 6, 100, seed=0, validation_per_class=10)
    with pytest.raises(InvalidDataError, match="100 training \\+ 11 validation") as err:
        sample_task_spec("trashnet", 6, 100, seed=0, validation_per_class=11)
    assert "at most 110 training + validation" in err.value.hint
    with pytest.raises(InvalidDataError, match="validation_per_class=0"):
        TaskSpec("dtd10", (0, 1), 5, seed=0, validation_per_class=0)


# --- transforms --------------------------------------------------------------------------------


def test_to_tensor_normalises_with_imagenet_statistics():
    data = load_dataset("dtd10")
    x = to_tensor(data.x_train[:10], 32)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32
    expected = (data.x_train[3, 5, 7, 1] / 255.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]
    assert x[3, 1, 5, 7].item() == pytest.approx(expected, abs=1e-6)
    chunked = to_tensor(data.x_train[:10], 32, chunk_size=3)
    assert torch.equal(x, chunked)


def test_to_tensor_resizes_in_chunks():
    data = load_dataset("dtd10")
    big = to_tensor(data.x_train[:5], 64, chunk_size=2)
    assert big.shape == (5, 3, 64, 64)
    assert torch.allclose(big, to_tensor(data.x_train[:5], 64, chunk_size=5))
    # upsampling keeps the mean colour of each image
    assert torch.allclose(big.mean(dim=(2, 3)), to_tensor(data.x_train[:5], 32).mean(dim=(2, 3)), atol=0.02)
    with pytest.raises(InvalidDataError, match="uint8"):
        to_tensor(data.x_train[:5].astype(np.float32), 32)


def test_random_flip_crop_is_a_shifted_or_mirrored_window():
    data = load_dataset("dtd10")
    batch = to_tensor(data.x_train[:16], 32)
    out = random_flip_crop(batch, padding=4, generator=torch.Generator().manual_seed(0))
    again = random_flip_crop(batch, padding=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and torch.equal(out, again)
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4))
    flips = 0
    for i in range(len(batch)):
        matches = [
            (dy, dx, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if torch.equal(
                out[i],
                padded[i, :, dy : dy + 32, dx : dx + 32].flip(-1)
                if flip
                else padded[i, :, dy : dy + 32, dx : dx + 32],
            )
        ]
        assert matches, f"image {i} is not a crop of its padded input"
        flips += any(m[2] for m in matches)
    assert 0 < flips < len(batch)
    assert torch.equal(random_flip_crop(batch[:0], padding=4), batch[:0])


# --- user data ---------------------------------------------------------------------------------


def _write_image_folder(root: Path, data: ImageDataset, classes=(0, 3, 5), per_class=10) -> dict:
    originals = {}
    for c in classes:
        folder = root / data.class_names[c]
        folder.mkdir(parents=True)
        for j, idx in enumerate(np.flatnonzero(data.y_train == c)[:per_class]):
            Image.fromarray(data.x_train[idx]).save(folder / f"img_{j:03d}.png")
            originals[data.x_train[idx].tobytes()] = data.class_names[c]
    return originals


def test_image_folder_loads_with_the_right_classes_and_counts(tmp_path):
    data = load_dataset("dtd10")
    originals = _write_image_folder(tmp_path / "textures", data)
    (tmp_path / "textures" / "README.txt").write_text("not a class")
    user = load_user_dataset(tmp_path / "textures", image_size=32, test_fraction=0.2, seed=0)
    assert user.name == "textures" and user.role == "user"
    assert user.class_names == tuple(sorted(data.class_names[c] for c in (0, 3, 5)))
    assert np.bincount(user.y_train).tolist() == [8, 8, 8]
    assert np.bincount(user.y_test).tolist() == [2, 2, 2]
    for x, y in ((user.x_train, user.y_train), (user.x_test, user.y_test)):
        for img, label in zip(x, y):  # PNG round trip at 32px is lossless: pixels are identical
            assert originals[img.tobytes()] == user.class_names[label]

    same = load_user_dataset(tmp_path / "textures", test_fraction=0.2, seed=0)
    other = load_user_dataset(tmp_path / "textures", test_fraction=0.2, seed=1)
    np.testing.assert_array_equal(same.x_test, user.x_test)
    assert not np.array_equal(other.x_test, user.x_test)
    small = load_user_dataset(tmp_path / "textures", image_size=16)
    assert small.x_train.shape[1:] == (16, 16, 3)


def test_image_folder_problems_are_named(tmp_path):
    data = load_dataset("dtd10")
    _write_image_folder(tmp_path / "a", data, classes=(0, 1), per_class=3)
    (tmp_path / "a" / "empty_class").mkdir()
    with pytest.raises(InvalidDataError, match="empty_class"):
        load_user_dataset(tmp_path / "a")

    _write_image_folder(tmp_path / "b", data, classes=(0, 1), per_class=3)
    broken = tmp_path / "b" / data.class_names[1] / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    with pytest.raises(InvalidDataError, match="broken.jpg"):
        load_user_dataset(tmp_path / "b")

    _write_image_folder(tmp_path / "c", data, classes=(2,), per_class=3)
    with pytest.raises(InvalidDataError, match="1 class folder"):
        load_user_dataset(tmp_path / "c")

    with pytest.raises(DatasetNotFoundError):
        load_user_dataset(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidDataError, match="neither a folder nor an .npz"):
        load_user_dataset(tmp_path / "notes.txt")


def _write_split(root: Path, data: ImageDataset, classes, per_class: int, offset: int = 0) -> None:
    for c in classes:
        folder = root / data.class_names[c]
        folder.mkdir(parents=True)
        for j, idx in enumerate(np.flatnonzero(data.y_train == c)[offset : offset + per_class]):
            Image.fromarray(data.x_train[idx]).save(folder / f"img_{j:03d}.png")


@pytest.mark.parametrize("held_out", ["test", "Test", "val", "valid", "validation"])
def test_train_and_test_folders_are_given_splits_not_two_classes(tmp_path, held_out):
    """Issue 20 (7): DIR/train/<class> + DIR/test/<class> was read as two classes 'train' and 'test'."""
    data = load_dataset("dtd10")
    root = tmp_path / "textures"
    _write_split(root / "train", data, (0, 3, 5), per_class=6)
    _write_split(root / held_out, data, (0, 3, 5), per_class=2, offset=6)
    user = load_user_dataset(root, test_fraction=0.2, seed=0)
    assert user.name == "textures"
    assert user.class_names == tuple(sorted(data.class_names[c] for c in (0, 3, 5)))
    assert np.bincount(user.y_train).tolist() == [6, 6, 6] and np.bincount(user.y_test).tolist() == [2, 2, 2]
    train_pixels = {img.tobytes() for img in user.x_train}
    assert all(img.tobytes() not in train_pixels for img in user.x_test)  # the given split is kept as given
    by_name = {data.class_names[c]: c for c in (0, 3, 5)}
    for img, label in zip(user.x_test, user.y_test):
        original = np.flatnonzero(data.y_train == by_name[user.class_names[label]])[6:8]
        assert any(np.array_equal(img, data.x_train[i]) for i in original)


def test_train_folder_alone_is_split_like_an_image_folder(tmp_path):
    data = load_dataset("dtd10")
    _write_split(tmp_path / "d" / "train", data, (0, 1), per_class=5)
    user = load_user_dataset(tmp_path / "d", test_fraction=0.2, seed=0)
    assert user.name == "d" and user.class_names == tuple(sorted(data.class_names[:2]))
    assert np.bincount(user.y_train).tolist() == [4, 4] and np.bincount(user.y_test).tolist() == [1, 1]


def test_ambiguous_split_layouts_are_refused_with_a_hint(tmp_path):
    data = load_dataset("dtd10")
    mixed = tmp_path / "mixed"
    _write_split(mixed / "train", data, (0, 1), per_class=3)
    _write_split(mixed, data, (2,), per_class=3)
    with pytest.raises(InvalidDataError, match="mixes split folders") as info:
        load_user_dataset(mixed)
    assert "train/" in info.value.hint and data.class_names[2] in str(info.value)

    both = tmp_path / "both"
    for split in ("train", "test", "val"):
        _write_split(both / split, data, (0, 1), per_class=2)
    with pytest.raises(InvalidDataError, match="more than one held-out split"):
        load_user_dataset(both)

    no_train = tmp_path / "no_train"
    _write_split(no_train / "test", data, (0, 1), per_class=2)
    with pytest.raises(InvalidDataError, match="no train/ folder"):
        load_user_dataset(no_train)

    differ = tmp_path / "differ"
    _write_split(differ / "train", data, (0, 1, 2), per_class=2)
    _write_split(differ / "test", data, (0, 1, 4), per_class=2)
    with pytest.raises(InvalidDataError, match="different class folders") as info:
        load_user_dataset(differ)
    assert data.class_names[2] in str(info.value) and data.class_names[4] in str(info.value)

    empty = tmp_path / "empty"
    _write_split(empty / "train", data, (0, 1), per_class=2)
    _write_split(empty / "test", data, (0, 1), per_class=2)
    for f in (empty / "test" / data.class_names[1]).iterdir():
        f.unlink()
    with pytest.raises(InvalidDataError, match="has no images"):
        load_user_dataset(empty)


def test_a_refused_layout_reaches_the_command_line_as_one_error_and_a_hint(tmp_path, capsys):
    from nasoa_lib import cli

    data = load_dataset("dtd10")
    _write_split(tmp_path / "mixed" / "train", data, (0, 1), per_class=3)
    _write_split(tmp_path / "mixed", data, (2,), per_class=3)
    assert cli.main(["recommend", "--data", str(tmp_path / "mixed"), "--budget", "10m", "--profile", "smoke"]) == 2
    error, hint = one_error(capsys)
    assert "mixes split folders" in error and "DIR/train/<class>" in hint


def test_user_npz_in_our_format_is_resized_when_needed(tmp_path):
    data = load_dataset("brain_mri")
    keep = np.flatnonzero(data.y_train < 4)[::40]
    path = tmp_path / "scans.npz"
    np.savez(
        path,
        x_train=data.x_train[keep],
        y_train=data.y_train[keep],
        x_test=data.x_test[:20],
        y_test=data.y_test[:20],
        class_names=np.array(data.class_names),
    )
    same = load_user_dataset(path, image_size=32)
    np.testing.assert_array_equal(same.x_train, data.x_train[keep])
    assert same.class_names == data.class_names and same.name == "scans"
    small = load_user_dataset(path, image_size=24)
    assert small.x_train.shape == (len(keep), 24, 24, 3) and small.x_test.shape == (20, 24, 24, 3)

    np.savez(tmp_path / "wrong_keys.npz", images=data.x_train[:4], labels=data.y_train[:4])
    with pytest.raises(InvalidDataError, match="x_train"):
        load_user_dataset(tmp_path / "wrong_keys.npz")
    np.savez(
        tmp_path / "flat.npz",
        x_train=data.x_train[:4].reshape(4, -1),
        y_train=data.y_train[:4],
        x_test=data.x_test[:4].reshape(4, -1),
        y_test=data.y_test[:4],
        class_names=np.array(data.class_names),
    )
    with pytest.raises(InvalidDataError, match="shape"):
        load_user_dataset(tmp_path / "flat.npz")


def test_all_data_errors_are_nasoa_errors():
    for cls in (ChecksumMismatchError, DatasetNotFoundError, InvalidDataError, UnknownDatasetError):
        assert issubclass(cls, NasoaError)


# --- notebook 00 summary -----------------------------------------------------------------------


def test_dataset_table_and_figures_for_the_smoke_profile():
    import matplotlib.pyplot as plt

    from nasoa_lib.data.summary import (
        dataset_table,
        headline_numbers,
        plot_class_histograms,
        plot_sample_grid,
        sample_indices,
    )
    from nasoa_lib.profiles import load_profile

    profile = load_profile("smoke")
    table = dataset_table(profile)
    assert list(table["dataset"]) == list(profile.datasets)
    for row in table.itertuples():
        manifest = load_manifest(row.dataset)
        assert (row.classes, row.train_images, row.test_images) == (
            manifest.num_classes,
            manifest.n_train,
            manifest.n_test,
        )
        assert row.role == DATASET_ROLES[row.dataset]
        assert 1 <= row.train_per_class_min <= row.train_per_class_max
    trash = table.set_index("dataset").loc["trashnet"]
    assert (trash.train_per_class_min, trash.train_per_class_max) == (110, 475)
    headline = headline_numbers(table)
    assert headline["datasets"] == 7
    assert headline["train_images"] == sum(load_manifest(n).n_train for n in profile.datasets)

    data = load_dataset("dtd10")
    idx = sample_indices(data, 10, seed=0)
    assert sorted(data.y_train[idx].tolist()) == list(range(10))  # one image of each class
    datasets = [data, load_dataset("brain_mri")]
    grid = plot_sample_grid(datasets, per_dataset=6)
    assert sum(len(ax.images) for ax in grid.axes) == 12
    hist = plot_class_histograms(datasets)
    bars = [p.get_height() for p in hist.axes[1].patches]
    assert bars == load_dataset("brain_mri").train_counts().tolist()
    plt.close("all")
