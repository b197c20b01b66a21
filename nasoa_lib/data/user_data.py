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
_LAYOUT_HINT = (
    "use an image folder (one sub-folder per class: DIR/<class>/<image>.jpg, like torchvision "
    "ImageFolder) or an .npz with x_train, y_train, x_test, y_test, class_names"
)


def load_user_dataset(
    path: str | Path, image_size: int = 32, test_fraction: float = 0.2, seed: int = 0
) -> ImageDataset:
    """Load an ImageFolder directory (split stratified per class with ``seed``) or an ``.npz``."""
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


def _read_image(file: Path, image_size: int) -> np.ndarray:
    try:
        with Image.open(file) as img:
            img.load()
            return convert_image(img, image_size)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InvalidDataError(
            f"cannot read image {file}: {err}",
            hint="delete or replace the file (it is not a readable image)",
        ) from err


def _load_folder(root: Path, image_size: int, test_fraction: float, seed: int) -> ImageDataset:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise InvalidDataError(
            f"{root} has {len(class_dirs)} class folder(s) "
            f"({', '.join(p.name for p in class_dirs) or 'none'}); a classifier needs >= 2",
            hint=_LAYOUT_HINT,
        )
    files: list[list[Path]] = []
    for class_dir in class_dirs:
        images = sorted(
            p
            for p in class_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if not images:
            raise InvalidDataError(
                f"class folder {class_dir} has no images ({', '.join(IMAGE_EXTENSIONS)})",
                hint="add images to it or remove the folder",
            )
        if test_fraction > 0 and len(images) < 2:
            raise InvalidDataError(
                f"class folder {class_dir} has 1 image; a train/test split needs >= 2 per class",
                hint="add images or pass test_fraction=0",
            )
        files.append(images)
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_te, y_te = [], [], [], []
    for label, images in enumerate(files):
        order = rng.permutation(len(images))
        n_test = 0
        if test_fraction > 0:  # at least one test and one training image per class
            n_test = min(len(images) - 1, max(1, round(len(images) * test_fraction)))
        test_set = set(order[:n_test].tolist())
        for i, file in enumerate(images):
            pixels = _read_image(file, image_size)
            (x_te if i in test_set else x_tr).append(pixels)
            (y_te if i in test_set else y_tr).append(label)
    empty = np.zeros((0, image_size, image_size, 3), dtype=np.uint8)
    return ImageDataset(
        name=root.name,
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
