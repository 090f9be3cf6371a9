"""A user-given regex (``--pattern``) with named groups, for logs no built-in pattern reads.

Groups: ``step`` and/or ``epoch`` (the counter), every other named group a
metric (``loss``, ``val_loss``, ``lr`` ... through the shared alias table).
The regex is searched in each line (``\\r`` and ``\\n`` both end one), so it
need not match the whole line. Without a ``step`` group the epoch is the step;
without either, the match number is (said in the notes).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError, NoMetricsError
from ..run import EPOCH, Run
from ._collect import Collector, first_run, metric_name
from ._io import read_text
from ._stream import Point

NAME = "pattern"
_COUNTERS = ("step", "epoch")


def sniff(data: bytes, path: Path | None = None) -> float:
    """Never chosen by content: only by ``--pattern``."""
    return 0.0


def compile_pattern(pattern: str, path: Path | str = "--pattern") -> re.Pattern[str]:
    """The compiled regex; InputError (one line) when it is invalid or has no metric group."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise InputError(path, f"bad --pattern {pattern!r}: {e}") from None
    metrics = [g for g in rx.groupindex if g not in _COUNTERS]
    if not metrics:
        raise InputError(path, f"--pattern {pattern!r} has no named metric group; use e.g. (?P<step>\\d+).*?(?P<loss>[\\d.]+)")
    return rx


class StreamParser:
    """Incremental parser for live output with a user regex (see ``readers/_stream.py``)."""

    def __init__(self, pattern: str) -> None:
        self.rx = compile_pattern(pattern)
        self._buf = ""
        self._n = 0

    def feed(self, chunk: str) -> list[Point]:
        parts = re.split(r"\r\n|\r|\n", self._buf + chunk)
        self._buf = parts.pop()
        return [p for ln in parts for p in self._line(ln)]

    def close(self) -> list[Point]:
        rest, self._buf = self._buf, ""
        return self._line(rest) if rest else []

    def _line(self, line: str) -> list[Point]:
        m = self.rx.search(line)
        if not m:
            return []
        rec = _record(m, self._n)
        if rec is None:
            return []
        self._n += 1
        step, epoch, metrics = rec
        return [Point(n, step, v, epoch) for n, v in metrics.items()]


def _record(m: re.Match[str], index: int) -> tuple[int, float | None, dict[str, float]] | None:
    g = m.groupdict()
    metrics: dict[str, float] = {}
    for k, v in g.items():
        if k in _COUNTERS or v is None:
            continue
        try:
            metrics[metric_name(k)] = float(v)
        except ValueError:
            continue
    if not metrics:
        return None
    epoch = _float(g.get("epoch"))
    step_v = _float(g.get("step"))
    step = int(step_v) if step_v is not None else (int(epoch) if epoch is not None else index)
    return step, epoch, metrics


def _float(v: str | None) -> float | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


def read(path: Path | str, *, pattern: str) -> Run:
    """The run read from ``path`` with ``pattern`` (the first when the step counter restarts into a new run)."""
    return first_run(read_all(path, pattern=pattern))


def read_all(path: Path | str, *, pattern: str) -> list[Run]:
    p = Path(path)
    rx = compile_pattern(pattern, p)
    text = read_text(p)
    col = Collector(p.stem, NAME, str(p))
    n = 0
    for i, line in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        m = rx.search(line)
        if not m:
            continue
        rec = _record(m, n)
        if rec is None:
            col.skipped += 1
            continue
        n += 1
        step, epoch, metrics = rec
        if epoch is not None and "step" in rx.groupindex:
            metrics[EPOCH] = epoch
        col.add(step, metrics, epoch=epoch, where=f"line {i}")
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, f"--pattern {pattern!r} matched no line with a number in its metric groups")
    for r in runs:
        if "step" not in rx.groupindex:
            r.notes.append("--pattern has no step group: " + ("the epoch is the step" if "epoch" in rx.groupindex else "the match number is the step"))
            r.steps_per_epoch = None if "epoch" in rx.groupindex else r.steps_per_epoch
    return runs
