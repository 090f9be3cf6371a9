"""The JSON report: ``Diagnosis.to_dict()`` serialised, strictly (no NaN/Infinity tokens).

One run gives one object; several runs give an array of objects (the order of
the paths given, folders expanded in name order). ``allow_nan=False`` makes a
non-finite float that slipped past ``to_dict`` an error here rather than an
invalid JSON document downstream; anything not JSON-native becomes a string.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..diagnosis import Diagnosis


def to_json_value(diagnoses: Sequence[Diagnosis]) -> Any:
    """One object for one run, a list for several."""
    items = [d.to_dict() for d in diagnoses]
    return items[0] if len(items) == 1 else items


def render_json(diagnoses: Diagnosis | Sequence[Diagnosis]) -> str:
    """The JSON text (indented, trailing newline)."""
    ds = [diagnoses] if isinstance(diagnoses, Diagnosis) else list(diagnoses)
    return json.dumps(to_json_value(ds), indent=2, allow_nan=False, default=str) + "\n"


__all__ = ["render_json", "to_json_value"]
