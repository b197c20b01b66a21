"""``reports/index.html``: one self-contained page a reader opens without Python (SPEC 12).

One section per profile folder: each notebook's last run (status, time, error, run note), its
headline numbers and links to its HTML report and to the profile's tables and figures, all read
from what :mod:`.outputs` keeps in ``reports/<profile>/``. No external CSS or JS.
"""

from __future__ import annotations

import html
import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nasoa_lib import __version__, paths
from nasoa_lib.errors import ProfileConfigError
from nasoa_lib.reporting.outputs import HEADLINE_SUFFIX, RUNS_FILE, load_headline, read_run_notes, read_runs
from nasoa_lib.store import atomic_write_text

log = logging.getLogger(__name__)

INDEX_FILE = "index.html"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:70em;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
.ok{color:#11772d;font-weight:600}.failed{color:#b00020;font-weight:600}
.running,.interrupted{color:#a66a00;font-weight:600}.norun{color:#777}
.desc{color:#555}.err{color:#b00020;font-size:.9em}.note{color:#555;font-size:.85em}
ul.hl{margin:0;padding-left:1.1em}footer{margin-top:3em;color:#777;font-size:.85em}
"""


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d} min"


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _profile_description(profile: str) -> str:
    from nasoa_lib.profiles import available_profiles, load_profile

    try:
        if profile in available_profiles():
            return load_profile(profile).description
    except ProfileConfigError:
        pass
    return "(not a profile of configs/profiles.yaml)"


def _profile_order(names: list[str]) -> list[str]:
    from nasoa_lib.profiles import available_profiles

    try:
        known = list(available_profiles())
    except ProfileConfigError:
        known = []
    return [n for n in known if n in names] + sorted(n for n in names if n not in known)


def _profile_section(root: Path, profile: str) -> str:
    folder = root / profile
    runs = read_runs(profile, reports_root=root)
    notes = read_run_notes(profile, reports_root=root)
    headline_names = {p.name[: -len(HEADLINE_SUFFIX)] for p in folder.glob(f"*{HEADLINE_SUFFIX}")}
    names = sorted(set(runs) | headline_names,
                   key=lambda n: (int(n.split("_", 1)[0]) if n.split("_", 1)[0].isdigit() else 1 << 30, n))
    rows = []
    total = 0.0
    for name in names:
        run = runs.get(name, {})
        status = run.get("status", "")
        seconds = run.get("seconds")
        if isinstance(seconds, (int, float)):
            total += seconds
        html_name = run.get("html") or f"{name}.html"
        link = (f'<a href="{html.escape(profile)}/{html.escape(html_name)}">{html.escape(name)}</a>'
                if (folder / html_name).is_file() else html.escape(name))
        status_cell = (f'<span class="{html.escape(status)}">{html.escape(status)}</span>'
                       if status else '<span class="norun">not run by the runner</span>')
        if run.get("error"):
            status_cell += f'<div class="err">{html.escape(str(run["error"]))}</div>'
        if name in notes:
            status_cell += f'<div class="note">{html.escape(notes[name])}</div>'
        headline = load_headline(profile, name, reports_root=root) or {}
        items = "".join(f"<li>{html.escape(str(k))}: <b>{html.escape(_format_value(v))}</b></li>"
                        for k, v in headline.items())
        rows.append(
            f"<tr><td>{link}</td><td>{status_cell}</td><td class=\"num\">{_format_seconds(seconds)}</td>"
            f"<td>{html.escape(str(run.get('started_at') or ''))}</td>"
            f"<td>{'<ul class=hl>' + items + '</ul>' if items else ''}</td></tr>"
        )
    body = "\n".join(rows) or '<tr><td colspan="5" class="norun">no notebooks run yet</td></tr>'
    outputs = sorted(p.name for p in folder.iterdir() if p.suffix in (".csv", ".png", ".svg"))
    files = ""
    if outputs:
        links = ", ".join(f'<a href="{html.escape(profile)}/{html.escape(n)}">{html.escape(n)}</a>' for n in outputs)
        files = f"<details><summary>{len(outputs)} tables and figures</summary><p>{links}</p></details>\n"
    return (
        f'<section id="{html.escape(profile)}"><h2>Profile <code>{html.escape(profile)}</code></h2>\n'
        f'<p class="desc">{html.escape(_profile_description(profile))}</p>\n'
        "<table><thead><tr><th>notebook (report)</th><th>status</th><th>run time</th>"
        "<th>started (UTC)</th><th>headline numbers</th></tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n"
        f'<tfoot><tr><th>total</th><th></th><td class="num"><b>{_format_seconds(total)}</b></td>'
        f"<th></th><th></th></tr></tfoot></table>\n{files}</section>"
    )


def write_index(reports_root: Path | None = None) -> Path:
    """Render ``reports/index.html``: one section per profile folder, no external CSS or JS."""
    root = paths.REPORT_DIR if reports_root is None else Path(reports_root)
    root.mkdir(parents=True, exist_ok=True)
    found = [d.name for d in root.iterdir()
             if d.is_dir() and ((d / RUNS_FILE).is_file() or any(d.glob(f"*{HEADLINE_SUFFIX}")))]
    sections = "\n".join(_profile_section(root, p) for p in _profile_order(found))
    if not sections:
        sections = "<p class=norun>No reports yet: run <code>make reproduce</code>.</p>"
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>nasoa-study reports</title>"
        f"<style>{_CSS}</style></head><body>\n"
        "<h1>nasoa-study: reports</h1>\n"
        "<p>Each notebook of the study regenerates tables and figures of NASOA (and of the feature-"
        "history and Network Space Search papers). Links open the executed notebooks rendered as HTML; "
        "tables (CSV) and figures (PNG) sit beside them in the profile's folder. Numbers are only "
        "comparable within one profile: the profile sets the scale.</p>\n"
        f"{sections}\n"
        f"<footer>generated {generated} UTC by nasoa_lib {html.escape(__version__)}</footer>\n"
        "</body></html>\n"
    )
    return atomic_write_text(root / INDEX_FILE, page)



__all__ = ["INDEX_FILE", "write_index"]
