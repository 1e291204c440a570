"""Side effects at the edge: atomic file writes confined to the output folder, unchanged files left alone."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from digest.errors import DigestError


def write_bytes(path: Path, data: bytes) -> bool:
    """Write via a temp file and rename; returns False when the file already held these bytes."""
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def write_tree(out: Path, pages: dict[str, bytes]) -> int:
    """Write every page under `out`; a path that would escape `out` is refused. Returns files written."""
    root = Path(out).resolve()
    written = 0
    for rel, data in pages.items():
        target = (root / rel).resolve()
        if not target.is_relative_to(root):
            raise DigestError(f"refusing to write outside the output folder: {rel!r}")
        written += write_bytes(target, data)
    return written


MANIFEST = ".digest-build.json"


def write_site(out: Path, pages: dict) -> tuple[int, int]:
    """Render and write only pages whose input key changed since the last build (or whose file is gone).

    `pages` maps relative path -> object with `.key` and `.render()`. Returns (rendered, written).
    The manifest of keys is saved last, so an interrupted build re-renders what it did not finish.
    """
    import json

    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    rendered = written = 0
    for rel, page in pages.items():
        target = (root / rel).resolve()
        if not target.is_relative_to(root):
            raise DigestError(f"refusing to write outside the output folder: {rel!r}")
        if old.get(rel) == page.key and target.exists():
            continue
        rendered += 1
        written += write_bytes(target, page.render())
    for rel in set(old) - set(pages):
        target = (root / rel).resolve()
        if target.is_relative_to(root) and target.is_file():
            target.unlink()
            written += 1
    write_bytes(manifest_path, json.dumps({rel: p.key for rel, p in pages.items()}, sort_keys=True).encode())
    return rendered, written
