"""Side effects at the edge: atomic file writes confined to the output folder, unchanged files left alone."""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from pathlib import Path

from digest.errors import DigestError

MANIFEST = ".digest-build.json"
PARALLEL_MIN_PAGES = 400  # below this, forking workers costs more than it saves


def write_bytes(path: Path, data: bytes) -> bool:
    """Write via a temp file and rename; returns False when the file already held these bytes."""
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    replace_with(path, data, tmp)
    return True


def replace_with(path: Path, data: bytes, tmp: str) -> None:
    """Write `data` to the temp path `tmp` beside `path`, then rename it over `path` (readers never see half a file)."""
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def confined(root: Path, rel: str) -> Path:
    """`root/rel`, refusing absolute paths and any `..` that would leave root (checked without touching disk)."""
    norm = posixpath.normpath(rel)
    if not rel or rel.startswith("/") or norm.startswith("..") or "\\" in rel or "\0" in rel:
        raise DigestError(f"refusing to write outside the output folder: {rel!r}")
    return root / norm


def write_tree(out: Path, pages: dict[str, bytes]) -> int:
    """Write every page under `out`; a path that would escape `out` is refused. Returns files written."""
    root = Path(out).resolve()
    return sum(write_bytes(confined(root, rel), data) for rel, data in pages.items())


class _Writer:
    """Fast path for many files: folders created once, temp name per process, compare only existing files."""

    def __init__(self):
        self.dirs: set[str] = set()
        self.suffix = f".tmp{os.getpid()}"

    def write(self, path: Path, data: bytes) -> bool:
        parent = str(path.parent)
        if parent not in self.dirs:
            os.makedirs(parent, exist_ok=True)
            self.dirs.add(parent)
        try:
            with open(path, "rb") as fh:
                if fh.read() == data:
                    return False
        except FileNotFoundError:
            # A new file: written in place (no reader can depend on it yet, and the manifest, saved
            # last, makes an interrupted build render it again). Existing files are replaced atomically.
            with open(path, "wb") as fh:
                fh.write(data)
            return True
        replace_with(path, data, f"{parent}/.{path.name}{self.suffix}")
        return True


def _render_and_write(root: Path, pages: dict, paths: list[str]) -> tuple[int, int]:
    writer = _Writer()
    written = 0
    for rel in paths:
        written += writer.write(root / rel, pages[rel].render())
    return len(paths), written


def write_site(out: Path, pages: dict, workers: int | None = None) -> tuple[int, int]:
    """Render and write only pages whose input key changed since the last build (or whose file is gone).

    `pages` maps relative path -> object with `.key` and `.render()`. Returns (rendered, written).
    Many pages are rendered by forked workers, one per core. The manifest of keys is saved last,
    so an interrupted build re-renders what it did not finish.
    """
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    todo = []
    for rel, page in pages.items():
        target = confined(root, rel)
        if old.get(rel) == page.key and target.exists():
            continue
        todo.append(rel)
    rendered, written = _run(root, pages, todo, workers)
    for rel in set(old) - set(pages):
        try:
            target = confined(root, rel)
        except DigestError:
            continue
        if target.is_file():
            target.unlink()
            written += 1
    write_bytes(manifest_path, json.dumps({rel: p.key for rel, p in pages.items()}, sort_keys=True).encode())
    return rendered, written


def _run(root: Path, pages: dict, todo: list[str], workers: int | None) -> tuple[int, int]:
    workers = workers or len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (workers or 1)
    if workers <= 1 or len(todo) < PARALLEL_MIN_PAGES or not hasattr(os, "fork"):
        return _render_and_write(root, pages, todo)
    import multiprocessing

    global _FORK_STATE
    _FORK_STATE = (root, pages)
    try:
        ctx = multiprocessing.get_context("fork")
        chunks = [todo[i::workers] for i in range(workers)]
        with ctx.Pool(workers) as pool:
            results = pool.map(_forked, chunks)
    finally:
        _FORK_STATE = None
    return sum(r for r, _ in results), sum(w for _, w in results)


_FORK_STATE = None


def _forked(paths: list[str]) -> tuple[int, int]:
    root, pages = _FORK_STATE
    return _render_and_write(root, pages, paths)
