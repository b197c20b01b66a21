"""The artifact/result store: one place where every stage writes what it computed (SPEC 6-7, 13).

Every result is keyed by :func:`spec_key` of the spec that produced it, so a stage asks
``store.has(kind, key)`` before doing work and a re-run after an interruption skips what is done.

Layout under ``root`` (default :func:`nasoa_lib.paths.store_dir` of the profile)::

    records.sqlite                       one row per (kind, key): the record as JSON + provenance;
                                         the store's id; which notebook wrote each record and file
    artifacts/<kind>/<key>/<name>        files beside a record (weights, features, tables)

What the store holds is what decides whether work is done (issue 20): every record and artifact
written is listed in the ``outputs`` table with the notebook that wrote it
(:func:`nasoa_lib.paths.current_notebook`, set by the runner), so the runner skips a notebook only
while the outputs it saw are still there (:meth:`ArtifactStore.output_snapshot`), and a record
whose artifact file is gone reads as absent (``has``/``get`` skip it; reading never deletes), so
the stage that produces it recomputes it and its ``put`` replaces the stale row.

Why it survives ``kill -9`` at any point:

* records live in SQLite in WAL mode with ``synchronous=FULL``; a transaction is either in the
  database or not, and ``INSERT OR IGNORE`` on the primary key ``(kind, key)`` means a record is
  never counted twice, even when several worker processes ``put`` at once (an existing row is
  replaced only when it is stale: see :meth:`ArtifactStore.put`);
* an artifact is written to a temporary file in its final folder, fsynced, then ``os.replace``-d
  onto its final name, so a reader never sees a half-written file under the final name
  (left-over temporary files are removed by :meth:`ArtifactStore.remove_stale_temp_files`);
* stages write their artifacts first and ``put`` the record last: a record's presence means its
  artifacts are complete.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any, Iterator

from nasoa_lib import paths
from nasoa_lib.errors import (
    ArtifactNotFoundError, InvalidSpecValueError, StoreCorruptedError, StoreLockTimeoutError, UnsafeNameError,
)

log = logging.getLogger(__name__)

RECORDS_FILE = "records.sqlite"
ARTIFACTS_DIR = "artifacts"
LOCKS_DIR = "locks"
"""Folder under the store root holding the lock files of :meth:`ArtifactStore.lock` (never deleted,
so a lock file cannot vanish under a process that holds it, unlike one inside an artifact folder)."""
LOCK_POLL_S = 0.005
KEY_LENGTH = 16
"""Hex characters kept from the sha256 of a spec: 64 bits, so even a million specs collide with
probability ~3e-8; long enough for folder names to stay readable."""

BUSY_TIMEOUT_S = 60.0
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,199}$")
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[A-Za-z0-9_]+$")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    record TEXT NOT NULL,
    provenance TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)""",
    "CREATE TABLE IF NOT EXISTS store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # one row per record (name '') and per artifact file; AUTOINCREMENT: an id is never reused,
    # so a re-written output is a new id and a snapshot "ids up to N" sees the change
    """CREATE TABLE IF NOT EXISTS outputs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    notebook TEXT,
    UNIQUE (kind, key, name)
)""",
)
RECORD_OUTPUT = ""
"""``outputs.name`` of a record itself (artifact files have their file name)."""
LEGACY_NOTEBOOK = ""
"""``outputs.notebook`` of outputs found in a store made before outputs were tracked."""
_NOTEBOOK_NUM_RE = re.compile(r"^(?P<num>\d+)_")


# --------------------------------------------------------------------------------------------
# Spec keys
# --------------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Plain JSON value of a spec: dataclasses (``to_dict()`` first), mappings, sequences, scalars.

    Tuples become lists, paths strings, enums their value, numpy scalars/arrays Python values,
    sets sorted lists. Anything else is a ``TypeError`` naming the type, never a silent ``str()``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            return to_jsonable(to_dict())
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if isinstance(k, enum.Enum):
                k = k.value
            if not isinstance(k, (str, int, float, bool)):
                raise InvalidSpecValueError(f"spec mapping keys must be strings, got {type(k).__name__}: {k!r}",
                                            hint="use str keys (e.g. str(k)) in the spec's mappings")
            out[str(k)] = to_jsonable(v)
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=_canonical_json)
    if isinstance(value, PurePath):
        return value.as_posix()
    if type(value).__module__ == "numpy":
        return to_jsonable(value.tolist() if hasattr(value, "tolist") else value.item())
    raise InvalidSpecValueError(
        f"cannot turn {type(value).__name__} into a spec value; give it a to_dict() method "
        "or pass plain dicts/lists/numbers/strings",
        hint="a spec holds plain values, dataclasses or objects with to_dict(); convert the rest first",
    )


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def canonical_json(spec: Any) -> str:
    """Canonical JSON of a spec: sorted keys, no whitespace, floats by ``repr`` (1 != 1.0)."""
    return _canonical_json(to_jsonable(spec))


def spec_key(spec: Any) -> str:
    """Run key of a spec: the first :data:`KEY_LENGTH` hex characters of sha256(canonical JSON).

    Deterministic across processes and Python hash seeds; a changed field gives another key.
    """
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()[:KEY_LENGTH]


# --------------------------------------------------------------------------------------------
# Atomic files
# --------------------------------------------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    token = next(tempfile._get_candidate_names())  # type: ignore[attr-defined]
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{token}")


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that ``path`` holds either the old or the whole new content.

    Temporary file in the same folder, fsync, ``os.replace``, fsync of the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_bytes(value: Any, indent: int | None = 2) -> bytes:
    return (json.dumps(to_jsonable(value), indent=indent, sort_keys=False, allow_nan=True) + "\n").encode("utf-8")


def atomic_write_json(path: Path | str, value: Any, *, indent: int | None = 2) -> Path:
    """Atomically write ``value`` (made JSON-able by :func:`to_jsonable`) as JSON."""
    return atomic_write_bytes(path, _json_bytes(value, indent))


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRecord:
    """One row of the store: the record plus what the store knows about it."""

    kind: str
    key: str
    record: dict
    provenance: dict | None
    created_at: str


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or value in {".", ".."}:
        raise UnsafeNameError(
            f"store {what} {value!r} is not a safe file name; use letters, digits and _ . = + - "
            "(at most 200 characters, not starting with '.' or '-')",
            hint=f"derive the {what} from spec_key(...) or a plain name such as 'resnet18'",
        )
    return value


class ArtifactStore:
    """Records (SQLite, WAL) and artifacts (atomic files) of one profile, keyed by spec hash.

    Safe to share between processes: each process (and thread) opens its own connection, and an
    instance pickles as its root path, so it can be handed to process-pool workers.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self.db_path = self.root / RECORDS_FILE
        self.artifacts_root = self.root / ARTIFACTS_DIR
        self._local = threading.local()

    @classmethod
    def for_profile(cls, profile_name: str) -> "ArtifactStore":
        """The store of a profile defined in ``configs/profiles.yaml`` (root: ``paths.store_dir``).
        Nothing is created until something is written: reading a store that does not exist finds
        nothing (``nasoa recommend`` on a fresh machine leaves no empty ``records.sqlite``)."""
        from nasoa_lib.profiles import load_profile

        load_profile(profile_name)  # an unknown name is an UnknownProfileError, not a new folder
        return cls(paths.store_dir(profile_name))

    def exists(self) -> bool:
        """Whether the store has been created (by a first write)."""
        return self.db_path.is_file()

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    def __getstate__(self) -> dict:
        return {"root": str(self.root)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    # ---- connection -------------------------------------------------------------------------

    def _corrupted(self, err: Exception) -> StoreCorruptedError:
        return StoreCorruptedError(
            f"result store {self.db_path} cannot be read ({err})",
            hint=(
                f"move {self.db_path} (and any -wal/-shm files beside it) aside and re-run; "
                f"artifacts in {self.artifacts_root} are kept, records are recomputed"
            ),
        )

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.root.mkdir(parents=True, exist_ok=True)
        if self.db_path.exists() and self.db_path.stat().st_size > 0:
            with open(self.db_path, "rb") as fh:
                header = fh.read(16)
            if header != b"SQLite format 3\x00":
                raise self._corrupted(ValueError("file is not an SQLite database"))
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._with_retry(lambda: self._init_schema(conn))
            self._with_retry(lambda: self._track_legacy_outputs(conn))
        except sqlite3.OperationalError:
            conn.close()
            raise
        except sqlite3.DatabaseError as err:
            conn.close()
            raise self._corrupted(err) from err
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    @staticmethod
    def _init_schema(conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch to WAL (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO store_meta (name, value) VALUES ('id', ?)", (uuid.uuid4().hex,))

    def _track_legacy_outputs(self, conn: sqlite3.Connection) -> None:
        """Once per store: list the records and artifact files of a store made before outputs
        were tracked (producer unknown: :data:`LEGACY_NOTEBOOK`), so their loss is noticed too."""
        if conn.execute("SELECT 1 FROM store_meta WHERE name = 'outputs_tracked'").fetchone():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not conn.execute("SELECT 1 FROM store_meta WHERE name = 'outputs_tracked'").fetchone():
                conn.execute("INSERT OR IGNORE INTO outputs (kind, key, name, notebook) "
                             "SELECT kind, key, ?, ? FROM records ORDER BY rowid", (RECORD_OUTPUT, LEGACY_NOTEBOOK))
                conn.executemany("INSERT OR IGNORE INTO outputs (kind, key, name, notebook) VALUES (?, ?, ?, ?)",
                                 [(*found, LEGACY_NOTEBOOK) for found in self._files_on_disk()])
                conn.execute("INSERT INTO store_meta (name, value) VALUES ('outputs_tracked', '1')")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _files_on_disk(self) -> Iterator[tuple[str, str, str]]:
        if not self.artifacts_root.is_dir():
            return
        for kind_dir in sorted(self.artifacts_root.iterdir()):
            for key_dir in sorted(kind_dir.iterdir()) if kind_dir.is_dir() else ():
                for path in sorted(key_dir.iterdir()) if key_dir.is_dir() else ():
                    if path.is_file() and not _TEMP_RE.match(path.name):
                        yield kind_dir.name, key_dir.name, path.name

    @staticmethod
    def _with_retry(fn, attempts: int = 50):
        """Retry on SQLITE_BUSY paths that bypass the busy handler (e.g. switching to WAL)."""
        for attempt in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (1 + attempt % 10))
        raise AssertionError("unreachable")

    def _execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        conn = self._connect()
        try:
            return self._with_retry(lambda: conn.execute(sql, params))
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as err:
            raise self._corrupted(err) from err

    def _transaction(self, fn):
        """Run ``fn(conn)`` in one write transaction (retried while another writer holds the lock)."""
        conn = self._connect()

        def attempt():
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

        try:
            return self._with_retry(attempt)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as err:
            raise self._corrupted(err) from err

    def close(self) -> None:
        """Close this thread's connection (others close when their process ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def __enter__(self) -> "ArtifactStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- records ----------------------------------------------------------------------------

    def put(
        self, kind: str, key: str, record: Mapping[str, Any], *, provenance: dict | None = None
    ) -> bool:
        """Insert ``record`` under ``(kind, key)`` once; ``False`` (and no change) if it exists.

        An existing row is replaced (``True``) only when it is stale: an artifact file listed with it
        is missing, or was written after it, i.e. its stage found it incomplete and computed it again
        (the record then describes the new files, and its ``created_at`` is the recomputation's)."""
        _check_name("kind", kind)
        _check_name("key", key)
        body = _canonical_json(to_jsonable(dict(record)))
        prov = None if provenance is None else _canonical_json(to_jsonable(provenance))
        created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        notebook = paths.current_notebook()

        def insert(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO records (kind, key, record, provenance, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, key, body, prov, created),
            )
            if cur.rowcount != 1:
                if not self._stale(conn, kind, key):
                    return False
                conn.execute("UPDATE records SET record = ?, provenance = ?, created_at = ? WHERE kind = ? AND key = ?",
                             (body, prov, created, kind, key))
            conn.execute("INSERT OR REPLACE INTO outputs (kind, key, name, notebook) VALUES (?, ?, ?, ?)",
                         (kind, key, RECORD_OUTPUT, notebook))
            return True

        return self._transaction(insert)

    def _stale(self, conn: sqlite3.Connection, kind: str, key: str) -> bool:
        """Whether the existing record of ``(kind, key)`` no longer goes with its artifact files: one
        is missing, or was (re-)written after the record (outputs ids only grow)."""
        rows = conn.execute(
            "SELECT f.name, f.id, r.id FROM outputs f LEFT JOIN outputs r "
            "ON r.kind = f.kind AND r.key = f.key AND r.name = ? WHERE f.kind = ? AND f.key = ? AND f.name != ?",
            (RECORD_OUTPUT, kind, key, RECORD_OUTPUT),
        ).fetchall()
        folder = self.artifacts_root / kind / key
        return any(not (folder / name).is_file() or (record_id is not None and file_id > record_id)
                   for name, file_id, record_id in rows)

    def _decode(self, kind: str, key: str, body: str, prov: str | None, created: str) -> StoredRecord:
        def corrupted(why: object) -> StoreCorruptedError:
            return StoreCorruptedError(
                f"record {kind}/{key} in {self.db_path} is not valid JSON ({why})",
                hint=(
                    f"drop it with ArtifactStore({str(self.root)!r}).delete({kind!r}, {key!r}) and "
                    "re-run the stage; or read the others with records(kind, skip_corrupt=True)"
                ),
            )

        try:
            record = json.loads(body)
            provenance = None if prov is None else json.loads(prov)
        except (ValueError, TypeError) as err:
            raise corrupted(err) from err
        if not isinstance(record, dict):
            raise corrupted(f"record is a {type(record).__name__}, not an object")
        return StoredRecord(kind, key, record, provenance, created)

    def entry(self, kind: str, key: str) -> StoredRecord | None:
        """The record of ``(kind, key)`` with its provenance and creation time, or ``None``
        (also when its artifacts are gone: see :meth:`has`)."""
        if not self.exists() or not self._complete(kind, key):
            return None
        row = self._execute(
            "SELECT record, provenance, created_at FROM records WHERE kind = ? AND key = ?",
            (kind, key),
        ).fetchone()
        return None if row is None else self._decode(kind, key, *row)

    def _complete(self, kind: str, key: str) -> bool:
        """Whether a record of ``(kind, key)`` exists with every artifact file listed with it on disk
        (one query): a record's presence must mean its artifacts are complete, so an incomplete
        one reads as absent and its stage recomputes it. Nothing is deleted."""
        rows = self._execute(
            "SELECT o.name FROM records r LEFT JOIN outputs o ON o.kind = r.kind AND o.key = r.key AND o.name != ? "
            "WHERE r.kind = ? AND r.key = ?",
            (RECORD_OUTPUT, kind, key),
        ).fetchall()
        folder = self.artifacts_root / kind / key
        missing = [name for (name,) in rows if name is not None and not (folder / name).is_file()]
        if missing:
            self._log_incomplete(kind, key, missing)
        return bool(rows) and not missing

    def _log_incomplete(self, kind: str, key: str, missing: list[str]) -> None:
        log.warning("store %s: record %s/%s lost its artifact(s) %s; it reads as absent so that its stage "
                    "recomputes it", self.root, kind, key, ", ".join(missing))

    def get(self, kind: str, key: str) -> dict | None:
        """The record stored under ``(kind, key)``, or ``None``."""
        found = self.entry(kind, key)
        return None if found is None else found.record

    def has(self, kind: str, key: str) -> bool:
        """Whether a record exists under ``(kind, key)`` with all the artifacts written with it
        (does not parse it). A record whose artifact file is gone reads as ``False`` (and stays
        in the store), so the stage asking recomputes it and its ``put`` replaces the row."""
        return self.exists() and self._complete(kind, key)

    def entries(self, kind: str, *, skip_corrupt: bool = False) -> list[StoredRecord]:
        """All rows of ``kind`` in insertion order; a bad row raises unless ``skip_corrupt``."""
        if not self.exists():
            return []
        rows = self._execute(
            "SELECT key, record, provenance, created_at FROM records WHERE kind = ? ORDER BY rowid",
            (kind,),
        ).fetchall()
        files = self._execute(
            "SELECT key, name FROM outputs WHERE kind = ? AND name != ?", (kind, RECORD_OUTPUT)
        ).fetchall()
        missing: dict[str, list[str]] = {}
        for key, name in files:
            if not (self.artifacts_root / kind / key / name).is_file():
                missing.setdefault(key, []).append(name)
        out: list[StoredRecord] = []
        bad: list[str] = []
        for key, body, prov, created in rows:
            if key in missing:
                self._log_incomplete(kind, key, missing[key])
                continue
            try:
                out.append(self._decode(kind, key, body, prov, created))
            except StoreCorruptedError:
                if not skip_corrupt:
                    raise
                bad.append(key)
        if bad:
            log.warning(
                "store %s: skipped %d corrupt %r record(s): %s", self.root, len(bad), kind, ", ".join(bad)
            )
        return out

    def records(self, kind: str, *, skip_corrupt: bool = False) -> list[dict]:
        """The records of ``kind`` in insertion order (see :meth:`entries`)."""
        return [e.record for e in self.entries(kind, skip_corrupt=skip_corrupt)]

    def keys(self, kind: str) -> list[str]:
        """Keys of ``kind`` in insertion order."""
        if not self.exists():
            return []
        rows = self._execute("SELECT key FROM records WHERE kind = ? ORDER BY rowid", (kind,))
        return [r[0] for r in rows.fetchall()]

    def count(self, kind: str) -> int:
        """Number of records of ``kind``."""
        if not self.exists():
            return 0
        return int(self._execute("SELECT COUNT(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0])

    def kinds(self) -> list[str]:
        """Kinds that have at least one record, sorted."""
        if not self.exists():
            return []
        rows = self._execute("SELECT DISTINCT kind FROM records ORDER BY kind").fetchall()
        return [r[0] for r in rows]

    # ---- what the runner checks --------------------------------------------------------------

    def identity(self) -> str | None:
        """The id made with the store (a deleted and re-created store has another); ``None``
        while the store does not exist (asking does not create it)."""
        if not self.exists():
            return None
        return self._execute("SELECT value FROM store_meta WHERE name = 'id'").fetchone()[0]

    def output_rows(self) -> "StoreOutputs":
        """The outputs table with whether each artifact file is on disk: what
        :func:`output_snapshot` compares, fetched once (one query and one ``stat`` per artifact
        file) for however many notebooks are checked against it. Asking does not create the store."""
        store_id = self.identity()
        if store_id is None:
            return StoreOutputs(None, 0, ())
        last_id = int(self._execute("SELECT COALESCE(MAX(id), 0) FROM outputs").fetchone()[0])
        rows = self._execute(
            "SELECT id, kind, key, name, notebook FROM outputs WHERE notebook IS NOT NULL ORDER BY id").fetchall()
        return StoreOutputs(store_id, last_id, tuple(
            OutputRow(out_id, kind, key, name, producer,
                      name == RECORD_OUTPUT or (self.artifacts_root / kind / key / name).is_file())
            for out_id, kind, key, name, producer in rows))

    def output_snapshot(self, notebook: str, upto: int | None = None) -> dict[str, Any]:
        """:func:`output_snapshot` of this store as it is now."""
        return output_snapshot(self.output_rows(), notebook, upto)

    def delete(self, kind: str, key: str) -> bool:
        """Remove the record and the artifacts of ``(kind, key)``; ``True`` if there was a record."""
        def remove(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
            conn.execute("DELETE FROM outputs WHERE kind = ? AND key = ?", (kind, key))
            return cur.rowcount == 1

        existed = self._transaction(remove)
        folder = self.artifact_dir(kind, key, create=False)
        if folder.exists():
            shutil.rmtree(folder)
        return existed

    @contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[Path]:
        """Hold the store-wide exclusive lock ``name`` (``fcntl.flock`` on ``<root>/locks/<name>.lock``)
        across processes and threads, e.g. around a read-update-write of one artifact.

        The operating system releases the lock when its holder exits, even on ``kill -9``, so a
        crashed run never blocks the next one; a lock still held after ``timeout`` seconds is a
        :class:`~nasoa_lib.errors.StoreLockTimeoutError`. POSIX only (``fcntl``)."""
        import fcntl

        path = self.root / LOCKS_DIR / f"{_check_name('lock', name)}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreLockTimeoutError(
                            f"{name!r} is still locked by another process after {timeout:g} s ({path})",
                            hint="wait for the other process on this store (e.g. nasoa finetune) to finish (the lock "
                                 "is freed when its process exits) and run again") from None
                    time.sleep(LOCK_POLL_S)
            try:
                yield path
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ---- artifacts --------------------------------------------------------------------------

    def artifact_dir(self, kind: str, key: str, *, create: bool = True) -> Path:
        """Folder of the artifacts of ``(kind, key)``; created unless ``create=False``."""
        folder = self.artifacts_root / _check_name("kind", kind) / _check_name("key", key)
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def artifact_path(self, kind: str, key: str, name: str) -> Path:
        """Final path of artifact ``name`` (it may not exist yet)."""
        return self.artifact_dir(kind, key, create=False) / _check_name("artifact name", name)

    def artifact_exists(self, kind: str, key: str, name: str) -> bool:
        """Whether artifact ``name`` is complete on disk (partial writes are never visible)."""
        return self.artifact_path(kind, key, name).is_file()

    def producer(self, kind: str, key: str, name: str = RECORD_OUTPUT) -> str | None:
        """The notebook that wrote a record (``name=''``) or artifact file, if known."""
        if not self.exists():
            return None
        row = self._execute("SELECT notebook FROM outputs WHERE kind = ? AND key = ? AND name = ?",
                            (kind, key, name)).fetchone()
        return row[0] or None if row else None

    def rebuild_command(self, kind: str, key: str, name: str = RECORD_OUTPUT) -> str | None:
        """``nasoa reproduce --profile P --only NN`` for the notebook that wrote this output."""
        number = _notebook_number(self.producer(kind, key, name) or self.producer(kind, key))
        return None if number is None else f"nasoa reproduce --profile {self.root.name} --only {number:02d}"

    def _existing(self, kind: str, key: str, name: str) -> Path:
        path = self.artifact_path(kind, key, name)
        if not path.is_file():
            command = self.rebuild_command(kind, key, name)
            rebuild = f"rebuild it with: {command}" if command else "re-run the stage that produces it"
            if self.has(kind, key):  # nothing lists the file as the record's (a store older than that)
                rebuild = (f"drop its record with ArtifactStore({str(self.root)!r}).delete({kind!r}, {key!r}), "
                           f"then {rebuild} (the stage skips work whose record is in the store)")
            raise ArtifactNotFoundError(f"artifact {kind}/{key}/{name} not found in {self.artifacts_root}", hint=rebuild)
        return path

    def write_bytes(self, kind: str, key: str, name: str, data: bytes) -> Path:
        """Atomically write artifact ``name`` (listed as an output of the running notebook)."""
        self.artifact_dir(kind, key)
        path = atomic_write_bytes(self.artifact_path(kind, key, name), bytes(data))
        self._transaction(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO outputs (kind, key, name, notebook) VALUES (?, ?, ?, ?)",
            (kind, key, name, paths.current_notebook())))
        return path

    def read_bytes(self, kind: str, key: str, name: str) -> bytes:
        """Content of artifact ``name``."""
        return self._existing(kind, key, name).read_bytes()

    def write_json(self, kind: str, key: str, name: str, value: Any) -> Path:
        """Atomically write artifact ``name`` as JSON."""
        return self.write_bytes(kind, key, name, _json_bytes(value))

    def read_json(self, kind: str, key: str, name: str) -> Any:
        """Parsed JSON artifact; unparsable content is a :class:`StoreCorruptedError`."""
        path = self._existing(kind, key, name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise StoreCorruptedError(
                f"artifact {path} is not valid JSON ({err})",
                hint="delete it (or the record with store.delete(kind, key)) and re-run the stage",
            ) from err

    def save_torch(self, kind: str, key: str, name: str, obj: Any) -> Path:
        """Atomically ``torch.save`` ``obj`` (e.g. a state dict) as artifact ``name``."""
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return self.write_bytes(kind, key, name, buffer.getvalue())

    def load_torch(
        self, kind: str, key: str, name: str, map_location: Any = "cpu", *, weights_only: bool = True
    ) -> Any:
        """``torch.load`` artifact ``name`` (tensors, state dicts and plain containers by default)."""
        import torch

        path = self._existing(kind, key, name)
        try:
            return torch.load(path, map_location=map_location, weights_only=weights_only)
        except (RuntimeError, EOFError, ValueError) as err:
            if "weights_only" in str(err) or "Weights only" in str(err):
                raise
            raise StoreCorruptedError(
                f"artifact {path} cannot be loaded by torch ({err})",
                hint="delete it (or the record with store.delete(kind, key)) and re-run the stage",
            ) from err

    def _temp_files(self) -> Iterator[tuple[Path, int]]:
        if not self.artifacts_root.exists():
            return
        for path in self.artifacts_root.rglob(".*.tmp-*"):
            match = _TEMP_RE.match(path.name)
            if match and path.is_file():
                yield path, int(match.group("pid"))

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temporary files left by writers that died mid-write (their pid is gone)."""
        removed = []
        for path, pid in self._temp_files():
            if pid == os.getpid() or _pid_alive(pid):
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
        if removed:
            log.info("store %s: removed %d unfinished artifact file(s)", self.root, len(removed))
        return removed


@dataclass(frozen=True)
class OutputRow:
    """One tagged row of the ``outputs`` table (``present``: the artifact file is on disk; always
    ``True`` for a record)."""

    id: int
    kind: str
    key: str
    name: str
    notebook: str
    present: bool


@dataclass(frozen=True)
class StoreOutputs:
    """What :meth:`ArtifactStore.output_rows` read: the store's id (``None``: no store), the last
    output id and the outputs tagged with a notebook (or :data:`LEGACY_NOTEBOOK`)."""

    store_id: str | None
    last_id: int
    rows: tuple[OutputRow, ...]


def output_snapshot(outputs: StoreOutputs, notebook: str, upto: int | None = None) -> dict[str, Any]:
    """What a notebook's successful run leaves to compare later (``runs.json``): the store's id, the
    last output id ``upto`` and a digest of the outputs the notebook may have written or read: those
    written up to ``upto`` by it, by notebooks numbered before it, or before outputs were tracked
    (untagged outputs of the command line or interactive sessions are left out), with whether each
    artifact file is on disk. The notebook is done while a later snapshot with the same ``upto`` is
    equal: a deleted or re-created store, a dropped record or a lost file changes it."""
    if outputs.store_id is None:
        return {"store_id": None, "upto": 0, "outputs": 0, "digest": None}
    upto = outputs.last_id if upto is None else upto
    mine = _notebook_number(notebook)
    digest = hashlib.sha256()
    count = 0
    for row in outputs.rows:
        if row.id > upto:
            break
        number = _notebook_number(row.notebook) if row.notebook != LEGACY_NOTEBOOK else -1
        if number is None or (mine is not None and number > mine):
            continue
        digest.update(f"{row.id}\0{row.kind}\0{row.key}\0{row.name}\0{int(row.present)}\n".encode())
        count += 1
    return {"store_id": outputs.store_id, "upto": upto, "outputs": count, "digest": digest.hexdigest()}


def _notebook_number(notebook: str | None) -> int | None:
    match = _NOTEBOOK_NUM_RE.match(notebook or "")
    return None if match is None else int(match["num"])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
