"""``trainguard watch FILE``: follow a log another process writes, like ``tail -F``, under the guard.

:class:`Follower` polls the file (a short sleep, no inotify: it works the
same on NFS, in containers and on macOS) and survives what log files go
through:

- **truncation** (``logrotate copytruncate``, or a restarted job that
  reopens its log with ``"w"``): the file got shorter than what we read, so
  we read it again from the start;
- **rotation** (rename, then a new file under the old name): the path
  names another inode, so we first finish the old file through the
  descriptor we hold, then open the new one from its start;
- **not there yet**: we wait for it to appear (the watcher may start
  before the training job).

:func:`watch_file` feeds what it reads to a Guard through the same
:class:`~trainguard.live.feed.LineFeed` as ``trainguard run`` and ends when
the run ends (HF's ``train_runtime`` summary, or ``end_marker``), when no
byte arrived for ``idle_timeout_s``, when ``stop_event`` is set (SIGINT in
the CLI), or on a stop decision with ``exit_on_stop``. It cannot stop a
process it does not own; with ``pid`` it sends that process one SIGINT.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .feed import LineFeed
from .resources import ResourceMonitor

_MAX_PER_POLL = 4 << 20  # read at most 4 MB per poll, so a huge backlog does not starve the checks


class Follower:
    """Yields the bytes appended to ``path`` across truncation and rotation.

    ``from_start=False`` skips what the file held when first opened (``tail
    -f``); a file that appears later, or replaces a rotated one, is always
    read from its start. ``events`` records ``truncated`` / ``rotated`` /
    ``opened``, in order.
    """

    def __init__(self, path: str | Path, *, from_start: bool = True) -> None:
        self.path = Path(path)
        self.from_start = from_start
        self.events: list[str] = []
        self._f: IO[bytes] | None = None
        self._ino: tuple[int, int] | None = None
        self._first_open = True

    @property
    def is_open(self) -> bool:
        return self._f is not None

    def read(self) -> list[tuple[str | None, bytes]]:
        """What is new since the last call: ``(event, data)`` pairs; event marks a new file or a restart."""
        out: list[tuple[str | None, bytes]] = []
        if self._f is None and not self._open(out):
            return out
        assert self._f is not None
        data = self._f.read(_MAX_PER_POLL)
        if data:
            out.append((None, data))
            if len(data) == _MAX_PER_POLL:
                return out  # more is waiting: come back before checking for rotation
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return out  # renamed away and not yet replaced: keep the old one
        if (st.st_dev, st.st_ino) != self._ino:
            # Rotated: drain the old file to its end, then switch to the new one.
            rest = self._f.read()
            if rest:
                out.append((None, rest))
            self.close()
            self.events.append("rotated")
            if self._open(out):
                assert self._f is not None
                data = self._f.read(_MAX_PER_POLL)
                if data:
                    out.append((None, data))
            return out
        if os.fstat(self._f.fileno()).st_size < self._f.tell():
            self._f.seek(0)
            self.events.append("truncated")
            out.append(("truncated", b""))
            data = self._f.read(_MAX_PER_POLL)
            if data:
                out.append((None, data))
        return out

    def _open(self, out: list[tuple[str | None, bytes]]) -> bool:
        """Open the path; any open after the first is the file that replaced a rotated one."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - held open across calls on purpose
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return False
        st = os.fstat(f.fileno())
        self._f, self._ino = f, (st.st_dev, st.st_ino)
        event = "opened" if self._first_open else "rotated"
        if self._first_open and not self.from_start:
            f.seek(0, os.SEEK_END)
        self._first_open = False
        if event == "opened":
            self.events.append("opened")
        out.append((event, b""))
        return True

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
        self._f = None


@dataclass
class WatchResult:
    """Why watching ended, and what the guard decided."""

    reason: str  # ended | idle | stopped | interrupted
    stop: Any = None  # the Guard's stop Action, if any
    signalled_pid: int | None = None  # the pid we sent SIGINT to
    events: list[str] = field(default_factory=list)
    parser: str | None = None
    points: int = 0
    bytes_read: int = 0


def watch_file(path: str | Path, guard: Any, *, from_start: bool = True, idle_timeout_s: float | None = None,
               exit_on_stop: bool = False, pid: int | None = None, end_marker: str | None = None,
               fmt: str | None = None, poll_s: float = 0.2, stop_event: threading.Event | None = None,
               monitor: ResourceMonitor | None = None, on_action: Callable[[Any], None] | None = None,
               say: Callable[[str], None] | None = None, echo: IO[bytes] | None = None) -> WatchResult:
    """Follow ``path`` under ``guard`` until the run ends; see the module docstring for when that is.

    ``echo`` receives the bytes read (``tail -f`` behaviour), ``on_action``
    every non-continue action, ``say`` trainguard's own messages.
    """
    say = say or (lambda s: None)
    follower = Follower(path, from_start=from_start)
    result = WatchResult(reason="interrupted")

    def acted(action: Any) -> None:
        if on_action is not None:
            on_action(action)
        if action.stop and result.stop is None:
            result.stop = action
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGINT)
                    result.signalled_pid = pid
                    say(f"trainguard: sent SIGINT to pid {pid}")
                except ProcessLookupError:
                    say(f"trainguard: pid {pid} is not running; nothing to stop")
                except PermissionError:
                    say(f"trainguard: not allowed to signal pid {pid}")

    feed = LineFeed(guard, monitor=monitor, fmt=fmt, end_marker=end_marker, on_action=acted)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    last_data = time.monotonic()
    try:
        while True:
            if stop_event is not None and stop_event.is_set():
                result.reason = "interrupted"
                break
            got = False
            for event, data in follower.read():
                if event is not None and event != "opened":
                    feed.feed(decoder.decode(b"", final=True))
                    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
                    feed.restart_line()
                    say(f"trainguard: {path} was {event}; following it from its start")
                if data:
                    got = True
                    result.bytes_read += len(data)
                    if echo is not None:
                        with contextlib.suppress(OSError, ValueError):
                            echo.write(data)
                            echo.flush()
                    feed.feed(decoder.decode(data))
            now = time.monotonic()
            if got:
                last_data = now
            if result.stop is not None and exit_on_stop:  # checked first: the stop came before the end
                result.reason = "stopped"
                break
            if feed.ended:
                result.reason = "ended"
                break
            if idle_timeout_s is not None and now - last_data >= idle_timeout_s:
                result.reason = "idle"
                break
            if not got:
                if stop_event is not None:
                    stop_event.wait(poll_s)
                else:
                    time.sleep(poll_s)
        feed.feed(decoder.decode(b"", final=True))
        feed.close()
    finally:
        follower.close()
    result.events = list(follower.events)
    result.parser = feed.parser_name
    result.points = feed.points
    return result


__all__ = ["Follower", "WatchResult", "watch_file"]
