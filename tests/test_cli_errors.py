"""Bad command-line values reach the user as one ``error:`` line and one ``hint:`` line (exit 2),
never argparse's usage dump or a traceback."""

from __future__ import annotations

import pytest
from cli_checks import one_error

from nasoa_lib.cli import EXIT_USAGE, main


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
    error, hint = one_error(capsys)
    assert "--help" in hint
    assert "usage:" not in error + hint


@pytest.mark.parametrize("budget", ["10x", "0", "-5s", "abc"])
def test_unreadable_budget_is_not_called_too_small(budget, capsys, tmp_path):
    assert main(["recommend", "--data", str(tmp_path), f"--budget={budget}", "--profile", "smoke"]) == EXIT_USAGE
    error, hint = one_error(capsys)
    assert "smallest feasible" not in error
    assert "90s" in hint
