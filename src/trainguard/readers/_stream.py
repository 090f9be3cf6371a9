"""Incremental parsing: the shape shared by line-based readers and the live sinks.

A line-based reader exposes a ``StreamParser`` class: ``feed(chunk)`` takes
any piece of text (partial lines are buffered, ``\\r`` and ``\\n`` both end a
line) and returns the metric points completed so far; ``close()`` flushes.
The offline ``read(path)`` of such a reader is a loop over ``feed``, so
``trainguard run`` / ``watch`` parse exactly as ``analyze`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Point:
    """One metric value at one step (canonical name, see ``readers/_names.py``)."""

    name: str
    step: int
    value: float
    epoch: float | None = None
    wall_time: float | None = None


class StreamParser(Protocol):
    def feed(self, chunk: str) -> list[Point]: ...

    def close(self) -> list[Point]: ...
