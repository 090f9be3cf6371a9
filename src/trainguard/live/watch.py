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
  before the training job), up to the idle limit;
- **a FIFO** (``mkfifo``): read without blocking, so a pipe nobody writes to
  ends at the idle limit instead of hanging in ``open``. Other non-regular
  files (``/dev/zero``, sockets) are refused: they are not logs.

:func:`watch_file` feeds what it reads to a Guard through the same
:class:`~trainguard.live.feed.LineFeed` as ``trainguard run`` and ends when
the run ends (HF's ``train_runtime`` summary, or ``end_marker``), when the
process ``pid`` has exited (and the file was read to its end), when no byte
arrived for ``idle_timeout_s``, when the file was deleted and stays silent,
when ``stop_event`` is set (SIGINT in the CLI), or on a stop decision with
``exit_on_stop``.

On a stop decision it writes a stop file beside the log
(``train.log.trainguard-stop``): a trainguard callback in the trainer whose
stdout is that log (or that was given ``TRAINGUARD_STOP_FILE``) saves and
stops at its next step. With ``pid``, a trainer that has not answered within
``grace_s`` is sent SIGINT, then SIGTERM, then SIGKILL, each rung only if the
process is still there.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from . import control
from .feed import LineFeed
from .resources import ResourceMonitor
from .signals import SignalLadder, pid_alive

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
        self.fifo = False

    @property
    def is_open(self) -> bool:
        return self._f is not None

    @property
    def ever_opened(self) -> bool:
        return not self._first_open

    def read(self) -> list[tuple[str | None, bytes]]:
        """What is new since the last call: ``(event, data)`` pairs; event marks a new file or a restart."""
        out: list[tuple[str | None, bytes]] = []
        if self._f is None and not self._open(out):
            return out
        assert self._f is not None
        data = self._read(_MAX_PER_POLL)
        if data:
            out.append((None, data))
            if len(data) == _MAX_PER_POLL:
                return out  # more is waiting: come back before checking for rotation
        if self.fifo:
            return out
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
                data = self._read(_MAX_PER_POLL)
                if data:
                    out.append((None, data))
            return out
        if os.fstat(self._f.fileno()).st_size < self._f.tell():
            self._f.seek(0)
            self.events.append("truncated")
            out.append(("truncated", b""))
            data = self._read(_MAX_PER_POLL)
            if data:
                out.append((None, data))
        return out

    @property
    def deleted(self) -> bool:
        """The file we hold was removed (no name points to it any more) and nothing replaced it."""
        if self._f is None or self.fifo:
            return False
        try:
            if os.fstat(self._f.fileno()).st_nlink > 0:
                return False
        except OSError:
            return True
        return not self.path.exists()

    def _read(self, n: int) -> bytes:
        assert self._f is not None
        try:
            return self._f.read(n) or b""
        except BlockingIOError:  # a FIFO whose writer has nothing to say yet
            return b""

    def _open(self, out: list[tuple[str | None, bytes]]) -> bool:
        """Open the path; any open after the first is the file that replaced a rotated one."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            return False
        if stat.S_ISFIFO(st.st_mode):
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            f: IO[bytes] = os.fdopen(fd, "rb", buffering=0)
            self.fifo = True
        elif not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device or socket, not a log file"
            raise InputError(self.path, f"is {kind}; watch follows a log file (or a FIFO)")
        else:
            try:
                f = open(self.path, "rb")  # noqa: SIM115 - held open across calls on purpose
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                return False
        st = os.fstat(f.fileno())
        self._f, self._ino = f, (st.st_dev, st.st_ino)
        event = "opened" if self._first_open else "rotated"
        if self._first_open and not self.from_start and not self.fifo:
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

    reason: str  # ended | exited | idle | deleted | stopped | interrupted
    stop: Any = None  # the Guard's stop Action, if any
    signalled_pid: int | None = None  # the pid we sent signals to
    signals: list[str] = field(default_factory=list)  # the signals sent to it, in order
    stop_file: str | None = None  # the stop request written beside the log
    acked_step: int | None = None  # the trainer's callback took the stop request at this step
    events: list[str] = field(default_factory=list)
    parser: str | None = None
    points: int = 0
    bytes_read: int = 0


def watch_file(path: str | Path, guard: Any, *, from_start: bool = True, idle_timeout_s: float | None = None,
               exit_on_stop: bool = False, pid: int | None = None, end_marker: str | None = None,
               fmt: str | None = None, poll_s: float = 0.2, stop_event: threading.Event | None = None,
               monitor: ResourceMonitor | None = None, on_action: Callable[[Any], None] | None = None,
               say: Callable[[str], None] | None = None, echo: IO[bytes] | None = None,
               grace_s: float = 30.0, deleted_grace_s: float = 60.0, live: Any = None,
               stop_on_stall: bool = False) -> WatchResult:
    """Follow ``path`` under ``guard`` until the run ends; see the module docstring for when that is.

    ``echo`` receives the bytes read (``tail -f`` behaviour), ``on_action``
    every non-continue action (the first stop only: a stopping run keeps
    logging), ``say`` trainguard's own messages. A file that never appeared
    within ``idle_timeout_s`` is an :class:`InputError`. ``live`` (a
    :class:`~trainguard.live.heartbeat.LiveView`) draws the status line and
    raises the stall alarm, which stops the run with ``stop_on_stall``.
    """
    say = say or (lambda s: None)
    follower = Follower(path, from_start=from_start)
    result = WatchResult(reason="interrupted")
    ladder = SignalLadder(pid, grace_s, group=False) if pid is not None else None
    ask: dict[str, float] = {}
    alert_only = bool(getattr(getattr(guard, "policy", None), "is_alert_only", False))
    stop_file = control.stop_file_beside(path)

    def acted(action: Any) -> None:
        if action.stop and result.stop is not None:
            return  # announced once: later stop actions of the same run say nothing new
        if on_action is not None:
            on_action(action)
        if action.stop:
            result.stop = action
            if alert_only:
                return
            if control.request_stop(stop_file, action.reason, by="trainguard watch"):
                result.stop_file = str(stop_file)
                say(f"trainguard: wrote the stop request {stop_file} (a trainguard callback in the trainer saves "
                    "and stops at its next step)")
            if ladder is not None:
                ask["deadline"] = time.monotonic() + grace_s
                say(f"trainguard: pid {pid} gets {grace_s:g} s to answer, then SIGINT, SIGTERM, SIGKILL")

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
                if live is not None:
                    live.after_output(b"\n", now)
            if live is not None:
                _stall(live.tick(now), feed, acted, say, stop_on_stall and not alert_only)
            if ladder is not None:
                _escalate(ladder, ask, stop_file, result, now, say)
                if result.stop is not None and not alert_only and pid_alive(ladder.pgid):
                    # a stop is under way: stay until the trainer is gone, whatever its log does
                    time.sleep(poll_s) if not got else None
                    continue
            if result.stop is not None and exit_on_stop:  # checked first: the stop came before the end
                result.reason = "stopped"
                break
            if pid is not None and not pid_alive(pid):
                if got:
                    continue  # the trainer is gone: read its log to the end first
                result.reason = "exited"
                break
            if feed.ended:
                result.reason = "ended"
                break
            if idle_timeout_s and now - last_data >= idle_timeout_s:
                if not follower.ever_opened:
                    raise InputError(path, f"did not appear within {idle_timeout_s:g} s")
                result.reason = "idle"
                break
            if not got and follower.deleted and now - last_data >= min(deleted_grace_s, idle_timeout_s or deleted_grace_s):
                result.reason = "deleted"
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
        if live is not None:
            live.close()
        if result.stop_file is not None and (pid is None or not pid_alive(pid)):
            control.clear(stop_file)  # never leave a request that would stop the next run
    result.events = list(follower.events)
    result.parser = feed.parser_name
    result.points = feed.points
    if ladder is not None:
        result.signals = list(ladder.sent)
    return result


def _stall(finding: Any, feed: LineFeed, acted: Callable[[Any], None], say: Callable[[str], None],
           stop: bool) -> None:
    """A stall finding becomes an alert, or a stop with ``--stop-on stall``."""
    if finding is None:
        return
    from .policy import Action

    action = Action(feed.last_step or 0, stop=stop, alert=True, reason=f"stall: {finding.message}",
                    findings=(finding,))
    if not stop:
        say(f"trainguard: {action.reason}")
    acted(action)


def _escalate(ladder: SignalLadder, ask: dict[str, float], stop_file: Path, result: WatchResult, now: float,
              say: Callable[[str], None]) -> None:
    """Signal the trainer when it has not answered the stop request in time; climb while it still runs."""
    deadline = ask.get("deadline")
    if deadline is not None:
        acked = control.acknowledged(stop_file)
        if acked is not None:
            ask.pop("deadline")
            result.acked_step = acked.get("step") if isinstance(acked.get("step"), int) else None
            say(f"trainguard: the trainer took the stop request (step {result.acked_step}); waiting for it to exit")
        elif now >= deadline:
            ask.pop("deadline")
            if pid_alive(ladder.pgid):
                ladder.start()
                result.signalled_pid = ladder.pgid
                say(f"trainguard: sent SIGINT to pid {ladder.pgid}")
    if ladder.started:
        before = len(ladder.sent)
        ladder.tick()
        if len(ladder.sent) > before:
            say(f"trainguard: pid {ladder.pgid} is still running; sent {ladder.sent[-1]}")


__all__ = ["Follower", "WatchResult", "watch_file"]
