"""One ingest at a time: the scheduler and a manual `digest ingest` share an OS file lock."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from digest.errors import DigestError


def lock_path(db_url: str, workspace: Path) -> Path:
    """Beside the SQLite file when there is one (so two configs on one DB still exclude), else in the workspace."""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        return Path(db_url.removeprefix("sqlite:///") + ".ingest.lock")
    return Path(workspace) / "ingest.lock"


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
