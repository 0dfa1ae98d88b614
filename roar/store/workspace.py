"""The workspace: where `.roar/` lives, who owns it, and every change to it.

`.roar/` is found by walking up from the current directory; `roar run`
creates it on first use at the git repository root, else in the current
directory. Under sudo every file roar writes here is given to the invoking
user, so later commands work without sudo.

Durable state is files, each written atomically before the index row that
points at it: jobs/<uid>.msgpack (records), sessions/<id>.msgpack,
labels/<id>.msgpack (one label change each). Opening the index notices files
a crash left unindexed and indexes them (self-healing); `rebuild()` redoes
the whole index from the files (docs/store.md).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack

from roar.errors import CorruptStore, NotAWorkspace, WorkspaceUnwritable
from roar.record import job as jobrec

DIRNAME = ".roar"
SESSION_FORMAT = "roar.session"
LABEL_FORMAT = "roar.label"
FILE_VERSION = 1
REBUILD_CACHE_KB = 256 << 10   # SQLite page cache of `roar db rebuild`, at most (grows as used)


def invoking_user() -> tuple[int, int] | None:
    """(uid, gid) of the user behind sudo, or None when not under sudo as root."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid or not uid.isdigit() or not gid.isdigit():
        return None
    return int(uid), int(gid)


def git_root(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


class Workspace:
    def __init__(self, root: Path, owner: tuple[int, int] | None = None) -> None:
        self.root = root
        self.dir = root / DIRNAME
        self.jobs_dir = self.dir / "jobs"
        self.sessions_dir = self.dir / "sessions"
        self.labels_dir = self.dir / "labels"
        self.owner = owner

    @classmethod
    def find(cls, start: Path | None = None) -> "Workspace":
        start = (start or Path.cwd()).resolve()
        for d in (start, *start.parents):
            if (d / DIRNAME).is_dir():
                return cls(d, invoking_user())
        raise NotAWorkspace(
            f"no roar workspace here or above {start}: run a command with `roar run` first"
        )

    @classmethod
    def find_or_create(cls, start: Path | None = None) -> "Workspace":
        start = (start or Path.cwd()).resolve()
        try:
            return cls.find(start)
        except NotAWorkspace:
            pass
        ws = cls(git_root(start) or start, invoking_user())
        ws.create()
        return ws

    def create(self) -> None:
        try:
            for d in (self.jobs_dir, self.sessions_dir, self.labels_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceUnwritable(
                f"cannot create {self.dir}: {exc.strerror}; run roar where you can write, "
                "or fix the permissions"
            ) from None
        for d in (self.dir, self.jobs_dir, self.sessions_dir, self.labels_dir):
            self.give(d)

    def check_writable(self) -> None:
        """Before a job runs: fail now rather than lose its record at the end."""
        self.create()
        try:
            fd, name = tempfile.mkstemp(dir=self.jobs_dir, prefix=".probe-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise WorkspaceUnwritable(
                f"cannot write in {self.jobs_dir}: {exc.strerror}; fix its permissions "
                "or run roar elsewhere"
            ) from None

    def give(self, path: Path) -> None:
        """Hand a file roar made to the invoking user (no-op when not under sudo)."""
        if self.owner:
            try:
                os.chown(path, *self.owner)
            except OSError:
                pass

    def record_path(self, uid: str) -> Path:
        return self.jobs_dir / f"{uid}.msgpack"

    def write_record(self, record: dict[str, Any]) -> Path:
        """Write atomically: a reader sees the whole record or none of it."""
        return self._write_atomic(self.record_path(record["uid"]), jobrec.encode(record))

    def _write_atomic(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                self.give(Path(tmp))
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise WorkspaceUnwritable(f"cannot write {path}: {exc.strerror}") from None
        return path

    def index(self):
        """An open connection to the SQLite index (created and migrated on first use)."""
        from roar.store import index

        path = self.db_path
        conn = index.connect(path)
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists():
                self.give(p)
        try:
            self.heal(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def db_path(self) -> Path:
        from roar.store import index

        return self.dir / index.DB_NAME

    def hash_cache(self):
        """The workspace's hash cache (roar.artifacts.cache.HashCache); close it after use."""
        from roar.artifacts.cache import HashCache

        return HashCache(self.db_path)

    def add_job(self, record: dict[str, Any]) -> dict[str, Any]:
        """Give the job its session and step, write its record, index it.

        One IMMEDIATE transaction serialises concurrent `roar run`s: each gets
        the next step of the session, and the record file is in place before
        the index row that points at it is committed."""
        from roar.store import index

        conn = self.index()
        try:
            with _write_transaction(conn):
                record["session"] = index.current_session(conn) or self._new_session(conn)
                # builds are numbered apart (@B1, @B2, ...) from the other steps
                same_kind = "type = 'build'" if record["type"] == "build" else "type != 'build'"
                record["step"] = conn.execute(
                    f"SELECT COALESCE(MAX(step), 0) + 1 FROM jobs WHERE session_id = ? AND {same_kind}",
                    (record["session"],),
                ).fetchone()[0]
                self.write_record(record)
                index.index_job(conn, record)
        finally:
            conn.close()
        return record

    def read_record(self, uid: str) -> dict[str, Any]:
        path = self.record_path(uid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptStore(f"the record {path} is missing but indexed: run `roar db rebuild`") from None
        return jobrec.decode(data, source=str(path))

    # sessions

    def reset(self) -> dict[str, Any]:
        """End the current session and start the next one; returns the new session."""
        from roar.store import index

        conn = self.index()
        try:
            with _write_transaction(conn):
                current = index.current_session(conn)
                if current:
                    old = self._session_row(conn, current)
                    old["ended_at"] = time.time()
                    self._write_session(old)
                    index.index_session(conn, old)
                sid = self._new_session(conn)
                return self._session_row(conn, sid)
        finally:
            conn.close()

    def _new_session(self, conn: sqlite3.Connection) -> str:
        from roar.store import index

        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM sessions").fetchone()[0]
        session = {"id": uuid.uuid4().hex[:16], "seq": seq, "started_at": time.time(), "ended_at": None}
        self._write_session(session)
        index.index_session(conn, session)
        return session["id"]

    def _write_session(self, session: dict[str, Any]) -> None:
        doc = {"format": SESSION_FORMAT, "version": FILE_VERSION, **session}
        self._write_atomic(self.sessions_dir / f"{session['id']}.msgpack", msgpack.packb(doc))

    @staticmethod
    def _session_row(conn: sqlite3.Connection, sid: str) -> dict[str, Any]:
        row = conn.execute("SELECT id, seq, started_at, ended_at FROM sessions WHERE id = ?",
                           (sid,)).fetchone()
        return dict(zip(("id", "seq", "started_at", "ended_at"), row, strict=True))

    # labels

    def add_label_changes(self, target_kind: str, target: str, changes: dict[str, str | None]) -> None:
        """Record label changes (value None = unset) on a session, job or artifact."""
        from roar.store import index

        conn = self.index()
        try:
            with _write_transaction(conn):
                for key, value in changes.items():
                    at = time.time()
                    change = {"id": f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}", "at": at,
                              "target_kind": target_kind, "target": target, "key": key, "value": value}
                    doc = {"format": LABEL_FORMAT, "version": FILE_VERSION, **change}
                    self._write_atomic(self.labels_dir / f"{change['id']}.msgpack", msgpack.packb(doc))
                    index.index_label(conn, change)
        finally:
            conn.close()

    # index upkeep

    def heal(self, conn: sqlite3.Connection) -> int:
        """Index the files a crash left unindexed; returns how many. Cheap when
        nothing is missing: one directory listing and one count per kind."""
        missing = self._unindexed(conn)
        if not any(missing.values()):
            return 0
        try:
            with _write_transaction(conn):
                missing = self._unindexed(conn)   # another process may have healed meanwhile
                return self._index_files(conn, missing)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc):
                return 0    # someone else's workspace: read what is indexed
            raise

    def rebuild(self) -> int:
        """Recompute the index from the files; returns the number of jobs indexed.
        An index that cannot be opened is moved aside (roar.db.corrupt-<time>)."""
        from roar.store import index

        try:
            return self._rebuild_into(index.connect(self.db_path))
        except sqlite3.OperationalError:
            raise
        except (CorruptStore, sqlite3.DatabaseError):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for suffix in ("", "-wal", "-shm"):
                p = self.db_path.with_name(self.db_path.name + suffix)
                if p.exists():
                    os.replace(p, p.with_name(f"{index.DB_NAME}.corrupt-{stamp}{suffix}"))
            return self._rebuild_into(index.connect(self.db_path))

    def _rebuild_into(self, conn: sqlite3.Connection) -> int:
        from roar.store import index

        # a big page cache: the index's hash-keyed b-trees are written all over, and
        # with SQLite's default 2 MB most inserts of a large rebuild miss it
        conn.execute(f"PRAGMA cache_size = -{REBUILD_CACHE_KB}")
        try:
            with _write_transaction(conn):
                index.clear(conn)
                self._index_files(conn, self._unindexed(conn), facts=False)
                index.refresh_facts(conn)
                return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        finally:
            conn.close()

    @staticmethod
    def _entries(directory: Path) -> list[str]:
        try:
            return os.listdir(directory)
        except FileNotFoundError:
            return []

    def _unindexed(self, conn: sqlite3.Connection) -> dict[str, set[str]]:
        queries = {"sessions": "SELECT id FROM sessions",
                   "jobs": "SELECT uid FROM jobs UNION ALL SELECT file FROM bad_files",
                   "labels": "SELECT id FROM label_events WHERE origin = 'cli'"}
        missing = {}
        for kind, query in queries.items():
            entries = self._entries(self.dir / kind)
            indexed = conn.execute(f"SELECT COUNT(*) FROM ({query})").fetchone()[0]
            if _file_count(entries) == indexed:
                missing[kind] = set()
                continue
            names = {n[:-8] for n in entries if n.endswith(".msgpack") and not n.startswith(".")}
            missing[kind] = set() if len(names) == indexed else names - {r[0] for r in conn.execute(query)}
        return missing

    def _index_files(self, conn: sqlite3.Connection, missing: dict[str, set[str]],
                     facts: bool = True) -> int:
        from roar.store import index

        for sid in missing["sessions"]:
            doc = self._read_doc(self.sessions_dir / f"{sid}.msgpack", SESSION_FORMAT)
            if doc is not None:
                index.index_session(conn, doc)
        records = []
        for uid in missing["jobs"]:
            try:
                records.append(self.read_record(uid))
            except CorruptStore as exc:
                conn.execute("INSERT OR REPLACE INTO bad_files VALUES (?, ?)", (uid, exc.message))
        records.sort(key=lambda r: (r.get("ended_at") or 0, r["uid"]))
        for record in records:
            self._ensure_session(conn, record)
            self._renumber_if_taken(conn, record)
            index.index_job(conn, record, facts=facts)
        for lid in sorted(missing["labels"]):
            doc = self._read_doc(self.labels_dir / f"{lid}.msgpack", LABEL_FORMAT)
            if doc is not None:
                index.index_label(conn, doc)
        return len(records)

    def _read_doc(self, path: Path, fmt: str) -> dict[str, Any] | None:
        try:
            doc = msgpack.unpackb(path.read_bytes(), raw=False)
        except (OSError, ValueError, msgpack.UnpackException):
            return None
        return doc if isinstance(doc, dict) and doc.get("format") == fmt else None

    def _renumber_if_taken(self, conn: sqlite3.Connection, record: dict[str, Any]) -> None:
        """A record orphaned by a crash may hold a step another job took since:
        it gets the next free step (its file is rewritten)."""
        same_kind = "type = 'build'" if record["type"] == "build" else "type != 'build'"
        query = f"FROM jobs WHERE session_id = ? AND {same_kind}"
        if conn.execute(f"SELECT 1 {query} AND step = ?", (record["session"], record["step"])).fetchone():
            record["step"] = conn.execute(f"SELECT MAX(step) + 1 {query}", (record["session"],)).fetchone()[0]
            self.write_record(record)

    @staticmethod
    def _ensure_session(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
        """A record whose session file is gone still gets a session row."""
        from roar.store import index

        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (record["session"],)).fetchone():
            return
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM sessions").fetchone()[0]
        index.index_session(conn, {"id": record["session"], "seq": seq,
                                   "started_at": record.get("started_at") or 0})


def _file_count(entries: list[str]) -> int | None:
    """How many NAME.msgpack files a directory listing holds, counted without a Python
    loop (every command makes this check, and jobs/ may hold 100,000 records); None
    when a hidden file (a temporary write) is there and only the exact filter will do."""
    joined = "\0" + "\0".join(entries) + "\0"
    if "\0." in joined:
        return None
    return joined.count(".msgpack\0")


class _write_transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
