"""Keras ``history.json``: ``{"loss": [...], "val_loss": [...]}``, one list entry per epoch.

``json.dump(model.fit(...).history)`` is how most Keras users keep their
curves. There is no step: entry ``i`` is the end of epoch ``i + 1``, so the
"step" here is really an epoch. We use the epoch number (1-based, as Keras
prints it) as the step, record ``steps_per_epoch = None`` and say so in the
notes, so detectors and reports speak of epochs, not steps. A file saved as
``{"history": {...}}`` (some wrappers) is unwrapped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import NoMetricsError
from ..run import Run, Series
from ._collect import metric_name
from ._io import read_json

NAME = "keras_history"


def _history(obj: Any) -> dict[str, list[Any]] | None:
    if isinstance(obj, dict) and isinstance(obj.get("history"), dict):
        obj = obj["history"]
    if not isinstance(obj, dict) or not obj:
        return None
    lists = {k: v for k, v in obj.items() if isinstance(v, list)}
    if not lists or len(lists) < len(obj) / 2:
        return None
    if not any(all(isinstance(x, (int, float)) or x is None for x in v) and v for v in lists.values()):
        return None
    return lists


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.8 for a JSON object of per-epoch number lists that has a loss key."""
    s = data.lstrip()
    if s[:1] != b"{" or b"log_history" in data:
        return 0.0
    head = s[:4000]
    # a list of numbers under a loss key (a list of dicts is a metric-record list: json_metrics)
    if re.search(rb'"(?:val_)?loss"\s*:\s*\[\s*(?:[-\d.]|NaN|null)', head) or re.search(rb'"history"\s*:\s*\{', head):
        return 0.8
    return 0.0


def read(path: Path | str) -> Run:
    """The history at ``path`` as a Run whose steps are epochs (1-based)."""
    p = Path(path)
    obj = read_json(p)
    hist = _history(obj)
    if hist is None:
        raise NoMetricsError(p, "JSON is not a Keras history (an object of per-epoch lists)")
    run = Run(name=p.parent.name if p.stem == "history" and p.parent.name else p.stem, format=NAME, sources=[str(p)])
    for key, vals in hist.items():
        xs = [(i + 1, float(v)) for i, v in enumerate(vals) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not xs:
            continue
        steps = [e for e, _ in xs]
        run.history.set(metric_name(key), Series(steps, [v for _, v in xs], epochs=[float(e) for e in steps]))
    if not len(run.history):
        raise NoMetricsError(p, "Keras history holds no numeric lists")
    run.steps_per_epoch = None
    run.notes.append("Keras history: one point per epoch; the step is the epoch number (steps per epoch unknown)")
    return run
