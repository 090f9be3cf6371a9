"""JSON-lines metric logs: LLaMA-Factory ``trainer_log.jsonl``, detectron2 ``metrics.json``, torchtune, generic.

One JSON object per line (or one JSON array of objects), each a record with a
step-like key. Per family:

* LLaMA-Factory: ``current_steps`` / ``total_steps`` (-> ``planned_steps``),
  ``loss``, ``lr`` or ``learning_rate``, ``epoch``, ``elapsed_time`` as
  ``H:MM:SS`` (-> wall time since start). The last line carries no loss: it
  marks the end, so the run is ``finished`` when it reaches ``total_steps``.
* detectron2: ``iteration``, ``total_loss``, ``lr``, ``time``; evaluation
  records hold only ``bbox/AP``-style keys, kept as ``eval_bbox/ap``...
* HF-style records: one holding ``eval_*`` keys is an eval record, whose
  other keys (its epoch) are not train metrics.
* nested records (``{"step": 5, "train": {"loss": 1.2}, "val": {"loss": 1.3}}``)
  are flattened to ``train/loss``, ``val/loss`` before the shared names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .._numbers import as_float as _num
from ..errors import NoMetricsError
from ..run import EPOCH, Run
from ._collect import Collector, first_run, metric_name
from ._io import read_text

NAME = "jsonl"

STEP_KEYS = (
    "current_steps",
    "step",
    "global_step",
    "iteration",
    "iter",
    "_step",
    "train/global_step",
    "trainer/global_step",
    "num_updates",
    "steps",
)
_IGNORED = {"total_steps", "percentage", "remaining_time", "elapsed_time", "eta_seconds", "_runtime", "_timestamp", "epoch"}
_EVAL_FAMILIES = re.compile(r"^(bbox|segm|keypoints|sem_seg|panoptic|coco|validation|val|test)/", re.I)
_HMS = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def _first_objects(data: bytes, n: int = 5) -> list[dict[str, Any]]:
    out = []
    for line in data.splitlines()[:50]:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            break
        if not isinstance(obj, dict):
            break
        out.append(obj)
        if len(out) >= n:
            break
    return out


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.8 for JSON lines whose objects carry a step-like key; 0.5 for numeric JSON lines without one."""
    s = data.lstrip()
    if s[:1] == b"[":
        return 0.6 if re.search(rb'\[\s*\{\s*"', s[:200]) and any(k.encode() in s[:4000] for k in STEP_KEYS) else 0.0
    if s[:1] != b"{":
        return 0.0
    objs = _first_objects(s)
    if not objs:
        return 0.0
    if len(objs) == 1 and len(s.splitlines()) > 3:
        return 0.0  # one pretty-printed object: not JSON lines
    if any(k in o for o in objs for k in STEP_KEYS):
        return 0.8
    if any(isinstance(v, (int, float)) for o in objs for v in o.values()):
        return 0.5
    return 0.0




def _seconds(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        m = _HMS.match(v.strip())
        if m:
            d, h, mi, s = m.groups()
            return int(d or 0) * 86400 + int(h) * 3600 + int(mi) * 60 + float(s)
    return None


_CONTAINERS = {"metrics", "scalars", "data", "log", "logs", "values", "summary"}


def _flatten(obj: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Nested records as flat keys: ``{"train": {"loss": 1}}`` -> ``train/loss``; a container key
    (``metrics``, ``scalars`` ...) adds no prefix, so ``{"metrics": {"step": 5}}`` has a ``step``."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        k = str(k)
        key = prefix if (k.lower() in _CONTAINERS and depth == 0) else (f"{prefix}/{k}" if prefix else k)
        if isinstance(v, dict) and depth < 3:
            out.update(_flatten(v, key, depth + 1))
        elif key:
            out[key] = v
    return out


def read(path: Path | str) -> Run:
    """The run in ``path`` (the first when the step counter restarts into a new run; see :func:`read_all`)."""
    return first_run(read_all(path))


def read_all(path: Path | str) -> list[Run]:
    """Every run in the JSON-lines file at ``path``, oldest first."""
    p = Path(path)
    text = read_text(p)
    records: list[tuple[int, Any]] = []
    bad = 0
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            arr = json.loads(stripped)
        except ValueError as e:
            raise NoMetricsError(p, f"not valid JSON ({e}); truncated?") from None
        records = [(i + 1, o) for i, o in enumerate(arr if isinstance(arr, list) else [])]
    else:
        for i, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append((i, json.loads(line)))
            except ValueError:
                bad += 1
    name = p.parent.name if p.stem in ("trainer_log", "metrics", "log") and p.parent.name else p.stem
    col = Collector(name, NAME, str(p))
    col.skipped = bad
    fmt = NAME
    planned: int | None = None
    last_end: tuple[int, float | None] | None = None
    index = 0
    for lineno, obj in records:
        if not isinstance(obj, dict):
            col.skipped += 1
            continue
        if any(isinstance(v, dict) for v in obj.values()):
            obj = _flatten(obj)
        index += 1
        step_key = next((k for k in STEP_KEYS if k in obj), None)
        sv = _num(obj.get(step_key)) if step_key else None
        if step_key == "current_steps":
            fmt = "llamafactory_jsonl"
        elif step_key == "iteration":
            fmt = "detectron2_json"
        total = _num(obj.get("total_steps"))
        if total:
            planned = int(total)
        epoch = _num(obj.get("epoch"))
        wall = _seconds(obj.get("elapsed_time", obj.get("_timestamp")))
        is_eval = any(str(k).startswith("eval_") for k in obj)
        metrics: dict[str, float] = {}
        for k, v in obj.items():
            k = str(k)
            if k == step_key or k in _IGNORED or k in STEP_KEYS:
                continue
            if is_eval and not k.startswith("eval_"):
                continue
            x = _num(v)
            if x is None:
                continue
            key = "eval_" + k if _EVAL_FAMILIES.match(k) and not k.lower().startswith(("val", "test")) else k
            metrics[metric_name(key)] = x
        step = int(sv) if sv is not None else (int(epoch) if epoch is not None and step_key is None else index)
        if not metrics:
            if sv is not None:
                last_end = (int(sv), wall)
            continue
        if epoch is not None and not is_eval:
            metrics[EPOCH] = epoch
        col.add(step, metrics, epoch=epoch, wall_time=wall, where=f"line {lineno}")
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, f"no numeric metrics in {len(records)} JSON records")
    for r in runs:
        r.format = fmt
    last = runs[-1]
    if planned:
        last.planned_steps = planned
        last.config.set("max_steps", planned, p.name)
    if last_end is not None and planned and last_end[0] >= planned:
        last.finished = True  # LLaMA-Factory's closing line: no loss, current_steps == total_steps
        last.train_runtime = last_end[1]
    if not any(k in o for _, o in records if isinstance(o, dict) for k in STEP_KEYS):
        last.notes.append("records carry no step: the record number (or epoch) is used as the step")
    return runs
