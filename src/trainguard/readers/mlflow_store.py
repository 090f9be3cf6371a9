"""MLflow file store: a run folder (``metrics/``, ``params/``, ``meta.yaml``) or an ``mlruns/`` root.

The file store is plain text, so it is read without the ``mlflow`` package
(``import mlflow`` costs about a second, and the file store raises in mlflow
3.x unless ``MLFLOW_ALLOW_FILE_STORE`` is set). Layout, as mlflow writes it::

    mlruns/<experiment id>/<run id>/meta.yaml
                                   /metrics/<name>     lines "<timestamp ms> <value> <step>"
                                   /params/<name>      the value, no newline
                                   /tags/mlflow.runName

A ``/`` in a metric name becomes sub-folders (``metrics/train/loss``), so the
name is the path below ``metrics/``. Params are a config source, mapped like a
TrainingArguments dict (the HF MLflow callback logs TrainingArguments as params).
A line that does not parse is a counted skip, never an exception.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, NoMetricsError
from ..run import Run, Series
from ._names import canonical

NAME = "mlflow_store"
FORMAT = "mlflow_file_store"
SOURCE = "MLflow params"
_MAX_PARAM_BYTES = 64 * 1024  # a param is at most 6000 chars in MLflow; anything bigger is not a param


def is_run_dir(p: Path) -> bool:
    """A run folder: ``metrics/`` beside ``meta.yaml``, ``params/`` or ``tags/``."""
    return (p / "metrics").is_dir() and any((p / n).exists() for n in ("meta.yaml", "params", "tags"))


def run_dirs(root: Path) -> list[Path]:
    """Every run folder under an ``mlruns/`` root, an experiment folder, or ``root`` itself."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for depth in (1, 2):  # experiment folder -> runs; mlruns root -> experiments -> runs
        pattern = "/".join(["*"] * depth)
        found = sorted(p for p in root.glob(pattern) if p.is_dir() and not p.name.startswith(".") and p.name != ".trash"
                       and ".trash" not in p.parts and is_run_dir(p))
        if found:
            break
    return found


def sniff_dir(path: Path) -> float:
    """0.95 for a run folder or a folder of them (a file-store root), else 0: it is never a guess."""
    try:
        return 0.95 if run_dirs(Path(path)) else 0.0
    except OSError:
        return 0.0


def read_dir(path: Path | str) -> list[Run]:
    """One Run per MLflow run folder at or under ``path``."""
    dirs = run_dirs(Path(path))
    if not dirs:
        raise NoMetricsError(path, "no MLflow run folder (metrics/ beside meta.yaml or params/) found")
    return [read_run_dir(d) for d in dirs]


def read_run_dir(d: Path) -> Run:
    """One MLflow run folder as a Run: metric histories with steps and wall times, params as config."""
    from ..configs import config_from_dict

    d = Path(d)
    meta = _meta(d)
    name = _text(d / "tags" / "mlflow.runName") or str(meta.get("run_name") or "") or d.name
    run = Run(name=name, format=FORMAT, sources=[str(d)])
    mdir = d / "metrics"
    for f in sorted(p for p in mdir.rglob("*") if p.is_file()):
        key = f.relative_to(mdir).as_posix()
        series, bad = _metric_file(f)
        run.skipped_lines += bad
        if len(series):
            run.history.set(canonical(key), series)
    if not any(len(s) for s in run.history.values()):
        raise NoMetricsError(d, "MLflow run folder holds no metric values under metrics/")
    params = {}
    pdir = d / "params"
    if pdir.is_dir():
        for f in sorted(p for p in pdir.rglob("*") if p.is_file()):
            v = _text(f)
            if v is not None:
                params[f.relative_to(pdir).as_posix()] = v
    if params:
        run.config.merge(config_from_dict(params, SOURCE))
    _times(run, meta)
    run.notes.append(f"read from an MLflow file store (run {meta.get('run_id') or d.name})")
    return run


def _metric_file(f: Path) -> tuple[Series, int]:
    """Parse ``<ts ms> <value> <step>`` lines (the step is optional in very old stores)."""
    try:
        text = f.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f, f"cannot read ({e.strerror})") from None
    steps: list[int] = []
    values: list[float] = []
    walls: list[float] = []
    bad = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            ts = float(parts[0])
            v = float(parts[1])
            st = int(float(parts[2])) if len(parts) > 2 else len(steps)
        except (ValueError, IndexError):
            bad += 1
            continue
        steps.append(st)
        values.append(v)
        walls.append(ts / 1000.0 if math.isfinite(ts) else math.nan)
    if not steps:
        return Series(), bad
    s = np.asarray(steps, np.int64)
    order = np.argsort(s, kind="stable")
    return Series(s[order], np.asarray(values)[order], None, np.asarray(walls)[order]), bad


def _meta(d: Path) -> dict[str, Any]:
    p = d / "meta.yaml"
    if not p.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _times(run: Run, meta: dict[str, Any]) -> None:
    start, end = meta.get("start_time"), meta.get("end_time")
    if isinstance(start, (int, float)) and start > 0:
        run.start_time = start / 1000.0
    if isinstance(end, (int, float)) and end > 0:
        # not train_runtime: the run's span includes setup and evaluation; the metric timestamps
        # give the seconds per step (Run.seconds_per_step) without them
        run.end_time = end / 1000.0
    status = meta.get("status")
    if status in (3, "FINISHED"):
        run.finished = True


def _text(p: Path) -> str | None:
    try:
        if not p.is_file() or p.stat().st_size > _MAX_PARAM_BYTES:
            return None
        return p.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


__all__ = ["FORMAT", "NAME", "is_run_dir", "read_dir", "read_run_dir", "run_dirs", "sniff_dir"]
