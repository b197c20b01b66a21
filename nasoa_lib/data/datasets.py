"""Prepared image datasets (SPEC section 3): load ``NAME.npz`` from ``NASOA_DATA_DIR``, verified.

Every stage of the study reads data through :func:`load_dataset`. Loads are cached in-process and
the sha256 check is cached per (path, size, mtime), so the 80 MB source set costs one hash per
process, not one per call. Cached arrays are read-only: a caller that wants to change pixels
copies first, so no stage can silently alter another stage's data.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from nasoa_lib.data.manifests import DATASET_ROLES, load_manifest, manifest_path
from nasoa_lib.errors import ChecksumMismatchError, DatasetNotFoundError, InvalidDataError
from nasoa_lib.paths import data_dir

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")
ROLE_USER = "user"


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A classification dataset: uint8 NHWC RGB images and int64 labels in ``[0, num_classes)``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        validate_arrays(
            self.name, self.x_train, self.y_train, self.x_test, self.y_test, self.class_names
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def content_sha256(self) -> str:
        """sha256 of the images, labels (shapes and dtypes included) and class names: what the data
        *is*, whatever it is called. Caches of per-dataset results (e.g. meta-features' class means)
        are keyed by it, so user data saved as ``gtsrb.npz`` never gets gtsrb's results. Computed
        once per object (arrays are not changed after loading; the 80 MB source set takes ~0.1 s)."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(f"{array.dtype.str}{array.shape};".encode())
            digest.update(np.ascontiguousarray(array).data)
        digest.update("\0".join(self.class_names).encode("utf-8"))
        return digest.hexdigest()

    @property
    def role(self) -> str:
        """NASOA Table 1 role (source / meta-train / meta-test), ``"user"`` for a user's own data."""
        return DATASET_ROLES.get(self.name, ROLE_USER)

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    def train_counts(self) -> np.ndarray:
        """Training images per class (length ``num_classes``)."""
        return np.bincount(self.y_train, minlength=self.num_classes)

    def test_counts(self) -> np.ndarray:
        """Test images per class (length ``num_classes``)."""
        return np.bincount(self.y_test, minlength=self.num_classes)

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.name!r}, classes={self.num_classes}, train={len(self.y_train)}, "
            f"test={len(self.y_test)}, size={self.image_size})"
        )


def validate_arrays(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    class_names: tuple[str, ...],
) -> None:
    """Shapes, dtypes and label ranges of a dataset; raise :class:`InvalidDataError` naming the problem."""
    hint = "images must be uint8 (N, S, S, 3) RGB, labels int64 (N,) in [0, num_classes)"
    if len(class_names) < 2:
        raise InvalidDataError(f"dataset {name!r} has {len(class_names)} class(es); need >= 2", hint)
    size = None
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
            shape = getattr(x, "shape", None)
            dtype = getattr(x, "dtype", type(x).__name__)
            raise InvalidDataError(f"dataset {name!r}: x_{split} is {dtype} {shape}", hint)
        if x.shape[1] != x.shape[2]:
            raise InvalidDataError(
                f"dataset {name!r}: x_{split} images are {x.shape[1]}x{x.shape[2]}, not square", hint
            )
        if size is not None and x.shape[1] != size:
            raise InvalidDataError(
                f"dataset {name!r}: train images are {size}px but test images {x.shape[1]}px", hint
            )
        size = x.shape[1]
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (x.shape[0],):
            shape = getattr(y, "shape", None)
            dtype = getattr(y, "dtype", type(y).__name__)
            raise InvalidDataError(
                f"dataset {name!r}: y_{split} is {dtype} {shape}, expected int64 ({x.shape[0]},)", hint
            )
        if y.size and (y.min() < 0 or y.max() >= len(class_names)):
            raise InvalidDataError(
                f"dataset {name!r}: y_{split} has labels in [{y.min()}, {y.max()}] but only "
                f"{len(class_names)} classes",
                hint,
            )
    if len(y_train) == 0:
        raise InvalidDataError(f"dataset {name!r} has no training images", hint)


def dataset_path(name: str) -> Path:
    """Where the prepared file of ``name`` is expected (``data_dir()/<manifest.file>``)."""
    return data_dir() / load_manifest(name).file


def load_dataset(name: str, verify: bool = True) -> ImageDataset:
    """Load a prepared dataset by name, checking its sha256 against ``data_manifests/<name>.json``.

    Missing file -> :class:`DatasetNotFoundError` (says how to obtain it); wrong bytes ->
    :class:`ChecksumMismatchError`; unknown name -> :class:`UnknownDatasetError`.
    """
    manifest = load_manifest(name)
    path = data_dir() / manifest.file
    if not path.is_file():
        raise DatasetNotFoundError(
            f"dataset {name!r} not found at {path} (manifest: {manifest_path(name)})",
            hint=f"set NASOA_DATA_DIR to the folder holding {manifest.file}. {manifest.how_to_obtain}",
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if verify:
        actual = _sha256(*key)
        if actual != manifest.sha256:
            raise ChecksumMismatchError(
                f"dataset {name!r} at {path} has sha256 {actual}, manifest "
                f"{manifest_path(name)} expects {manifest.sha256}",
                hint=f"the file is corrupt or a different version: replace it. {manifest.how_to_obtain}",
            )
    return _load_npz(*key, name)


def clear_caches() -> None:
    """Forget cached datasets and checksums (tests; after replacing files in place)."""
    _sha256.cache_clear()
    _load_npz.cache_clear()


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def _load_npz(path: str, size: int, mtime_ns: int, name: str) -> ImageDataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise InvalidDataError(
                    f"dataset {name!r} at {path} lacks arrays {missing}",
                    hint=f"a prepared .npz holds exactly {', '.join(NPZ_KEYS)}",
                )
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        if isinstance(err, InvalidDataError):
            raise
        raise InvalidDataError(
            f"dataset {name!r} at {path} cannot be read as .npz: {err}",
            hint="replace the file (see its manifest's how_to_obtain)",
        ) from err
    for key in ("x_train", "y_train", "x_test", "y_test"):
        arrays[key].setflags(write=False)
    return ImageDataset(
        name=name,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        class_names=tuple(str(c) for c in arrays["class_names"]),
    )
