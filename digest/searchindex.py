"""Client-side search: run Pagefind's bundled binary over the built site (item pages carry data-pagefind-body)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from digest.errors import DigestError


def pagefind_command(site: Path) -> list[str]:
    try:
        import pagefind_bin  # noqa: F401
    except ImportError:
        raise DigestError("search index: the pagefind package is not installed (pip install 'pagefind[bin]')") from None
    return [sys.executable, "-m", "pagefind_bin", "--site", str(site), "--silent"]


def build_index(site: Path) -> float:
    """Index the site in place (writes <site>/pagefind/); returns the seconds it took."""
    started = time.perf_counter()
    proc = subprocess.run(pagefind_command(site), capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DigestError(f"search index: pagefind failed on {site}: {last[0]}")
    return time.perf_counter() - started
