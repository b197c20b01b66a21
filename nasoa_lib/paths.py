"""Where data and artifacts live: the only place that reads environment variables.

``NASOA_DATA_DIR``: prepared datasets (``NAME.npz`` + ``NAME.json``).
``NASOA_STORE``: root of the artifact/result store (default ``~/.cache/nasoa-study``),
one sub-folder per profile so smoke runs never mix with laptop results.
``NASOA_NOTEBOOK``: the notebook the runner is executing (set by :func:`nasoa_lib.reporting.runner.run_notebooks`
for its kernel and inherited by pool workers); the store tags what it writes with it.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"
MANIFEST_DIR = PROJECT_ROOT / "data_manifests"
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
REPORT_DIR = PROJECT_ROOT / "reports"


def data_dir() -> Path:
    """Folder of prepared datasets: ``$NASOA_DATA_DIR``, else ``../shared/datasets`` beside the checkout."""
    env = os.environ.get("NASOA_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return PROJECT_ROOT.parent / "shared" / "datasets"


def store_root() -> Path:
    """Root of all artifact stores: ``$NASOA_STORE``, else ``~/.cache/nasoa-study``."""
    env = os.environ.get("NASOA_STORE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "nasoa-study"


NOTEBOOK_ENV = "NASOA_NOTEBOOK"


def current_notebook() -> str | None:
    """The notebook (stem, ``"03_macro_search"``) being executed by the runner, else ``None``."""
    return os.environ.get(NOTEBOOK_ENV) or None


def store_dir(profile: str) -> Path:
    """The store of one profile (weights, run records, lookup tables)."""
    return store_root() / profile


def report_dir(profile: str) -> Path:
    """Executed notebooks, HTML, CSV and PNG of one profile."""
    return REPORT_DIR / profile
