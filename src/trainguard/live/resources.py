"""Step time, throughput, GPU memory and ETA, measured live and fed to the Guard's Run.

A :class:`ResourceMonitor` is told ``on_step(step)`` after each optimizer step
(by the HF/Lightning callbacks, or by ``trainguard run`` each time the
training progress bar moves) and appends three series to a Run:

- ``step_time`` (seconds per optimizer step): the **median** of the per-call
  durations in the window, not their mean, because the window that holds an
  evaluation or a checkpoint save would otherwise look like a slowdown;
- ``throughput`` (tokens/s when the caller gives tokens, else samples/s,
  else steps/s), derived from that median step time;
- ``gpu_mem`` (GiB): ``torch.cuda.max_memory_allocated()``, read only when
  torch is *already* imported by the process and CUDA is initialised, so
  the monitor never pulls torch into a CPU-only process nor creates a CUDA
  context.

One point is emitted at most every ``min_interval_s`` seconds (default 1 s):
a run of a million steps then adds at most one point per second of
training, and the detectors (``slowdown``, ``memory_climb``) see a series
whose length grows with wall time, not with the step count. ``on_step``
costs a clock read and a list append between emissions.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..run import GPU_MEM, STEP_TIME, THROUGHPUT, Run

_GIB = float(2**30)


@dataclass(frozen=True)
class Sample:
    """One emitted measurement (also appended to the Run)."""

    step: int
    step_time: float  # seconds per optimizer step (median over the window)
    throughput: float | None  # units per second, see ``unit``
    unit: str  # tokens/s | samples/s | steps/s
    gpu_mem_gib: float | None
    eta_s: float | None


class ResourceMonitor:
    """Measures step time, throughput and GPU memory; appends them to ``target``'s Run.

    ``target`` is a Run, or anything with a ``.run`` (a Guard). Without one
    the monitor still measures (``last``, ``eta_s``) and records nothing.
    ``planned_steps`` defaults to ``run.planned_steps``; ``tokens_per_step``
    or ``samples_per_step`` turn steps/s into tokens/s or samples/s when the
    callback does not pass ``tokens=``/``samples=`` to :meth:`on_step`.
    """

    def __init__(self, target: Any = None, *, planned_steps: int | None = None,
                 tokens_per_step: float | None = None, samples_per_step: float | None = None,
                 min_interval_s: float = 1.0, track_gpu: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.planned_steps = planned_steps
        self.tokens_per_step = tokens_per_step
        self.samples_per_step = samples_per_step
        self.min_interval_s = min_interval_s
        self.track_gpu = track_gpu
        self.clock = clock
        self.last: Sample | None = None
        self._prev: tuple[int, float] | None = None  # (step, time) of the previous call
        self._window_start: float | None = None
        self._durations: list[float] = []  # seconds per step, one per call in the window
        self._tokens = 0.0
        self._samples = 0.0
        self._steps_in_window = 0
        self._recent: list[float] = []  # the last few emitted step times, for the ETA
        self._cuda: Any = None  # torch.cuda once known usable; False once known unusable

    @property
    def run(self) -> Run | None:
        t = self.target
        if t is None or isinstance(t, Run):
            return t
        return getattr(t, "run", None)

    # -- the hook -----------------------------------------------------------
    def on_step(self, step: int, *, tokens: float | None = None, samples: float | None = None,
                now: float | None = None) -> Sample | None:
        """Record that optimizer step ``step`` just finished; returns a Sample when one is emitted.

        ``tokens``/``samples`` are the amounts processed since the previous
        call (all ranks together if the caller knows them). Steps that do not
        advance (a repeated or earlier step, as after a resume) reset the
        baseline instead of producing a negative time.
        """
        t = self.clock() if now is None else now
        prev = self._prev
        self._prev = (step, t)
        if prev is None or step <= prev[0] or t < prev[1]:
            self._reset_window(t)
            return None
        dsteps = step - prev[0]
        self._durations.append((t - prev[1]) / dsteps)
        self._steps_in_window += dsteps
        if tokens is not None:
            self._tokens += tokens
        if samples is not None:
            self._samples += samples
        if self._window_start is not None and t - self._window_start < self.min_interval_s:
            return None
        return self._emit(step, t)

    def observe(self, step: int, *, step_time: float, throughput: float | None = None,
                unit: str = "steps/s", gpu_mem_gib: float | None = None) -> Sample:
        """Record a measurement made elsewhere (a log that prints its own step time or rate)."""
        self._recent = [*self._recent, step_time][-8:]
        sample = Sample(step, step_time, throughput, unit, gpu_mem_gib, self.eta_s(step))
        self._record(sample)
        return sample

    # -- derived --------------------------------------------------------------
    def eta_s(self, step: int | None = None) -> float | None:
        """Seconds left to the planned last step, from the median of recent step times."""
        planned = self.planned_steps or (self.run.planned_steps if self.run is not None else None)
        cur = step if step is not None else (self._prev[0] if self._prev else None)
        if not planned or cur is None or not self._recent:
            return None
        return max(planned - cur, 0) * statistics.median(self._recent)

    def gpu_mem_gib(self) -> float | None:
        """Peak GPU memory allocated by this process (GiB), or None without torch/CUDA in use."""
        if not self.track_gpu or self._cuda is False:
            return None
        if self._cuda is None:
            torch = sys.modules.get("torch")  # never import torch ourselves
            cuda = getattr(torch, "cuda", None)
            try:
                ok = cuda is not None and cuda.is_available() and cuda.is_initialized()
            except Exception:
                ok = False
            if not ok:
                # Not yet initialised may change (the model moves to the GPU later): retry next time.
                if torch is None or cuda is None or not _safe(cuda.is_available):
                    self._cuda = False
                return None
            self._cuda = cuda
        try:
            return float(self._cuda.max_memory_allocated()) / _GIB
        except Exception:
            self._cuda = False
            return None

    # -- internals ------------------------------------------------------------
    def _reset_window(self, t: float) -> None:
        self._window_start = t
        self._durations.clear()
        self._tokens = self._samples = 0.0
        self._steps_in_window = 0

    def _emit(self, step: int, t: float) -> Sample:
        st = statistics.median(self._durations)
        if self._tokens:
            thr, unit = self._rate(self._tokens, st), "tokens/s"
        elif self._samples:
            thr, unit = self._rate(self._samples, st), "samples/s"
        elif self.tokens_per_step:
            thr, unit = self.tokens_per_step / st if st > 0 else None, "tokens/s"
        elif self.samples_per_step:
            thr, unit = self.samples_per_step / st if st > 0 else None, "samples/s"
        else:
            thr, unit = (1.0 / st if st > 0 else None), "steps/s"
        self._recent = [*self._recent, st][-8:]
        sample = Sample(step, st, thr, unit, self.gpu_mem_gib(), self.eta_s(step))
        self._reset_window(t)
        self._record(sample)
        return sample

    def _rate(self, amount: float, step_time: float) -> float | None:
        per_step = amount / max(self._steps_in_window, 1)
        return per_step / step_time if step_time > 0 else None

    def _record(self, s: Sample) -> None:
        self.last = s
        run = self.run
        if run is None:
            return
        wall = time.time()
        h = run.history
        h.add(STEP_TIME, s.step, s.step_time, wall_time=wall)
        if s.throughput is not None:
            h.add(THROUGHPUT, s.step, s.throughput, wall_time=wall)
        if s.gpu_mem_gib is not None:
            h.add(GPU_MEM, s.step, s.gpu_mem_gib, wall_time=wall)

    def summary(self) -> dict[str, Any]:
        """The latest figures as a dict (for reports and notifications)."""
        s = self.last
        if s is None:
            return {}
        return {"step": s.step, "step_time_s": s.step_time, "throughput": s.throughput,
                "throughput_unit": s.unit, "gpu_mem_gib": s.gpu_mem_gib, "eta_s": s.eta_s}


def _safe(fn: Callable[[], Any]) -> bool:
    try:
        return bool(fn())
    except Exception:
        return False


__all__ = ["ResourceMonitor", "Sample"]
