"""What a detector returns: a Finding, with a stable code and a severity.

Codes are API (the JSON contract and user scripts match on them): never
rename one. A sub-kind goes into ``evidence["kind"]``, not a new code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

CODES: tuple[str, ...] = (
    "overfitting",
    "memorization",
    "suspicious_fast_drop",
    "nan_loss",
    "divergence",
    "loss_spike",
    "instability",
    "plateau",
    "grad_norm_collapse",
    "grad_norm_explosion",
    "lr_schedule_mismatch",
    "eval_metric_explosion",
    "wasted_compute",
    "best_checkpoint_not_saved",
    "no_eval_data",
    # additions beyond the first contract (free to add, never to rename)
    "slowdown",
    "memory_climb",
    "no_learning",
    "clipping_always_active",
    "stall",  # live sinks: no new output or step for far longer than a step takes
    "crashed",  # live sinks: the command exited non-zero, or was killed, without trainguard stopping it
)


class Severity(str, enum.Enum):
    """How bad a finding is. Ordered: info < warning < error < critical.

    error and above make ``trainguard analyze`` exit 1 (usable as a CI gate)
    and are what the default live policy stops on.
    """

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class Finding:
    """One thing a detector saw, with the numbers that show it.

    ``message`` is one sentence with the numbers in it; ``evidence`` holds the
    same numbers as values (JSON-safe: str, int, float, bool, None, lists and
    dicts of those); ``confidence`` in [0, 1] says how sure the detector is.
    """

    code: str
    severity: Severity
    message: str
    start_step: int | None = None
    end_step: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown finding code {self.code!r}; add it to findings.CODES")
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity(self.severity))

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "message": self.message,
            "evidence": self.evidence,
            "confidence": round(float(self.confidence), 3),
        }


def worst(findings: list[Finding]) -> Severity | None:
    """The highest severity among ``findings``, or None when there are none."""
    return max((f.severity for f in findings), default=None, key=lambda s: s.rank)


__all__ = ["CODES", "Finding", "Severity", "worst"]
