"""The one data model: a Run holds a History of metric Series, a RunConfig and its checkpoints.

Readers produce a :class:`Run`; detectors are pure functions of it; the live
guard grows one point by point. Everything downstream reads this module only,
so a new log format never touches a detector.

Series are columnar (numpy arrays behind an amortised-O(1) append), never a
list of dicts: a 1 GB log holds millions of points, and the live guard appends
one at a time without copying the history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .run_config import CONFIG_KEYS, RunConfig, Sourced

# Canonical metric names. Readers map framework names onto these and keep
# unknown metrics under their own (lower-cased) names.
TRAIN_LOSS = "train_loss"
EVAL_LOSS = "eval_loss"
LEARNING_RATE = "learning_rate"
GRAD_NORM = "grad_norm"
EPOCH = "epoch"
THROUGHPUT = "throughput"
GPU_MEM = "gpu_mem"
STEP_TIME = "step_time"

_NAN = float("nan")


class Series:
    """One metric over steps: ``steps`` (int64) and ``values`` (float64), optional ``epochs`` and ``wall_time``.

    Backed by growable buffers so that :meth:`append` is amortised O(1); the
    public arrays are views of the filled part, valid until the next append.
    Missing epochs or wall times are NaN, so the columns always line up; a
    column never given is not stored until it is read or appended to, and
    :meth:`adopt` takes a reader's fresh arrays without copying them (several
    series of one log may share one steps array). A 1 GB log holds millions
    of points, so bytes per point set the memory of ``analyze``.
    """

    __slots__ = ("_epochs", "_n", "_steps", "_values", "_wall")

    def __init__(
        self,
        steps: Iterable[int] | np.ndarray = (),
        values: Iterable[float] | np.ndarray = (),
        epochs: Iterable[float] | np.ndarray | None = None,
        wall_time: Iterable[float] | np.ndarray | None = None,
    ) -> None:
        s = np.asarray(list(steps) if not isinstance(steps, np.ndarray) else steps, dtype=np.int64)
        v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
        if s.shape != v.shape:
            raise ValueError(f"steps ({s.shape}) and values ({v.shape}) differ in length")
        n = len(s)
        e = None if epochs is None else np.asarray(epochs, dtype=np.float64)
        w = None if wall_time is None else np.asarray(wall_time, dtype=np.float64)
        if (e is not None and e.shape != s.shape) or (w is not None and w.shape != s.shape):
            raise ValueError("epochs and wall_time must match steps in length")
        cap = max(16, n)
        self._n = n
        self._steps = np.empty(cap, np.int64)
        self._values = np.empty(cap, np.float64)
        self._steps[:n] = s
        self._values[:n] = v
        self._epochs: np.ndarray | None = None
        self._wall: np.ndarray | None = None
        if e is not None:
            self._epochs = np.empty(cap, np.float64)
            self._epochs[:n] = e
        if w is not None:
            self._wall = np.empty(cap, np.float64)
            self._wall[:n] = w

    @classmethod
    def adopt(cls, steps: np.ndarray, values: np.ndarray, epochs: np.ndarray | None = None,
              wall_time: np.ndarray | None = None) -> Series:
        """A Series over these arrays, not copied: for readers handing over arrays they no longer touch.

        The arrays must not be written to afterwards (a later :meth:`append`
        grows into new buffers, never into them). Shared ``steps``/``epochs``
        between series of one log are fine for that reason.
        """
        self = cls.__new__(cls)
        self._steps = np.asarray(steps, np.int64)
        self._values = np.asarray(values, np.float64)
        self._epochs = None if epochs is None else np.asarray(epochs, np.float64)
        self._wall = None if wall_time is None else np.asarray(wall_time, np.float64)
        self._n = len(self._steps)
        if self._values.shape != self._steps.shape or any(
            c is not None and c.shape != self._steps.shape for c in (self._epochs, self._wall)
        ):
            raise ValueError("steps, values, epochs and wall_time must be one-dimensional and of one length")
        return self

    # -- columns -----------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self._n]

    @property
    def values(self) -> np.ndarray:
        return self._values[: self._n]

    @property
    def epochs(self) -> np.ndarray:
        if self._epochs is None:
            self._epochs = np.full(len(self._steps), _NAN)
        return self._epochs[: self._n]

    @property
    def wall_time(self) -> np.ndarray:
        if self._wall is None:
            self._wall = np.full(len(self._steps), _NAN)
        return self._wall[: self._n]

    def has_epochs(self) -> bool:
        return self._epochs is not None and bool(self._n) and bool(np.isfinite(self.epochs).any())

    def has_wall_time(self) -> bool:
        return self._wall is not None and bool(self._n) and bool(np.isfinite(self.wall_time).any())

    # -- growth ------------------------------------------------------------
    def append(self, step: int, value: float, epoch: float | None = None, wall_time: float | None = None) -> None:
        """Add one point; amortised O(1) (buffers double when full)."""
        if self._n == len(self._steps):
            self._grow(max(16, 2 * self._n))
        i = self._n
        self._steps[i] = step
        self._values[i] = value
        if epoch is not None or self._epochs is not None:
            self.epochs  # noqa: B018 - materialises the column
            self._epochs[i] = _NAN if epoch is None else epoch  # type: ignore[index]
        if wall_time is not None or self._wall is not None:
            self.wall_time  # noqa: B018
            self._wall[i] = _NAN if wall_time is None else wall_time  # type: ignore[index]
        self._n = i + 1

    def _grow(self, cap: int) -> None:
        for name in ("_steps", "_values", "_epochs", "_wall"):
            old = getattr(self, name)
            if old is None:
                continue
            new = np.empty(cap, old.dtype) if name in ("_steps", "_values") else np.full(cap, _NAN)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    # -- queries -----------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __repr__(self) -> str:
        if not self._n:
            return "Series(empty)"
        return f"Series({self._n} points, steps {self.steps[0]}..{self.steps[-1]})"

    def finite(self) -> Series:
        """The points whose value is finite (NaN/inf dropped), as a new Series."""
        m = np.isfinite(self.values)
        if m.all():
            return self
        return self._take(m)

    def sorted(self) -> Series:
        """The points ordered by step (stable), as a new Series; self if already ordered."""
        if self._n < 2 or bool(np.all(np.diff(self.steps) >= 0)):
            return self
        return self._take(np.argsort(self.steps, kind="stable"))

    def _take(self, idx: np.ndarray) -> Series:
        """The points at ``idx`` (a mask or indices), as a new Series; a column never given stays unstored."""
        n = self._n
        e = None if self._epochs is None else self._epochs[:n][idx]
        w = None if self._wall is None else self._wall[:n][idx]
        return Series.adopt(self.steps[idx], self.values[idx], e, w)

    def value_at(self, step: int) -> float | None:
        """The value logged at ``step`` exactly (the last one if several), else None."""
        idx = np.nonzero(self.steps == step)[0]
        return float(self.values[idx[-1]]) if len(idx) else None

    def nearest(self, step: int) -> int | None:
        """Index of the point whose step is closest to ``step``."""
        if not self._n:
            return None
        return int(np.argmin(np.abs(self.steps - step)))

    def epoch_at(self, i: int) -> float | None:
        e = float(self.epochs[i])
        return None if math.isnan(e) else e

    def slice_steps(self, start: int | None = None, end: int | None = None) -> Series:
        """Points with ``start <= step <= end``."""
        m = np.ones(self._n, bool)
        if start is not None:
            m &= self.steps >= start
        if end is not None:
            m &= self.steps <= end
        return self._take(m)


class History(Mapping[str, Series]):
    """Metric name -> Series. Canonical names are the module constants (``train_loss``, ``eval_loss`` ...)."""

    def __init__(self, series: Mapping[str, Series] | None = None) -> None:
        self._series: dict[str, Series] = dict(series or {})

    def __getitem__(self, name: str) -> Series:
        return self._series[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._series)

    def __len__(self) -> int:
        return len(self._series)

    def get_series(self, name: str) -> Series:
        """The series ``name``, or an empty one: detectors then just see no points."""
        return self._series.get(name) or Series()

    def series(self, name: str) -> Series:
        """The series ``name``, created empty if missing (for readers and the live guard)."""
        s = self._series.get(name)
        if s is None:
            s = self._series[name] = Series()
        return s

    def add(self, name: str, step: int, value: float, epoch: float | None = None, wall_time: float | None = None) -> None:
        self.series(name).append(step, value, epoch, wall_time)

    def set(self, name: str, series: Series) -> None:
        self._series[name] = series

    def drop(self, name: str) -> None:
        self._series.pop(name, None)

    def eval_metrics(self) -> list[str]:
        """Names of eval metrics other than eval_loss, in insertion order."""
        return [n for n in self._series if n.startswith("eval_") and n != EVAL_LOSS and len(self._series[n])]

    def last_step(self) -> int | None:
        ends = [int(s.steps.max()) for s in self._series.values() if len(s)]
        return max(ends) if ends else None

    def first_step(self) -> int | None:
        starts = [int(s.steps.min()) for s in self._series.values() if len(s)]
        return min(starts) if starts else None

    def total_points(self) -> int:
        return sum(len(s) for s in self._series.values())


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder (or a step at which one was written)."""

    step: int
    path: str
    has_weights: bool = True


@dataclass
class Run:
    """Everything known about one training run.

    ``notes`` records how the reader interpreted the input (steps recovered
    from epochs, perplexity converted to loss, a restart stitched) so reports
    can say it; ``skipped_lines`` counts lines that looked like metrics but did
    not parse.
    """

    name: str
    format: str
    history: History = field(default_factory=History)
    config: RunConfig = field(default_factory=RunConfig)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    num_gpus: int | None = None
    train_runtime: float | None = None  # seconds, from the final train_runtime or timestamps
    start_time: float | None = None  # unix seconds
    end_time: float | None = None
    planned_steps: int | None = None  # max_steps of the run (trainer_state / tqdm total)
    steps_per_epoch: float | None = None
    finished: bool | None = None  # None: unknown
    best_recorded: dict[str, Any] | None = None  # what the framework itself recorded as best
    notes: list[str] = field(default_factory=list)
    skipped_lines: int = 0

    # -- convenience -------------------------------------------------------
    @property
    def train_loss(self) -> Series:
        return self.history.get_series(TRAIN_LOSS)

    @property
    def eval_loss(self) -> Series:
        return self.history.get_series(EVAL_LOSS)

    @property
    def last_step(self) -> int | None:
        return self.history.last_step()

    @property
    def gpus(self) -> int:
        """GPUs used: what the log or config says, else 1 (the diagnosis says when it assumed)."""
        return self.num_gpus or self.config.world_size or 1

    def seconds_per_step(self) -> float | None:
        """Mean wall seconds per optimizer step, from the runtime or from logged wall times."""
        last = self.last_step
        first = self.history.first_step() or 0
        if self.train_runtime and last:
            return self.train_runtime / max(last, 1)
        best: float | None = None
        for s in self.history.values():
            if s.has_wall_time() and len(s) >= 2:
                w = s.wall_time
                m = np.isfinite(w)
                if m.sum() >= 2:
                    st, wt = s.steps[m], w[m]
                    ds = float(st[-1] - st[0])
                    if ds > 0:
                        best = float(wt[-1] - wt[0]) / ds
                        break
        if best is None and self.start_time and self.end_time and last and last > first:
            best = (self.end_time - self.start_time) / max(last, 1)
        return best


def is_finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


__all__ = [
    "CONFIG_KEYS",
    "EPOCH",
    "EVAL_LOSS",
    "GPU_MEM",
    "GRAD_NORM",
    "LEARNING_RATE",
    "STEP_TIME",
    "THROUGHPUT",
    "TRAIN_LOSS",
    "Checkpoint",
    "History",
    "Run",
    "RunConfig",
    "Series",
    "Sourced",
]
