"""The papermill runner: order, failure reporting, resume after a fix, HTML reports and the index."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nasoa_lib import paths
from nasoa_lib.errors import NotebookFailedError, NotebookNotFoundError, UnknownProfileError
from nasoa_lib.reporting.index import write_index
from nasoa_lib.reporting.outputs import load_headline, read_runs, save_figure, save_headline, save_table
from nasoa_lib.reporting.runner import (
    discover_notebooks,
    is_cached,
    notebook_fingerprint,
    prepare_notebooks,
    run_notebooks,
    select_notebooks,
    terminal_text,
    tidy_stream_outputs,
)


def _write_notebook(path: Path, *cells: str) -> Path:
    params = new_code_cell('profile = "laptop"')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[new_markdown_cell(f"# {path.stem}"), params, *(new_code_cell(c) for c in cells)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, str(path))
    return path


def _headline_cell(name: str, reports: Path) -> str:
    return (
        "from pathlib import Path\n"
        "from nasoa_lib.report import save_headline\n"
        f"save_headline(profile, {name!r}, {{'accuracy': 0.81234, 'profile_seen': profile}}, "
        f"reports_root=Path({str(reports)!r}))"
    )


# ---- pure parts (no kernel) ----------------------------------------------------------------

NESTED_BARS = (
    "from tqdm import tqdm\n"
    "for i in tqdm(range(3), desc='outer', mininterval=0):\n"
    "    for j in tqdm(range(200), desc='inner', leave=False, mininterval=0):\n"
    "        pass"
)


def test_terminal_text_keeps_what_a_terminal_shows():
    assert terminal_text("plain\nlines\n") == "plain\nlines\n"
    assert terminal_text("\rbar 1/3\rbar 2/3\rbar 3/3\n") == "bar 3/3\n"
    # a nested bar one row below the outer one (tqdm: newline, draw, cursor up), then cleared
    nested = "\router 0/2\n\rinner 5/9\x1b[A\n\rinner 9/9\x1b[A\n\r         \x1b[A\router 1/2\x1b[32m"
    assert terminal_text(nested) == "outer 1/2\n"
    assert terminal_text("\rlong progress line\rshort\n") == "shortprogress line\n"  # overwrite, no erase


def test_tidy_merges_each_stream_and_leaves_other_outputs():
    from nbformat.v4 import new_output

    cell = new_code_cell("x")
    cell.outputs = [new_output("stream", name="stderr", text="\rbar 1/2"),
                    new_output("stream", name="stderr", text="\rbar 2/2\n"),
                    new_output("stream", name="stdout", text="done\n"),
                    new_output("stream", name="stderr", text="tail\n"),
                    new_output("display_data", data={"text/plain": "fig"})]
    nb = tidy_stream_outputs(new_notebook(cells=[cell, new_markdown_cell("no outputs")]))
    texts = [(o.output_type, o.get("name"), o.get("text")) for o in nb.cells[0].outputs]
    assert texts == [("stream", "stderr", "bar 2/2\n"), ("stream", "stdout", "done\n"),
                     ("stream", "stderr", "tail\n"), ("display_data", None, None)]


def test_discover_and_select_in_numeric_order(tmp_path: Path):
    for name in ("10_last", "02_b", "00_a", "notes", "2x_bad"):
        _write_notebook(tmp_path / f"{name}.ipynb")
    found = discover_notebooks(tmp_path)
    assert [p.stem for p in found] == ["00_a", "02_b", "10_last"]
    assert [p.stem for p in select_notebooks(found, ["10", "0"])] == ["00_a", "10_last"]
    assert [p.stem for p in select_notebooks(found, ["02_b", "2"])] == ["02_b"]
    assert select_notebooks(found, None) == found
    with pytest.raises(NotebookNotFoundError) as info:
        select_notebooks(found, ["07"])
    assert "07" in str(info.value) and "00_a, 02_b, 10_last" in info.value.hint


def test_fingerprint_changes_with_notebook_and_profile(tmp_path: Path):
    nb = _write_notebook(tmp_path / "00_a.ipynb", "x = 1")
    smoke = notebook_fingerprint(nb, "smoke")
    assert smoke == notebook_fingerprint(nb, "smoke")
    assert smoke != notebook_fingerprint(nb, "laptop")
    html = tmp_path / "00_a.html"
    html.write_text("<html>")
    assert is_cached({"status": "ok", "fingerprint": smoke}, smoke, html)
    assert not is_cached({"status": "failed", "fingerprint": smoke}, smoke, html)
    _write_notebook(nb, "x = 2")
    assert not is_cached({"status": "ok", "fingerprint": smoke}, notebook_fingerprint(nb, "smoke"), html)
    html.unlink()
    assert not is_cached({"status": "ok", "fingerprint": smoke}, smoke, html)
    with pytest.raises(UnknownProfileError):
        notebook_fingerprint(nb, "nope")


def test_prepare_injects_the_profile(tmp_path: Path):
    src = tmp_path / "nbs"
    src.mkdir()
    _write_notebook(src / "00_a.ipynb", "print(profile)")
    _write_notebook(src / "01_b.ipynb", "print(profile)")
    written = prepare_notebooks("smoke", tmp_path / "out", notebooks_dir=src)
    assert [p.name for p in written] == ["00_a.ipynb", "01_b.ipynb"]
    nb = nbformat.read(str(written[0]), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    with pytest.raises(UnknownProfileError):
        prepare_notebooks("nope", tmp_path / "out2", notebooks_dir=src)


def test_tables_figures_headlines_go_to_the_profile_folder(tmp_path: Path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    monkeypatch.setattr(paths, "REPORT_DIR", tmp_path / "reports")
    table = save_table(pd.DataFrame({"model": ["a", "b"], "acc": [0.5, 0.25]}), "smoke", "table2")
    assert table == tmp_path / "reports" / "smoke" / "table2.csv"
    assert pd.read_csv(table).to_dict("list") == {"model": ["a", "b"], "acc": [0.5, 0.25]}
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = save_figure(fig, "smoke", "fig6")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not plt.get_fignums()
    save_headline("smoke", "07_nasoa_vs_hpo", {"nasoa_acc": 0.9})
    assert load_headline("smoke", "07_nasoa_vs_hpo") == {"nasoa_acc": 0.9}
    assert load_headline("smoke", "08_none") is None
    (tmp_path / "reports" / "smoke" / "run_notes.json").write_text('{"07_nasoa_vs_hpo": "resumed <stages>"}')
    index = write_index().read_text()
    assert "07_nasoa_vs_hpo" in index and "nasoa_acc" in index and "not run by the runner" in index
    assert "resumed &lt;stages&gt;" in index
    assert 'href="smoke/table2.csv"' in index and 'href="smoke/fig6.png"' in index


# ---- the runner (starts kernels: 4 notebook executions in all) ------------------------------


def test_failure_then_fix_then_resume(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "store"))
    nbs, reports = tmp_path / "notebooks", tmp_path / "reports"
    nbs.mkdir()
    _write_notebook(nbs / "01_ok.ipynb", _headline_cell("01_ok", reports))
    _write_notebook(nbs / "02_fail.ipynb", "a = 1", "value = 1 / 0\nprint(value)")
    _write_notebook(nbs / "03_after.ipynb", NESTED_BARS, "import os\nprint(os.getcwd())")

    with pytest.raises(NotebookFailedError) as info:
        run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False)
    message = str(info.value)
    assert "02_fail" in message and "value = 1 / 0" in message and "ZeroDivisionError" in message
    # cell 4 of the executed notebook: title, parameters, injected parameters, `a = 1`, then this one
    assert "cell 4 (In [4])" in message
    assert info.value.summary.executed == ["01_ok"] and info.value.summary.failed == ["02_fail"]

    out = reports / "smoke"
    runs = read_runs("smoke", reports_root=reports)
    assert runs["01_ok"]["status"] == "ok" and runs["02_fail"]["status"] == "failed"
    assert "03_after" not in runs
    assert (out / "01_ok.html").is_file() and (out / "02_fail.failed.html").is_file()
    assert "ZeroDivisionError" in (out / "02_fail.failed.html").read_text()
    assert json.loads((out / "01_ok.headline.json").read_text()) == {"accuracy": 0.81234, "profile_seen": "smoke"}
    index = (reports / "index.html").read_text()
    assert 'href="smoke/01_ok.html"' in index and 'class="failed"' in index and "0.8123" in index

    first_html_mtime = (out / "01_ok.html").stat().st_mtime_ns
    _write_notebook(nbs / "02_fail.ipynb", "a = 1", "value = 1 / 1\nprint(value)")
    summary = run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False)
    assert summary.skipped == ["01_ok"] and summary.executed == ["02_fail", "03_after"] and summary.ok
    assert (out / "01_ok.html").stat().st_mtime_ns == first_html_mtime
    assert not (out / "02_fail.failed.html").exists()
    runs = read_runs("smoke", reports_root=reports)
    assert {name: r["status"] for name, r in runs.items()} == {"01_ok": "ok", "02_fail": "ok", "03_after": "ok"}
    assert all(r["seconds"] > 0 and r["started_at"] for r in runs.values())
    executed = nbformat.read(str(out / "03_after.ipynb"), as_version=4)
    assert str(nbs) in executed.cells[-1].outputs[0]["text"], "notebooks run with their folder as cwd"
    bars = executed.cells[-2].outputs  # 3 x 200 bar updates stored as what a terminal shows at the end
    assert len(bars) == 1 and bars[0]["name"] == "stderr"
    assert bars[0]["text"].strip().startswith("outer: 100%") and "inner" not in bars[0]["text"]

    index = (reports / "index.html").read_text()
    for name in ("01_ok", "02_fail", "03_after"):
        assert f'href="smoke/{name}.html"' in index
    assert index.count('class="ok"') == 3 and 'class="failed"' not in index
    assert "http://" not in index and "https://" not in index and "<script" not in index
    assert "CI and tests" in index  # the profile's description


# ---- the store decides what is done (issue 20) -----------------------------------------------

STORING_CELL = (
    "from nasoa_lib.store import ArtifactStore\n"
    "store = ArtifactStore.for_profile(profile)\n"
    "if not store.has('stage', 'k1'):\n"
    "    store.write_bytes('stage', 'k1', 'weights.pt', b'w')\n"
    "    store.put('stage', 'k1', {'acc': 0.5})\n"
    "print('computed' if store.count('stage') else 'missing')"
)


def test_an_emptied_store_or_a_lost_artifact_is_recomputed_not_skipped(tmp_path: Path, monkeypatch):
    import shutil

    from nasoa_lib.store import ArtifactStore

    store_root = tmp_path / "store"
    monkeypatch.setenv("NASOA_STORE", str(store_root))
    nbs, reports = tmp_path / "notebooks", tmp_path / "reports"
    nbs.mkdir()
    _write_notebook(nbs / "01_stage.ipynb", STORING_CELL)
    assert run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False).executed == ["01_stage"]
    store = ArtifactStore(store_root / "smoke")
    assert store.producer("stage", "k1") == "01_stage" and store.producer("stage", "k1", "weights.pt") == "01_stage"
    assert read_runs("smoke", reports_root=reports)["01_stage"]["store"]["store_id"] == store.identity()
    assert run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False).skipped == ["01_stage"]

    shutil.rmtree(store_root)  # "delete a profile's folder to recompute everything"
    assert run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False).executed == ["01_stage"]
    assert ArtifactStore(store_root / "smoke").has("stage", "k1")

    ArtifactStore(store_root / "smoke").artifact_path("stage", "k1", "weights.pt").unlink()
    assert run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False).executed == ["01_stage"]
    assert ArtifactStore(store_root / "smoke").read_bytes("stage", "k1", "weights.pt") == b"w"


def test_a_corrupted_store_is_an_error_not_a_skip(tmp_path: Path, monkeypatch):
    from nasoa_lib.errors import StoreCorruptedError
    from nasoa_lib.store import ArtifactStore

    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "store"))
    nbs, reports = tmp_path / "notebooks", tmp_path / "reports"
    nbs.mkdir()
    nb = _write_notebook(nbs / "01_stage.ipynb", "x = 1")
    store = ArtifactStore.for_profile("smoke")
    store.put("stage", "k", {"a": 1})
    store.close()
    out = reports / "smoke"
    out.mkdir(parents=True)
    (out / "01_stage.html").write_text("<html>")
    runs = {"01_stage": {"status": "ok", "fingerprint": notebook_fingerprint(nb, "smoke"), "html": "01_stage.html",
                         "store": store.output_snapshot("01_stage")}}
    (out / "runs.json").write_text(json.dumps({"profile": "smoke", "notebooks": runs}))
    assert is_cached(runs["01_stage"], runs["01_stage"]["fingerprint"], out / "01_stage.html", store.output_rows())
    store.db_path.write_bytes(b"not a database at all, just garbage bytes")
    with pytest.raises(StoreCorruptedError) as info:
        run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False)
    assert "records.sqlite" in str(info.value) and "move" in info.value.hint


def test_a_failed_forced_run_keeps_the_last_good_report(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "store"))
    nbs, reports = tmp_path / "notebooks", tmp_path / "reports"
    nbs.mkdir()
    flag = tmp_path / "fail"
    _write_notebook(nbs / "01_x.ipynb", f"from pathlib import Path\nassert not Path({str(flag)!r}).exists(), 'told to fail'\nprint('good run')")
    run_notebooks("smoke", notebooks_dir=nbs, reports_root=reports, progress=False)
    out = reports / "smoke"
    good_html, good_nb = (out / "01_x.html").read_text(), (out / "01_x.ipynb").read_text()
    flag.touch()
    with pytest.raises(NotebookFailedError) as info:
        run_notebooks("smoke", force=True, notebooks_dir=nbs, reports_root=reports, progress=False)
    assert "01_x.html is kept" in info.value.hint
    assert (out / "01_x.html").read_text() == good_html and (out / "01_x.ipynb").read_text() == good_nb
    assert "told to fail" in (out / "01_x.failed.html").read_text()
    run = read_runs("smoke", reports_root=reports)["01_x"]
    assert run["status"] == "failed" and run["html"] == "01_x.failed.html"
    assert not list(out.glob("*.running.ipynb"))


def test_report_is_the_notebooks_import_path_to_the_reporting_package():
    """Notebooks write ``from nasoa_lib import report`` / ``from nasoa_lib.report import save_*``:
    the facade must hand them the very functions of :mod:`nasoa_lib.reporting`."""
    import re

    from nasoa_lib import report
    
    used = set()
    for nb in paths.NOTEBOOK_DIR.glob("*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        used |= set(re.findall(r"\breport\.([a-z_]+)\(", text))
        for names in re.findall(r"from nasoa_lib\.report import ([A-Za-z_, ]+)", text):
            used |= {n.strip() for n in names.split(",")}
    assert used and used <= set(report.__all__)


def test_source_notebooks_have_cell_ids_and_no_outputs():
    """Committed notebooks are sources: no outputs, and every cell carries the id nbformat 4.5
    requires (a cell without one draws a MissingIDFieldWarning on every run, and a future nbformat
    refuses it)."""
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    assert paths
    for path in paths:
        cells = json.loads(path.read_text())["cells"]
        assert all(c.get("id") for c in cells), f"{path.name}: cells without an id"
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code"), path.name
