"""A JSON document holding a list of per-step metric dicts under any key.

Scripts dump their history as one JSON file of their own shape::

    {"run_name": "gpt2-lora", "lr": 2e-4,
     "metrics": [{"step": 100, "train_loss": 2.31, "val_loss": 2.40}, ...]}

The list is found wherever it is (the first list of dicts with a step-like
key, searched breadth-first a few levels down), so no key name is assumed.
Top-level scalars beside it (``lr``, ``epochs``) are kept as config values
sourced to the file, and a ``run_name``/``name`` names the run. Records use
the shared names and restart rules of :mod:`._collect`. A list of dicts with
no step-like key uses the position in the list as the step (said in notes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._numbers import as_float
from ..errors import NoMetricsError
from ..run import EPOCH, Run
from ._collect import Collector, first_run, metric_name
from ._io import read_json

NAME = "json_metrics"
STEP_KEYS = ("step", "global_step", "steps", "iteration", "iter", "current_steps", "_step", "num_updates", "epoch")
_MAX_DEPTH = 4


def _lists(obj: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Lists of dicts inside ``obj``, shallowest first."""
    queue: list[tuple[str, Any, int]] = [(path, obj, depth)]
    while queue:
        p, o, d = queue.pop(0)
        if isinstance(o, list) and o and all(isinstance(x, dict) for x in o[:20]):
            yield p, o
            continue
        if isinstance(o, dict) and d < _MAX_DEPTH:
            queue.extend((f"{p}.{k}" if p else str(k), v, d + 1) for k, v in o.items() if isinstance(v, (dict, list)))


def _step_key(rows: list[dict[str, Any]]) -> str | None:
    for k in STEP_KEYS:
        if sum(1 for r in rows[:50] if isinstance(r.get(k), (int, float))) >= min(len(rows), 50) * 0.8:
            return k
    return None


def _metric_rows(obj: Any) -> tuple[str, list[dict[str, Any]], str | None] | None:
    """(where, rows, step key) of the metric list in ``obj``: step-keyed lists first, then any numeric list."""
    fallback = None
    for where, rows in _lists(obj):
        numeric = sum(1 for r in rows[:20] for v in r.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
        if not numeric:
            continue
        sk = _step_key(rows)
        if sk is not None:
            return where, rows, sk
        if fallback is None and any("loss" in str(k).lower() for r in rows[:5] for k in r):
            fallback = (where, rows, None)
    return fallback


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.55 for one JSON document (not JSON lines) whose head shows a list of dicts with a step or loss key."""
    s = data.lstrip()
    if s[:1] not in (b"{", b"["):
        return 0.0
    if b'"log_history"' in s[:65536]:
        return 0.0  # trainer_state.json
    head = s[:65536]
    if b"[" not in head or not any(f'"{k}"'.encode() in head for k in (*STEP_KEYS, "loss", "train_loss", "val_loss")):
        return 0.0
    if head.count(b"\n{") > 2 and s[:1] == b"{":
        return 0.0  # JSON lines
    return 0.55


def read(path: Path | str) -> Run:
    """The run in the JSON file (the first when the step restarts; see :func:`read_all`)."""
    return first_run(read_all(path))


def read_all(path: Path | str) -> list[Run]:
    """Every run in the JSON metric list at ``path``."""
    p = Path(path)
    obj = read_json(p)
    found = _metric_rows(obj)
    if found is None:
        raise NoMetricsError(p, "no list of metric records (dicts with a step or loss key) in this JSON")
    where, rows, sk = found
    name = p.stem
    if isinstance(obj, dict):
        for k in ("run_name", "name", "experiment", "run"):
            if isinstance(obj.get(k), str) and obj[k].strip():
                name = obj[k].strip()
                break
    col = Collector(name, NAME, str(p))
    bad = 0
    for i, r in enumerate(rows):
        st = r.get(sk) if sk else i
        if not isinstance(st, (int, float)) or isinstance(st, bool) or st != st:
            bad += 1
            continue
        metrics: dict[str, float] = {}
        for k, v in r.items():
            if k == sk or not isinstance(k, str):
                continue
            f = as_float(v)
            if f is not None:
                metrics[metric_name(k)] = f
        ep = metrics.get(EPOCH)
        col.add(int(st), metrics, epoch=ep, where=f"{where}[{i}]")
    col.skipped = bad
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, f"the list at {where or 'the top'} holds no numeric metrics")
    for r in runs:
        r.notes.insert(0, f"metric records from the list at {where or 'the top level'} of {p.name}"
                       + ("" if sk else " (no step key: the position in the list is the step)"))
        if sk == "epoch":
            r.steps_per_epoch = None
    if isinstance(obj, dict):
        from ..configs import canonical_key

        for k, v in obj.items():
            if isinstance(v, (int, float, str, bool)) and k not in ("run_name", "name"):
                runs[-1].config.set(canonical_key(k), v, p.name)
    return runs


__all__ = ["NAME", "read", "read_all", "sniff"]
