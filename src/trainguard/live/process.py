"""``trainguard run -- CMD``: run a training command under the guard, and stop it cleanly when told.

:func:`run_command` starts ``CMD`` in its own session (so its process
group holds every process it forks: torchrun/deepspeed/accelerate workers,
dataloader workers), tees its output to ours **byte for byte**, parses it
live through a :class:`~trainguard.live.feed.LineFeed`, and applies the
Guard's decision with a signal ladder sent to the whole group:

1. ``SIGINT``: Python raises ``KeyboardInterrupt`` in every rank, so
   ``finally`` blocks and a script's own ``except KeyboardInterrupt: save``
   run; torchrun and the DeepSpeed launcher forward it to their workers;
2. ``SIGTERM`` after ``grace_s`` seconds, for a process that ignores SIGINT;
3. ``SIGKILL`` after another ``grace_s``.

Choices, and the trap each avoids:

- stdout and stderr of the child share **one pipe**: HF prints metric dicts
  on stdout and the tqdm bar (which carries the step) on stderr, and only a
  shared pipe keeps their order, which is what ties a dict to its step.
  Everything goes to our stdout; trainguard's own messages go to stderr.
- Output is read with ``os.read`` in chunks, never by line: a tqdm bar is
  redrawn with ``\\r`` and no newline, and a line-buffered reader would hold
  it back (and the progress bar would freeze).
- ``PYTHONUNBUFFERED=1`` is set for the child (unless the user set it):
  Python block-buffers stdout into a pipe, which would delay every metric
  line by up to 8 KB of output.
- Our own SIGINT/SIGTERM/SIGHUP are forwarded to the group (the child lives
  in another session, so the terminal's Ctrl-C never reaches it): a first
  Ctrl-C starts the ladder, a second one skips to the next rung.
- **No orphans**: on Linux trainguard becomes a child subreaper while the
  command runs, so processes whose parent died are re-parented to us and
  can be reaped; when the command ends, whatever is left of its group is
  sent SIGTERM, then SIGKILL. A process that calls ``setsid`` itself leaves
  the group and cannot be tracked (nor by any launcher).

Exit code (:attr:`ProcessResult.exit_code`): the command's own code; when
it died of a signal N, ``128 + N`` (the shell's convention: 130 for SIGINT,
143 for SIGTERM, 137 for SIGKILL); 127 when the command was not found and
126 when it could not be executed (as ``timeout(1)`` does).
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .feed import LineFeed
from .resources import ResourceMonitor

EXIT_CANNOT_RUN = 126
EXIT_NOT_FOUND = 127
_CHUNK = 65536
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


@dataclass
class ProcessResult:
    """How the command ended and what the guard did about it."""

    exit_code: int  # see the module docstring
    returncode: int | None  # Popen's raw value (negative: killed by that signal)
    stop: Any = None  # the Guard's stop Action, when it asked to stop
    signals: list[str] = field(default_factory=list)  # signals sent to the group, in order
    interrupted: bool = False  # we forwarded a signal we received ourselves
    parser: str | None = None  # the reader that parsed the output
    points: int = 0  # guard.log calls made
    leftovers: int = 0  # processes of the group still alive after the command exited (then ended)

    @property
    def stopped(self) -> bool:
        return self.stop is not None


class SignalLadder:
    """SIGINT, then SIGTERM after ``grace_s``, then SIGKILL after another ``grace_s``, to a process group."""

    RUNGS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)

    def __init__(self, pgid: int, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.pgid = pgid
        self.grace_s = grace_s
        self.clock = clock
        self.sent: list[str] = []
        self._rung = -1
        self._next_at: float | None = None

    @property
    def started(self) -> bool:
        return self._rung >= 0

    def start(self, at_least: signal.Signals = signal.SIGINT) -> None:
        """Send the next rung, or ``at_least`` when that is a higher one."""
        want = max(self._rung + 1, self.RUNGS.index(at_least))
        self._send(min(want, len(self.RUNGS) - 1))

    def tick(self) -> None:
        """Climb one rung when the grace period of the current one is over."""
        if self._next_at is not None and self.clock() >= self._next_at and self._rung < len(self.RUNGS) - 1:
            self._send(self._rung + 1)

    def _send(self, rung: int) -> None:
        if rung <= self._rung and self._rung >= 0:
            return
        self._rung = rung
        sig = self.RUNGS[rung]
        self._next_at = self.clock() + self.grace_s if rung < len(self.RUNGS) - 1 else None
        try:
            os.killpg(self.pgid, sig)
            self.sent.append(sig.name)
        except ProcessLookupError:
            self._next_at = None


def run_command(cmd: Sequence[str], guard: Any, *, grace_s: float = 30.0, out: IO[bytes] | None = None,
                log_file: IO[bytes] | None = None, monitor: ResourceMonitor | None = None,
                fmt: str | None = None, on_action: Callable[[Any], None] | None = None,
                say: Callable[[str], None] | None = None, env: dict[str, str] | None = None,
                cwd: str | None = None, poll_s: float = 0.1) -> ProcessResult:
    """Run ``cmd`` under ``guard`` until it exits; returns a :class:`ProcessResult`.

    ``out`` (default: our stdout) receives the command's output unchanged,
    ``log_file`` a copy. ``on_action`` sees every non-continue action
    (alerts, saves, the stop); ``say`` prints trainguard's own one-line
    messages (default: stderr). Signals are forwarded only when called from
    the main thread (the only place Python can install handlers).
    """
    if not cmd:
        raise ValueError("empty command")
    out = sys.stdout.buffer if out is None else out
    say = say or _stderr_line
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    result = ProcessResult(exit_code=0, returncode=None)
    early: list[signal.Signals] = []  # signals that arrived before the child existed
    ladders: list[SignalLadder] = []

    def forward(signum: int, _frame: Any) -> None:
        result.interrupted = True
        sig = signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM
        if ladders:
            ladders[0].start(sig)
        else:
            early.append(sig)

    # Handlers go in before the child starts, so no Ctrl-C can fall between the two.
    with _subreaper(), _forwarding(forward):
        try:
            proc = subprocess.Popen(list(cmd), stdin=None, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=child_env, cwd=cwd, bufsize=0)
        except FileNotFoundError:
            say(f"trainguard: command not found: {cmd[0]}")
            return ProcessResult(EXIT_NOT_FOUND, None)
        except PermissionError:
            say(f"trainguard: cannot execute: {cmd[0]}")
            return ProcessResult(EXIT_CANNOT_RUN, None)
        ladder = SignalLadder(proc.pid, grace_s)  # start_new_session: the child leads its own group
        ladders.append(ladder)
        for sig in early:
            ladder.start(sig)
        _supervise(proc, ladder, result, guard=guard, out=out, log_file=log_file, monitor=monitor, fmt=fmt,
                   on_action=on_action, say=say, grace_s=grace_s, poll_s=poll_s)
    return result


def _supervise(proc: subprocess.Popen[bytes], ladder: SignalLadder, result: ProcessResult, *, guard: Any,
               out: IO[bytes] | None, log_file: IO[bytes] | None, monitor: ResourceMonitor | None,
               fmt: str | None, on_action: Callable[[Any], None] | None, say: Callable[[str], None],
               grace_s: float, poll_s: float) -> None:
    """Tee and parse the child's output until it exits, climbing the ladder when told; fills ``result``."""
    pgid = proc.pid
    last_byte = [b"\n"]

    def message(text: str) -> None:
        # Start on a fresh line if the command's output was left mid-line (a tqdm redraw).
        prefix = "" if last_byte[0] in (b"\n", b"") else "\n"
        say(prefix + text)

    def acted(action: Any) -> None:
        if on_action is not None:
            on_action(action)
        if action.stop and not ladder.started:
            result.stop = action
            message(f"trainguard: {action.reason}")
            message(f"trainguard: sending SIGINT to the command (SIGTERM after {grace_s:g} s, then SIGKILL)")
            ladder.start()

    feed = LineFeed(guard, monitor=monitor, fmt=fmt, on_action=acted)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    try:
        eof = False
        exited_at: float | None = None
        while True:
            ladder.tick()
            if not eof:
                ready, _, _ = select.select([fd], [], [], poll_s)
                if ready:
                    data = os.read(fd, _CHUNK)
                    if not data:
                        eof = True
                    else:
                        out = _write(out, data)
                        if log_file is not None:
                            log_file.write(data)
                        last_byte[0] = data[-1:]
                        feed.feed(decoder.decode(data))
                        continue
            if proc.poll() is not None:
                if eof:
                    break
                # The command exited but something in its group still holds the pipe open:
                # drain for a moment, then end the group so the pipe closes.
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > 1.0:
                    result.leftovers += _end_group(pgid, min(grace_s, 5.0))
                    eof = True
            elif eof:
                time.sleep(poll_s)
        feed.feed(decoder.decode(b"", final=True))
        feed.close()
    finally:
        if proc.poll() is None:  # we are leaving abnormally (an exception): never leave it running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        proc.wait()
        with contextlib.suppress(OSError):
            proc.stdout.close()
        result.leftovers += _end_group(pgid, min(grace_s, 5.0))
        with contextlib.suppress(Exception):
            out.flush()  # type: ignore[union-attr]
    if result.leftovers:
        message(f"trainguard: ended {result.leftovers} leftover process(es) of the command's group")
    rc = proc.returncode
    result.returncode = rc
    result.exit_code = 128 - rc if rc < 0 else rc
    result.signals = ladder.sent
    result.parser = feed.parser_name
    result.points = feed.points


def _write(out: IO[bytes] | None, data: bytes) -> IO[bytes] | None:
    """Write and flush; a closed reader (``| head``) must not stop us draining the child."""
    if out is None:
        return None
    try:
        out.write(data)
        out.flush()
        return out
    except (BrokenPipeError, ValueError, OSError):
        return None


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _reap(pgid: int) -> None:
    """Collect exit statuses of group members re-parented to us (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _end_group(pgid: int, grace_s: float) -> int:
    """SIGTERM what is left of the group, SIGKILL after ``grace_s``; returns how many were left."""
    _reap(pgid)
    if not group_alive(pgid):
        return 0
    left = _count_group(pgid)
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pgid)
            if not group_alive(pgid):
                return left
            time.sleep(0.02)
    return left


def _count_group(pgid: int) -> int:
    """Live (non-zombie) members of the group, from /proc; 1 when /proc is unavailable."""
    n = 0
    try:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                n += 1
    except OSError:
        return 1
    return n


@contextlib.contextmanager
def _forwarding(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Install ``handler`` for SIGINT, SIGTERM and SIGHUP (main thread only), restoring them after."""
    import threading

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
def _subreaper() -> Iterator[None]:
    """Make this process the reaper of orphaned descendants while the command runs (Linux only)."""
    if not sys.platform.startswith("linux"):
        yield
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prev = ctypes.c_int(0)
        libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(prev), 0, 0, 0)
        ok = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    try:
        yield
    finally:
        if ok and not prev.value:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


__all__ = ["EXIT_CANNOT_RUN", "EXIT_NOT_FOUND", "ProcessResult", "SignalLadder", "group_alive", "run_command"]
