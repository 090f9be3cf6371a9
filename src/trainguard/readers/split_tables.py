"""One run written as several tables in one folder: a train CSV beside a validation CSV, W&B chart exports.

Read one by one, such files look like separate runs (and a validation table
alone looks like a train-only run whose "loss" is the train loss). So the
folder reader asks this module first:

* :func:`find_pair`: exactly one CSV/TSV named for training (``train``) and
  one named for validation (``val``, ``valid``, ``validation``, ``eval``,
  ``dev``) in the same folder are one run. The validation file's metrics
  become ``eval_*`` (its ``loss`` or ``total_loss`` is the eval loss); both
  files share the step column (or ``epoch``, or the row number).
* :func:`join_exports`: W&B panel exports of the same W&B run in the same
  folder (one chart per file) are one run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import NoMetricsError
from ..run import EPOCH, EVAL_LOSS, TRAIN_LOSS, Run, Series

NAME = "csv_pair"
_TABLE_SUFFIXES = (".csv", ".tsv")
_TRAIN = re.compile(r"(?:^|[^a-z])train(?:ing)?(?:[^a-z]|$)", re.I)
_VAL = re.compile(r"(?:^|[^a-z])(?:val|valid|validation|eval|evaluation|dev)(?:[^a-z]|$)", re.I)


def find_pair(files: list[Path]) -> tuple[Path, Path] | None:
    """(train table, validation table) when the folder's tables are exactly one of each, else None."""
    tables = [f for f in files if f.suffix.lower() in _TABLE_SUFFIXES]
    train = [f for f in tables if _TRAIN.search(f.stem) and not _VAL.search(f.stem)]
    val = [f for f in tables if _VAL.search(f.stem) and not _TRAIN.search(f.stem)]
    if len(train) == 1 and len(val) == 1:
        return train[0], val[0]
    return None


def eval_name(name: str) -> str:
    """The eval-side name of a metric read from a validation table (``train_loss`` -> ``eval_loss``)."""
    if name.startswith("eval_") or name == EPOCH:
        return name
    if name == TRAIN_LOSS:
        return EVAL_LOSS
    return "eval_" + name.removeprefix("train_")


def read_pair(train: Path, val: Path) -> Run:
    """The run held by a train table and a validation table, named after their folder."""
    from . import table

    tr = table.read(train)
    va = table.read(val)
    run = Run(name=train.parent.name or train.stem, format=NAME, sources=[str(train), str(val)])
    for name, s in tr.history.items():
        if _is_index(name):
            continue
        run.history.set(name, s)
    for name, s in va.history.items():
        if _is_index(name) or name == EPOCH:
            continue
        run.history.set(eval_name(name), Series(s.steps, s.values, s.epochs, s.wall_time))
    if not run.history.get(EVAL_LOSS) and not run.history.get(TRAIN_LOSS):
        raise NoMetricsError(train.parent, f"{train.name} and {val.name} hold no loss column")
    run.notes.extend(tr.notes)
    run.notes.append(f"one run from two tables: {train.name} (train) and {val.name} (validation, read as eval_*)")
    run.skipped_lines = tr.skipped_lines + va.skipped_lines
    return run


def _is_index(name: str) -> bool:
    """A pandas index column written without a header (``""``, ``unnamed:_0``) is not a metric."""
    return name in ("", "index") or name.startswith("unnamed")


def join_exports(runs: list[Run]) -> list[Run]:
    """Runs with W&B exports of the same W&B run from the same folder joined into one, in first-seen order."""
    out: list[Run] = []
    seen: dict[tuple[str, str], Run] = {}
    for r in runs:
        if r.format != "wandb_export" or not r.sources:
            out.append(r)
            continue
        key = (str(Path(r.sources[0]).parent), r.name)
        base = seen.get(key)
        if base is None:
            seen[key] = r
            out.append(r)
            continue
        for name, s in r.history.items():
            old = base.history.get(name)
            if old is not None:
                s = Series(np.concatenate([old.steps, s.steps]), np.concatenate([old.values, s.values])).sorted()
            base.history.set(name, s)
        base.sources.extend(r.sources)
        base.skipped_lines += r.skipped_lines
    for r in out:
        if r.format == "wandb_export" and len(r.sources) > 1:
            r.notes.append(f"one W&B run from {len(r.sources)} chart exports: {', '.join(Path(s).name for s in r.sources)}")
    return out
