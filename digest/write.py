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
