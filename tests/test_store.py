"""The result/artifact store: round-trips, exactly-once records, atomic artifacts, kill -9 resume."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from nasoa_lib import paths
from nasoa_lib.errors import ArtifactNotFoundError, StoreCorruptedError, UnknownProfileError
from nasoa_lib.provenance import git_revision, provenance
from nasoa_lib.store import ArtifactStore, atomic_write_bytes, canonical_json, spec_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class _Spec:
    model: str
    lr: float
    frozen: tuple[int, ...]


@dataclass(frozen=True)
class _SpecWithToDict:
    model: str

    def to_dict(self) -> dict:
        return {"model": self.model.upper()}


@pytest.fixture()
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


# ---- spec keys -----------------------------------------------------------------------------


def test_spec_key_is_canonical_and_sensitive_to_every_field():
    base = {"model": "resnet18", "lr": 0.01, "frozen": (1, 2)}
    assert spec_key(base) == spec_key({"frozen": [1, 2], "lr": 0.01, "model": "resnet18"})
    assert canonical_json(base) == '{"frozen":[1,2],"lr":0.01,"model":"resnet18"}'
    assert spec_key(_Spec("resnet18", 0.01, (1, 2))) == spec_key(base)
    assert spec_key({**base, "lr": 0.02}) != spec_key(base)
    assert spec_key({**base, "frozen": (2, 1)}) != spec_key(base)
    assert spec_key({**base, "lr": 1}) != spec_key({**base, "lr": 1.0})
    assert spec_key(_SpecWithToDict("a")) == spec_key({"model": "A"})
    assert len(spec_key(base)) == 16 and all(c in "0123456789abcdef" for c in spec_key(base))
    with pytest.raises(TypeError, match="object"):
        spec_key({"x": object()})


def test_spec_key_is_stable_across_processes():
    spec = {"model": "regnet_y_400mf", "lr": 0.1 + 0.2, "seeds": (0, 1), "nested": {"b": 1, "a": None}}
    code = (
        "import json, sys; from nasoa_lib.store import spec_key; "
        "s = json.loads(sys.argv[1]); s['seeds'] = tuple(s['seeds']); print(spec_key(s))"
    )
    keys = set()
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=PROJECT_ROOT,
        )
        keys.add(out.stdout.strip())
    assert keys == {spec_key(spec)}


# ---- records -------------------------------------------------------------------------------


def test_put_get_records_round_trip_in_insertion_order(store: ArtifactStore):
    rows = [{"acc": 0.5 + i / 10, "model": f"m{i}", "tags": ["a", i]} for i in range(5)]
    keys = [spec_key(r) for r in rows]
    for key, row in reversed(list(zip(keys, rows))):
        assert store.put("finetune", key, row, provenance={"seed": 3}) is True
    assert store.records("finetune") == list(reversed(rows))
    assert store.get("finetune", keys[2]) == rows[2]
    assert store.get("finetune", "missing") is None and not store.has("finetune", "missing")
    assert store.has("finetune", keys[0]) and store.count("finetune") == 5 and store.count("other") == 0
    entry = store.entry("finetune", keys[0])
    assert entry.provenance == {"seed": 3} and entry.created_at.endswith("+00:00")
    assert store.keys("finetune") == list(reversed(keys))
    store.put("zoo", "k", {"x": 1})
    assert store.kinds() == ["finetune", "zoo"]
    # a fresh instance (another process would do the same) sees what was written
    assert ArtifactStore(store.root).records("finetune") == list(reversed(rows))


def test_put_twice_is_counted_once_and_keeps_the_first_record(store: ArtifactStore):
    assert store.put("run", "k1", {"acc": 0.1}) is True
    assert store.put("run", "k1", {"acc": 0.9}) is False
    assert store.count("run") == 1 and store.get("run", "k1") == {"acc": 0.1}
    assert store.delete("run", "k1") is True and store.count("run") == 0
    assert store.delete("run", "k1") is False


def test_unsafe_names_are_rejected(store: ArtifactStore):
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="safe file name"):
            store.put("run", bad, {})
        with pytest.raises(ValueError, match="safe file name"):
            store.write_bytes("run", "k", bad, b"x")


def _put_range(root: str, start: int, stop: int, results) -> None:
    s = ArtifactStore(root)
    results.put(sum(s.put("run", f"k{i:03d}", {"i": i, "pid": os.getpid()}) for i in range(start, stop)))


def test_concurrent_writers_never_duplicate(tmp_path: Path):
    root = str(tmp_path / "store")
    ArtifactStore(root).count("run")  # create the database before the workers race
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_put_range, args=(root, start, start + 40, results)) for start in (0, 10, 20)]
    for w in workers:
        w.start()
    inserted = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    store = ArtifactStore(root)
    assert sum(inserted) == 60 == store.count("run")
    assert sorted(r["i"] for r in store.records("run")) == list(range(60))


def test_store_pickles_as_its_root(store: ArtifactStore):
    import pickle

    store.put("run", "a", {"x": 1})
    clone = pickle.loads(pickle.dumps(store))
    assert clone.root == store.root and clone.get("run", "a") == {"x": 1}


def test_for_profile_uses_the_store_dir_and_rejects_unknown_profiles(tmp_path, monkeypatch):
    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "cache"))
    assert ArtifactStore.for_profile("smoke").root == paths.store_dir("smoke") == tmp_path / "cache" / "smoke"
    with pytest.raises(UnknownProfileError):
        ArtifactStore.for_profile("nope")


# ---- artifacts -----------------------------------------------------------------------------


def test_artifacts_round_trip(store: ArtifactStore):
    import torch

    assert not store.artifact_exists("zoo", "k", "weights.pt")
    store.write_bytes("zoo", "k", "blob.bin", b"\x00\x01" * 10)
    store.write_json("zoo", "k", "card.json", {"name": "ET-NAS-A", "params": (1, 2)})
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    store.save_torch("zoo", "k", "weights.pt", state)
    assert store.read_bytes("zoo", "k", "blob.bin") == b"\x00\x01" * 10
    assert store.read_json("zoo", "k", "card.json") == {"name": "ET-NAS-A", "params": [1, 2]}
    assert torch.equal(store.load_torch("zoo", "k", "weights.pt")["w"], state["w"])
    assert sorted(p.name for p in store.artifact_dir("zoo", "k").iterdir()) == ["blob.bin", "card.json", "weights.pt"]
    with pytest.raises(ArtifactNotFoundError, match="zoo/k/other.pt"):
        store.load_torch("zoo", "k", "other.pt")
    store.put("zoo", "k", {"done": True})
    store.delete("zoo", "k")
    assert not store.artifact_dir("zoo", "k", create=False).exists()


def test_failed_write_leaves_old_content_and_no_temp_file(tmp_path: Path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


# ---- corruption ----------------------------------------------------------------------------


def test_a_store_that_is_not_a_database_names_the_file_and_the_fix(tmp_path: Path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "records.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreCorruptedError) as info:
        ArtifactStore(root).count("run")
    assert "records.sqlite" in str(info.value) and "move" in info.value.hint
    assert "artifacts" in info.value.hint


def test_a_damaged_database_page_is_reported_as_corruption(tmp_path: Path):
    store = ArtifactStore(tmp_path / "store")
    for i in range(400):
        store.put("run", f"k{i}", {"payload": "x" * 200, "i": i})
    store.close()
    conn = sqlite3.connect(store.db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(store.db_path.read_bytes())
    page = 4096
    for offset in range(page * 2, len(data), page):
        data[offset : offset + 64] = b"\xff" * 64  # trash every b-tree page header but the first two
    store.db_path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptedError, match="records.sqlite"):
        ArtifactStore(store.root).records("run")


def test_a_corrupt_row_is_named_and_the_others_stay_readable(store: ArtifactStore, caplog):
    for i in range(3):
        store.put("run", f"k{i}", {"i": i})
    conn = sqlite3.connect(store.db_path)
    conn.execute("UPDATE records SET record = '{\"i\": 1, trunc' WHERE key = 'k1'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptedError) as info:
        store.records("run")
    assert "run/k1" in str(info.value) and "delete('run', 'k1')" in info.value.hint
    with pytest.raises(StoreCorruptedError, match="run/k1"):
        store.get("run", "k1")
    assert store.get("run", "k2") == {"i": 2}
    with caplog.at_level(logging.WARNING, logger="nasoa_lib.store"):
        assert store.records("run", skip_corrupt=True) == [{"i": 0}, {"i": 2}]
    assert "k1" in caplog.text
    assert store.delete("run", "k1") and store.records("run") == [{"i": 0}, {"i": 2}]


def test_a_corrupt_json_artifact_is_reported(store: ArtifactStore):
    store.write_json("run", "k", "meta.json", {"a": 1})
    store.artifact_path("run", "k", "meta.json").write_text('{"a": ')
    with pytest.raises(StoreCorruptedError, match="meta.json"):
        store.read_json("run", "k", "meta.json")


# ---- kill -9 and resume --------------------------------------------------------------------

N_RECORDS = 24
ARTIFACT_BYTES = 2 * 1024 * 1024
KILL_AT = 9

_WRITER = textwrap.dedent(
    """
    import hashlib, os, sys, time
    from nasoa_lib import store as store_module
    from nasoa_lib.store import ArtifactStore, spec_key

    root, n, size, slow_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    real_replace = os.replace

    def announcing_replace(src, dst):
        # the writer announces the moment between "temp file complete" and "renamed"; the test
        # kills it there (and, in another run, at an unannounced moment)
        if os.path.basename(str(dst)) == "weights.bin":
            print("replacing", os.path.basename(os.path.dirname(str(dst))), flush=True)
            if slow_at >= 0 and os.path.basename(os.path.dirname(str(dst))) == spec_key({"i": slow_at}):
                time.sleep(30)
        real_replace(src, dst)

    store_module.os.replace = announcing_replace
    store = ArtifactStore(root)
    for i in range(n):
        key = spec_key({"i": i})
        if store.has("run", key):
            continue
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32)
        store.write_bytes("run", key, "weights.bin", data)
        store.put("run", key, {"i": i, "sha256": hashlib.sha256(data).hexdigest()})
        print("stored", i, flush=True)
    print("done", flush=True)
    """
)


def _expected_bytes(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (ARTIFACT_BYTES // 32)


def _start_writer(tmp_path: Path, root: Path, slow_at: int) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(N_RECORDS), str(ARTIFACT_BYTES), str(slow_at)],
        stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
    )


def _check_consistent(store: ArtifactStore) -> list[int]:
    """Every visible artifact is complete; every record's artifact exists; returns the indices."""
    records = store.records("run")
    indices = [r["i"] for r in records]
    assert len(indices) == len(set(indices))
    for r in records:
        key = spec_key({"i": r["i"]})
        assert store.read_bytes("run", key, "weights.bin") == _expected_bytes(r["i"])
    for folder in (store.artifacts_root / "run").iterdir():
        final = folder / "weights.bin"
        if final.exists():
            data = final.read_bytes()
            assert len(data) == ARTIFACT_BYTES and data in {_expected_bytes(i) for i in range(N_RECORDS)}
    return indices


def test_kill_9_mid_write_then_resume_stores_each_record_exactly_once(tmp_path: Path):
    root = tmp_path / "store"
    key_at_kill = spec_key({"i": KILL_AT})

    # 1) killed between "temp file written" and "renamed onto its final name"
    proc = _start_writer(tmp_path, root, slow_at=KILL_AT)
    for line in proc.stdout:
        if line.strip() == f"replacing {key_at_kill}":
            break
    else:
        pytest.fail(f"writer ended before record {KILL_AT}: rc={proc.wait()}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ArtifactStore(root)
    assert sorted(_check_consistent(store)) == list(range(KILL_AT))
    assert not store.artifact_exists("run", key_at_kill, "weights.bin")
    leftovers = list(store.artifact_dir("run", key_at_kill).glob(".weights.bin.tmp-*"))
    assert len(leftovers) == 1, "the killed writer's complete temp file should be left, unnamed"
    assert store.remove_stale_temp_files() == leftovers and not leftovers[0].exists()

    # 2) resumed, then killed again at an unannounced moment (mid write, fsync or commit)
    proc = _start_writer(tmp_path, root, slow_at=-1)
    first = proc.stdout.readline().split()
    assert first[:1] == ["replacing"] and first[1] == key_at_kill, "resume must start where it stopped"
    time.sleep(0.15)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(_check_consistent(ArtifactStore(root))) >= KILL_AT

    # 3) resumed to the end
    proc = _start_writer(tmp_path, root, slow_at=-1)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip().endswith("done")
    store = ArtifactStore(root)
    assert sorted(_check_consistent(store)) == list(range(N_RECORDS))
    assert store.count("run") == N_RECORDS
    store.remove_stale_temp_files()
    assert not list(store.artifacts_root.rglob(".*.tmp-*"))


# ---- provenance ----------------------------------------------------------------------------


def test_provenance_records_code_version_profile_device_and_versions():
    prov = provenance("smoke", seed=3, device="cpu:2threads")
    assert prov["profile"] == "smoke" and prov["seed"] == 3 and prov["device"] == "cpu:2threads"
    assert prov["git"] == git_revision()
    head = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert prov["git"].split("-")[0] == head.stdout.strip()
    for lib in ("python", "torch", "torchvision", "numpy"):
        assert prov[lib] and prov[lib] != "absent"
    assert prov["timestamp"].endswith("+00:00")
    assert json.loads(json.dumps(prov)) == prov


# ---- what the store holds decides what is done (issue 20) ------------------------------------


def test_a_record_whose_artifact_is_gone_counts_as_absent_so_its_stage_recomputes(store: ArtifactStore, caplog):
    store.write_bytes("pretrained", "k1", "weights.pt", b"w1")
    store.put("pretrained", "k1", {"top1": 0.5})
    store.put("plain", "k2", {"no": "files"})
    assert store.has("pretrained", "k1") and store.get("pretrained", "k1") == {"top1": 0.5}
    first = store.entry("pretrained", "k1")
    store.artifact_path("pretrained", "k1", "weights.pt").unlink()
    with caplog.at_level(logging.WARNING, logger="nasoa_lib.store"):
        assert not store.has("pretrained", "k1")
    assert "lost its artifact(s) weights.pt" in caplog.text
    assert store.get("pretrained", "k1") is None and store.entry("pretrained", "k1") is None
    assert store.records("pretrained") == [] and store.has("plain", "k2")
    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes("pretrained", "k1", "weights.pt")
    assert store.keys("pretrained") == ["k1"], "reading deletes nothing"
    # the stage's usual "if not has: compute, write, put" now stores it again, replacing the stale row
    store.write_bytes("pretrained", "k1", "weights.pt", b"w2")
    assert store.put("pretrained", "k1", {"top1": 0.6}) and store.get("pretrained", "k1") == {"top1": 0.6}
    assert store.count("pretrained") == 1 and store.entry("pretrained", "k1").created_at >= first.created_at
    assert store.put("pretrained", "k1", {"top1": 0.7}) is False  # complete again: put once, as before
    store.write_bytes("pretrained", "k3", "weights.pt", b"w3")
    store.put("pretrained", "k3", {"top1": 0.7})
    store.artifact_path("pretrained", "k3", "weights.pt").unlink()
    assert store.records("pretrained") == [{"top1": 0.6}] and store.get("pretrained", "k3") is None
    assert store.put("pretrained", "k3", {"top1": 0.8})  # its file still missing: the stale row is replaced
    assert store.count("pretrained") == 2


def test_a_missing_artifact_names_the_command_that_rebuilds_it(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path / "smoke")
    monkeypatch.setenv(paths.NOTEBOOK_ENV, "03_macro_search")
    store.write_bytes("pretrained", "k1", "weights.pt", b"w")
    store.put("pretrained", "k1", {"top1": 0.5})
    monkeypatch.delenv(paths.NOTEBOOK_ENV)
    store._execute("DELETE FROM outputs WHERE name != ''")  # as in a store made before files were listed
    store.artifact_path("pretrained", "k1", "weights.pt").unlink()
    assert store.has("pretrained", "k1")  # nothing says a file belongs to it ...
    with pytest.raises(ArtifactNotFoundError) as info:
        store.read_bytes("pretrained", "k1", "weights.pt")  # ... until it is read
    assert "nasoa reproduce --profile smoke --only 03" in info.value.hint and "delete('pretrained', 'k1')" in info.value.hint
    assert store.has("pretrained", "k1")  # reading deletes nothing; the hint says how to drop it


def test_store_identity_and_output_snapshot_see_a_recreated_store_and_lost_outputs(tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "smoke"
    assert ArtifactStore(root).identity() is None and not root.exists()  # asking creates nothing
    store = ArtifactStore(root)
    monkeypatch.setenv(paths.NOTEBOOK_ENV, "02_a")
    store.put("early", "k", {"v": 1})
    monkeypatch.setenv(paths.NOTEBOOK_ENV, "05_b")
    store.write_bytes("predictor", "adaptive", "predictor.bin", b"p")  # an artifact without a record
    monkeypatch.setenv(paths.NOTEBOOK_ENV, "09_c")
    store.put("late", "k", {"v": 3})
    monkeypatch.delenv(paths.NOTEBOOK_ENV)
    store.put("cli", "k", {"v": 4})  # untagged: the command line, not a notebook
    snap = store.output_snapshot("05_b")
    assert snap["outputs"] == 2 and snap["store_id"] == store.identity()
    assert store.output_snapshot("05_b", upto=snap["upto"]) == snap
    store.delete("late", "k")
    store.delete("cli", "k")
    assert store.output_snapshot("05_b", upto=snap["upto"]) == snap  # not outputs 05 could have read
    store.artifact_path("predictor", "adaptive", "predictor.bin").unlink()
    assert store.output_snapshot("05_b", upto=snap["upto"]) != snap
    store.write_bytes("predictor", "adaptive", "predictor.bin", b"p")
    assert store.output_snapshot("05_b", upto=snap["upto"]) != snap  # re-written after the snapshot
    store.delete("early", "k")
    first_id = store.identity()
    store.close()
    shutil.rmtree(root)
    assert ArtifactStore(root).identity() is None
    again = ArtifactStore(root)
    again.put("early", "k", {"v": 1})
    assert again.identity() not in (None, first_id)


def test_an_old_store_gets_its_outputs_listed_once(tmp_path):
    root = tmp_path / "old"
    (root / "artifacts" / "pretrained" / "k1").mkdir(parents=True)
    (root / "artifacts" / "pretrained" / "k1" / "weights.pt").write_bytes(b"w")
    conn = sqlite3.connect(root / "records.sqlite")
    conn.execute("CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, "
                 "provenance TEXT, created_at TEXT NOT NULL, PRIMARY KEY (kind, key))")
    conn.execute("INSERT INTO records VALUES ('pretrained', 'k1', '{}', NULL, 'then')")
    conn.commit()
    conn.close()
    store = ArtifactStore(root)
    assert store.output_snapshot("03_x")["outputs"] == 2  # the record and its file, producer unknown
    (root / "artifacts" / "pretrained" / "k1" / "weights.pt").unlink()
    assert not store.has("pretrained", "k1")


def test_reading_a_store_that_does_not_exist_creates_nothing(tmp_path, monkeypatch):
    """Issue 20 (9): a failed ``nasoa recommend`` left an empty ``laptop/records.sqlite``."""
    monkeypatch.setenv("NASOA_STORE", str(tmp_path / "cache"))
    store = ArtifactStore.for_profile("laptop")
    assert not store.has("pretrained", "k") and store.get("zoo_card", "k") is None
    assert store.records("zoo_card") == [] and store.count("x") == 0 and store.kinds() == [] and store.keys("x") == []
    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes("predictor", "adaptive", "predictor.bin")
    assert not store.exists() and not (tmp_path / "cache").exists()
    store.put("a", "b", {})
    assert store.exists() and store.count("a") == 1
