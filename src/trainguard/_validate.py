"""The check that keeps invalid input from getting a verdict.

A run with no usable point (an empty ``log_history``, steps that are all null,
booleans or strings, values that are all NaN) would otherwise be reported
"healthy" with exit 0, and a CI gate would pass on a broken file. Every front
door that gives a verdict (``analyze``, ``compare``, ``Guard.diagnose``) calls
:func:`require_points` first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from .errors import InputError
from .run import Run

# Series that say where a run is, not how it is doing: a run holding only these has no metric.
_BOOKKEEPING = {"epoch", "learning_rate", "lr", "step", "num_input_tokens_seen"}


def usable_points(run: Run) -> int:
    """Points with a finite value in the run's metric series (the epoch counter and LR do not count)."""
    return sum(int(np.count_nonzero(np.isfinite(run.history[name].values)))
               for name in run.history if name not in _BOOKKEEPING)


def _has_usable_point(run: Run) -> bool:
    """Whether any metric series holds a finite value: stops at the first one (a 200 MB log has 10^5 points)."""
    return any(bool(np.isfinite(run.history[name].values).any())
               for name in run.history if name not in _BOOKKEEPING)


def require_points(run: Run, where: object) -> None:
    """InputError naming ``where`` when ``run`` has no usable metric point, saying what was dropped."""
    if _has_usable_point(run):
        return
    skipped = getattr(run, "skipped_lines", 0) or 0
    dropped = f"; {skipped} entries dropped (no numeric step, or no numeric value)" if skipped else ""
    raise InputError(where, f"no usable metric points (empty log, or every step null, boolean or text){dropped}; "
                            "nothing to diagnose")


@contextlib.contextmanager
def reading(path: object) -> Iterator[None]:
    """Turn what absurd numbers and nesting make Python raise while reading ``path`` into one InputError.

    A step of 1e30 overflows the int64 step column (OverflowError), a 5,000-digit
    number trips Python's integer-string limit (ValueError), 100,000 nested
    brackets exhaust the recursion limit. Readers check what they can; this is
    the net at the front door, so the user gets the file's name, not "internal error".
    """
    try:
        yield
    except OverflowError:
        raise InputError(path, "a number out of range (a step or value too large for a 64-bit counter, such as 1e30)") from None
    except RecursionError:
        raise InputError(path, "too deeply nested (thousands of levels of [ or {); not a log or config") from None
    except ValueError as e:
        if "digits" not in str(e):  # only Python's integer-string limit; other ValueErrors are bugs
            raise
        raise InputError(path, f"a number out of range ({str(e).split(';')[0]})") from None


__all__ = ["reading", "require_points", "usable_points"]
