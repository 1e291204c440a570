"""Bulk stages pause Python's cyclic garbage collector while they run.

An arXiv page or a site build makes ~10^4 short-lived container objects and no cycles worth collecting; with
the collector on, every few hundred allocations start a collection that walks the young objects, and now and
then one that walks every live object (~10^5 in a process that has SQLAlchemy loaded): 10-15% of an ingest.
Reference counting still frees everything acyclic at once; cycles made meanwhile wait for the end of the run.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # runs in progress (the scheduler may overlap an ingest and a build on two threads)
_was_enabled = True


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block; the collector is back as it was once the last block ends."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
