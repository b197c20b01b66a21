"""One check for the command line's error path, shared by the test modules: a failure is exactly
one ``error:`` line and one ``hint:`` line on stderr, never a traceback."""

from __future__ import annotations


def one_error(capsys) -> tuple[str, str]:
    """The ``(error line, hint line)`` of what the command just printed; fails the test otherwise."""
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), captured.err
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    return lines[0], lines[1]
