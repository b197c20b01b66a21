"""Fine-tuning run records as values: ``FinetuneRunSpec`` / ``FinetuneRecord`` write exactly the JSON
the store held before they existed (same keys, values and types, so the same bytes and run keys)."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch

from nasoa_lib import models
from nasoa_lib.data import sample_task
from nasoa_lib.finetune import (FINETUNE_KIND, FinetuneRecord, FinetuneResult, FinetuneRunSpec, Regime, finetune_cached,
                                run_spec, worker_threads)
from nasoa_lib.store import ArtifactStore, canonical_json, spec_key
from nasoa_lib.train import Pretrained

# Two records written by the code before FinetuneRecord existed (smoke store), as their stored bytes:
# one by finetune_cached (no wall_seconds), one by generator.runs.cached_run (with wall_seconds).
STORED_BY_FINETUNE_CACHED = (
    '{"accuracy":0.5,"curve":[[20,1.129741809000734,0.5]],"eval_points":1,"eval_seconds":0.018818999999894004,'
    '"frozen_cache":false,"key":"37ea685f0e4b7beb","median_step_seconds":0.05227784649991918,"model":"resnet18",'
    '"planned_steps":20,"pretrained":null,"regime":{"augment":false,"batch_size":16,"frozen_stages":0,"iterations":20,'
    '"lr":0.05,"lr_schedule":"cosine","momentum":0.9,"weight_decay":0.0001},"seed":0,"stage":"finetune","steps":20,'
    '"stopped_by_time":false,"task":{"classes":[5,6,9],"dataset":"fashion_mnist","images_per_class":10,"seed":0,'
    '"test_per_class":10},"threads":2,"time_limit":null,"train_seconds":1.129741809000734}'
)
STORED_BY_CACHED_RUN = (
    '{"accuracy":0.5,"curve":[[2,0.1199520919999486,0.5]],"eval_points":1,"eval_seconds":0.01114551799992114,'
    '"frozen_cache":false,"key":"019012ab6e73aec0","median_step_seconds":0.0599760459999743,"model":"resnet18",'
    '"planned_steps":2,"pretrained":"d9741486172357d5","regime":{"augment":false,"batch_size":16,"frozen_stages":0,'
    '"iterations":2,"lr":0.1,"lr_schedule":"cosine","momentum":0.9,"weight_decay":0.0001},"seed":0,"stage":"finetune",'
    '"steps":2,"stopped_by_time":false,"task":{"classes":[2,3],"dataset":"brain_mri","images_per_class":4,"seed":0,'
    '"test_per_class":4},"threads":2,"time_limit":null,"train_seconds":0.1199520919999486,'
    '"wall_seconds":0.15217681499962055}'
)


SPEC_KEYS = ("stage", "pretrained", "model", "task", "regime", "time_limit", "seed", "eval_points")


def _old_run_spec(pretrained_key, model_name, task_spec, regime, time_limit, seed, eval_points):
    """``finetune.run_spec`` as it was: the reference for the spec's dict and key."""
    return {
        "stage": "finetune",
        "pretrained": pretrained_key,
        "model": model_name,
        "task": task_spec,
        "regime": regime.to_dict(),
        "time_limit": time_limit,
        "seed": seed,
        "eval_points": eval_points,
    }


def _stored_body(store: ArtifactStore, key: str) -> str:
    with sqlite3.connect(store.db_path) as conn:
        (body,) = conn.execute("SELECT record FROM records WHERE kind = ? AND key = ?", (FINETUNE_KIND, key)).fetchone()
    return body


@pytest.mark.parametrize("body", [STORED_BY_FINETUNE_CACHED, STORED_BY_CACHED_RUN], ids=["finetune_cached", "cached_run"])
def test_old_stored_record_round_trips_to_the_same_bytes(body):
    old = json.loads(body)
    record = FinetuneRecord.from_dict(old)
    assert record.to_dict() == old
    assert canonical_json(record.to_dict()) == body
    assert record.spec.key == old["key"] == spec_key({k: old[k] for k in SPEC_KEYS})
    assert record.extra == {} and (record.wall_seconds is None) == ("wall_seconds" not in old)


def test_charged_seconds_is_wall_clock_else_train_plus_eval():
    with_wall = FinetuneRecord.from_dict(json.loads(STORED_BY_CACHED_RUN))
    without = FinetuneRecord.from_dict(json.loads(STORED_BY_FINETUNE_CACHED))
    assert with_wall.charged_seconds == 0.15217681499962055
    assert without.charged_seconds == 1.129741809000734 + 0.018818999999894004


def test_spec_dict_and_key_are_unchanged():
    regime = Regime(lr=0.05, iterations=20, batch_size=16)
    task = {"classes": [5, 6, 9], "dataset": "fashion_mnist", "images_per_class": 10, "seed": 0, "test_per_class": 10}
    args = (None, "resnet18", task, regime, None, 0, 1)
    spec = FinetuneRunSpec(*args)
    assert spec.to_dict() == _old_run_spec(*args) == run_spec(*args)
    assert list(spec.to_dict()) == list(_old_run_spec(*args))
    assert spec.key == spec_key(_old_run_spec(*args)) == "37ea685f0e4b7beb"
    assert FinetuneRunSpec.from_dict(spec.to_dict()) == spec


def test_unknown_keys_are_kept_as_extra():
    old = {**json.loads(STORED_BY_FINETUNE_CACHED), "note": "x"}
    record = FinetuneRecord.from_dict(old)
    assert record.extra == {"note": "x"} and record.to_dict() == old


@pytest.mark.slow
def test_tiny_runs_store_what_the_dict_literals_stored(tmp_path):
    """A real tiny run through both producers: the stored bytes equal the canonical JSON of the
    dict the old code built (``{**spec, **result.to_dict(), ["wall_seconds": wall,] **extra}``),
    and reading the stored dict back as a record gives it again."""
    from nasoa_lib.generator import runs

    before = torch.get_num_threads()
    torch.set_num_threads(worker_threads(1))
    try:
        task = sample_task("fashion_mnist", 2, 8, seed=0, test_per_class=4)
        regime = Regime(lr=0.05, iterations=2, frozen_stages=4, batch_size=8)
        store = ArtifactStore(tmp_path / "store")

        record = finetune_cached(store, None, task, regime, model="mobilenet_v3_small", extra={"note": "x"})
        old = {**_old_run_spec(None, "mobilenet_v3_small", task.spec, regime, None, 0, 1), **record.result.to_dict(),
               **{"note": "x"}}
        body = _stored_body(store, record.spec.key)
        assert body == canonical_json(old) == canonical_json(record.to_dict())
        assert FinetuneRecord.from_dict(json.loads(body)).to_dict() == json.loads(body)
        assert finetune_cached(store, None, task, regime, model="mobilenet_v3_small").to_dict() == json.loads(body)

        torch.manual_seed(0)
        pretrained = Pretrained("mobilenet_v3_small", models.create("mobilenet_v3_small", 10), 0.0,
                                {"image_size": 32, "recipe": {"small_image_stem": False}}, "test-random")
        record = runs.cached_run(store, pretrained, task, regime, seed=0)
        old = {**_old_run_spec(pretrained.key, pretrained.name, task.spec, regime, None, 0, 1), **record.result.to_dict(),
               "wall_seconds": record.wall_seconds}
        key = spec_key(_old_run_spec(pretrained.key, pretrained.name, task.spec, regime, None, 0, 1))
        assert runs.run_key(pretrained, task, regime, 0) == record.spec.key == key
        body = _stored_body(store, key)
        assert body == canonical_json(old) == canonical_json(record.to_dict())
        replay = runs.cached_run(store, pretrained, task, regime, seed=0)
        assert replay.to_dict() == json.loads(body) and replay.charged_seconds == record.wall_seconds
        assert replay.result == FinetuneResult.from_dict(record.result.to_dict())
    finally:
        torch.set_num_threads(before)


# A meta-dataset row of the first format (one row per run, before checkpoints: issue 22), as stored.
STORED_META_RUN_V1 = (
    '{"accuracy":0.25,"augment":false,"batch_size":16,"classes":[4,6,31,37],"collection":"2f178b14f90052ad",'
    '"cpu_seconds":0.4155542219999999,"dataset":"gtsrb","device":"cpu:1threads","domain_similarity":0.31501290339842974,'
    '"emd":115.51416778258533,"eval_seconds":0.03136055100003432,"frozen_cache":true,"frozen_stages":3,'
    '"images_per_class":5.0,"index":8,"iterations":4,"lr":0.02043,"lr_schedule":"cosine",'
    '"median_step_seconds":0.03873556999974426,"model":"resnet18","model_group":"baseline","model_target":"resnet18",'
    '"momentum":0.9,"num_classes":4,"pid":15722,"pretrained_key":"d9741486172357d5","profile":"smoke",'
    '"seed":1533234750,"source_accuracy":0.01,"spec_hash":"7d5b3342bd32e2a4","split":"train","steps":4,'
    '"task_seed":1031300586,"test_images":20,"test_per_class":5,"threads":1,"train_seconds":0.21625283699995634,'
    '"wall_seconds":0.42442191499958426,"weight_decay":0.0001}'
)


# The same row in the checkpoint format: one row per checkpoint of a run (run, epochs, test halves).
STORED_META_RUN = canonical_json({**json.loads(STORED_META_RUN_V1), "run": 1, "epochs": 2, "run_epochs": 3,
                                  "accuracy_even": 0.3, "accuracy_odd": 0.2, "run_wall_seconds": 1.27,
                                  "lr_schedule": "constant"})


def test_stored_meta_run_round_trips_to_the_same_bytes():
    from nasoa_lib.metadata import COLUMNS, MetaRunRecord

    old = json.loads(STORED_META_RUN)
    record = MetaRunRecord.from_dict(old)
    assert record.to_dict() == old and canonical_json(record.to_dict()) == STORED_META_RUN
    assert set(record.to_dict()) == set(COLUMNS) - {"stored_at"}
    assert record.features.model == "resnet18" and record.classes == (4, 6, 31, 37) and record.index == 8
    assert (record.run, record.epochs, record.run_epochs) == (1, 2, 3)


def test_a_row_of_the_first_format_is_refused_with_a_hint():
    from nasoa_lib.errors import InvalidDataError
    from nasoa_lib.metadata import MetaRunRecord

    with pytest.raises(InvalidDataError, match="run, epochs") as err:
        MetaRunRecord.from_dict(json.loads(STORED_META_RUN_V1))
    assert "collect" in err.value.hint


def test_meta_run_record_writes_the_collectors_old_dict():
    """``run_job``'s dict literal as it was, filled from the same values, is what the record writes."""
    from nasoa_lib.metadata import MetaRunRecord
    from nasoa_lib.metafeatures import MetaFeatures

    features = MetaFeatures("resnet18", 0.3, 5.0, 4, 0.01, 4, 0.02, 3)
    v = dict(collection="c", index=8, run=1, epochs=2, run_epochs=3, split="train", profile="smoke", accuracy=0.25, accuracy_even=0.3,
             accuracy_odd=0.2, dataset="gtsrb",
             classes=(4, 6, 31, 37), task_seed=7, test_per_class=5, test_images=20, emd=115.5, model_group="baseline",
             model_target="resnet18", pretrained_key="p", batch_size=16, lr_schedule="cosine", momentum=0.9,
             weight_decay=1e-4, augment=False, seed=3, spec_hash="s", train_seconds=0.2, eval_seconds=0.03,
             wall_seconds=0.4, run_wall_seconds=1.2, cpu_seconds=0.4, steps=4, median_step_seconds=0.04, frozen_cache=True, threads=1,
             pid=1, device="cpu:1threads")
    old = {
        "collection": v["collection"], "index": v["index"], "run": v["run"], "epochs": v["epochs"],
        "run_epochs": v["run_epochs"], "split": v["split"], "profile": v["profile"],
        **features.to_dict(),
        "accuracy": float(v["accuracy"]), "accuracy_even": v["accuracy_even"], "accuracy_odd": v["accuracy_odd"],
        "dataset": v["dataset"], "classes": list(v["classes"]), "task_seed": v["task_seed"],
        "test_per_class": v["test_per_class"], "test_images": int(v["test_images"]),
        "emd": v["emd"], "model_group": v["model_group"], "model_target": v["model_target"],
        "pretrained_key": v["pretrained_key"],
        "batch_size": v["batch_size"], "lr_schedule": v["lr_schedule"],
        "momentum": v["momentum"], "weight_decay": v["weight_decay"], "augment": v["augment"],
        "seed": v["seed"], "spec_hash": v["spec_hash"],
        "train_seconds": v["train_seconds"], "eval_seconds": v["eval_seconds"], "wall_seconds": v["wall_seconds"],
        "run_wall_seconds": v["run_wall_seconds"], "cpu_seconds": v["cpu_seconds"], "steps": v["steps"], "median_step_seconds": v["median_step_seconds"],
        "frozen_cache": v["frozen_cache"], "threads": v["threads"], "pid": v["pid"],
        "device": v["device"],
    }
    record = MetaRunRecord(features=features, **v)
    assert record.to_dict() == old and list(record.to_dict()) == list(old)
    assert canonical_json(record.to_dict()) == canonical_json(old)
    assert MetaRunRecord.from_dict(old) == record
