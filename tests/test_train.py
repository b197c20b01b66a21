"""Pretraining on the real source set (a few hundred tinyimagenet100 images): records, reuse, and
resume after ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nasoa_lib.errors import ArtifactNotFoundError, UnknownModelError
from nasoa_lib.store import ArtifactStore
from nasoa_lib.train import (
    CHECKPOINT_FILE,
    CHECKPOINT_KIND,
    PRETRAINED_KIND,
    PretrainRecipe,
    build_model,
    load_pretrained,
    pretrain,
    pretrain_key,
)
from nasoa_lib.schedule import warmup_cosine

pytestmark = pytest.mark.slow

TINY = PretrainRecipe(epochs=1, batch_size=32, lr=0.05, augment=True, images_per_class=3, test_images_per_class=1)
# Resume test: enough images that an epoch takes a few hundred ms, so the parent sees the first
# checkpoint well before the child finishes.
RESUMABLE = PretrainRecipe(epochs=3, batch_size=32, lr=0.05, augment=False, images_per_class=6, test_images_per_class=1)

CHILD = """
import sys, torch
torch.set_num_threads(1)
from nasoa_lib.store import ArtifactStore
from nasoa_lib.train import PretrainRecipe, pretrain
recipe = PretrainRecipe.from_dict({recipe!r})
pretrain("resnet18", recipe=recipe, profile="smoke", store=ArtifactStore({root!r}), seed=0, progress=False)
"""


def test_pretrain_records_and_reuses(tmp_path):
    store = ArtifactStore(tmp_path)
    pre = pretrain("mobilenet_v3_small", recipe=TINY, profile="smoke", store=store, progress=False)
    record = pre.record
    assert record["model"] == "mobilenet_v3_small" and record["source"] == "tinyimagenet100"
    assert [e["epoch"] for e in record["curve"]] == [1]
    assert 0.0 <= pre.source_top1 <= 1.0 and record["train_images"] == 300 and record["test_images"] == 100
    assert record["train_seconds"] > 0 and record["images_per_second"] > 0
    assert store.artifact_exists(PRETRAINED_KIND, pre.key, "weights.pt")
    assert not store.artifact_exists(CHECKPOINT_KIND, pre.key, CHECKPOINT_FILE)
    # asking again loads the same weights instead of training
    again = pretrain("mobilenet_v3_small", recipe=TINY, profile="smoke", store=store, progress=False)
    assert again.record["curve"][0]["pid"] == record["curve"][0]["pid"] and store.count(PRETRAINED_KIND) == 1
    loaded = load_pretrained("mobilenet_v3_small", profile="smoke", recipe=TINY, store=store)
    for (name, a), b in zip(pre.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ArtifactNotFoundError, match="pretrain"):
        load_pretrained("resnet18", profile="smoke", recipe=TINY, store=store)


def test_resume_after_sigkill_trains_each_epoch_once(tmp_path):
    store = ArtifactStore(tmp_path)
    key = pretrain_key("resnet18", "tinyimagenet100", RESUMABLE, "smoke", 0)
    ckpt = tmp_path / "artifacts" / CHECKPOINT_KIND / key / CHECKPOINT_FILE
    code = CHILD.format(recipe=RESUMABLE.to_dict(), root=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 120
    while not ckpt.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    assert not store.has(PRETRAINED_KIND, key)
    done_before = store.load_torch(CHECKPOINT_KIND, key, CHECKPOINT_FILE)["epoch"]
    assert 1 <= done_before < RESUMABLE.epochs

    pre = pretrain("resnet18", recipe=RESUMABLE, profile="smoke", store=store, progress=False)
    epochs = [e["epoch"] for e in pre.record["curve"]]
    assert epochs == [1, 2, 3]
    pids = [e["pid"] for e in pre.record["curve"]]
    assert pids[:done_before] == [child.pid] * done_before
    assert pids[done_before:] == [os.getpid()] * (RESUMABLE.epochs - done_before)
    assert not store.artifact_exists(CHECKPOINT_KIND, key, CHECKPOINT_FILE)


def test_recipe_from_profiles():
    smoke = PretrainRecipe.from_profile("smoke")
    laptop = PretrainRecipe.from_profile("laptop")
    assert smoke.epochs >= 1 and laptop.epochs >= smoke.epochs
    assert PretrainRecipe.from_dict(json.loads(json.dumps(laptop.to_dict()))) == laptop
    assert pretrain_key("resnet18", "tinyimagenet100", smoke, "smoke") != pretrain_key(
        "resnet50", "tinyimagenet100", smoke, "smoke"
    )


def test_warmup_cosine_shape():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(UnknownModelError, match="resnet9000"):
        build_model("resnet9000", 10)


def test_a_record_whose_weights_are_gone_is_pretrained_again(tmp_path, monkeypatch):
    """Issue 20 (3): the record stayed, the weights file went, and pretrain raised
    ArtifactNotFoundError on every re-run; now the same call trains it again."""
    import nasoa_lib.train as train_module

    trainings = []
    source_tensors = train_module._source_tensors
    monkeypatch.setattr(train_module, "_source_tensors", lambda *a, **k: trainings.append(a) or source_tensors(*a, **k))
    store = ArtifactStore(tmp_path)
    first = pretrain("mobilenet_v3_small", recipe=TINY, profile="smoke", store=store, progress=False)
    assert len(trainings) == 1
    pretrain("mobilenet_v3_small", recipe=TINY, profile="smoke", store=store, progress=False)
    assert len(trainings) == 1  # a complete record is loaded, not trained again
    weights = store.artifact_path(PRETRAINED_KIND, first.key, "weights.pt")
    for legacy in (False, True):  # legacy: a store made before the store listed a record's files
        if legacy:
            store._execute("DELETE FROM outputs")
        weights.unlink()
        trained = len(trainings)
        again = pretrain("mobilenet_v3_small", recipe=TINY, profile="smoke", store=store, progress=False)
        assert weights.is_file() and store.count(PRETRAINED_KIND) == 1 and len(trainings) == trained + 1
        assert load_pretrained("mobilenet_v3_small", profile="smoke", recipe=TINY, store=store).key == first.key
    with pytest.raises(ArtifactNotFoundError) as info:
        load_pretrained("resnet18", profile="smoke", recipe=TINY, store=store)
    assert "nasoa reproduce --profile smoke --only 00,01,02,03,05,06" in info.value.hint


def test_proxy_subset_scores_on_held_out_training_images():
    """A proxy recipe (issue 17): a fixed class subset, relabelled; its scoring images are held out
    of the training split (the same ones for every seed, never trained on, never the test split)."""
    from nasoa_lib.train import _source_tensors

    recipe = PretrainRecipe(epochs=1, batch_size=8, lr=0.1, images_per_class=10, test_images_per_class=3,
                            classes=5, validation_per_class=4)
    x0, y0, v0, w0, k = _source_tensors("tinyimagenet100", recipe, 32, seed=0)
    x1, y1, v1, w1, _ = _source_tensors("tinyimagenet100", recipe, 32, seed=1)
    assert k == 5 and sorted(y0.unique().tolist()) == list(range(5)) and len(y0) == 50
    assert torch.equal(v0, v1) and torch.equal(w0, w1) and len(w0) == 20  # the same held-out images per seed
    assert not torch.equal(x0, x1)  # seeds draw different training images
    held = {img.numpy().tobytes() for img in v0}
    assert not held & {img.numpy().tobytes() for img in torch.cat([x0, x1])}
    plain = PretrainRecipe(epochs=1, batch_size=8, lr=0.1, images_per_class=2, test_images_per_class=1)
    assert len(_source_tensors("tinyimagenet100", plain, 32, seed=0)[3]) == 100  # test split, every class


def test_recipe_keys_without_the_later_fields_are_unchanged():
    """Stores written before ``classes`` / ``validation_per_class`` existed keep their keys."""
    recipe = PretrainRecipe(epochs=3, batch_size=64, lr=0.05)
    assert "classes" not in recipe.to_dict() and "validation_per_class" not in recipe.to_dict()
    assert PretrainRecipe.from_dict(recipe.to_dict()) == recipe
    subset = PretrainRecipe(epochs=3, batch_size=64, lr=0.05, classes=20)
    assert subset.to_dict()["classes"] == 20 and PretrainRecipe.from_dict(subset.to_dict()) == subset
