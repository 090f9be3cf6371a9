"""Ending processes for the live sinks: the signal ladder, process-group clean-up, orphans we adopted.

``trainguard run`` and ``trainguard watch --pid`` stop a job the same way
when it cannot be asked politely (no trainguard callback inside it):

1. ``SIGINT``: Python raises ``KeyboardInterrupt``, so ``finally`` blocks and
   a script's own ``except KeyboardInterrupt: save`` run; torchrun and the
   DeepSpeed launcher forward it to their workers;
2. ``SIGTERM`` once ``grace_s`` passed and the process is still there (it
   ignores SIGINT, or its handler hangs);
3. ``SIGKILL`` after another ``grace_s``.

Between rungs the ladder checks that the target really ended (a zombie
counts as ended: it only waits to be reaped), so it climbs only as far as
needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


class SignalLadder:
    """SIGINT, then SIGTERM after ``grace_s``, then SIGKILL after another ``grace_s``.

    ``pgid`` names a process group (``trainguard run``'s child leads its own);
    with ``group=False`` it is a single pid (``watch --pid``, a process we do
    not own). ``alive`` says whether the target still runs; the next rung is
    only sent while it does.
    """

    RUNGS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)

    def __init__(self, pgid: int, grace_s: float, clock: Callable[[], float] = time.monotonic, *,
                 group: bool = True) -> None:
        self.pgid = pgid
        self.grace_s = grace_s
        self.clock = clock
        self.group = group
        self.sent: list[str] = []
        self._rung = -1
        self._next_at: float | None = None

    @property
    def started(self) -> bool:
        return self._rung >= 0

    def alive(self) -> bool:
        return group_alive(self.pgid) if self.group else pid_alive(self.pgid)

    def start(self, at_least: signal.Signals = signal.SIGINT) -> None:
        """Send the next rung, or ``at_least`` when that is a higher one."""
        want = max(self._rung + 1, self.RUNGS.index(at_least))
        self._send(min(want, len(self.RUNGS) - 1))

    def tick(self) -> None:
        """Climb one rung when the grace period of the current one is over and the target still runs."""
        if self._next_at is not None and self.clock() >= self._next_at and self._rung < len(self.RUNGS) - 1:
            if self.alive():
                self._send(self._rung + 1)
            else:
                self._next_at = None

    def _send(self, rung: int) -> None:
        if rung <= self._rung and self._rung >= 0:
            return
        self._rung = rung
        sig = self.RUNGS[rung]
        self._next_at = self.clock() + self.grace_s if rung < len(self.RUNGS) - 1 else None
        try:
            if self.group:
                os.killpg(self.pgid, sig)
            else:
                os.kill(self.pgid, sig)
            self.sent.append(sig.name)
        except ProcessLookupError:
            self._next_at = None


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (ended, not yet reaped by its parent) counts as ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def reap(pgid: int) -> None:
    """Collect exit statuses of group members re-parented to us (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_group(pgid: int, grace_s: float) -> int:
    """SIGTERM what is left of the group, SIGKILL after ``grace_s``; returns how many were left."""
    reap(pgid)
    if not group_alive(pgid):
        return 0
    left = _count(lambda fields: int(fields[2]) == pgid)
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            reap(pgid)
            if not group_alive(pgid):
                return left
            time.sleep(0.02)
    return left


def children() -> set[int]:
    """Our live child processes (from /proc), including orphans we adopted as subreaper."""
    me = os.getpid()
    out: set[int] = set()
    for pid, fields in _procs():
        if int(fields[1]) == me and fields[0] not in (b"Z", b"X"):
            out.add(pid)
    return out


def end_adopted(before: set[int], grace_s: float) -> int:
    """End the children we gained while the command ran (``setsid`` daemons we adopted); returns how many.

    A process that called ``setsid`` left the command's process group, so
    ending the group misses it; as the child subreaper we inherit it once
    its parent exits, and it shows up here as our child.
    """
    total = 0
    for _ in range(3):  # an adopted process's own children are adopted in turn once it dies
        extra = children() - before
        if not extra:
            break
        total += len(extra)
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
            for pid in extra:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                for pid in list(extra):
                    with contextlib.suppress(ChildProcessError):
                        if os.waitpid(pid, os.WNOHANG)[0] == pid:
                            extra.discard(pid)
                if not extra:
                    break
                time.sleep(0.02)
            if not extra:
                break
    return total


def _procs() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, fields after the command name: state, ppid, pgrp, ...) of every process, from /proc."""
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        yield int(entry.name), fields


def _count(pred: Callable[[list[bytes]], bool]) -> int:
    n = sum(1 for _, fields in _procs() if fields[0] != b"Z" and pred(fields))
    return n or 1


@contextlib.contextmanager
def forwarding(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Install ``handler`` for SIGINT, SIGTERM and SIGHUP (main thread only), restoring them after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        cur = signal.getsignal(sig)
        if cur is signal.SIG_IGN:  # under nohup: keep ignoring
            continue
        saved[sig] = cur
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in saved.items():
            signal.signal(sig, h)


@contextlib.contextmanager
def subreaper() -> Iterator[bool]:
    """Make this process the reaper of orphaned descendants while the command runs (Linux only)."""
    if not sys.platform.startswith("linux"):
        yield False
        return
    prev = ctypes.c_int(0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(prev), 0, 0, 0)
        ok = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    try:
        yield ok
    finally:
        if ok and not prev.value:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


__all__ = ["SignalLadder", "children", "end_adopted", "end_group", "forwarding", "group_alive", "pid_alive",
           "reap", "subreaper"]
