"""The notebook runner: which notebooks, their fingerprints, papermill execution (SPEC 1, 12).

:func:`run_notebooks` executes ``notebooks/NN_*.ipynb`` in order with papermill (parameter
``profile``), keeps the executed notebook and its HTML rendering in ``reports/<profile>/``, records
each run in ``reports/<profile>/runs.json`` and skips notebooks already executed with the same
fingerprint whose outputs are still in the artifact store (issue 20: the store, not the
repository, says what is done), so an interrupted or failed reproduction continues where it
stopped and a deleted store is recomputed. After each notebook it re-renders the index page
(:func:`nasoa_lib.reporting.index.write_index`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasoa_lib import __version__, paths
from nasoa_lib.errors import NotebookFailedError, NotebookNotFoundError, UnusablePathError
from nasoa_lib.reporting.index import write_index
from nasoa_lib.reporting.outputs import (
    STATUS_FAILED, STATUS_INTERRUPTED, STATUS_OK, STATUS_RUNNING, STATUS_SKIPPED, ensure_report_dir, read_runs,
    write_runs,
)
from nasoa_lib.store import ArtifactStore, StoreOutputs, atomic_write_text, canonical_json, output_snapshot

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from nasoa_lib.profiles import Profile

log = logging.getLogger(__name__)

KERNEL_NAME = "python3"
_NOTEBOOK_RE = re.compile(r"^(?P<num>\d+)_[^/]*\.ipynb$")

FAILED_SUFFIX = ".failed"
"""``<stem>.failed.html`` / ``.ipynb``: a failed run's report; the last good ``<stem>.html`` stays."""
RUNNING_SUFFIX = ".running"

#: The notebooks that build what ``nasoa recommend`` / ``nasoa finetune`` read: the reference
#: network for domain similarity (00, 01), pretrained baselines (01), the searched blocks and our
#: zoo with its pretrained weights (02, 03), the meta-dataset (05) and the online predictor
#: "adaptive" (06). Notebook 04 only compares the zoo with other families; nothing reads it.
SERVICE_NOTEBOOKS = ("00", "01", "02", "03", "05", "06")
#: Expected time of :func:`service_build_command` in a fresh store (README's notebook table).
SERVICE_BUILD_TIME = {"smoke": "about 3 min", "laptop": "about 2 h on a 2-core laptop"}


# --------------------------------------------------------------------------------------------
# Which notebooks
# --------------------------------------------------------------------------------------------


def service_build_command(profile: str) -> str:
    """The one command that builds everything ``nasoa recommend`` needs in ``profile``'s store,
    with its expected time when known; every "not built yet" hint quotes it."""
    command = f"nasoa reproduce --profile {profile} --only {','.join(SERVICE_NOTEBOOKS)}"
    expected = SERVICE_BUILD_TIME.get(profile)
    return f"{command} ({expected})" if expected else command


def discover_notebooks(notebooks_dir: Path | None = None) -> list[Path]:
    """``NN_*.ipynb`` in ``notebooks_dir`` (default ``notebooks/``), in numeric order."""
    folder = paths.NOTEBOOK_DIR if notebooks_dir is None else Path(notebooks_dir)
    found = [p for p in folder.glob("*.ipynb") if _NOTEBOOK_RE.match(p.name)]
    return sorted(found, key=lambda p: (int(_NOTEBOOK_RE.match(p.name)["num"]), p.name))


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """Notebooks matching ``only`` (numeric prefixes ``"00"``/``"4"`` or stems ``"04_zoo"``).

    ``None`` or empty selects all. A selector that matches nothing is an error listing the choices.
    """
    if not only:
        return list(notebooks)
    chosen: list[Path] = []
    for raw in only:
        selector = raw.strip()
        if not selector:
            continue
        if selector.isdigit():
            matches = [p for p in notebooks if int(_NOTEBOOK_RE.match(p.name)["num"]) == int(selector)]
        else:
            matches = [p for p in notebooks if p.stem == selector or p.stem.startswith(selector)]
        if not matches:
            raise NotebookNotFoundError(
                f"no notebook matches {selector!r}",
                hint="choose among " + (", ".join(p.stem for p in notebooks) or "(no notebooks found)"),
            )
        chosen.extend(m for m in matches if m not in chosen)
    return [p for p in notebooks if p in chosen]


def _profile_fingerprint_data(profile: "str | Profile") -> dict:
    from nasoa_lib.profiles import load_profile

    return (load_profile(profile) if isinstance(profile, str) else profile).to_dict()


def notebook_fingerprint(notebook: Path, profile: "str | Profile") -> str:
    """sha256 of the notebook file, the profile's settings and the nasoa_lib version.

    ``profile`` is a name or the loaded :class:`~nasoa_lib.profiles.Profile` (checking many notebooks
    loads it once). A notebook run whose fingerprint is unchanged is not repeated (unless forced). Library code
    changes within one version do not change it: results behind them live in the store, keyed
    by their own specs.
    """
    digest = hashlib.sha256()
    digest.update(Path(notebook).read_bytes())
    digest.update(b"\0")
    digest.update(canonical_json(_profile_fingerprint_data(profile)).encode())
    digest.update(b"\0")
    digest.update(__version__.encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Preparing and running
# --------------------------------------------------------------------------------------------


def prepare_notebooks(profile: str, out_dir: Path | str, *, notebooks_dir: Path | None = None) -> list[Path]:
    """Copy every notebook to ``out_dir`` with ``profile`` injected (papermill ``prepare_only``).

    ``make test`` runs the result under ``pytest --nbval-lax``.
    """
    import papermill

    _profile_fingerprint_data(profile)  # unknown profile: a clear error before touching files
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        what = ("is a file, not a folder" if isinstance(err, (FileExistsError, NotADirectoryError))
                else f"cannot be created ({err.strerror or err})")
        raise UnusablePathError(f"{out} {what}", hint="give --out a folder for the copies (it is created if missing)") from err
    written = []
    for nb in discover_notebooks(notebooks_dir):
        target = out / nb.name
        papermill.execute_notebook(
            str(nb), str(target), parameters={"profile": profile}, prepare_only=True,
            kernel_name=KERNEL_NAME, progress_bar=False, log_output=False,
        )
        written.append(target)
    log.info("prepared %d notebook(s) for profile %r in %s", len(written), profile, out)
    return written


@dataclass
class NotebookRun:
    """What happened to one notebook in one :func:`run_notebooks` call."""

    notebook: str
    status: str
    seconds: float | None = None
    started_at: str | None = None
    fingerprint: str | None = None
    html: str | None = None
    error: str | None = None


@dataclass
class RunSummary:
    """Result of :func:`run_notebooks`: one :class:`NotebookRun` per selected notebook reached."""

    profile: str
    reports_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)

    def by_status(self, status: str) -> list[str]:
        return [r.notebook for r in self.runs if r.status == status]

    @property
    def executed(self) -> list[str]:
        return self.by_status(STATUS_OK)

    @property
    def skipped(self) -> list[str]:
        return self.by_status(STATUS_SKIPPED)

    @property
    def failed(self) -> list[str]:
        return self.by_status(STATUS_FAILED)

    @property
    def ok(self) -> bool:
        return not self.failed

    def format(self) -> str:
        """Plain-text table for the terminal."""
        lines = [f"profile {self.profile}: reports in {self.reports_dir}"]
        for r in self.runs:
            seconds = "" if r.seconds is None else f"{r.seconds:8.1f} s"
            note = " (unchanged, outputs in the store)" if r.status == STATUS_SKIPPED else ""
            lines.append(f"  {r.notebook:<32} {r.status:<8} {seconds}{note}")
        return "\n".join(lines)


def _unchanged(previous: Mapping[str, Any] | None, fingerprint: str, html_path: Path) -> bool:
    """Last run ok, same fingerprint, HTML still there: the repository's half of :func:`is_cached`."""
    return bool(previous and previous.get("status") == STATUS_OK and previous.get("fingerprint") == fingerprint
                and html_path.is_file())


def _outputs_kept(previous: Mapping[str, Any], outputs: StoreOutputs, notebook: str) -> bool:
    """The store's half of :func:`is_cached`: the snapshot saved with the last run is unchanged."""
    saved = previous.get("store")
    if not isinstance(saved, Mapping):
        return False
    return output_snapshot(outputs, notebook, upto=int(saved.get("upto") or 0)) == dict(saved)


def is_cached(previous: Mapping[str, Any] | None, fingerprint: str, html_path: Path,
              outputs: StoreOutputs | None = None) -> bool:
    """Whether a notebook may be skipped: last run ok, same fingerprint, HTML still there and,
    given the profile's store ``outputs`` (:meth:`~nasoa_lib.store.ArtifactStore.output_rows`), the
    outputs it saw still in that same store (:func:`~nasoa_lib.store.output_snapshot`): an empty,
    re-created or damaged store or a lost artifact means it runs again."""
    if not _unchanged(previous, fingerprint, html_path):
        return False
    return outputs is None or _outputs_kept(previous, outputs, html_path.stem)


_TERMINAL_TOKEN = re.compile(r"(\r|\n|\x1b\[\d*[A-Za-z])")


def terminal_text(text: str) -> str:
    """What a terminal shows once ``text`` is printed: ``\\r`` returns to the start of the line,
    ``\\n`` moves down, ``ESC[nA`` / ``ESC[nB`` move up / down (tqdm's nested bars), other escape
    sequences are dropped. A text progress bar thus keeps only its last state, not one line per
    update (an executed notebook stores every update: 30K outputs for a long nested bar)."""
    lines: list[list[str]] = [[]]
    row = col = 0
    for token in _TERMINAL_TOKEN.split(text):
        if not token:
            continue
        if token == "\r":
            col = 0
            continue
        if token == "\n":
            row, col = row + 1, 0
        elif token.startswith("\x1b["):
            moves = int(token[2:-1] or 1)
            if token[-1] == "A":
                row = max(0, row - moves)
            elif token[-1] == "B":
                row += moves
            else:
                continue  # colours, erasing: not layout
        else:
            line = lines[row]
            line.extend(" " * (col - len(line)))
            line[col:col + len(token)] = token
            col += len(token)
            continue
        lines.extend([] for _ in range(row + 1 - len(lines)))
    return "\n".join("".join(line).rstrip() for line in lines)


def tidy_stream_outputs(nb: NotebookNode) -> NotebookNode:
    """Merge each cell's consecutive outputs of one stream and replace them by what a terminal
    would show (:func:`terminal_text`); other outputs are kept as they are. Returns ``nb``."""
    for cell in nb.cells:
        outputs = cell.get("outputs") or []
        merged: list[Any] = []
        for output in outputs:
            last = merged[-1] if merged else None
            if (output.output_type == "stream" and last is not None and last.output_type == "stream"
                    and last.name == output.name):
                last.text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.output_type == "stream" and ("\r" in output.text or "\x1b[" in output.text):
                output.text = terminal_text(output.text)
        if outputs:
            cell.outputs = merged
    return nb


def tidy_executed(executed: Path) -> Path:
    """Rewrite an executed notebook with :func:`tidy_stream_outputs` (atomically)."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    return atomic_write_text(executed, nbformat.writes(tidy_stream_outputs(nb)))


_HTML_EXPORTER = None


def render_html(executed: Path, target: Path) -> Path:
    """Render an executed notebook to HTML with nbconvert (written atomically)."""
    global _HTML_EXPORTER
    import nbformat
    from nbconvert import HTMLExporter

    if _HTML_EXPORTER is None:
        _HTML_EXPORTER = HTMLExporter()
    nb = nbformat.read(str(executed), as_version=4)
    body, _ = _HTML_EXPORTER.from_notebook_node(nb)
    return atomic_write_text(target, body)


def _failure_message(err: BaseException, name: str) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        first_line = next((ln for ln in str(err.source).splitlines() if ln.strip()), "").strip()
        # cell index and In [n] of the executed notebook (the HTML report), injected parameters included
        where = f"cell {err.cell_index} (In [{err.exec_count}]) `{first_line[:120]}`"
        return f"notebook {name} failed at {where}: {err.ename}: {err.evalue}"
    return f"notebook {name} failed: {type(err).__name__}: {err}"


def _run_one(nb: Path, fingerprint: str, force: bool, runs: dict, summary: RunSummary, store: ArtifactStore,
             outputs: StoreOutputs, notebooks_dir: Path, kernel_name: str, progress: bool) -> StoreOutputs:
    """One notebook of :func:`run_notebooks`: skip it, or run it into a temporary notebook that
    replaces the report only on success (a failure goes to ``<stem>.failed.html``). ``outputs``: the
    store as last read; returns it as it is after this notebook (read again only if it ran)."""
    import papermill

    profile, out_dir = summary.profile, summary.reports_dir
    root = out_dir.parent
    name = nb.stem
    executed = out_dir / f"{name}.ipynb"
    html_path = out_dir / f"{name}.html"
    running = out_dir / f"{name}{RUNNING_SUFFIX}.ipynb"
    failed_executed = out_dir / f"{name}{FAILED_SUFFIX}.ipynb"
    failed_html = out_dir / f"{name}{FAILED_SUFFIX}.html"
    if not force and _unchanged(runs.get(name), fingerprint, html_path):
        if _outputs_kept(runs[name], outputs, name):
            log.info("%s: unchanged since its last successful run and its outputs are in the store, skipped", name)
            summary.runs.append(NotebookRun(name, STATUS_SKIPPED, fingerprint=fingerprint, html=html_path.name))
            return outputs
        log.info("%s: unchanged, but what it computed is not in the store %s (new, emptied or changed): "
                 "running it again", name, store.root)

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    runs[name] = {"status": STATUS_RUNNING, "started_at": started, "seconds": None,
                  "fingerprint": fingerprint, "html": html_path.name, "error": None}
    write_runs(out_dir, profile, runs)
    log.info("%s: running (profile %s)", name, profile)
    t0 = time.perf_counter()
    failure: BaseException | None = None
    previous_tag = os.environ.get(paths.NOTEBOOK_ENV)
    os.environ[paths.NOTEBOOK_ENV] = name  # the kernel and its pool workers tag what they store
    try:
        papermill.execute_notebook(
            str(nb), str(running), parameters={"profile": profile}, kernel_name=kernel_name,
            cwd=str(notebooks_dir), progress_bar=progress, log_output=False,
            request_save_on_cell_execute=True,
        )
    except Exception as err:  # noqa: BLE001 - recorded, rendered, re-raised as NotebookFailedError
        failure = err
    except BaseException:
        if running.is_file():
            os.replace(running, failed_executed)
        runs[name].update(status=STATUS_INTERRUPTED, seconds=round(time.perf_counter() - t0, 2))
        write_runs(out_dir, profile, runs)
        write_index(root)
        raise
    finally:
        if previous_tag is None:
            os.environ.pop(paths.NOTEBOOK_ENV, None)
        else:
            os.environ[paths.NOTEBOOK_ENV] = previous_tag
    seconds = round(time.perf_counter() - t0, 2)

    message = None if failure is None else _failure_message(failure, name)
    if running.is_file():
        try:
            tidy_executed(running)
            render_html(running, html_path if failure is None else failed_html)
        except Exception as err:  # noqa: BLE001 - a rendering problem must not hide the result
            log.warning("%s: HTML rendering failed: %s", name, err)
            if failure is None:
                failure = err
                message = f"notebook {name} ran but its HTML could not be rendered: {err}"
        os.replace(running, executed if failure is None else failed_executed)
    if failure is None:
        failed_executed.unlink(missing_ok=True)
        failed_html.unlink(missing_ok=True)
    report_name = html_path.name if failure is None else failed_html.name
    runs[name] = {"status": STATUS_OK if failure is None else STATUS_FAILED, "started_at": started,
                  "seconds": seconds, "fingerprint": fingerprint, "html": report_name, "error": message}
    outputs = store.output_rows()
    if failure is None:
        runs[name]["store"] = output_snapshot(outputs, name)
    write_runs(out_dir, profile, runs)
    write_index(root)
    summary.runs.append(NotebookRun(name, runs[name]["status"], seconds, started, fingerprint, report_name, message))
    if failure is not None:
        kept = f"; the last good report {html_path.name} is kept" if html_path.is_file() else ""
        error = NotebookFailedError(
            message,
            hint=(f"see {failed_html} for the traceback{kept}; fix it and run the same command again: "
                  "notebooks that finished are skipped"),
        )
        error.summary = summary  # type: ignore[attr-defined]
        raise error from failure
    log.info("%s: ok in %.1f s", name, seconds)
    return outputs


def run_notebooks(
    profile: str,
    only: Sequence[str] | None = None,
    force: bool = False,
    *,
    notebooks_dir: Path | None = None,
    reports_root: Path | None = None,
    kernel_name: str = KERNEL_NAME,
    progress: bool = True,
) -> RunSummary:
    """Execute the notebooks in order for ``profile``; stop at the first failure.

    Each notebook runs on a fresh kernel with the notebooks folder as working directory (what
    JupyterLab does too), so batch and interactive runs agree. Writes ``<stem>.ipynb`` (executed)
    and ``<stem>.html`` to ``reports/<profile>/``, updates ``runs.json`` before and after each
    notebook (a killed run shows ``running`` and is repeated next time; ``ok`` carries the store
    snapshot :func:`is_cached` compares) and ``reports/index.html`` after each. A failure is
    recorded, its partial notebook and HTML kept as ``<stem>.failed.*`` beside the last good report,
    and raised as :class:`NotebookFailedError` naming the notebook and cell (with ``.summary``).
    """
    from nasoa_lib.profiles import load_profile

    prof = load_profile(profile)  # unknown profile: a clear error before touching files
    notebooks_dir = paths.NOTEBOOK_DIR if notebooks_dir is None else Path(notebooks_dir)
    root = paths.REPORT_DIR if reports_root is None else Path(reports_root)
    all_notebooks = discover_notebooks(notebooks_dir)
    selected = select_notebooks(all_notebooks, only)
    fingerprints = {nb: notebook_fingerprint(nb, prof) for nb in selected}
    out_dir = ensure_report_dir(profile, root)
    runs = read_runs(profile, reports_root=root)
    summary = RunSummary(profile=profile, reports_dir=out_dir)
    if not selected:
        log.warning("no notebooks in %s", notebooks_dir)

    store = ArtifactStore(paths.store_dir(prof.name))
    try:
        outputs = store.output_rows() if selected else None
        for nb in selected:
            outputs = _run_one(nb, fingerprints[nb], force, runs, summary, store, outputs, notebooks_dir,
                               kernel_name, progress)
    finally:
        store.close()
    write_index(root)
    return summary


__all__ = [
    "KERNEL_NAME", "SERVICE_BUILD_TIME", "SERVICE_NOTEBOOKS", "NotebookRun", "RunSummary", "discover_notebooks",
    "is_cached", "notebook_fingerprint", "prepare_notebooks", "render_html", "run_notebooks", "select_notebooks",
    "service_build_command", "terminal_text", "tidy_executed", "tidy_stream_outputs",
]
