"""Dataset manifests (SPEC section 3): what each prepared dataset is, where it came from, how to get it.

One JSON file per dataset in ``data_manifests/`` (in the repository, unlike the data). The manifest is
the contract between the study and a prepared ``.npz``: its sha256 pins the exact bytes, its role
(source / meta-train / meta-test, mirroring NASOA Table 1) keeps meta-test data out of predictor
training, and ``how_to_obtain`` is what a missing-dataset error tells the user.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from nasoa_lib.errors import InvalidDataError, UnknownDatasetError
from nasoa_lib.paths import MANIFEST_DIR

ROLE_SOURCE = "source"
ROLE_META_TRAIN = "meta-train"
ROLE_META_TEST = "meta-test"
ROLES = (ROLE_SOURCE, ROLE_META_TRAIN, ROLE_META_TEST)

# NASOA Table 1 roles of our datasets (SPEC section 3). Never train the online predictor on a
# meta-test dataset.
DATASET_ROLES: Mapping[str, str] = {
    "tinyimagenet100": ROLE_SOURCE,
    "cifar10": ROLE_META_TRAIN,
    "gtsrb": ROLE_META_TRAIN,
    "dtd10": ROLE_META_TRAIN,
    "fashion_mnist": ROLE_META_TRAIN,
    "brain_mri": ROLE_META_TEST,
    "trashnet": ROLE_META_TEST,
}


@dataclass(frozen=True)
class Manifest:
    """Provenance and checksum of one prepared dataset (one row of NASOA Table 1 plus its origin)."""

    name: str
    role: str
    domain: str
    description: str
    num_classes: int
    class_names: tuple[str, ...]
    n_train: int
    n_test: int
    license: str
    source: str
    original_resolution: str
    how_to_obtain: str
    file: str
    npz_bytes: int
    sha256: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidDataError(
                f"manifest {self.name!r}: role {self.role!r} is not one of {ROLES}",
                hint=f"fix 'role' in {manifest_path(self.name)}",
            )
        if len(self.class_names) != self.num_classes:
            raise InvalidDataError(
                f"manifest {self.name!r}: {len(self.class_names)} class names for "
                f"num_classes={self.num_classes}",
                hint=f"fix {manifest_path(self.name)}",
            )
        if len(self.sha256) != 64:
            raise InvalidDataError(
                f"manifest {self.name!r}: sha256 must be 64 hex digits, got {self.sha256!r}",
                hint=f"run `sha256sum {self.file}` and fix {manifest_path(self.name)}",
            )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["class_names"] = list(self.class_names)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Manifest":
        name = data.get("name", "?")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        missing = sorted(known - set(data))
        if unknown or missing:
            raise InvalidDataError(
                f"manifest {name!r}: unknown keys {unknown}, missing keys {missing}",
                hint=f"a manifest has exactly the keys {sorted(known)}",
            )
        values = dict(data)
        values["class_names"] = tuple(values["class_names"])
        return cls(**values)


def manifest_path(name: str) -> Path:
    """Where the manifest of ``name`` lives (whether or not it exists)."""
    return MANIFEST_DIR / f"{name}.json"


def list_manifests() -> tuple[str, ...]:
    """Names of every dataset with a manifest, sorted."""
    return tuple(sorted(p.stem for p in MANIFEST_DIR.glob("*.json")))


def load_manifest(name: str) -> Manifest:
    """Read ``data_manifests/<name>.json``; an unknown name lists the known ones."""
    path = manifest_path(name)
    if not path.is_file():
        raise UnknownDatasetError(
            f"unknown dataset {name!r}: no manifest {path}",
            hint=f"known datasets: {', '.join(list_manifests())}",
        )
    return _load_manifest_cached(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _load_manifest_cached(path: str, mtime_ns: int) -> Manifest:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InvalidDataError(
            f"manifest {path} is not valid JSON: {err}", hint="restore it from git"
        ) from err
    return Manifest.from_dict(data)
