"""The notebooks' import path for saving outputs (``from nasoa_lib import report``;
``from nasoa_lib.report import save_figure, save_headline, save_table``).

The code lives in :mod:`nasoa_lib.reporting`: :mod:`~nasoa_lib.reporting.outputs` (tables, figures,
headline numbers), :mod:`~nasoa_lib.reporting.runner` (the papermill runner) and
:mod:`~nasoa_lib.reporting.index` (``reports/index.html``). This module only re-exports the names it
has always exported, so the executed notebooks, and their fingerprints, stay as they are until the
notebooks import :mod:`nasoa_lib.reporting` themselves. Library code imports from there directly.
"""

from __future__ import annotations

from nasoa_lib.reporting.index import write_index
from nasoa_lib.reporting.outputs import load_headline, read_run_notes, read_runs, save_figure, save_headline, save_table
from nasoa_lib.reporting.runner import (
    NotebookRun,
    RunSummary,
    discover_notebooks,
    is_cached,
    notebook_fingerprint,
    prepare_notebooks,
    render_html,
    run_notebooks,
    select_notebooks,
    service_build_command,
)

__all__ = [
    "NotebookRun", "RunSummary", "discover_notebooks", "is_cached", "load_headline",
    "notebook_fingerprint", "prepare_notebooks", "read_run_notes", "read_runs", "render_html", "run_notebooks",
    "service_build_command",
    "save_figure", "save_headline", "save_table", "select_notebooks", "write_index",
]
