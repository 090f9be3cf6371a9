"""One way to turn a logged value into a float, for every reader and the live guard."""

from __future__ import annotations

from typing import Any


def as_float(v: Any) -> float | None:
    """A float from a number, a numeric string or a 0-d tensor/array; None otherwise.

    Strings matter: transformers 5.x logs ``{'loss': '5.351'}``. Booleans are
    not numbers here (``True`` is never a loss). ``'nan'``/``'inf'`` parse, so
    a diverged run's NaN reaches the detectors instead of being dropped.
    """
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    item = getattr(v, "item", None)
    if callable(item):
        try:
            return float(item())
        except (TypeError, ValueError):
            return None
    return None
