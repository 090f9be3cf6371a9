"""What a person sees while a guarded run is healthy, and the alarm for a run that hangs.

- :class:`StallDetector`: a hung job (an NCCL timeout, a dataloader deadlock)
  prints nothing for hours, and nothing else notices. A stall is declared
  when no output and no new step arrived for ``k`` times the median interval
  between steps, and never sooner than ``floor_s`` (a checkpoint save or an
  eval pass is legitimately slow; before the first step, model loading is,
  so the floor is tripled until steps arrive). It fires again, escalated, at
  2× and 4× the threshold while the silence lasts.
- :class:`LiveView`: on a terminal, one status line redrawn on stderr while
  the job itself is quiet (it never overwrites a tqdm bar); in a log, a
  heartbeat line every ``heartbeat_s``. Both say the step (of the planned
  total), the best eval and how long ago it came, how close the stop rule is
  to firing, and the ETA.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from ..findings import Finding, Severity


class StallDetector:
    """Declares a stall after ``k`` × the median step interval (at least ``floor_s``) of silence."""

    def __init__(self, *, k: float = 10.0, floor_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.k = k
        self.floor_s = floor_s
        self.clock = clock
        self.fired = 0  # alarms raised in the current silence (0, then 1, 2, 3 as it escalates)
        self.stalls = 0  # silences that raised an alarm
        now = clock()
        self._last_activity = now
        self._last_step: tuple[int, float] | None = None
        self._intervals: deque[float] = deque(maxlen=50)

    def on_output(self, now: float | None = None) -> float | None:
        """Output arrived; returns how long the silence lasted when it had raised an alarm (else None)."""
        now = self.clock() if now is None else now
        resumed = now - self._last_activity if self.fired else None
        self._last_activity = now
        self.fired = 0
        return resumed

    def on_step(self, step: int, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now
        if self._last_step is not None and step > self._last_step[0]:
            self._intervals.append(now - self._last_step[1])
        if self._last_step is None or step != self._last_step[0]:
            self._last_step = (step, now)
        return self.on_output(now)

    @property
    def median_interval(self) -> float | None:
        return statistics.median(self._intervals) if self._intervals else None

    def threshold(self) -> float:
        """Seconds of silence that make a stall now."""
        m = self.median_interval
        if m is None:
            return 3.0 * self.floor_s
        return max(self.floor_s, self.k * m)

    def check(self, now: float | None = None) -> Finding | None:
        """A ``stall`` finding when the silence crossed the threshold (then 2×, 4×); else None."""
        if self.floor_s <= 0:
            return None
        now = self.clock() if now is None else now
        silent = now - self._last_activity
        limit = self.threshold() * (2 ** self.fired)
        if silent < limit or self.fired >= 3:
            return None
        self.fired += 1
        if self.fired == 1:
            self.stalls += 1
        m = self.median_interval
        pace = f"steps came every {m:.3g} s" if m is not None else "no step has been seen yet"
        step = None if self._last_step is None else self._last_step[0]
        where = f" after step {step}" if step is not None else ""
        sev = Severity.WARNING if self.fired == 1 else Severity.ERROR
        return Finding("stall", sev, f"no output and no new step for {_dur(silent)}{where} ({pace}; "
                       f"the stall limit is {_dur(self.threshold())}): the job may be hung.",
                       start_step=step, end_step=step,
                       evidence={"stalled_s": round(silent, 1), "limit_s": round(self.threshold(), 1),
                                 "median_step_interval_s": m, "last_step": step})


class LiveView:
    """Status line on a TTY, heartbeat lines in a log, the stall alarm; ``tick`` is called by the sink's loop.

    ``step_fn`` returns the current step (None before the first),
    ``planned_fn`` the planned total, ``eta_fn`` seconds left. ``stream``
    (default stderr) gets trainguard's lines; ``tty`` overrides the check.
    """

    def __init__(self, guard: Any, *, step_fn: Callable[[], int | None], planned_fn: Callable[[], int | None],
                 eta_fn: Callable[[], float | None] = lambda: None, stall: StallDetector | None = None,
                 heartbeat_s: float = 600.0, stream: IO[str] | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.guard = guard
        self.step_fn = step_fn
        self.planned_fn = planned_fn
        self.eta_fn = eta_fn
        self.stall = stall
        self.heartbeat_s = heartbeat_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.heartbeats = 0
        self._shown = False
        self._drawn_at = 0.0
        self._output_at = clock()
        self._at_line_start = True
        self._next_beat = clock() + heartbeat_s
        self._step: int | None = None
        self._best: tuple[int, float] | None = None  # (best step, when it was first seen)

    # -- inputs ------------------------------------------------------------
    def before_output(self) -> None:
        """The job is about to write to the terminal: take our status line away first."""
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def after_output(self, data: bytes, now: float | None = None) -> float | None:
        """The job wrote ``data``; returns the silence it ended when that had raised a stall alarm."""
        now = self.clock() if now is None else now
        self._output_at = now
        if data:
            self._at_line_start = data[-1:] == b"\n"
        return self.stall.on_output(now) if self.stall is not None else None

    # -- the loop ----------------------------------------------------------
    def tick(self, now: float | None = None) -> Finding | None:
        """Update the view; returns a stall finding when one fires."""
        now = self.clock() if now is None else now
        step = self.step_fn()
        if step is not None and step != self._step:
            self._step = step
            if self.stall is not None:
                self.stall.on_step(step, now)
        b = getattr(self.guard, "best", None)
        if b is not None and (self._best is None or self._best[0] != b.step):
            self._best = (b.step, now)
        if self.tty and now - self._output_at >= 1.0 and self._at_line_start and now - self._drawn_at >= 1.0:
            self._write("\r\x1b[K" + self.status(now)[:200])
            self._shown, self._drawn_at = True, now
        elif not self.tty and self.heartbeat_s > 0 and now >= self._next_beat:
            self._next_beat = now + self.heartbeat_s
            self.heartbeats += 1
            self._write(self.status(now) + "\n")
        return self.stall.check(now) if self.stall is not None else None

    def close(self) -> None:
        self.before_output()

    def status(self, now: float | None = None) -> str:
        """``trainguard: step 340/800 · best eval_loss 1.54 at step 120 (3 min ago) · stop rule: ... · ETA 4 min``."""
        now = self.clock() if now is None else now
        parts = []
        step, planned = self._step, self.planned_fn()
        if step is None:
            parts.append("waiting for the first step")
        elif planned:
            parts.append(f"step {step}/{planned} ({100 * step / planned:.0f}%)")
        else:
            parts.append(f"step {step}")
        b = getattr(self.guard, "best", None)
        if b is not None and self._best is not None:
            parts.append(f"best {b.metric} {b.value:.4g} at step {b.step} ({_dur(now - self._best[1])} ago)")
        gate = gate_text(self.guard)
        if gate:
            parts.append(gate)
        eta = self.eta_fn()
        if eta is not None and eta > 0:
            parts.append(f"ETA {_dur(eta)}")
        return "trainguard: " + " · ".join(parts)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass


def gate_text(guard: Any) -> str:
    """How close the stop rule is to firing, in words, from the guard's one overfitting verdict; "" when unknown."""
    try:
        v = guard.verdict
        v = v() if callable(v) else v
        if v is None or getattr(v, "best_step", None) is None:
            return ""
        try:
            from ..facts.overfit import ERROR_RISE

            limit = f"; it stops past +{100 * ERROR_RISE:.0f}% held over several evals"
        except ImportError:
            limit = ""
        if not v.evals_after or v.rise <= 0:
            return f"stop rule: eval at its best (step {v.best_step})"
        return (f"stop rule: eval {100 * v.rise:+.1f}% above its best over the {v.evals_after} evals since "
                f"({v.z:.1f}x the noise){limit}")
    except Exception:  # the judgement core changed its shape: say nothing rather than something wrong
        return ""


def _dur(s: float) -> str:
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


__all__ = ["LiveView", "StallDetector", "gate_text"]
