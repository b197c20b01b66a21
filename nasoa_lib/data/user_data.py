"""A practitioner's own data (SPEC sections 1 and 3): an image folder or an ``.npz`` -> ImageDataset.

Images go through the same conversion as the prepared datasets (RGB, centre square crop, bicubic
resize), so a model pretrained on the source set sees user images the way it saw its own. Every
problem (missing path, empty class, unreadable file, one class, wrong arrays) is reported with the
file at fault, before any training starts.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nasoa_lib.data.datasets import NPZ_KEYS, ImageDataset
from nasoa_lib.errors import DatasetNotFoundError, InvalidDataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Reserved top-level folder names of an image folder in given splits: ``train`` first, then the
#: held-out split in order of preference (see :func:`split_folders`).
SPLIT_NAMES = ("train", "test", "val", "valid", "validation")
_LAYOUT_HINT = (
    "use an image folder (one sub-folder per class: DIR/<class>/<image>.jpg, like torchvision "
    "ImageFolder, or DIR/train/<class>/ + DIR/test/<class>/) or an .npz with x_train, y_train, x_test, "
    "y_test, class_names"
)


def load_user_dataset(
    path: str | Path, image_size: int = 32, test_fraction: float = 0.2, seed: int = 0
) -> ImageDataset:
    """Load an ImageFolder directory or an ``.npz``.

    A folder is either one sub-folder per class (split stratified per class with ``seed``,
    ``test_fraction`` held out) or given splits ``DIR/train/<class>/`` + ``DIR/test/<class>/``
    (``val/``, ``valid/`` or ``validation/`` stand in for a missing ``test/``; see
    :func:`split_folders`), used as they are.
    """
    path = Path(path).expanduser()
    if image_size < 1:
        raise InvalidDataError(f"image_size={image_size}; must be >= 1", hint="use e.g. 32")
    if not 0.0 <= test_fraction < 1.0:
        raise InvalidDataError(
            f"test_fraction={test_fraction}; must be in [0, 1)", hint="0.2 keeps 20% for testing"
        )
    if not path.exists():
        raise DatasetNotFoundError(f"user data {path} does not exist", hint=_LAYOUT_HINT)
    if path.is_dir():
        return _load_folder(path, image_size, test_fraction, seed)
    if path.suffix.lower() == ".npz":
        return _load_npz(path, image_size)
    raise InvalidDataError(f"user data {path} is neither a folder nor an .npz file", hint=_LAYOUT_HINT)


def convert_image(image: Image.Image, image_size: int) -> np.ndarray:
    """RGB, centre square crop, bicubic resize to ``image_size`` (the prepared datasets' conversion)."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != image_size:
        image = image.resize((image_size, image_size), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def read_image(file: Path, image_size: int) -> np.ndarray:
    """One image file as uint8 (S, S, 3) RGB via :func:`convert_image`; any unreadable file is an
    :class:`InvalidDataError` naming it."""
    try:
        with Image.open(file) as img:
            img.load()
            return convert_image(img, image_size)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InvalidDataError(
            f"cannot read image {file}: {err}",
            hint="delete or replace the file (it is not a readable image)",
        ) from err


def subfolders(folder: Path) -> list[Path]:
    """The folders in ``folder`` (hidden ones skipped), sorted: its class or split folders."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(folder: Path, recursive: bool) -> list[Path]:
    """The image files (:data:`IMAGE_EXTENSIONS`, hidden ones skipped) in ``folder``, sorted; with
    ``recursive`` also those in its sub-folders (a class folder's images may be nested)."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _class_files(root: Path, empty_hint: str) -> tuple[list[Path], list[list[Path]]]:
    """The class folders of ``root`` (>= 2) and each one's image files (>= 1)."""
    class_dirs = subfolders(root)
    if len(class_dirs) < 2:
        raise InvalidDataError(
            f"{root} has {len(class_dirs)} class folder(s) "
            f"({', '.join(p.name for p in class_dirs) or 'none'}); a classifier needs >= 2",
            hint=_LAYOUT_HINT,
        )
    files: list[list[Path]] = []
    for class_dir in class_dirs:
        images = image_files(class_dir, recursive=True)
        if not images:
            raise InvalidDataError(
                f"class folder {class_dir} has no images ({', '.join(IMAGE_EXTENSIONS)})",
                hint=empty_hint,
            )
        files.append(images)
    return class_dirs, files


def split_folders(root: Path) -> dict[str, Path] | None:
    """``{"train": DIR/train, "test": DIR/<held-out>}`` when ``root`` is laid out in given splits,
    ``None`` for a plain ImageFolder (one folder per class).

    The names in :data:`SPLIT_NAMES` are reserved at the top level (any case): a folder holding one
    of them is read as splits, and then it must hold nothing else (a class folder beside ``train/``
    would be ambiguous). ``test/`` is the held-out split; without it, one of ``val/``, ``valid/``,
    ``validation/`` is (ImageNet's ``train/`` + ``val/``). ``test/`` together with a validation
    folder is refused rather than silently ignoring images; ``train/`` alone is split like a plain
    ImageFolder.
    """
    folders = subfolders(root)
    named = [p for p in folders if p.name.lower() in SPLIT_NAMES]
    splits = {p.name.lower(): p for p in named}
    if not splits:
        return None
    if len(splits) != len(named):
        raise InvalidDataError(
            f"{root} has split folders that differ only in case ({', '.join(p.name for p in named)})",
            hint="merge them into one train/ and one test/ folder",
        )
    others = [p.name for p in folders if p.name.lower() not in SPLIT_NAMES]
    if others:
        raise InvalidDataError(
            f"{root} mixes split folders ({', '.join(p.name for p in splits.values())}) with other folders "
            f"({', '.join(others)})",
            hint="use either DIR/<class>/<image> (split 80/20 for you) or DIR/train/<class>/<image> + "
            "DIR/test/<class>/<image>; move the other folders into train/ and test/",
        )
    if "train" not in splits:
        raise InvalidDataError(
            f"{root} has {', '.join(p.name + '/' for p in splits.values())} but no train/ folder",
            hint="put the training images in DIR/train/<class>/ beside DIR/test/<class>/",
        )
    held_out = [name for name in SPLIT_NAMES[1:] if name in splits]
    if len(held_out) > 1:
        raise InvalidDataError(
            f"{root} has more than one held-out split ({', '.join(splits[n].name + '/' for n in held_out)}); "
            "nasoa trains on train/ and measures accuracy on one held-out split",
            hint="merge the validation images into train/ (or into test/) and keep train/ + test/",
        )
    found = {"train": splits["train"]}
    if held_out:
        found["test"] = splits[held_out[0]]
    return found


def _load_folder(root: Path, image_size: int, test_fraction: float, seed: int) -> ImageDataset:
    splits = split_folders(root)
    if splits is None:
        return _load_image_folder(root, root.name, image_size, test_fraction, seed)
    if "test" not in splits:
        return _load_image_folder(splits["train"], root.name, image_size, test_fraction, seed)
    return _load_given_splits(root, splits["train"], splits["test"], image_size)


def _load_given_splits(root: Path, train: Path, test: Path, image_size: int) -> ImageDataset:
    """``DIR/train/<class>`` and ``DIR/test/<class>`` as given: the same class folders in both."""
    hint = "add images to it or remove the class from both splits"
    train_dirs, train_files = _class_files(train, hint)
    test_dirs, test_files = _class_files(test, hint)
    train_names, test_names = [p.name for p in train_dirs], [p.name for p in test_dirs]
    if train_names != test_names:
        only_train = sorted(set(train_names) - set(test_names))
        only_test = sorted(set(test_names) - set(train_names))
        parts = [f"only in {d.name}/: {', '.join(names)}"
                 for d, names in ((train, only_train), (test, only_test)) if names]
        raise InvalidDataError(
            f"{root}: {train.name}/ and {test.name}/ have different class folders ({'; '.join(parts)})",
            hint="every class needs a folder with images in both splits (same folder names)",
        )
    x_tr = [read_image(f, image_size) for images in train_files for f in images]
    x_te = [read_image(f, image_size) for images in test_files for f in images]
    return ImageDataset(
        name=root.name,
        x_train=np.stack(x_tr),
        y_train=np.asarray([label for label, images in enumerate(train_files) for _ in images], dtype=np.int64),
        x_test=np.stack(x_te),
        y_test=np.asarray([label for label, images in enumerate(test_files) for _ in images], dtype=np.int64),
        class_names=tuple(train_names),
    )


def _load_image_folder(folder: Path, name: str, image_size: int, test_fraction: float, seed: int) -> ImageDataset:
    """One folder per class, split stratified per class with ``seed``."""
    class_dirs, files = _class_files(folder, "add images to it or remove the folder")
    for class_dir, images in zip(class_dirs, files):
        if test_fraction > 0 and len(images) < 2:
            raise InvalidDataError(
                f"class folder {class_dir} has 1 image; a train/test split needs >= 2 per class",
                hint="add images or pass test_fraction=0",
            )
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_te, y_te = [], [], [], []
    for label, images in enumerate(files):
        order = rng.permutation(len(images))
        n_test = 0
        if test_fraction > 0:  # at least one test and one training image per class
            n_test = min(len(images) - 1, max(1, round(len(images) * test_fraction)))
        test_set = set(order[:n_test].tolist())
        for i, file in enumerate(images):
            pixels = read_image(file, image_size)
            (x_te if i in test_set else x_tr).append(pixels)
            (y_te if i in test_set else y_tr).append(label)
    empty = np.zeros((0, image_size, image_size, 3), dtype=np.uint8)
    return ImageDataset(
        name=name,
        x_train=np.stack(x_tr),
        y_train=np.asarray(y_tr, dtype=np.int64),
        x_test=np.stack(x_te) if x_te else empty,
        y_test=np.asarray(y_te, dtype=np.int64),
        class_names=tuple(p.name for p in class_dirs),
    )


def _resize_all(x: np.ndarray, image_size: int) -> np.ndarray:
    if x.shape[1] == image_size and x.shape[2] == image_size:
        return x
    if len(x) == 0:
        return np.zeros((0, image_size, image_size, 3), dtype=np.uint8)
    return np.stack([convert_image(Image.fromarray(img), image_size) for img in x])


def _load_npz(path: Path, image_size: int) -> ImageDataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise InvalidDataError(
                    f"{path} lacks arrays {missing} (has {sorted(npz.files)})", hint=_LAYOUT_HINT
                )
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InvalidDataError(f"{path} cannot be read as .npz: {err}", hint=_LAYOUT_HINT) from err
    except ValueError as err:
        if isinstance(err, InvalidDataError):
            raise
        raise InvalidDataError(
            f"{path} cannot be read without pickle: {err}",
            hint="store class_names as a unicode string array, not objects",
        ) from err
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise InvalidDataError(f"{path}: x_{split} is {x.dtype}, expected uint8 0-255", hint=_LAYOUT_HINT)
        if x.ndim == 4 and x.shape[3] == 1:
            x = x[..., 0]
        if x.ndim == 3:  # grey-scale: replicate to RGB like the prepared datasets
            x = np.repeat(x[..., None], 3, axis=3)
        if x.ndim != 4 or x.shape[3] != 3:
            raise InvalidDataError(
                f"{path}: x_{split} has shape {x.shape}, expected (N, H, W, 3)", hint=_LAYOUT_HINT
            )
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1 or len(y) != len(x):
            raise InvalidDataError(
                f"{path}: y_{split} is {y.dtype} {y.shape}, expected integer labels ({len(x)},)",
                hint=_LAYOUT_HINT,
            )
        arrays[f"x_{split}"] = _resize_all(x, image_size)
        arrays[f"y_{split}"] = y.astype(np.int64)
    names = arrays["class_names"]
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise InvalidDataError(
            f"{path}: class_names is {names.dtype} {names.shape}, expected 1-D strings", hint=_LAYOUT_HINT
        )
    return ImageDataset(
        name=path.stem,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        class_names=tuple(c.decode() if isinstance(c, bytes) else str(c) for c in names.tolist()),
    )
