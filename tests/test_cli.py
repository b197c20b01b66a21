"""The ``nasoa`` command: subcommands, help with examples, errors as one line plus a hint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_error as _one_error

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


# ---- nasoa recommend / nasoa finetune (the schedule generator for a practitioner's images) ---------


def _image_folder(root: Path, classes: int = 2, per_class: int = 6) -> Path:
    """Real images of a prepared dataset written out as an ImageFolder (one PNG per image)."""
    from PIL import Image

    from nasoa_lib.data import load_dataset

    data = load_dataset("cifar10")
    for c in range(classes):
        folder = root / data.class_names[c]
        folder.mkdir(parents=True)
        for i, idx in enumerate(np.flatnonzero(data.y_train == c)[:per_class]):
            Image.fromarray(data.x_train[idx]).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def smoke_service(tmp_path_factory):
    """A smoke store with a real (tiny) zoo, the reference network and an adaptive predictor."""
    import pandas as pd

    from nasoa_lib import zoo
    from nasoa_lib.online import make_predictor, store_predictor
    from nasoa_lib.store import ArtifactStore
    from nasoa_lib.train import pretrain

    root = tmp_path_factory.mktemp("cli-store")
    patch = pytest.MonkeyPatch()
    patch.setenv("NASOA_STORE", str(root))
    store = ArtifactStore.for_profile("smoke")
    evaluations = pd.DataFrame({"code": ["011-_16_1-2-2-1", "020-_16_1-2-2-1"], "feasible": [True, True],
                                "proxy_top1": [0.1, 0.2], "step_ms": [1.0, 2.0]})
    cards = zoo.build_zoo("smoke", evaluations, store, progress=False)
    pretrain("resnet18", profile="smoke", store=store, progress=False)
    store_predictor(store, "adaptive", make_predictor("adaptive", [c.name for c in cards], seed=0))
    data = _image_folder(tmp_path_factory.mktemp("user-data") / "pets")
    yield store, data
    patch.undo()


def test_recommend_prints_model_regime_prediction_time_and_runners_up(smoke_service, tmp_path, capsys):
    _, data = smoke_service
    saved = tmp_path / "rec.json"
    assert cli.main(["recommend", "--data", str(data), "--budget", "10m", "--profile", "smoke", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    for text in ("model:", "regime:", "predicted accuracy:", "expected time:", "runners-up"):
        assert text in out
    assert cli.main(["recommend", "--data", str(data), "--budget", "10m", "--profile", "smoke", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["chosen"]["expected_seconds"] <= 600 and len(rec["runners_up"]) <= 5
    assert rec["task"]["num_classes"] == 2 and rec["chosen"]["model"].startswith("ours/ET-NAS-")
    assert saved.is_file()


def test_finetune_saves_weights_and_card_and_teaches_the_predictor(smoke_service, tmp_path, capsys):
    from nasoa_lib.online import load_predictor

    store, data = smoke_service
    out = tmp_path / "run"
    assert cli.main(["finetune", "--data", str(data), "--budget", "10m", "--profile", "smoke", "--out", str(out),
                     "--no-progress"]) == 0
    assert "accuracy:" in capsys.readouterr().out
    card = json.loads((out / "run_card.json").read_text())
    assert 0.0 <= card["outcome"]["accuracy"] <= 1.0 and (out / "model.pt").is_file()
    first = load_predictor(store, "service").updates
    assert first >= 1 and card["predictor"]["updates"] == first
    saved = tmp_path / "rec.json"
    assert cli.main(["recommend", "--data", str(data), "--budget", "10m", "--profile", "smoke", "--save", str(saved)]) == 0
    assert cli.main(["finetune", "--data", str(data), "--recommendation", str(saved), "--profile", "smoke",
                     "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    assert load_predictor(store, "service").updates == first + 1


@pytest.mark.parametrize("case", ["missing", "unreadable", "no_classes", "one_image", "bad_budget", "impossible"])
def test_practitioner_errors_are_one_line_and_a_hint(case, smoke_service, tmp_path, capsys):
    _, data = smoke_service
    budget = "10m"
    if case == "missing":
        data = tmp_path / "nowhere"
    elif case == "unreadable":
        data = _image_folder(tmp_path / "broken")
        (data / "airplane" / "bad.jpg").write_bytes(b"not an image")
    elif case == "no_classes":
        data = tmp_path / "empty"
        data.mkdir()
    elif case == "one_image":
        data = _image_folder(tmp_path / "tiny", per_class=1)
    elif case == "bad_budget":
        budget = "10x"
    else:
        budget = "0.001s"
    assert cli.main(["recommend", "--data", str(data), "--budget", budget, "--profile", "smoke"]) == 2
    error, hint = _one_error(capsys)
    expected = {"missing": "does not exist", "unreadable": "cannot read image", "no_classes": "class folder",
                "one_image": "1 image", "bad_budget": "cannot read the time budget",
                "impossible": "no model fits"}[case]
    assert expected in error
    if case == "impossible":
        assert "smallest feasible budget" in hint


def test_recommend_without_a_zoo_says_which_command_builds_it(smoke_service, tmp_path, monkeypatch, capsys):
    _, data = smoke_service
    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "empty-store"))
    assert cli.main(["recommend", "--data", str(data), "--budget", "10m", "--profile", "smoke"]) == 2
    error, hint = _one_error(capsys)
    assert "zoo" in error and "nasoa reproduce --profile smoke --only 00,01,02,03,05,06" in hint
    assert not (tmp_path / "empty-store").exists(), "a failed recommend must not leave an empty store"


# ---- nasoa status and the profile whose store exists (issue 20) -------------------------------


def test_status_imports_no_torch(tmp_path):
    code = ("import sys; from nasoa_lib import cli; from nasoa_lib.store import ArtifactStore; "
            "ArtifactStore.for_profile('smoke').put('a', 'b', {}); lines = cli.status_lines('smoke'); "
            "assert any('meta-dataset rows' in line for line in lines); print('torch' in sys.modules)")
    env = {**__import__("os").environ, "NASOA_STORE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_status_says_what_each_store_holds(tmp_path, monkeypatch, capsys):
    from nasoa_lib.online import make_predictor, store_predictor
    from nasoa_lib.store import ArtifactStore

    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "stores"))
    store = ArtifactStore.for_profile("smoke")
    store.put("zoo_card", "k1", {"name": "ours/ET-NAS-A", "group": "ours", "source_top1": 0.25})
    store.put("meta_run", "r1", {"accuracy": 0.5})
    store.put("meta_run", "r2", {"accuracy": 0.6})
    store_predictor(store, "adaptive", make_predictor("adaptive", ["ours/ET-NAS-A"], seed=0))
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "profile smoke" in out and "zoo: 1 of ours, 0 released" in out and "ours/ET-NAS-A: source top-1 0.250" in out
    assert "adaptive: adaptive, 0 online updates" in out and "meta-dataset rows: 2" in out
    assert "profile laptop" in out and "no store yet" in out and "--only 00,01,02,03,05,06" in out
    assert not (tmp_path / "stores" / "laptop").exists()


def test_without_profile_the_only_built_store_is_used_and_said(tmp_path, monkeypatch, capsys):
    from nasoa_lib.errors import StoreNotFoundError
    from nasoa_lib.store import ArtifactStore

    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "stores"))
    assert cli.resolve_store_profile(None) == "laptop"  # nothing built: the default, whose hint says how
    ArtifactStore.for_profile("smoke").put("a", "b", {})
    assert cli.resolve_store_profile(None) == "smoke" and "only profile" in capsys.readouterr().err
    assert cli.resolve_store_profile("laptop") == "laptop"
    args = cli.build_parser().parse_args(["recommend", "--data", "x", "--budget", "1m"])
    assert args.profile is None
    ArtifactStore.for_profile("paper").put("a", "b", {})
    with pytest.raises(StoreNotFoundError) as info:
        cli.resolve_store_profile(None)
    assert "--profile paper" in info.value.hint or "--profile smoke" in info.value.hint
    assert not (tmp_path / "stores" / "laptop").exists()
