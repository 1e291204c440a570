"""A kill scope for a reproduction hook: every process the hook starts dies with its run, daemons included.

A process group is not enough: a hook that forks, calls setsid() and forks again leaves a grandchild in a new
session, reparented to init, out of reach of killpg. On Linux this process becomes a child subreaper
(prctl PR_SET_CHILD_SUBREAPER) for the run, so such orphans are reparented to it instead; the scope's members
are then every descendant of this process that did not exist before the run, found in /proc, and the scope
kills and reaps all of them. Elsewhere only the hook's process group is killed.

The scope assumes no other thread of this process starts processes while a hook runs (`digest repro run` runs
hooks one after another): a process started meanwhile would count as the hook's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable

PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool) -> bool:
    """Make this process (on=True) a child subreaper, or stop being one; False where Linux's prctl is missing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _processes() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, state letter)} of every process /proc shows ({} without /proc)."""
    found: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces and parens
        found[int(name)] = (int(fields[1]), fields[0].decode())
    return found


def descendants(root: int, skip: set[int] = frozenset(), table: dict | None = None) -> dict[int, str]:
    """{pid: state} of every descendant of `root`, leaving out the subtrees of the pids in `skip`."""
    table = _processes() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, str] = {}
    todo = [p for p in children.get(root, []) if p not in skip]
    while todo:
        pid = todo.pop()
        out[pid] = table[pid][1]
        todo.extend(p for p in children.get(pid, []) if p not in skip)
    return out


class KillScope:
    """`with KillScope() as scope:` start the hook inside, then `scope.kill(group)` ends every process it made."""

    def __init__(self, grace_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.grace_s, self.clock = grace_s, clock
        self.me = os.getpid()
        self.before: set[int] = set()
        self.reaper = False

    def __enter__(self) -> KillScope:
        self.before = set(descendants(self.me))  # processes that are not the hook's: never touched
        self.reaper = set_subreaper(True)
        return self

    def __exit__(self, *exc) -> None:
        if self.reaper:
            set_subreaper(False)

    def members(self, keep: int | None = None) -> dict[int, str]:
        """Live processes of the scope (zombies are reaped here, except `keep`, which its Popen reaps)."""
        live = {}
        for pid, state in descendants(self.me, self.before).items():
            if state == "Z":
                if pid != keep:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(pid, os.WNOHANG)
                continue
            live[pid] = state
        return live

    def kill(self, group: int) -> None:
        """SIGTERM the hook's group and every member, SIGKILL what is left after the grace period, until none
        is left (a member forking while it is killed is caught on the next pass); then reap them."""
        self._signal(group, signal.SIGTERM)
        end = self.clock() + self.grace_s
        while self.members(keep=group) and self.clock() < end:
            time.sleep(0.02)
        for _ in range(1000):
            if not self._signal(group, signal.SIGKILL):
                break
            time.sleep(0.005)
        self.members(keep=group)  # reap the last zombies

    def _signal(self, group: int, sig: int) -> bool:
        """Send sig to the group and to every live member; False when there was nobody left."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
        if not self.reaper:
            return False  # without a subreaper, the group is all this scope can reach
        targets = self.members(keep=group)
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        return bool(targets)
