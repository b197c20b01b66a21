"""Scale profiles (SPEC section 2): one code path, three sizes.

``configs/profiles.yaml`` defines ``smoke``, ``laptop`` and ``paper``. Common knobs are fields of
:class:`Profile`; each stage of the study keeps its own knobs in a named section that it reads
into its own frozen dataclass with :meth:`Profile.section`, so a typo in the YAML is an error,
not a silently ignored key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, TypeVar

import yaml

from nasoa_lib.errors import ProfileConfigError, UnknownProfileError
from nasoa_lib.paths import CONFIG_DIR

PROFILES_FILE = CONFIG_DIR / "profiles.yaml"
DEFAULT_PROFILE = "laptop"

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """Every size knob of one scale of the study."""

    name: str
    description: str
    image_size: int
    batch_size: int
    threads: int
    seeds: tuple[int, ...]
    source_dataset: str
    meta_train: tuple[str, ...]
    meta_test: tuple[str, ...]
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def datasets(self) -> tuple[str, ...]:
        """Every dataset the profile uses: source first, then meta-train, then meta-test."""
        return (self.source_dataset, *self.meta_train, *self.meta_test)

    def section(self, name: str, cls: type[T]) -> T:
        """Read section ``name`` into dataclass ``cls``; unknown or missing keys are errors."""
        if name not in self.sections:
            raise ProfileConfigError(
                f"profile {self.name!r} has no section {name!r}",
                hint=f"add a '{name}:' block under '{self.name}: sections:' in {PROFILES_FILE}",
            )
        values = dict(self.sections[name])
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ProfileConfigError(
                f"profile {self.name!r} section {name!r} has unknown keys {unknown}",
                hint=f"allowed keys: {sorted(known)}",
            )
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in values and isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        try:
            return cls(**values)
        except TypeError as err:
            raise ProfileConfigError(
                f"profile {self.name!r} section {name!r}: {err}",
                hint=f"allowed keys: {sorted(known)}",
            ) from err

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON values (the profile part of a notebook's fingerprint)."""
        return {
            "name": self.name,
            "description": self.description,
            "image_size": self.image_size,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "seeds": list(self.seeds),
            "source_dataset": self.source_dataset,
            "meta_train": list(self.meta_train),
            "meta_test": list(self.meta_test),
            "sections": {k: dict(v) for k, v in self.sections.items()},
        }

    def with_sections_from(self, other: "Profile", *names: str) -> "Profile":
        """This profile with sections ``names`` taken from ``other`` (e.g. a benchmark's smoke
        profile with the laptop profile's fine-tuning batch); every other field stays."""
        return dataclasses.replace(
            self, sections=MappingProxyType({**self.sections, **{n: other.sections[n] for n in names}})
        )


def resolve_profile(profile: Profile | str) -> Profile:
    """The one place a profile argument becomes a :class:`Profile`: a name is loaded from
    :data:`PROFILES_FILE`, a loaded profile is returned as it is."""
    return profile if isinstance(profile, Profile) else load_profile(profile)


def available_profiles(path: Path = PROFILES_FILE) -> tuple[str, ...]:
    """Names of the profiles defined in the YAML file, in file order."""
    return tuple(_read_yaml(path))


def load_profile(name: str = DEFAULT_PROFILE, path: Path = PROFILES_FILE) -> Profile:
    """Load one profile by name; an unknown name lists the known ones."""
    raw = _read_yaml(path)
    if name not in raw:
        raise UnknownProfileError(
            f"unknown profile {name!r}", hint=f"choose one of {', '.join(raw)} (defined in {path})"
        )
    body = dict(raw[name])
    sections = body.pop("sections", {}) or {}
    known = {f.name for f in dataclasses.fields(Profile)} - {"name", "sections"}
    unknown = sorted(set(body) - known)
    missing = sorted(known - set(body))
    if unknown or missing:
        raise ProfileConfigError(
            f"profile {name!r}: unknown keys {unknown}, missing keys {missing}",
            hint=f"top-level keys are {sorted(known)}; stage knobs go under 'sections:'",
        )
    for key in ("seeds", "meta_train", "meta_test"):
        body[key] = tuple(body[key])
    frozen_sections = MappingProxyType(
        {k: MappingProxyType(dict(v or {})) for k, v in sections.items()}
    )
    return Profile(name=name, sections=frozen_sections, **body)


@lru_cache(maxsize=8)
def _read_yaml_cached(path: str, mtime: float) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            raise ProfileConfigError(f"{path} is not valid YAML ({' '.join(str(err).split())})",
                                     hint="fix the line it names (or restore the file from git)") from err
    if not isinstance(data, dict):
        raise ProfileConfigError(f"{path} must map profile names to settings",
                                 hint="write 'name: {description: ..., sections: {...}}' entries at the top level")
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ProfileConfigError(f"profiles file {path} not found", hint="run from a full checkout")
    return _read_yaml_cached(str(path), path.stat().st_mtime)
