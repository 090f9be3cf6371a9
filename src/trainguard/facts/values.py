"""What the facts layer hands to every judgement and report: the best point, the waste after it, the LR schedule.

They live here, not in :mod:`trainguard.diagnosis`, so that detectors can
read them without importing the diagnosis (which re-exports them unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Best:
    """The best eval point (or best train point when there is no eval)."""

    metric: str
    step: int
    value: float
    epoch: float | None = None
    checkpoint_saved: bool | None = None  # None: unknown (no checkpoint info)
    checkpoint_path: str | None = None


@dataclass(frozen=True)
class Waste:
    """Compute spent after the best point."""

    steps: int = 0
    fraction: float = 0.0
    hours: float | None = None
    gpu_hours: float | None = None
    gpus: int | None = None
    gpus_assumed: bool = False  # True when the GPU count was not found and 1 was assumed
    deletable_checkpoints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LRSchedule:
    """The LR schedule actually followed against the configured one."""

    inferred: dict[str, Any] | None = None  # {"shape": "linear", "peak": 2e-4, "warmup_steps": 0, ...}
    configured: dict[str, Any] | None = None  # {"type": "constant", "source": "training_args.json"}
    cause: str | None = None  # why they differ, when known
    matches: bool | None = None  # None: nothing to compare


__all__ = ["Best", "LRSchedule", "Waste"]
