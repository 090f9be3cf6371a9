"""The check that keeps invalid input from getting a verdict.

A run with no usable point (an empty ``log_history``, steps that are all null,
booleans or strings, values that are all NaN) would otherwise be reported
"healthy" with exit 0, and a CI gate would pass on a broken file. Every front
door that gives a verdict (``analyze``, ``compare``, ``Guard.diagnose``) calls
:func:`require_points` first.
"""

from __future__ import annotations

import math

from .errors import InputError
from .run import Run

# Series that say where a run is, not how it is doing: a run holding only these has no metric.
_BOOKKEEPING = {"epoch", "learning_rate", "lr", "step", "num_input_tokens_seen"}


def usable_points(run: Run) -> int:
    """Points with a finite value in the run's metric series (the epoch counter and LR do not count)."""
    n = 0
    for name in run.history:
        if name in _BOOKKEEPING:
            continue
        s = run.history[name]
        n += sum(1 for v in s.values if math.isfinite(float(v)))
    return n


def require_points(run: Run, where: object) -> None:
    """InputError naming ``where`` when ``run`` has no usable metric point, saying what was dropped."""
    if usable_points(run) > 0:
        return
    skipped = getattr(run, "skipped_lines", 0) or 0
    dropped = f"; {skipped} entries dropped (no numeric step, or no numeric value)" if skipped else ""
    raise InputError(where, f"no usable metric points (empty log, or every step null, boolean or text){dropped}; "
                            "nothing to diagnose")


__all__ = ["require_points", "usable_points"]
