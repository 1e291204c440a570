"""One ingest (or scheduled job) at a time: an OS file lock beside a SQLite file, a PostgreSQL advisory lock
when the database is shared by several hosts."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digest.errors import DigestError


def lock_path(db_url: str, workspace: Path) -> Path:
    """Beside the SQLite file when there is one (so two configs on one DB still exclude), else in the workspace.
    The path is canonical (symlinks resolved): two spellings of one database file share one lock."""
    database = _sqlite_file(db_url)
    if database:
        return Path(os.path.realpath(database) + ".ingest.lock")
    return Path(os.path.realpath(workspace)) / "ingest.lock"


def _sqlite_file(db_url: str) -> str:
    """The file of a SQLite URL in any spelling (sqlite:///, sqlite+pysqlite:///, with ?options); '' if none."""
    if not db_url.startswith("sqlite"):
        return ""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(db_url)
    except Exception:  # not a URL SQLAlchemy reads: the engine will say so
        return ""
    database = url.database or ""
    return "" if database in ("", ":memory:") or database.startswith("file:") else database


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, from a name such as 'digest:ingest'."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def run_lock(engine, workspace: Path, what: str = "ingest") -> Iterator[None]:
    """Exclusive for the block, or a clean error at once: on PostgreSQL an advisory lock in the database
    (so two hosts sharing it exclude each other; it ends with the session, so a killed run frees it), else
    the file lock beside the SQLite file."""
    if engine.dialect.name == "postgresql":
        with advisory(engine, f"digest:{what}", what) as held:
            if not held:
                raise DigestError(f"another {what} is already running (PostgreSQL advisory lock 'digest:{what}')")
            yield
        return
    with exclusive(lock_path(engine.url.render_as_string(hide_password=False), workspace), what):
        yield


@contextmanager
def advisory(engine, name: str, what: str = "") -> Iterator[bool]:
    """Try a session-level advisory lock on a connection of its own (autocommit: no transaction stays
    open for the run); yields whether it was taken, and releases it after the block."""
    from sqlalchemy import text

    key = advisory_key(name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


@contextmanager
def exclusive(path: Path, what: str = "ingest"):
    """Hold the lock for the block, or fail at once with a clean error naming the lock file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # POSIX: flock() directly, as filelock does there, without its ~10 ms import
    except ImportError:  # pragma: no cover - Windows
        with _portable(path, what):
            yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DigestError(f"another {what} is already running (lock held: {path})") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _portable(path: Path, what: str):  # pragma: no cover - Windows
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DigestError(f"another {what} is already running (lock held: {path})") from None
    try:
        yield
    finally:
        lock.release()
