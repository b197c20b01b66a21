"""Online updates from concurrent processes (issue 20, defect 5): none may be lost.

Two ``nasoa finetune`` runs on one store each loaded the predictor, learned one run and wrote the
whole predictor back, so the later write erased the earlier update ("both runs said 17 updates;
the store kept 17, not 18"). :func:`nasoa_lib.online.update_stored_predictor` now reloads, learns
and saves under a cross-process lock; these tests pin that with real processes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from subprocess_checks import read_line

from nasoa_lib.online import load_predictor, make_predictor, store_predictor
from nasoa_lib.store import ArtifactStore

MODELS = ("ours/ET-NAS-A", "ours/ET-NAS-B")
NAME = "service"

_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nasoa_lib.online import load_predictor, update_stored_predictor
    from nasoa_lib.store import ArtifactStore

    root, name, updates, go, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
    store = ArtifactStore(root)
    predictor = load_predictor(store, name)  # loaded at start, as a finetune command does
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    for i in range(updates):
        features = {"model": "ours/ET-NAS-A", "domain_similarity": 0.3 + 0.01 * i, "images_per_class": 20,
                    "num_classes": 5, "source_accuracy": 0.5, "iterations": 100 + seed, "lr": 0.01,
                    "frozen_stages": 2}
        update_stored_predictor(store, name, features, 0.6, predictor=predictor)
    print("done", predictor.updates, flush=True)
""")


def test_two_processes_updating_one_predictor_keep_every_update(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    store_predictor(store, NAME, make_predictor("adaptive", MODELS, seed=0))
    go, per_process = tmp_path / "go", 25
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(store.root), NAME, str(per_process), str(go),
                                 str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for seed in (1, 2)]
    try:
        for w in writers:  # both have imported and loaded before either starts writing
            assert read_line(w) == "ready", w.stderr.read()
        go.touch()
        for w in writers:
            out, err = w.communicate(timeout=60)
            assert w.returncode == 0, err
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
    assert load_predictor(store, NAME).updates == 2 * per_process


def test_run_learns_on_top_of_updates_saved_since_its_predictor_was_loaded(tmp_path, monkeypatch):
    """The issue's sequence, in one process: two finetunes load the predictor, then each learns one
    run; the second must learn on top of the first (2 updates stored), and its in-memory predictor
    must show what was saved."""
    from nasoa_lib.finetune import FinetuneRecord, FinetuneResult, FinetuneRunSpec, FinetuneSettings, Regime
    from nasoa_lib.generator import GeneratorConfig, RunCost, FinetuneTimeTable, TaskFeatures, recommend, runs
    from nasoa_lib.generator.online import run

    store = ArtifactStore(tmp_path / "store")
    store_predictor(store, NAME, make_predictor("adaptive", MODELS, seed=0))
    first, second = load_predictor(store, NAME), load_predictor(store, NAME)
    table = FinetuneTimeTable("cpu", 16, 32, 2, {(m, k): RunCost(m, k, 0.01, 0.001, 100, 0.001, 0.05, k > 0)
                                                 for m in MODELS for k in (0, 2)})
    config = GeneratorConfig(lrs=(0.01,), frozen_stages=(0, 2), epochs=(1, 2, 4))
    task = TaskFeatures("toy", num_classes=2, n_train=16, n_test=12, domain_similarity=0.5, smallest_class=8)
    rec = recommend(task, 10.0, dict.fromkeys(MODELS, 0.3), first, table, config=config,
                    settings=FinetuneSettings(batch_size=16))
    record = FinetuneRecord(FinetuneRunSpec("p", "m", "toy", Regime(lr=0.01, iterations=4), None, 0, 1),
                            FinetuneResult(accuracy=0.7, train_seconds=0.8, eval_seconds=0.2, steps=4, planned_steps=4,
                                           median_step_seconds=0.2, curve=((4, 0.8, 0.7),), stopped_by_time=False,
                                           frozen_cache=False, threads=1, key="k"),
                            wall_seconds=1.0)
    monkeypatch.setattr(runs, "cached_run", lambda *a, **k: record)
    expected_loss = load_predictor(store, NAME)
    expected_loss.update(rec.features(), 0.7)
    expected_loss = expected_loss.update(rec.features(), 0.7)  # the loss of the once-updated predictor

    run(rec, None, None, predictor=first, store=store, predictor_name=NAME, cached=True)
    outcome, _ = run(rec, None, None, predictor=second, store=store, predictor_name=NAME, cached=True)

    assert load_predictor(store, NAME).updates == 2
    assert second.updates == 2
    assert outcome.predictor_loss == pytest.approx(expected_loss)


def test_lock_is_released_when_its_holder_is_killed(tmp_path):
    from nasoa_lib.online import predictor_lock

    store = ArtifactStore(tmp_path / "store")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from nasoa_lib.online import predictor_lock
        from nasoa_lib.store import ArtifactStore
        with predictor_lock(ArtifactStore({str(store.root)!r}), {NAME!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(holder) == "locked"
        holder.kill()
        holder.wait(timeout=10)
        with predictor_lock(store, NAME, timeout=5):  # a lock still held would time out with an error
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
