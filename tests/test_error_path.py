"""One error path for people: every exception class lives in ``nasoa_lib/errors.py``, the library
raises no bare ``ValueError``/``TypeError``/``KeyError``/``RuntimeError`` a person could trigger,
and bad input through the command line ends as one ``error:`` line plus one ``hint:`` line (exit 2)."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_error as _one_error_and_one_hint

from nasoa_lib import errors
from nasoa_lib.cli import EXIT_USAGE, main

PACKAGE = Path(errors.__file__).parent
BARE = {"ValueError", "TypeError", "KeyError", "RuntimeError"}

#: Bare raises that no input can reach, as (file, enclosing function, exception, count).
ALLOWED_BARE_RAISES = {
    # The integer reader of BlockCode/MacroCode.from_dict; both callers catch its ValueError and
    # raise InvalidArchitectureCode naming the malformed dict, so it never reaches a person.
    ("space/codes.py", "_as_int", "ValueError"): 3,
    # pymoo's evaluation hook: the NAS loop evaluates candidates itself (ask/tell) and never
    # passes the problem to pymoo's evaluator, so this only fires if that design is broken.
    ("search/operators.py", "CodeProblem._evaluate", "RuntimeError"): 1,
}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(PACKAGE.rglob("*.py"))]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _exception_classes() -> dict[str, list[str]]:
    """Every class in the package that derives (directly or through another) from an exception,
    by file; bases are resolved by name against builtins, errors.py and the package's own classes."""
    known = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type)
             and issubclass(getattr(builtins, n), BaseException)}
    known |= {n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, BaseException)}
    classes = [(p, node) for p, tree in _modules() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    found: dict[str, list[str]] = {}
    changed = True
    while changed:
        changed = False
        for path, node in classes:
            bases = {_name(b) for b in node.bases}
            is_exception = bool(bases & known) or any(b.endswith(("Error", "Exception")) for b in bases)
            where = path.relative_to(PACKAGE).as_posix()
            if is_exception and node.name not in found.get(where, []):
                found.setdefault(where, []).append(node.name)
                known.add(node.name)
                changed = True
    return found


def test_every_exception_class_lives_in_errors_py():
    found = _exception_classes()
    assert "NasoaError" in found["errors.py"] and "InvalidMetaFeaturesError" in found["errors.py"]
    outside = {where: names for where, names in found.items() if where != "errors.py"}
    assert outside == {}, f"define these in nasoa_lib/errors.py: {outside}"


def test_error_classes_keep_the_builtin_class_callers_catch():
    for cls in (errors.InvalidCodeSpace, errors.UnsupportedNetworkError, errors.InvalidMeasurementSetup,
                errors.UnsafeNameError, errors.InvalidParallelSetup, errors.InvalidMetaFeaturesError,
                errors.InvalidPredictorConfig):
        assert issubclass(cls, errors.NasoaError) and issubclass(cls, ValueError)
    assert issubclass(errors.InvalidSpecValueError, TypeError)
    assert issubclass(errors.UnknownRunError, KeyError)
    assert issubclass(errors.PredictorNotFittedError, RuntimeError)


def _bare_raises() -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}

    def visit(node: ast.AST, where: str, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, where, f"{scope}.{child.name}" if scope else child.name)
                continue
            if isinstance(child, ast.Raise) and child.exc is not None and _name(child.exc) in BARE:
                key = (where, scope, _name(child.exc))
                counts[key] = counts.get(key, 0) + 1
            visit(child, where, scope)

    for path, tree in _modules():
        visit(tree, path.relative_to(PACKAGE).as_posix(), "")
    return counts


def test_no_bare_builtin_error_is_raised_outside_the_allow_list():
    """Scans the whole package, a superset of the modules ``nasoa`` reaches."""
    found = _bare_raises()
    unexpected = {k: n for k, n in found.items() if ALLOWED_BARE_RAISES.get(k) != n}
    assert unexpected == {}, (
        "raise a NasoaError subclass from nasoa_lib/errors.py (message + hint=) instead of: "
        f"{unexpected}")
    assert set(found) == set(ALLOWED_BARE_RAISES), "drop allow-list entries that no longer exist"


# ------------------------------------------------------------------- bad input through the CLI


def _user_npz(path: Path, labels=(0, 1, 0, 1)) -> Path:
    images = np.zeros((len(labels), 32, 32, 3), dtype=np.uint8)
    np.savez(path, x_train=images, y_train=np.asarray(labels), x_test=images[:2], y_test=np.asarray([0, 1]),
             class_names=np.asarray(["cat", "dog"]))
    return path


@pytest.fixture()
def no_store(tmp_path, monkeypatch):
    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "store"))
    return tmp_path / "store"


def test_status_of_an_unknown_profile(no_store, capsys):
    assert main(["status", "--profile", "nope"]) == EXIT_USAGE
    error, hint = _one_error_and_one_hint(capsys)
    assert error == "error: unknown profile 'nope'" and "smoke" in hint


def test_a_file_that_is_not_an_npz(no_store, tmp_path, capsys):
    broken = tmp_path / "pets.npz"
    broken.write_bytes(b"PK\x03\x04 cut off")
    assert main(["recommend", "--data", str(broken), "--budget", "10m", "--profile", "smoke"]) == EXIT_USAGE
    error, hint = _one_error_and_one_hint(capsys)
    assert "cannot be read as .npz" in error and "x_train" in hint


def test_an_npz_whose_labels_name_no_class(no_store, tmp_path, capsys):
    data = _user_npz(tmp_path / "pets.npz", labels=(0, 1, 7, 1))
    assert main(["recommend", "--data", str(data), "--budget", "10m", "--profile", "smoke"]) == EXIT_USAGE
    error, _ = _one_error_and_one_hint(capsys)
    assert "labels in [0, 7] but only 2 classes" in error


@pytest.mark.parametrize("content, fragment", [(b"\xff\xfe\x00", "not UTF-8"), (b"{chosen: ", "not JSON")])
def test_a_recommendation_that_is_not_json(content, fragment, no_store, tmp_path, capsys):
    saved = tmp_path / "rec.json"
    saved.write_bytes(content)
    argv = ["finetune", "--data", str(_user_npz(tmp_path / "pets.npz")), "--recommendation", str(saved),
            "--profile", "smoke", "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == EXIT_USAGE
    error, hint = _one_error_and_one_hint(capsys)
    assert fragment in error and "nasoa recommend" in hint
    assert not (tmp_path / "run").exists()


def test_prepare_notebooks_into_a_file(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("keep me")
    assert main(["prepare-notebooks", "--profile", "smoke", "--out", str(target)]) == EXIT_USAGE
    error, hint = _one_error_and_one_hint(capsys)
    assert "is a file, not a folder" in error and "--out" in hint
    assert target.read_text() == "keep me"


def test_status_of_a_store_whose_records_file_is_garbage(no_store, capsys):
    (no_store / "smoke").mkdir(parents=True)
    (no_store / "smoke" / "records.sqlite").write_bytes(b"garbage" * 100)
    assert main(["status", "--profile", "smoke"]) == EXIT_USAGE
    error, hint = _one_error_and_one_hint(capsys)
    assert "cannot be read" in error and "aside" in hint
    assert (no_store / "smoke" / "records.sqlite").read_bytes() == b"garbage" * 100


def test_a_profiles_file_that_is_not_yaml(tmp_path):
    from nasoa_lib.profiles import load_profile

    bad = tmp_path / "profiles.yaml"
    bad.write_text("smoke: {description: [unclosed\n")
    with pytest.raises(errors.ProfileConfigError, match="is not valid YAML") as err:
        load_profile("smoke", path=bad)
    assert err.value.hint
