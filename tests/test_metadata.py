"""The meta-dataset collector: sampling, resume after kill -9, bad input, export (real tiny runs)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nasoa_lib import metadata as md
from nasoa_lib import metafeatures as mf
from nasoa_lib.data import clear_caches, load_dataset
from nasoa_lib.errors import DatasetNotFoundError, InvalidDataError, NasoaError, ProfileConfigError, StoreCorruptedError
from nasoa_lib.finetune import FinetuneSettings
from nasoa_lib.metadata.export import frame_from_rows
from nasoa_lib.metafeatures import FEATURE_COLUMNS
from nasoa_lib.profiles import load_profile
from nasoa_lib.run_length import SCHEDULE, RunLengthConfig, checkpoint_steps
from nasoa_lib.store import ArtifactStore
from nasoa_lib.train import pretrain

pytestmark = pytest.mark.slow

PROFILE = load_profile("smoke")
CONFIG = md.MetaDatasetConfig(
    runs=6, workers=1, num_classes=(2, 3), images_per_class=(2, 6), test_per_class=3, lr=(0.001, 0.1),
    frozen_stages=(0, 2, 4), baselines=("resnet18",), zoo=False,
)
RANGES = dict(runs=10, workers=1, num_classes=(2, 10), images_per_class=(5, 200), test_per_class=20,
              lr=(0.001, 0.1))
LADDER = RunLengthConfig(1, 50, 1.5)
SMOKE_LADDER = RunLengthConfig.from_profile(PROFILE).ladder()


@pytest.fixture(scope="module")
def pretrained_store(tmp_path_factory) -> ArtifactStore:
    """A store with the smoke profile's reference network (also the one model the tests sample)
    and the class means of the source and meta-train sets (so each test's copy skips them)."""
    store = ArtifactStore(tmp_path_factory.mktemp("meta-store"))
    reference = pretrain("resnet18", profile=PROFILE, store=store, progress=False)
    for name in (PROFILE.source_dataset, *PROFILE.meta_train):
        mf.dataset_class_features(name, PROFILE, store, reference=reference)
    return store


def _copy_store(store: ArtifactStore, target: Path) -> ArtifactStore:
    """A private copy of the pretrained store (each test mutates its own rows)."""
    import shutil

    conn = sqlite3.connect(store.db_path)
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    conn.close()
    shutil.copytree(store.root, target)
    return ArtifactStore(target)


# ------------------------------------------------------------------------------------ sampling


def test_config_rejects_empty_ranges():
    with pytest.raises(ProfileConfigError, match="empty range"):
        md.MetaDatasetConfig(**{**RANGES, "images_per_class": (50, 5)})
    with pytest.raises(ProfileConfigError, match="frozen_stages"):
        md.MetaDatasetConfig(**RANGES, frozen_stages=())
    with pytest.raises(ProfileConfigError, match="at least 2 classes"):
        md.MetaDatasetConfig(**{**RANGES, "num_classes": (1, 4)})
    with pytest.raises(ProfileConfigError, match="lr"):
        md.MetaDatasetConfig(**{**RANGES, "lr": (0.0, 0.1)})
    for profile in ("smoke", "laptop", "paper"):
        assert md.MetaDatasetConfig.from_profile(profile).runs > 0


def test_sampling_is_deterministic_within_ranges_and_model_independent():
    config = md.MetaDatasetConfig(**RANGES)
    counts = [md.DatasetCounts.of(load_dataset(n)) for n in PROFILE.meta_train]
    settings = FinetuneSettings.from_profile(PROFILE)
    models = ["a", "b", "c"]
    runs = [md.sample_run(config, i, counts, models, settings, LADDER) for i in range(300)]
    assert runs[17] == md.sample_run(config, 17, counts, models, settings, LADDER)
    by_name = {c.name: c for c in counts}
    for run in runs:
        data = by_name[run.task.dataset]
        assert 2 <= run.task.num_classes <= min(10, len(data.train))
        assert 1 <= run.task.images_per_class <= min(200, *(data.train[c] for c in run.task.classes))
        assert run.task.test_per_class <= 20
        assert 0.001 <= run.regime.lr <= 0.1 and run.regime.frozen_stages in range(5)
        assert run.regime.batch_size == settings.batch_size and run.regime.lr_schedule == SCHEDULE
        # checkpoints: the ladder's rungs up to the run's length, in steps of the task's epochs
        ladder = LADDER.ladder()
        assert run.epochs == ladder[: len(run.epochs)]
        n = run.task.num_classes * run.task.images_per_class
        assert run.eval_steps == checkpoint_steps(run.epochs, n, settings.batch_size)
        assert run.regime.iterations == run.eval_steps[-1]
    assert {r.task.dataset for r in runs} == set(PROFILE.meta_train)
    assert {r.model for r in runs} == set(models)
    assert 0.1 < sum(r.split == "validation" for r in runs) / len(runs) < 0.3
    # more models later: only which model an index gets may change
    more = [md.sample_run(config, i, counts, models + ["d", "e"], settings, LADDER) for i in range(50)]
    assert [(r.task, r.regime, r.seed, r.split) for r in more] == [(r.task, r.regime, r.seed, r.split) for r in runs[:50]]
    # run lengths uniform over the ladder's 10 rungs (log-uniform in epochs): 4 rungs are <= 5 epochs
    short = sum(r.max_epochs <= 5 for r in runs)
    assert 0.3 < short / len(runs) < 0.5
    assert {r.max_epochs for r in runs} == set(LADDER.ladder())


def test_meta_test_datasets_never_enter(pretrained_store, tmp_path):
    with pytest.raises(InvalidDataError, match="brain_mri"):
        md.check_meta_train(["cifar10", "brain_mri"])
    counts = [md.DatasetCounts("trashnet", (10,) * 6, (5,) * 6)]
    with pytest.raises(InvalidDataError, match="trashnet"):
        md.sample_run(md.MetaDatasetConfig(**RANGES), 0, counts, ["m"], FinetuneSettings.from_profile(PROFILE), LADDER)
    store = _copy_store(pretrained_store, tmp_path / "store")
    leaky = dataclasses.replace(PROFILE, meta_train=("cifar10", "brain_mri"))
    with pytest.raises(InvalidDataError, match="brain_mri"):
        md.collect(leaky, 2, store=store, config=CONFIG, progress=False)
    assert store.count(md.META_RUN_KIND) == 0
    with pytest.raises(InvalidDataError, match="brain_mri"):
        frame_from_rows([{"dataset": "brain_mri"}])  # a row that somehow got in is refused on loading


# ----------------------------------------------------------------------------------- collecting


def test_collect_export_extend_and_skip(pretrained_store, tmp_path):
    store = _copy_store(pretrained_store, tmp_path / "store")
    first = md.collect(PROFILE, 4, store=store, config=CONFIG, progress=False)
    assert (first.collected, first.already_stored) == (4, 0) and first.rows == first.new_rows >= 4
    again = md.collect(PROFILE, 4, store=store, config=CONFIG, progress=False)
    assert (again.collected, again.rows, again.already_stored, again.new_rows) == (0, first.rows, 4, 0)
    more = md.collect(PROFILE, 6, store=store, config=CONFIG, progress=False)
    assert more.collected == 2 and more.rows == first.rows + more.new_rows

    frame = md.load_meta_dataset(PROFILE, store, CONFIG)
    assert len(frame) == more.rows and frame["collection"].nunique() == 1
    assert frame["index"].is_monotonic_increasing and frame["index"].is_unique
    assert sorted(frame["run"].unique()) == list(range(6))
    # one row per checkpoint: a run's rows are contiguous, in epoch order, up to the run's length
    assert (frame["run"].diff().fillna(0) >= 0).all()
    for _, rows in frame.groupby("run"):
        assert rows["epochs"].tolist() == [e for e in SMOKE_LADDER if e <= rows["run_epochs"].iloc[0]]
        assert rows["iterations"].is_monotonic_increasing and (rows["iterations"] == rows["steps"]).all()
        assert rows["spec_hash"].nunique() == 1 and rows["train_seconds"].is_monotonic_increasing
        assert (rows["lr_schedule"] == SCHEDULE).all()
    assert list(frame.columns[: len(md.COLUMNS)]) == list(md.COLUMNS)
    assert set(FEATURE_COLUMNS) <= set(frame.columns) and frame["accuracy"].between(0, 1).all()
    for half in ("accuracy_even", "accuracy_odd"):
        assert frame[half].between(0, 1).all()
    assert frame["domain_similarity"].between(0, 1, inclusive="right").all()
    assert frame["spec_hash"].nunique() == 6 and set(frame["dataset"]) <= set(PROFILE.meta_train)
    assert (frame["model"] == "resnet18").all()

    exported = md.export(PROFILE, store, CONFIG)
    back = pd.read_parquet(exported.parquet)
    assert back["index"].tolist() == frame["index"].tolist() and back["classes"].map(len).equals(frame["num_classes"])
    card = exported.card.read_text()
    assert "Runs per dataset and model" in card and f"{len(frame)} rows from 6 fine-tuning runs" in card
    assert md.exported_path(PROFILE, store, CONFIG) == exported.parquet


def _rows_by_key(store: ArtifactStore) -> dict[str, str]:
    return {e.key: e.created_at for e in store.entries(md.META_RUN_KIND)}


def test_resume_after_kill_loses_nothing_and_counts_nothing_twice(pretrained_store, tmp_path):
    store = _copy_store(pretrained_store, tmp_path / "store")
    runs = 12
    config = dataclasses.replace(CONFIG, workers=2)
    script = (
        "import json, sys\n"
        "from nasoa_lib import metadata as md\n"
        "from nasoa_lib.store import ArtifactStore\n"
        "cfg = md.MetaDatasetConfig(**json.loads(sys.argv[1]))\n"
        "md.collect('smoke', int(sys.argv[2]), store=ArtifactStore(sys.argv[3]), config=cfg, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(config.to_dict()), str(runs), str(store.root)],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    try:
        while store.count(md.META_RUN_KIND) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the collector stored nothing in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the collector and its pool workers, mid-run
        proc.wait()
    time.sleep(0.5)
    before = _rows_by_key(store)
    complete = md.stored_runs(store, md.collection_id(PROFILE, config), SMOKE_LADDER)
    assert 2 <= len(before) and len(complete) < runs

    summary = md.collect(PROFILE, runs, store=store, config=config, workers=1, progress=False)
    after = _rows_by_key(store)
    frame = md.load_meta_dataset(PROFILE, store, config)
    assert summary.rows == len(after) == len(frame) and frame["index"].is_unique
    assert sorted(frame["run"].unique()) == list(range(runs))
    assert md.stored_runs(store, md.collection_id(PROFILE, config), SMOKE_LADDER) == set(range(runs))
    assert summary.collected == runs - len(complete)
    assert all(after[k] == t for k, t in before.items())  # rows stored before the kill are untouched
    pids = frame.groupby("pid").size()
    assert len(pids) >= 2  # rows came from the killed pool's workers and from the resumed run


def test_corrupted_row_is_a_clear_error_and_the_rest_stays_usable(pretrained_store, tmp_path):
    store = _copy_store(pretrained_store, tmp_path / "store")
    md.collect(PROFILE, 3, store=store, config=CONFIG, progress=False)
    bad_key = store.keys(md.META_RUN_KIND)[1]
    conn = sqlite3.connect(store.db_path)
    conn.execute("UPDATE records SET record = '{\"index\": 1, broken' WHERE kind = ? AND key = ?",
                 (md.META_RUN_KIND, bad_key))
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptedError, match="drop_corrupt_rows") as err:
        md.load_meta_dataset(PROFILE, store, CONFIG)
    assert err.value.hint
    with pytest.raises(StoreCorruptedError, match=bad_key):
        md.collect(PROFILE, 3, store=store, config=CONFIG, progress=False)
    rows = store.count(md.META_RUN_KIND)
    assert len(md.load_meta_dataset(PROFILE, store, CONFIG, skip_corrupt=True)) == rows - 1
    assert md.drop_corrupt_rows(store) == [bad_key]
    summary = md.collect(PROFILE, 3, store=store, config=CONFIG, progress=False)
    assert summary.collected == 1 and summary.rows == rows  # the damaged run is run again, its other rows kept


def test_missing_meta_train_dataset_is_a_clear_error(pretrained_store, tmp_path, monkeypatch):
    store = _copy_store(pretrained_store, tmp_path / "store")
    monkeypatch.setenv("NASOA_DATA_DIR", str(tmp_path / "no-datasets"))
    clear_caches()
    try:
        with pytest.raises(DatasetNotFoundError, match="not found") as err:
            md.collect(PROFILE, 2, store=store, config=CONFIG, progress=False)
        assert "NASOA_DATA_DIR" in err.value.hint
    finally:
        clear_caches()
    assert store.count(md.META_RUN_KIND) == 0


def test_ray_without_ray_is_a_clear_error(pretrained_store, tmp_path, monkeypatch):
    store = _copy_store(pretrained_store, tmp_path / "store")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(NasoaError, match="ray"):
        md.collect(PROFILE, 1, store=store, config=CONFIG, address="local", progress=False)
    assert store.count(md.META_RUN_KIND) == 0


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed (the optional 'cluster' extra)")
def test_collect_on_a_local_ray_instance(pretrained_store, tmp_path):
    store = _copy_store(pretrained_store, tmp_path / "store")
    summary = md.collect(PROFILE, 2, store=store, config=CONFIG, address="local", progress=False)
    assert (summary.backend, summary.collected, summary.rows) == ("ray", 2, 2)
    frame = md.load_meta_dataset(PROFILE, store, CONFIG)
    assert sorted(frame["run"].unique()) == [0, 1] and os.getpid() not in set(frame["pid"])


def test_plan_counts_frozen_stages_and_pending_runs(pretrained_store, tmp_path):
    store = _copy_store(pretrained_store, tmp_path / "store")
    models = md.candidate_models(PROFILE, store, CONFIG)
    assert [m.name for m in models] == ["resnet18"] and 0 <= models[0].source_accuracy <= 1
    runs = md.pending_runs(PROFILE, 5, store, CONFIG, models)
    assert [r.index for r in runs] == list(range(5))
    step = {"resnet18": 0.1}
    table = md.plan_table(runs, step, workers=2)
    assert table.runs.sum() == 5 and table.rows.sum() == sum(len(r.epochs) for r in runs)
    assert table.expected_wall_minutes.sum() == pytest.approx(table.cpu_minutes.sum() / 2)
    with pytest.raises(NasoaError, match="not pretrained"):
        md.candidate_models(PROFILE, store, dataclasses.replace(CONFIG, baselines=("regnet_y_400mf",)))
