"""The ``nasoa`` command: subcommands, help with examples, errors as one line plus a hint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nasoa_lib import cli, paths
from nasoa_lib.errors import StoreCorruptedError
from nasoa_lib.profiles import available_profiles, load_profile

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_profiles_lists_every_profile_with_its_description(capsys):
    assert cli.main(["profiles"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(available_profiles())
    for line in lines:
        name = line.split()[0]
        assert load_profile(name).description in line
    assert [line.split()[0] for line in lines if line.endswith("(default)")] == ["laptop"]


def test_unknown_profile_is_one_error_line_and_a_hint_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "nasoa_lib.cli", "reproduce", "--profile", "nope"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0] == "error: unknown profile 'nope'"
    assert lines[1].startswith("hint: ") and "smoke" in lines[1] and "laptop" in lines[1]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (paths.REPORT_DIR / "nope").exists()


def test_unknown_notebook_selector_is_an_error(capsys):
    assert cli.main(["reproduce", "--profile", "smoke", "--only", "99"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no notebook matches '99'") and "\nhint: choose among" in err


def test_prepare_with_unknown_profile_writes_nothing(tmp_path, capsys):
    out = tmp_path / "prepared"
    assert cli.main(["prepare-notebooks", "--profile", "nope", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown profile") and not out.exists()


def test_a_new_subcommand_is_one_registration_and_its_errors_are_reported(monkeypatch, capsys):
    def broken(args) -> int:
        raise StoreCorruptedError("store x\nis broken", hint="move it\naside")

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, cli.Command("broken", "fails", "nasoa broken",
                                                                    lambda p: None, broken)])
    assert cli.main(["broken"]) == 2
    assert capsys.readouterr().err == "error: store x is broken\nhint: move it aside\n"


def test_index_writes_the_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "REPORT_DIR", tmp_path / "reports")
    assert cli.main(["index"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "reports" / "index.html")
    assert "<h1>nasoa-study: reports</h1>" in (tmp_path / "reports" / "index.html").read_text()


@pytest.mark.parametrize("command", [c.name for c in cli.COMMANDS])
def test_every_subcommand_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"nasoa {command}" in out


def test_missing_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2 and "COMMAND" in capsys.readouterr().err
