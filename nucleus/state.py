"""The nucleus's memory: SQLite in WAL mode under `<root>/config/`.

What survives a restart (or a kill -9 at any instant): deployments and their outcome, the set of root
components the daemon restores, each component's last state and digest, the process groups that steps
started (with their start time and the boot id, so that only our own processes are ever ended after a
crash), and which versions have run their bootstrap step. Every write is one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from nucleus.errors import NucleusError, disk_error

SCHEMA_VERSION = 4

MIGRATIONS: dict[int, str] = {
    1: """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            mode TEXT NOT NULL,              -- daemon | foreground
            status TEXT NOT NULL,            -- IN_PROGRESS | SUCCEEDED | FAILED | ROLLED_BACK
            error TEXT,
            request TEXT NOT NULL,           -- JSON: what was asked
            previous_roots TEXT              -- JSON: the root set before it (for rollback)
        );
        CREATE TABLE roots (
            name TEXT PRIMARY KEY,
            version TEXT NOT NULL,
            recipe_path TEXT NOT NULL        -- the stored recipe this root was deployed from
        );
        CREATE TABLE components (
            name TEXT PRIMARY KEY,
            version TEXT NOT NULL,
            state TEXT NOT NULL,
            builtin INTEGER NOT NULL DEFAULT 0,
            digest TEXT NOT NULL DEFAULT '',
            cause TEXT NOT NULL DEFAULT '',
            stopped INTEGER NOT NULL DEFAULT 0,   -- stopped with `nucleus stop`: not started on restore
            token TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL
        );
        CREATE TABLE processes (
            pgid INTEGER NOT NULL,
            start_time REAL NOT NULL,
            boot_id TEXT NOT NULL,
            component TEXT NOT NULL,
            token TEXT NOT NULL,
            PRIMARY KEY (pgid, start_time)
        );
        CREATE TABLE bootstrapped (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (name, version)
        );
    """,
    2: """
        -- the configuration (JSON) each component runs with
        ALTER TABLE components ADD COLUMN configuration TEXT NOT NULL DEFAULT '{}';
    """,
    3: """
        -- 'group': a step's process group, `pgid` its leader. 'process': one process the nucleus adopted
        -- from a component (its parent died), `pgid` its pid
        ALTER TABLE processes ADD COLUMN kind TEXT NOT NULL DEFAULT 'group';
    """,
    4: """
        -- who asked (cli, foreground, ipc, cloud) and the whole deployment document, so that a queued
        -- deployment survives a restart; status gains QUEUED
        ALTER TABLE deployments ADD COLUMN source TEXT NOT NULL DEFAULT 'cli';
        ALTER TABLE deployments ADD COLUMN document TEXT;
        -- the content (by digest) of every component of the last deployment that succeeded: what a
        -- restart and a rollback restore, exactly
        CREATE TABLE committed (
            name TEXT PRIMARY KEY,
            version TEXT NOT NULL,
            digest TEXT NOT NULL
        );
    """,
}

SQL_SCHEMA_VERSION = "PRAGMA user_version"
SQL_INSERT_DEPLOYMENT = ("INSERT INTO deployments (created_at, mode, status, request, previous_roots) "
                         "VALUES (?, ?, 'IN_PROGRESS', ?, ?)")
SQL_QUEUE_DEPLOYMENT = ("INSERT INTO deployments (created_at, mode, status, request, source, document) "
                        "VALUES (?, ?, 'QUEUED', ?, ?, ?)")
SQL_START_DEPLOYMENT = "UPDATE deployments SET status = 'IN_PROGRESS', previous_roots = ? WHERE id = ?"
SQL_QUEUED_DEPLOYMENTS = "SELECT id, source, document FROM deployments WHERE status = 'QUEUED' ORDER BY id"
SQL_FINISH_DEPLOYMENT = "UPDATE deployments SET status = ?, error = ? WHERE id = ?"
SQL_LIST_DEPLOYMENTS = "SELECT id, created_at, mode, status, error FROM deployments ORDER BY id"
SQL_GET_DEPLOYMENT = "SELECT id, created_at, mode, status, error, request, previous_roots FROM deployments WHERE id = ?"
SQL_UNFINISHED_DEPLOYMENTS = "SELECT id FROM deployments WHERE status = 'IN_PROGRESS'"
SQL_LIST_ROOTS = "SELECT name, version, recipe_path FROM roots ORDER BY name"
SQL_CLEAR_ROOTS = "DELETE FROM roots"
SQL_INSERT_ROOT = "INSERT INTO roots (name, version, recipe_path) VALUES (?, ?, ?)"
SQL_LIST_COMMITTED = "SELECT name, version, digest FROM committed ORDER BY name"
SQL_CLEAR_COMMITTED = "DELETE FROM committed"
SQL_INSERT_COMMITTED = "INSERT INTO committed (name, version, digest) VALUES (?, ?, ?)"
SQL_UPSERT_COMPONENT = """
    INSERT INTO components (name, version, state, builtin, digest, cause, stopped, token, updated_at,
                            configuration)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET version = excluded.version, state = excluded.state,
        builtin = excluded.builtin, digest = excluded.digest, cause = excluded.cause,
        stopped = excluded.stopped, token = excluded.token, updated_at = excluded.updated_at,
        configuration = excluded.configuration
"""
SQL_LIST_COMPONENTS = ("SELECT name, version, state, builtin, digest, cause, stopped, token, updated_at, "
                       "configuration FROM components ORDER BY name")
SQL_DELETE_COMPONENT = "DELETE FROM components WHERE name = ?"
SQL_INSERT_PROCESS = ("INSERT OR REPLACE INTO processes (pgid, start_time, boot_id, component, token, kind) "
                      "VALUES (?, ?, ?, ?, ?, ?)")
SQL_LIST_PROCESSES = "SELECT pgid, start_time, boot_id, component, token, kind FROM processes"
SQL_CLEAR_PROCESSES = "DELETE FROM processes"
SQL_DELETE_PROCESS = "DELETE FROM processes WHERE pgid = ? AND start_time = ?"
SQL_IS_BOOTSTRAPPED = "SELECT 1 FROM bootstrapped WHERE name = ? AND version = ? AND digest = ?"
SQL_SET_BOOTSTRAPPED = "INSERT OR REPLACE INTO bootstrapped (name, version, digest) VALUES (?, ?, ?)"


class ComponentRecord(NamedTuple):
    name: str
    version: str
    state: str
    builtin: bool
    digest: str
    cause: str
    stopped: bool
    token: str
    updated_at: str
    configuration: str = "{}"  # JSON: the configuration the component runs with


class DeploymentRecord(NamedTuple):
    id: int
    created_at: str
    mode: str
    status: str
    error: str | None


class RootRecord(NamedTuple):
    name: str
    version: str
    recipe_path: str


class ProcessRecord(NamedTuple):
    pgid: int  # the group's leader, or the process itself (kind 'process')
    start_time: float
    boot_id: str
    component: str
    token: str
    kind: str = "group"  # 'group' | 'process'


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class StateError(NucleusError):
    pass


MAX_SQLITE_PATH = 500  # SQLite refuses a database whose real path is longer than 512 bytes


def short_home(path: Path) -> Path:
    """Where the state database of a root with a very long path really lives: a short, private, persistent
    folder named after the root (`<root>/config/state.sqlite` is a link to it)."""
    import hashlib

    name = hashlib.sha256(str(path.parent.parent).encode()).hexdigest()[:16]
    if os.geteuid() == 0:
        base = Path("/var/lib/nucleus/roots")
    else:
        state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        base = Path(state_home) / "nucleus" / "roots"
        if len(str(base)) > MAX_SQLITE_PATH - 64:
            base = Path(f"/var/tmp/nucleus-{os.getuid()}/roots")
    return base / name


def _openable(path: Path) -> Path:
    """The path to give SQLite for `path`: itself, or — when the root's path is too long for SQLite — the
    short folder of `short_home`, reached through a link at `path` so that people find it where they look."""
    if len(os.fsencode(os.path.realpath(path))) <= MAX_SQLITE_PATH:
        return path
    home = short_home(path)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = home / path.name
    if not path.is_symlink():
        if path.exists():  # written before by a nucleus that could (a shorter root, since moved)
            os.replace(path, target)
        os.symlink(target, path)
    return target


def _statements(script: str) -> list[str]:
    """A migration's statements, its `--` comments dropped (they may hold any punctuation)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


def _open_readonly(path: Path) -> sqlite3.Connection:
    """Read-only: `mode=ro`, or `immutable=1` when the folder cannot be written (SQLite cannot even read a
    WAL database there otherwise)."""
    from urllib.parse import quote

    real = os.path.realpath(path)
    if not os.path.exists(real):
        raise StateError("there is no state database yet", where=str(path), hint="deploy something first")
    flag = "mode=ro" if os.access(os.path.dirname(real), os.W_OK) else "immutable=1"
    return sqlite3.connect(f"file:{quote(real)}?{flag}", uri=True, timeout=10, isolation_level=None,
                           check_same_thread=False)


class State:
    """The state database of one root. Open it, use it from one thread, close it."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (creating and migrating it if need be), or with `readonly` only read it — what `list` does,
        so that it works on a read-only root and never changes the file."""
        self.path = path
        try:
            if readonly:
                self._db = _open_readonly(path)
                self._check_version(readonly=True)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            real = _openable(path)
            self._db = sqlite3.connect(str(real), timeout=10, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
            real.chmod(0o600)
        except sqlite3.DatabaseError as exc:
            raise open_error(exc, path) from None
        except OSError as exc:
            raise disk_error(exc, path.parent) or StateError(
                f"the state database cannot be opened: {exc.strerror or exc} ({exc.filename or path})",
                where=str(path), hint="check the permissions of the nucleus root") from None

    def close(self) -> None:
        self._db.close()

    def _check_version(self, readonly: bool = False) -> int:
        version = int(self._db.execute(SQL_SCHEMA_VERSION).fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(f"the state database has schema {version}, newer than this nucleus knows "
                             f"({SCHEMA_VERSION})", where=str(self.path), hint="upgrade nucleus")
        if readonly and version < SCHEMA_VERSION:
            raise StateError(f"the state database has schema {version}, from an older nucleus",
                             where=str(self.path), hint="any deploy or `nucleus start` upgrades it in place")
        return version

    def _migrate(self) -> None:
        version = self._check_version()
        for step in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction():
                for statement in _statements(MIGRATIONS[step]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {step}")

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db, self.path)

    # -- deployments -----------------------------------------------------------------------------

    def begin_deployment(self, mode: str, request: dict[str, Any], previous_roots: Iterable[RootRecord] = ()) -> int:
        with self._transaction():
            cursor = self._db.execute(SQL_INSERT_DEPLOYMENT, (
                now_iso(), mode, json.dumps(request, sort_keys=True),
                json.dumps([r._asdict() for r in previous_roots])))
            return int(cursor.lastrowid or 0)

    def queue_deployment(self, mode: str, source: str, request: dict[str, Any], document: str) -> int:
        """A deployment accepted but not started: QUEUED, its document kept to run it after a restart."""
        with self._transaction():
            cursor = self._db.execute(SQL_QUEUE_DEPLOYMENT, (now_iso(), mode, json.dumps(request, sort_keys=True),
                                                             source, document))
            return int(cursor.lastrowid or 0)

    def start_deployment(self, deployment_id: int, previous_roots: Iterable[RootRecord]) -> None:
        with self._transaction():
            self._db.execute(SQL_START_DEPLOYMENT, (json.dumps([r._asdict() for r in previous_roots]), deployment_id))

    def queued_deployments(self) -> list[tuple[int, str, str]]:
        """(id, source, document) of every deployment still QUEUED, oldest first."""
        return [(int(i), str(source), str(document or "{}"))
                for i, source, document in self._db.execute(SQL_QUEUED_DEPLOYMENTS)]

    def finish_deployment(self, deployment_id: int, status: str, error: str | None = None) -> None:
        with self._transaction():
            self._db.execute(SQL_FINISH_DEPLOYMENT, (status, error, deployment_id))

    def deployments(self) -> list[DeploymentRecord]:
        return [DeploymentRecord(*row) for row in self._db.execute(SQL_LIST_DEPLOYMENTS)]

    def deployment_previous_roots(self, deployment_id: int) -> list[RootRecord]:
        row = self._db.execute(SQL_GET_DEPLOYMENT, (deployment_id,)).fetchone()
        return [RootRecord(**r) for r in json.loads(row[6] or "[]")] if row else []

    def unfinished_deployments(self) -> list[int]:
        return [row[0] for row in self._db.execute(SQL_UNFINISHED_DEPLOYMENTS)]

    # -- the daemon's root set -------------------------------------------------------------------

    def roots(self) -> list[RootRecord]:
        return [RootRecord(*row) for row in self._db.execute(SQL_LIST_ROOTS)]

    def set_roots(self, roots: Iterable[RootRecord], deployment_id: int | None = None,
                  status: str | None = None, error: str | None = None) -> None:
        """Replace the root set (and finish a deployment) in one transaction."""
        with self._transaction():
            self._db.execute(SQL_CLEAR_ROOTS)
            self._db.executemany(SQL_INSERT_ROOT, [(r.name, r.version, r.recipe_path) for r in roots])
            if deployment_id is not None and status is not None:
                self._db.execute(SQL_FINISH_DEPLOYMENT, (status, error, deployment_id))

    def committed(self) -> dict[str, tuple[str, str]]:
        """name → (version, digest) of every component of the last deployment that succeeded."""
        return {name: (version, digest) for name, version, digest in self._db.execute(SQL_LIST_COMMITTED)}

    def commit(self, roots: Iterable[RootRecord], components: Iterable[tuple[str, str, str]], deployment_id: int,
               status: str, error: str | None = None) -> None:
        """A deployment's outcome with the set it leaves deployed — roots and every component's content —
        in one transaction: after a crash, either the old set and no outcome, or the new set and its outcome."""
        with self._transaction():
            self._db.execute(SQL_CLEAR_ROOTS)
            self._db.executemany(SQL_INSERT_ROOT, [(r.name, r.version, r.recipe_path) for r in roots])
            self._db.execute(SQL_CLEAR_COMMITTED)
            self._db.executemany(SQL_INSERT_COMMITTED, list(components))
            self._db.execute(SQL_FINISH_DEPLOYMENT, (status, error, deployment_id))

    # -- components ------------------------------------------------------------------------------

    def record(self, *, components: Iterable[ComponentRecord] = (), processes: Iterable[ProcessRecord] = (),
               gone: Iterable[tuple[int, float]] = (), forgotten: Iterable[str] = (),
               bootstrapped: Iterable[tuple[str, str, str]] = ()) -> None:
        """Component states, spawned process groups and those whose leader is gone, components removed and
        bootstraps done — in one transaction."""
        with self._transaction():
            self._db.executemany(SQL_DELETE_COMPONENT, [(name,) for name in forgotten])
            self._db.executemany(SQL_SET_BOOTSTRAPPED, list(bootstrapped))
            self._db.executemany(SQL_UPSERT_COMPONENT, [
                (r.name, r.version, r.state, int(r.builtin), r.digest, r.cause, int(r.stopped), r.token,
                 r.updated_at, r.configuration) for r in components])
            self._db.executemany(SQL_INSERT_PROCESS, [
                (r.pgid, r.start_time, r.boot_id, r.component, r.token, r.kind) for r in processes])
            self._db.executemany(SQL_DELETE_PROCESS, list(gone))

    def components(self) -> list[ComponentRecord]:
        return [ComponentRecord(name, version, state, bool(builtin), digest, cause, bool(stopped), token, at,
                                configuration)
                for name, version, state, builtin, digest, cause, stopped, token, at, configuration
                in self._db.execute(SQL_LIST_COMPONENTS)]

    def forget_component(self, name: str) -> None:
        with self._transaction():
            self._db.execute(SQL_DELETE_COMPONENT, (name,))

    # -- processes and bootstrap -----------------------------------------------------------------

    def processes(self) -> list[ProcessRecord]:
        return [ProcessRecord(*row) for row in self._db.execute(SQL_LIST_PROCESSES)]

    def clear_processes(self) -> None:
        with self._transaction():
            self._db.execute(SQL_CLEAR_PROCESSES)

    def is_bootstrapped(self, name: str, version: str, digest: str) -> bool:
        return self._db.execute(SQL_IS_BOOTSTRAPPED, (name, version, digest)).fetchone() is not None

    def set_bootstrapped(self, name: str, version: str, digest: str) -> None:
        with self._transaction():
            self._db.execute(SQL_SET_BOOTSTRAPPED, (name, version, digest))


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception; a failed write is one `StateError` (a full
    disk: a `DiskFullError`, exit 1) and leaves the database as it was."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db, self._path = db, path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise write_error(exc, self._path) from None

    def __exit__(self, exc_type: object, exc: object, _tb: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error as error:
            if exc_type is None:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise write_error(error, self._path) from None
        if isinstance(exc, sqlite3.Error):
            raise write_error(exc, self._path) from None


def open_error(exc: sqlite3.Error, path: Path) -> NucleusError:
    """Why the state database cannot be opened, without calling a healthy database corrupt."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return StateError(f"the state database cannot be used: {text}", where=str(path),
                          hint="it is corrupt: move it aside; the next deployment starts afresh")
    folder = path.parent
    if "readonly" in text or "read-only" in text or not os.access(folder, os.W_OK):
        return StateError(f"the state database cannot be written: {folder} is read-only for this user",
                          where=str(path), hint="make the nucleus root writable, or use another --root")
    return write_error(exc, path) if "full" in text or _disk_full(path) else StateError(
        f"the state database cannot be opened: {text}", where=str(path),
        hint="check the root's permissions and free space; see logs/nucleus.log")


def _disk_full(path: Path) -> bool:
    """SQLite says only "disk I/O error" when it cannot create its -shm or -wal file on a full disk."""
    import shutil

    try:
        return shutil.disk_usage(path.parent).free < 64 * 1024
    except OSError:
        return False


def write_error(exc: sqlite3.Error, path: Path) -> NucleusError:
    """A failed write to the state database, in words: a full disk, a read-only root, or else what SQLite says."""
    import errno

    text = str(exc)
    if "full" in text or _disk_full(path):
        full = disk_error(OSError(errno.ENOSPC, "No space left on device", str(path)), path.parent)
        assert full is not None
        return full
    if "readonly" in text or "read-only" in text:
        return StateError(f"the state database cannot be written: {path.parent} is read-only",
                          where=str(path), hint="make the nucleus root writable, or use another --root")
    return StateError(f"the state database could not be written: {text}", where=str(path),
                      hint="see logs/nucleus.log; nothing was changed")
