"""The optional C extension :mod:`trainguard._speedups`, or None when it is not there or is switched off.

Readers look up :data:`speedups` at call time and take their pure-Python path
when it is None, so that a machine without a compiler still installs and reads
everything (only slower), and so that the tests can run both paths on the same
files (``monkeypatch.setattr(_compiled, "speedups", None)``).
``TRAINGUARD_NO_SPEEDUPS=1`` switches the extension off for a whole process:
the way to rule it out when a reading looks wrong.
"""

from __future__ import annotations

import os
from types import ModuleType


def load() -> ModuleType | None:
    """The extension module, unless it was not built or ``TRAINGUARD_NO_SPEEDUPS`` is set (and not ``0``)."""
    if os.environ.get("TRAINGUARD_NO_SPEEDUPS", "").strip() not in ("", "0"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


speedups: ModuleType | None = load()
