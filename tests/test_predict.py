"""``nasoa predict`` / :func:`load_finetuned`: a fine-tuned model.pt used without rebuilding it by hand
(issue 20, item 9), on a real tiny fine-tuning run written by the service's own writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_error as _one_error
import torch
from PIL import Image

from nasoa_lib import cli
from nasoa_lib.data import load_dataset, load_user_dataset, to_tensor
from nasoa_lib.data.user_data import convert_image
from nasoa_lib.errors import InvalidDataError
from nasoa_lib.generator.predict import load_finetuned, read_inputs

CODE = "011-_16_1-2-2-1"
CLASSES = (0, 3, 5)


def _write_split(root: Path, data, per_class: int, offset: int) -> None:
    for c in CLASSES:
        folder = root / data.class_names[c]
        folder.mkdir(parents=True)
        for j, idx in enumerate(np.flatnonzero(data.y_train == c)[offset : offset + per_class]):
            Image.fromarray(data.x_train[idx]).save(folder / f"{j}.png")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``service.finetune_for`` on a 3-class folder (train/ + test/) with a tiny pretrained network:
    the run folder (model.pt + run_card.json) and the data folder."""
    from nasoa_lib import train
    from nasoa_lib.finetune import FinetuneSettings
    from nasoa_lib.generator import FinetuneTimeTable, GeneratorConfig, RunCost, describe, recommend
    from nasoa_lib.generator import service
    from nasoa_lib.online import make_predictor
    from nasoa_lib.profiles import load_profile
    from nasoa_lib.store import ArtifactStore, spec_key

    root = tmp_path_factory.mktemp("predict")
    data_dir = root / "textures"
    source = load_dataset("dtd10")
    _write_split(data_dir / "train", source, per_class=10, offset=0)
    _write_split(data_dir / "test", source, per_class=8, offset=10)
    prof = load_profile("smoke")
    dataset = load_user_dataset(data_dir, image_size=prof.image_size)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = train.build_model(CODE, 100, prof.image_size).eval()
    pretrained = train.Pretrained(CODE, net, 0.1, {"image_size": prof.image_size, "model": CODE,
                                                    "recipe": {"small_image_stem": False}},
                                  spec_key({"test": "tiny-predict"}))
    config = GeneratorConfig(lrs=(0.05,), frozen_stages=(0,), epochs=(1,))
    table = FinetuneTimeTable("cpu", 16, prof.image_size, 2, {("tiny", 0): RunCost("tiny", 0, 0.01, 0.001, 100, 0.001,
                                                                                    0.05, False)})
    settings = FinetuneSettings(batch_size=16)
    predictor = make_predictor("adaptive", ["tiny"], seed=0)
    rec = recommend(describe(dataset, 0.5), 60.0, {"tiny": 0.1}, predictor, table, config=config, settings=settings)
    svc = service.Service(prof, ArtifactStore(root / "store"), config, settings, {"tiny": 0.1}, {"tiny": CODE}, table,
                          predictor, "adaptive")
    patch = pytest.MonkeyPatch()
    patch.setattr(train, "load_pretrained", lambda *a, **k: pretrained)
    try:
        card = service.finetune_for(dataset, rec, svc, root / "run", progress=False)
    finally:
        patch.undo()
    return root / "run", data_dir, card


def test_predict_on_the_runs_test_split_reproduces_the_run_cards_accuracy(run, capsys):
    """Issue 20 (9): before, model.pt could only be used by rebuilding the network by hand."""
    out, data, card = run
    assert cli.main(["predict", "--model", str(out), "--data", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"] == 3 * 8 and len(result["predictions"]) == 24
    assert result["accuracy"] == pytest.approx(card["outcome"]["accuracy"], abs=1e-12)
    assert {r["label"] for r in result["predictions"]} == set(card["class_names"])
    assert cli.main(["predict", "--model", str(out / "model.pt"), "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert f"accuracy: {100 * card['outcome']['accuracy']:.1f} % ({result['correct']}/24 images)" in text


def test_image_files_get_the_same_classes_as_the_dataset_split(run, capsys):
    out, data, _ = run
    assert cli.main(["predict", "--model", str(out), "--data", str(data), "--json"]) == 0
    by_split = json.loads(capsys.readouterr().out)["predictions"]
    files = sorted((data / "test").glob("*/*.png"))  # the given test split, in the loader's (class, file) order
    assert cli.main(["predict", "--model", str(out), "--data", *map(str, files), "--json", "--top", "2"]) == 0
    by_file = json.loads(capsys.readouterr().out)
    assert [r["predicted"] for r in by_file["predictions"]] == [r["predicted"] for r in by_split]
    assert "accuracy" not in by_file and all(len(r["top"]) == 2 for r in by_file["predictions"])
    assert by_file["predictions"][0]["image"] == str(files[0])


def test_loader_rebuilds_with_the_builder_and_preprocesses_like_fine_tuning(run, tmp_path):
    out, data, card = run
    fitted = load_finetuned(out)
    assert fitted.code == CODE and fitted.network.code == CODE and not fitted.network.training
    assert fitted.class_names == tuple(card["class_names"]) and fitted.image_size == 32
    x = load_user_dataset(data).x_test
    torch.testing.assert_close(fitted.preprocess(x), to_tensor(x, 32))
    big = np.stack([np.asarray(Image.fromarray(img).resize((48, 64), Image.NEAREST)) for img in x[:3]])
    expected = np.stack([convert_image(Image.fromarray(img), 32) for img in big])
    torch.testing.assert_close(fitted.preprocess(big), to_tensor(expected, 32))
    probs = fitted.probabilities(x)
    assert probs.shape == (len(x), 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(fitted.predict(x), probs.argmax(axis=1))


def test_images_of_any_mode_and_size_are_classified(run, capsys, tmp_path):
    out, _, _ = run
    folder = tmp_path / "new"
    folder.mkdir()
    rgb = load_dataset("dtd10").x_test[0]
    Image.fromarray(rgb).convert("L").resize((50, 40)).save(folder / "grey.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "alpha.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(rgb).save(folder / "photo.jpg")
    (folder / "notes.txt").write_text("ignored: not an image")
    assert cli.main(["predict", "--model", str(out), "--data", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["predictions"]
    assert sorted(Path(r["image"]).name for r in rows) == ["alpha.png", "grey.png", "palette.png", "photo.jpg"]


def _save(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("case, fragment", [
    ("missing_run", "no fine-tuned model at"),
    ("no_weights", "holds no model.pt"),
    ("corrupt", "cannot be read as a fine-tuned model"),
    ("truncated", "cannot be read as a fine-tuned model"),
    ("not_a_dict", "not the dict nasoa finetune writes"),
    ("missing_keys", "are missing"),
    ("wrong_weights", "weights do not fit"),
    ("bad_code", "cannot be built"),
    ("no_stem_no_card", "small-image stem"),
    ("bad_card", "not a readable run card"),
    ("missing_data", "does not exist"),
    ("text_file", "neither an image"),
    ("unreadable_image", "cannot read image"),
    ("empty_folder", "holds no images"),
    ("other_classes", "not fine-tuned on"),
    ("two_datasets", "cannot be mixed"),
    ("top_zero", "--top 0"),
])
def test_bad_models_and_inputs_are_one_error_and_a_hint(case, fragment, run, tmp_path, capsys):
    out, data, _ = run
    saved = torch.load(out / "model.pt", weights_only=True)
    model, inputs, extra = str(out), [str(data)], []
    bad = tmp_path / "bad"
    if case == "missing_run":
        model = str(tmp_path / "nowhere")
    elif case == "no_weights":
        bad.mkdir()
        model = str(bad)
    elif case == "corrupt":
        bad.mkdir()
        (bad / "model.pt").write_bytes(b"definitely not a torch file")
        model = str(bad)
    elif case == "truncated":
        bad.mkdir()
        (bad / "model.pt").write_bytes((out / "model.pt").read_bytes()[:1000])
        model = str(bad)
    elif case == "not_a_dict":
        model = str(_save(bad / "model.pt", [1, 2, 3]))
    elif case == "missing_keys":
        model = str(_save(bad / "model.pt", {"state_dict": saved["state_dict"]}))
    elif case == "wrong_weights":
        model = str(_save(bad / "model.pt", {**saved, "small_image_stem": False, "code": "020-_16_1-2-2-1"}))
    elif case == "bad_code":
        model = str(_save(bad / "model.pt", {**saved, "small_image_stem": False, "code": "not-a-code"}))
    elif case == "no_stem_no_card":
        model = str(_save(bad / "model.pt", {k: v for k, v in saved.items() if k != "small_image_stem"}))
    elif case == "bad_card":
        _save(bad / "model.pt", saved)
        (bad / "run_card.json").write_text("{not json")
        model = str(bad)
    elif case == "missing_data":
        inputs = [str(tmp_path / "no-images-here")]
    elif case == "text_file":
        (tmp_path / "notes.txt").write_text("hello")
        inputs = [str(tmp_path / "notes.txt")]
    elif case == "unreadable_image":
        (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
        inputs = [str(tmp_path / "broken.jpg")]
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        inputs = [str(tmp_path / "empty")]
    elif case == "other_classes":
        other = tmp_path / "other"
        for c in (1, 2):
            (other / f"class{c}").mkdir(parents=True)
            for j in range(3):
                Image.fromarray(load_dataset("dtd10").x_train[j]).save(other / f"class{c}" / f"{j}.png")
        inputs = [str(other)]
    elif case == "two_datasets":
        inputs = [str(data), str(data)]
    elif case == "top_zero":
        extra = ["--top", "0"]
    assert cli.main(["predict", "--model", model, "--data", *inputs, *extra]) == 2
    error, _ = _one_error(capsys)
    assert fragment in error


def test_a_model_file_without_its_card_uses_its_saved_stem(run, tmp_path):
    out, data, _ = run
    saved = torch.load(out / "model.pt", weights_only=True)
    alone = _save(tmp_path / "elsewhere" / "model.pt", {**saved, "small_image_stem": False})
    x = load_user_dataset(data).x_test
    np.testing.assert_array_equal(load_finetuned(alone).predict(x), load_finetuned(out).predict(x))


def test_a_model_file_without_its_stem_takes_it_from_the_run_cards_profile(run, tmp_path):
    """A model.pt written before ``small_image_stem`` was saved: the run card beside it names the
    profile, whose ``models.small_image_stem`` the network was built with."""
    out, data, _ = run
    saved = torch.load(out / "model.pt", weights_only=True)
    legacy = tmp_path / "legacy"
    _save(legacy / "model.pt", {k: v for k, v in saved.items() if k != "small_image_stem"})
    (legacy / "run_card.json").write_bytes((out / "run_card.json").read_bytes())
    x = load_user_dataset(data).x_test
    np.testing.assert_array_equal(load_finetuned(legacy).probabilities(x), load_finetuned(out).probabilities(x))


def test_read_inputs_splits(run):
    _, data, _ = run
    assert len(read_inputs([data], 32, "train").labels) == 30
    assert len(read_inputs([data], 32, "all").labels) == 54
    with pytest.raises(InvalidDataError, match="split"):
        read_inputs([data], 32, "holdout")


@pytest.mark.parametrize("images", [None, np.zeros((2, 32, 32, 3), dtype=np.float32), np.zeros((2, 32, 32), np.uint8),
                                    np.zeros((2, 32, 32, 4), dtype=np.uint8)])
def test_library_callers_get_a_clear_error_for_wrong_image_arrays(run, images):
    with pytest.raises(InvalidDataError, match=r"uint8 \(N, H, W, 3\)"):
        load_finetuned(run[0]).predict(images)
