"""Where a number came from (SPEC 13): code version, profile, device, seed, library versions.

Every result row the store keeps carries one of these dictionaries, so a table can always say
which commit, scale and machine kind produced it. No host names: records stay shareable.
"""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata

from nasoa_lib import __version__
from nasoa_lib.paths import PROJECT_ROOT

_VERSIONED = ("torch", "torchvision", "numpy")


@lru_cache(maxsize=1)
def git_revision() -> str:
    """``<sha>`` of HEAD, ``<sha>-dirty`` when tracked code differs from it, ``unknown`` outside git.

    Changes under ``reports/`` do not count as dirty: regenerating reports is not a code change.
    Cached per process (one pair of ``git`` calls).
    """
    try:
        sha = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no",
             "--", ".", ":(exclude)reports"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not sha:
        return "unknown"
    return f"{sha}-dirty" if status else sha


def library_versions() -> dict[str, str]:
    """Versions of Python, nasoa_lib and the numeric libraries (``"absent"`` when not installed)."""
    versions = {"python": platform.python_version(), "nasoa_lib": __version__}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def provenance(profile: str, seed: int | None = None, device: str | None = None) -> dict:
    """The provenance dictionary stored beside a result (``ArtifactStore.put(..., provenance=)``)."""
    return {
        "git": git_revision(),
        "profile": profile,
        "device": device,
        "seed": seed,
        **library_versions(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
