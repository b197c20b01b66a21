"""What the study writes into ``reports/<profile>/`` and reads back (SPEC 1, 12).

Notebooks write every table as CSV and every figure as PNG through :func:`save_table` and
:func:`save_figure`, and their few headline numbers through :func:`save_headline`; they never
copy a number by hand. The same folder holds the runner's record of each notebook run
(:data:`RUNS_FILE`, :func:`read_runs` / :func:`write_runs`) and hand-written run notes
(:data:`RUN_NOTES_FILE`); the runner (:mod:`.runner`) writes those records and the index page
(:mod:`.index`) reads all of it.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasoa_lib import paths
from nasoa_lib.errors import UnsafeNameError
from nasoa_lib.store import atomic_write_bytes, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

RUNS_FILE = "runs.json"
HEADLINE_SUFFIX = ".headline.json"
#: Hand-written notes per notebook (``{"09_x": "resumed: ..."}``) shown beside its run time, e.g.
#: when a run resumed stages computed in an earlier session so its time is not a cold run's.
RUN_NOTES_FILE = "run_notes.json"
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
STATUS_RUNNING = "running"
STATUS_INTERRUPTED = "interrupted"


def ensure_report_dir(profile: str, reports_root: Path | None) -> Path:
    """``reports/<profile>/`` (or ``<reports_root>/<profile>/``), created if missing."""
    folder = paths.report_dir(profile) if reports_root is None else Path(reports_root) / profile
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def safe_name(name: str) -> str:
    """``name`` if it is a plain file name; :class:`UnsafeNameError` saying how to name it otherwise."""
    if not _SAFE_NAME_RE.match(name):
        raise UnsafeNameError(f"output name {name!r} must be a plain file name (letters, digits, _ . -)",
                              hint="name the table or figure like 'table2_zoo' (no folders, spaces or other characters)")
    return name


def save_table(df, profile: str, name: str, *, index: bool = False, reports_root: Path | None = None) -> Path:
    """Write a pandas DataFrame as ``reports/<profile>/<name>.csv`` (atomically) and return the path."""
    path = ensure_report_dir(profile, reports_root) / f"{safe_name(name)}.csv"
    atomic_write_text(path, df.to_csv(index=index))
    return path


def save_figure(fig, profile: str, name: str, *, dpi: int = 120, reports_root: Path | None = None) -> Path:
    """Write a matplotlib figure as ``reports/<profile>/<name>.png``, close it, return the path."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    path = ensure_report_dir(profile, reports_root) / f"{safe_name(name)}.png"
    atomic_write_bytes(path, buffer.getvalue())
    return path


def save_headline(
    profile: str, notebook: str, values: Mapping[str, Any], *, reports_root: Path | None = None
) -> Path:
    """Write a notebook's headline numbers (shown on the index page) as ``<notebook>.headline.json``."""
    path = ensure_report_dir(profile, reports_root) / f"{safe_name(notebook)}{HEADLINE_SUFFIX}"
    atomic_write_json(path, dict(values))
    return path


def load_headline(profile: str, notebook: str, *, reports_root: Path | None = None) -> dict | None:
    """Headline numbers saved by :func:`save_headline`, or ``None`` if there are none."""
    root = paths.REPORT_DIR if reports_root is None else Path(reports_root)
    path = root / profile / f"{safe_name(notebook)}{HEADLINE_SUFFIX}"
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("ignoring unreadable headline file %s", path)
        return None
    return value if isinstance(value, dict) else {"value": value}


def read_runs(profile: str, *, reports_root: Path | None = None) -> dict[str, dict]:
    """``reports/<profile>/runs.json``: notebook stem -> last run record (empty if none)."""
    root = paths.REPORT_DIR if reports_root is None else Path(reports_root)
    path = root / profile / RUNS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("%s is unreadable; every notebook of %r will run again", path, profile)
        return {}
    return data.get("notebooks", {}) if isinstance(data, dict) else {}



def write_runs(folder: Path, profile: str, runs: Mapping[str, dict]) -> None:
    """Write ``runs.json`` of ``profile`` in ``folder`` (atomically): notebook stem -> run record."""
    atomic_write_json(folder / RUNS_FILE, {"profile": profile, "notebooks": dict(runs)})


def read_run_notes(profile: str, *, reports_root: Path | None = None) -> dict[str, str]:
    """The profile's :data:`RUN_NOTES_FILE` (``{}`` when absent or unreadable)."""
    root = paths.REPORT_DIR if reports_root is None else Path(reports_root)
    path = root / profile / RUN_NOTES_FILE
    if not path.is_file():
        return {}
    try:
        notes = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("ignoring unreadable run notes %s", path)
        return {}
    return {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}


__all__ = [
    "HEADLINE_SUFFIX", "RUNS_FILE", "RUN_NOTES_FILE", "STATUS_FAILED", "STATUS_INTERRUPTED", "STATUS_OK",
    "STATUS_RUNNING", "STATUS_SKIPPED", "ensure_report_dir", "load_headline", "read_run_notes", "read_runs",
    "safe_name", "save_figure", "save_headline", "save_table", "write_runs",
]
