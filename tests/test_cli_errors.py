"""Bad command-line values reach the user as one ``error:`` line and one ``hint:`` line (exit 2),
never argparse's usage dump or a traceback."""

from __future__ import annotations

import pytest

from nasoa_lib.cli import EXIT_USAGE, main


def _error_lines(stderr: str) -> tuple[list[str], list[str]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [l for l in lines if l.startswith("error: ")], [l for l in lines if l.startswith("hint: ")]


@pytest.mark.parametrize("argv", [
    ["bogus-command"],
    [],
    ["recommend", "--data", "x"],                       # missing --budget
    ["recommend", "--budget", "10m"],                   # missing --data
    ["reproduce", "--only", ","],                       # empty notebook list
    ["reproduce", "--no-such-flag"],
    ["finetune", "--data", "x", "--budget"],            # flag without its value
])
def test_parser_errors_are_one_error_and_one_hint(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    errors, hints = _error_lines(err)
    assert len(errors) == 1 and len(hints) == 1, err
    assert "--help" in hints[0]
    assert "usage:" not in err and "Traceback" not in err


@pytest.mark.parametrize("budget", ["10x", "0", "-5s", "abc"])
def test_unreadable_budget_is_not_called_too_small(budget, capsys, tmp_path):
    assert main(["recommend", "--data", str(tmp_path), f"--budget={budget}"]) == EXIT_USAGE
    errors, hints = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and len(hints) == 1
    assert "smallest feasible" not in errors[0]
    assert "90s" in hints[0]
