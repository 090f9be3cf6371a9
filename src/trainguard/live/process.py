"""``trainguard run -- CMD``: run a training command under the guard, and stop it cleanly when told.

:func:`run_command` starts ``CMD`` in its own session (its process group
holds every process it forks: torchrun/deepspeed/accelerate workers,
dataloader workers) and tees its output to ours **byte for byte**.

**Zero-code instrumentation.** The child gets ``live/bootstrap`` first on its
``PYTHONPATH``: its ``sitecustomize`` attaches the guard's callback to every
HF/TRL and Lightning ``Trainer`` the script creates, in every rank (see
``live/instrument.py``). The callback then reports to us through an events
file (steps are the trainer's own, not guessed from stdout) and takes stop
requests through a stop file (``live/control.py``): the trainer saves, writes
its state and exits 0, with no traceback.

**Signals are the fallback**, for non-Python jobs and plain loops, and for a
trainer that does not answer a stop request within ``grace_s`` (a hung job):
SIGINT to the group, then SIGTERM once ``grace_s`` passed and the group is
still there, then SIGKILL (``live/signals.py``).

Choices, and the trap each avoids:

- stdout and stderr of the child share **one pipe**: HF prints metric dicts
  on stdout and the tqdm bar (which carries the step) on stderr, and only a
  shared pipe keeps their order. Everything goes to our stdout; trainguard's
  own messages go to stderr.
- Output is read with ``os.read`` in chunks, never by line (a tqdm bar has
  no newline), and **copied before it is parsed**: parsing runs on its own
  thread behind a bounded queue, and when it falls behind, parsing (never
  output) is dropped, so a chatty child is never held back.
- ``PYTHONUNBUFFERED=1`` is set for the child (unless the user set it).
- Our own SIGINT/SIGTERM/SIGHUP are forwarded to the group: a first Ctrl-C
  starts the ladder, a second one skips to the next rung.
- **No orphans**: trainguard is the child subreaper while the command runs;
  when it ends, what is left of its group, and any process it left behind
  that we adopted (a ``setsid`` daemon), is sent SIGTERM, then SIGKILL.

Exit code (:attr:`ProcessResult.exit_code`): the command's own code; when
it died of a signal N, ``128 + N`` (130 SIGINT, 143 SIGTERM, 137 SIGKILL);
127 when the command was not found and 126 when it could not be executed.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import control
from .control import RunChannel
from .feed import LineFeed
from .heartbeat import LiveView
from .parser_thread import ParserThread
from .resources import ResourceMonitor
from .signals import (
    SignalLadder,
    children,
    end_adopted,
    end_group,
    forwarding,
    group_alive,
    subreaper,
)

EXIT_CANNOT_RUN = 126
EXIT_NOT_FOUND = 127
_CHUNK = 65536
BOOTSTRAP = Path(__file__).resolve().parent / "bootstrap"


@dataclass
class ProcessResult:
    """How the command ended and what the guard did about it."""

    exit_code: int  # see the module docstring
    returncode: int | None  # Popen's raw value (negative: killed by that signal)
    stop: Any = None  # the stop Action (the guard's, the callback's, or a stall's), when one was decided
    signals: list[str] = field(default_factory=list)  # signals sent to the group, in order
    interrupted: bool = False  # we forwarded a signal we received ourselves
    parser: str | None = None  # the reader that parsed the output
    points: int = 0  # guard.log calls made
    leftovers: int = 0  # processes of the group still alive after the command exited (then ended)
    adopted: int = 0  # processes that left the group (setsid) and that we adopted and ended
    attached: bool = False  # a trainguard callback inside the command reported to us
    stop_acked_step: int | None = None  # the trainer took the stop request at this step
    end: dict[str, Any] | None = None  # the callback's final event: best checkpoint, report, loaded_best
    checkpoints: dict[int, str] = field(default_factory=dict)  # step -> folder, as the callback saved them
    parse_skipped_bytes: int = 0  # output passed through but not parsed (the parser fell behind)
    stalls: int = 0

    @property
    def stopped(self) -> bool:
        return self.stop is not None


def run_command(cmd: Sequence[str], guard: Any, *, grace_s: float = 30.0, out: IO[bytes] | None = None,
                log_file: IO[bytes] | None = None, monitor: ResourceMonitor | None = None,
                fmt: str | None = None, on_action: Callable[[Any], None] | None = None,
                say: Callable[[str], None] | None = None, env: dict[str, str] | None = None,
                cwd: str | None = None, poll_s: float = 0.1, instrument: bool = True,
                live: LiveView | None = None, stop_on_stall: bool = False,
                on_stall: Callable[[Any], None] | None = None) -> ProcessResult:
    """Run ``cmd`` under ``guard`` until it exits; returns a :class:`ProcessResult`.

    ``out`` (default: our stdout) receives the command's output unchanged,
    ``log_file`` a copy. ``on_action`` sees every non-continue action
    (alerts, saves, the stop); ``say`` prints trainguard's own one-line
    messages (default: stderr). ``instrument`` puts the bootstrap on the
    child's ``PYTHONPATH``. ``live`` draws the status line and raises the
    stall alarm (``on_stall`` sees it; with ``stop_on_stall`` it stops the
    job). Signals are forwarded only when called from the main thread.
    """
    if not cmd:
        raise ValueError("empty command")
    sup = _Supervisor(guard, grace_s=grace_s, out=sys.stdout.buffer if out is None else out, log_file=log_file,
                      monitor=monitor, fmt=fmt, on_action=on_action, say=say or _stderr_line, poll_s=poll_s,
                      live=live, stop_on_stall=stop_on_stall, on_stall=on_stall)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    channel = RunChannel() if instrument else None
    if channel is not None:
        child_env.update(channel.env(guard))
        paths = [str(BOOTSTRAP)] + [p for p in child_env.get("PYTHONPATH", "").split(os.pathsep) if p]
        child_env["PYTHONPATH"] = os.pathsep.join(paths)
    sup.channel = channel
    try:
        with subreaper(), forwarding(sup.forward):  # before the child starts: no Ctrl-C falls in between
            before = children()
            try:
                proc = subprocess.Popen(list(cmd), stdin=None, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=child_env, cwd=cwd, bufsize=0)
            except FileNotFoundError:
                sup.say(f"trainguard: command not found: {cmd[0]}")
                return ProcessResult(EXIT_NOT_FOUND, None)
            except PermissionError:
                sup.say(f"trainguard: cannot execute: {cmd[0]}")
                return ProcessResult(EXIT_CANNOT_RUN, None)
            sup.supervise(proc, before)
    finally:
        if channel is not None:
            channel.close()
    return sup.result


class _Supervisor:
    """The loop of :func:`run_command`: tee, events, stop requests, the ladder, the live view."""

    def __init__(self, guard: Any, *, grace_s: float, out: IO[bytes] | None, log_file: IO[bytes] | None,
                 monitor: ResourceMonitor | None, fmt: str | None, on_action: Callable[[Any], None] | None,
                 say: Callable[[str], None], poll_s: float, live: LiveView | None, stop_on_stall: bool,
                 on_stall: Callable[[Any], None] | None) -> None:
        self.guard, self.grace_s, self.out, self.log_file = guard, grace_s, out, log_file
        self.monitor, self.on_action, self._say, self.poll_s = monitor, on_action, say, poll_s
        self.live, self.stop_on_stall, self.on_stall = live, stop_on_stall, on_stall
        self.result = ProcessResult(exit_code=0, returncode=None)
        self.channel: RunChannel | None = None
        self.ladder: SignalLadder | None = None
        self.early: list[signal.Signals] = []
        self.last_byte = b"\n"
        self.event_step: int | None = None
        self.ack_deadline: float | None = None
        self.finish_deadline: float | None = None
        self._lock = threading.Lock()
        self.feed = LineFeed(guard, monitor=monitor, fmt=fmt, on_action=self.acted)
        self.parser = ParserThread(self.feed, self._event)

    # -- messages and actions ------------------------------------------------
    def say(self, text: str) -> None:
        if self.live is not None:
            self.live.before_output()
        prefix = "" if self.last_byte in (b"\n", b"") else "\n"  # start on a fresh line after a tqdm redraw
        self._say(prefix + text)
        self.last_byte = b"\n"

    def forward(self, signum: int, _frame: Any) -> None:
        self.result.interrupted = True
        sig = signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM
        if self.ladder is not None:
            self.ladder.start(sig)
        else:
            self.early.append(sig)

    def acted(self, action: Any) -> None:
        """A non-continue action of the guard (parser thread) or a stall (main thread)."""
        if self.on_action is not None:
            self.on_action(action)
        if action.stop:
            self.request_stop(action)

    def request_stop(self, action: Any) -> None:
        with self._lock:
            if self.result.stop is not None or self.ladder is None:
                return
            self.result.stop = action
        self.say(f"trainguard: {action.reason}")
        if self.result.attached and self.channel is not None:
            control.request_stop(self.channel.stop_file, action.reason, by="trainguard run")
            wait = self._answer_wait()
            self.ack_deadline = time.monotonic() + wait
            self.say(f"trainguard: asked the trainer to save and stop after this step (signals follow if it has "
                     f"not answered in {wait:.0f} s)")
        else:
            self.say(f"trainguard: sending SIGINT to the command (SIGTERM after {self.grace_s:g} s, then SIGKILL)")
            self.ladder.start()

    def _answer_wait(self) -> float:
        """Seconds a trainer gets to answer a stop request: the grace period, or 3 steps when steps are slower."""
        sps = None
        with contextlib.suppress(Exception):
            sps = self.guard.run.seconds_per_step()
        return max(self.grace_s, 3.0 * sps) if sps else self.grace_s

    # -- events from the callback in the child ---------------------------------
    def _poll_events(self) -> None:
        if self.channel is None:
            return
        events = self.channel.reader.read()
        if not events:
            return
        for ev in events:
            kind = ev.get("event")
            if kind == "attached" and not self.result.attached:
                self.result.attached = True
                self.parser.parse_output = False  # steps come from the trainer now
                fw = {"hf": "HF Trainer", "lightning": "Lightning Trainer"}.get(str(ev.get("framework")), "trainer")
                self.say(f"trainguard: attached to the {fw} in the command (pid {ev.get('pid')}): it reports its "
                         "own steps and saves before it stops")
            elif kind == "log" and isinstance(ev.get("step"), int):
                self.event_step = ev["step"]
            elif kind == "checkpoint" and isinstance(ev.get("step"), int):
                self._checkpoint(ev["step"], str(ev.get("path")), [str(g) for g in ev.get("deleted") or []])
            elif kind == "stopping":
                self.result.stop_acked_step = ev.get("step")
                self.ack_deadline = None
                self.finish_deadline = time.monotonic() + max(600.0, 10 * self.grace_s)
            elif kind == "end":
                self.result.end = ev
        self.parser.put_events(events)

    def _checkpoint(self, step: int, path: str, deleted: list[str]) -> None:
        """Record a folder the trainer saved (and forget those the callback pruned) in the result and the Run."""
        from ..run import Checkpoint

        cks = self.result.checkpoints
        cks[step] = path
        run = getattr(self.guard, "run", None)
        if run is not None:
            run.checkpoints[step] = Checkpoint(step, path)
        for s, p in list(cks.items()):
            if p in deleted:
                del cks[s]
                if run is not None:
                    run.checkpoints.pop(s, None)

    def _event(self, ev: dict[str, Any]) -> None:
        """Parser thread: feed the guard from the callback's events (the trainer's own steps)."""
        kind = ev.get("event")
        if kind == "attached":
            cfg = self.guard.run.config
            if ev.get("framework") in ("hf", "lightning"):  # advice in the user's own framework's terms
                cfg.set("framework", ev["framework"], "trainguard run")
            if isinstance(ev.get("config"), dict):  # the trainer's own settings, as the callback read them
                cfg.update({str(k): v for k, v in ev["config"].items()}, "TrainingArguments")
            if isinstance(ev.get("world_size"), int):
                cfg.set("world_size", ev["world_size"], "TrainingArguments")
            planned = ev.get("planned_steps")
            if isinstance(planned, int) and planned > 0:
                self.guard.run.planned_steps = planned
                if hasattr(self.guard, "set_plan"):
                    self.guard.set_plan(planned)
        elif kind == "log":
            step, metrics = ev.get("step"), ev.get("metrics") or {}
            if not isinstance(step, int) or not isinstance(metrics, dict):
                return
            kw = {str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if not kw:
                return
            if self.monitor is not None:
                self.monitor.on_step(step)
            self.feed.points += 1
            self.feed.last_step = step
            action = self.guard.log(step, **kw)
            if action.stop or action.save or action.alert:
                self.acted(action)
        elif kind == "stopping" and self.result.stop is None:
            from .policy import Action

            with self._lock:
                if self.result.stop is None:
                    self.result.stop = Action(int(ev.get("step") or 0), stop=True, alert=True,
                                              reason=str(ev.get("reason") or "stopped by the trainguard callback"))

    # -- the loop ---------------------------------------------------------
    def step(self) -> int | None:
        bar = self.feed.progress[0]
        cands = [s for s in (self.event_step, self.feed.last_step, bar) if s is not None]
        return max(cands) if cands else None

    def supervise(self, proc: subprocess.Popen[bytes], before: set[int]) -> None:
        pgid = proc.pid  # start_new_session: the child leads its own group
        self.ladder = SignalLadder(pgid, self.grace_s)
        for sig in self.early:
            self.ladder.start(sig)
        self.parser.start()
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        _widen_pipe(fd)
        result = self.result
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, 0.001))  # the tee thread gets the GIL back from the parser within 1 ms
        try:
            eof = False
            exited_at: float | None = None
            next_tick = 0.0
            while True:
                if not eof:
                    ready, _, _ = select.select([fd], [], [], self.poll_s)
                    if ready:
                        data = os.read(fd, _CHUNK)
                        if not data:
                            eof = True
                        else:
                            self._tee(data)
                            if not result.attached:
                                self._poll_events()  # an attach written before these bytes is seen first
                            self.parser.put_output(data)
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + self.poll_s
                    self._periodic(now)
                if proc.poll() is not None:
                    if eof:
                        break
                    # The command exited but something in its group still holds the pipe open:
                    # drain for a moment, then end the group so the pipe closes.
                    exited_at = exited_at or now
                    if now - exited_at > 1.0:
                        result.leftovers += end_group(pgid, min(self.grace_s, 5.0))
                        eof = True
                elif eof:
                    time.sleep(self.poll_s)
        finally:
            sys.setswitchinterval(switch)
            if proc.poll() is None:  # we are leaving abnormally (an exception): never leave it running
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            proc.wait()
            with contextlib.suppress(OSError):
                proc.stdout.close()
            result.leftovers += end_group(pgid, min(self.grace_s, 5.0))
            result.adopted += end_adopted(before | {proc.pid}, min(self.grace_s, 5.0))
            self._poll_events()
            self.parser.finish()
            if self.live is not None:
                self.live.close()
            with contextlib.suppress(Exception):
                self.out.flush()  # type: ignore[union-attr]
        if result.leftovers:
            self.say(f"trainguard: ended {result.leftovers} leftover process(es) of the command's group")
        if result.adopted:
            self.say(f"trainguard: ended {result.adopted} process(es) the command left running outside its group")
        if self.parser.error is not None:
            self.say(f"trainguard: the live parser failed ({type(self.parser.error).__name__}: {self.parser.error}); "
                     "the output went through whole")
        if self.parser.skipped:
            self.say(f"trainguard: the output came faster than it could be parsed; {self.parser.skipped / 1e6:.1f} MB "
                     "were passed through without being read by the guard")
        rc = proc.returncode
        result.returncode = rc
        result.exit_code = 128 - rc if rc < 0 else rc
        result.signals = self.ladder.sent
        result.parser = self.feed.parser_name
        result.points = self.feed.points
        result.parse_skipped_bytes = self.parser.skipped

    def _tee(self, data: bytes) -> None:
        if self.live is not None:
            self.live.before_output()
        self.out = _write(self.out, data)
        if self.log_file is not None:
            self.log_file.write(data)
        self.last_byte = data[-1:]
        if self.live is not None:
            self.live.after_output(data)

    def _periodic(self, now: float) -> None:
        assert self.ladder is not None
        self._poll_events()
        self.ladder.tick()
        if self.ack_deadline is not None and now >= self.ack_deadline:
            self.ack_deadline = None
            if self.channel is not None and control.acknowledged(self.channel.stop_file) is not None:
                return
            self.say(f"trainguard: the trainer did not answer the stop request in time; sending SIGINT "
                     f"(SIGTERM after {self.grace_s:g} s, then SIGKILL)")
            self.ladder.start()
        if self.finish_deadline is not None and now >= self.finish_deadline and not self.ladder.started:
            self.finish_deadline = None
            self.say("trainguard: the trainer took the stop request but has not exited; sending SIGINT")
            self.ladder.start()
        if self.live is None:
            return
        finding = self.live.tick(now)
        if finding is None:
            return
        from .policy import Action

        self.result.stalls = self.live.stall.stalls if self.live.stall is not None else self.result.stalls
        stop = self.stop_on_stall and not getattr(getattr(self.guard, "policy", None), "is_alert_only", False)
        action = Action(self.step() or 0, stop=stop, alert=True, reason=f"stall: {finding.message}",
                        findings=(finding,))
        if self.on_stall is not None:
            self.on_stall(action)
        if stop and self.result.stop is None:
            self.request_stop(action)
        elif not stop:
            self.say(f"trainguard: {action.reason}")


def _widen_pipe(fd: int, size: int = 1 << 20) -> None:
    """Let the child write up to 1 MB ahead of us (Linux ``F_SETPIPE_SZ``; the default pipe holds 64 KB)."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except (ImportError, OSError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size: the default buffer still works


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


__all__ = ["BOOTSTRAP", "EXIT_CANNOT_RUN", "EXIT_NOT_FOUND", "ProcessResult", "SignalLadder", "group_alive",
           "run_command"]
