"""PyTorch Lightning ``CSVLogger`` ``metrics.csv``: sparse columns, train and val rows interleaved.

Lightning writes one row per ``log`` call with every column it has seen so
far, leaving the others empty: a train row has ``train_loss_step`` (or
``loss``), a validation row ``val_loss``, both with ``epoch`` and ``step``.
Reading empty cells as missing (not zero) keeps the two series apart; see
:mod:`.table`, which does the work. ``train_loss_epoch`` (the per-epoch mean)
is kept under its own name, apart from the per-step ``train_loss``.

``test_*`` columns come from ``trainer.test()`` after fitting. When the table
also has ``val_*`` columns, the test values are a held-out score, not
validation points: they are kept as ``eval_test_<metric>``, so the final test loss
is never taken for the best (or last) validation loss.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..run import Run, Series
from . import table
from ._collect import metric_name
from ._io import read_text

NAME = "lightning_csv"


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.85 for a comma-separated table with both ``epoch`` and ``step`` columns (0.9 when named metrics.csv)."""
    score, cols = table.table_score(data)
    if score <= 0 or b"\t" in data.split(b"\n", 1)[0]:
        return 0.0
    if "epoch" in cols and "step" in cols:
        return 0.9 if path is not None and path.name.startswith("metrics.csv") else 0.85
    return 0.0


def read(path: Path | str) -> Run:
    """The ``metrics.csv`` at ``path`` as a Run (format ``lightning_csv``)."""
    return table.read(path, fmt=NAME)


def read_all(path: Path | str) -> list[Run]:
    runs = table.read_all(path, fmt=NAME)
    _split_test_columns(Path(path), runs)
    return runs


def _split_test_columns(p: Path, runs: list[Run]) -> None:
    """Move ``trainer.test()`` points out of the eval series they were mapped onto (see the module docstring)."""
    head = read_text(p).split("\n", 1)[0]
    cols = [c.strip() for c in next(csv.reader(io.StringIO(head)), [])]
    low = [c.lower() for c in cols]
    tests = [c for c in low if c.startswith("test_")]
    if not tests or not any(c.startswith(("val_", "valid_", "validation_")) for c in low):
        return
    rows = list(csv.reader(io.StringIO(read_text(p))))[1:]
    si = low.index("step") if "step" in low else None
    for c in tests:
        i = low.index(c)
        pts = {(int(float(r[si])), float(r[i])) for r in rows if si is not None and len(r) > max(i, si) and r[i].strip() and r[si].strip()}
        if not pts:
            continue
        target = metric_name(cols[i])
        keep_name = "eval_test_" + c.removeprefix("test_")  # an evaluation, but not the validation series
        for run in runs:
            s = run.history.get(target)
            if s is None:
                continue
            is_test = np.array([(int(a), float(b)) in pts for a, b in zip(s.steps, s.values, strict=True)], bool)
            if not is_test.any():
                continue
            run.history.set(keep_name, Series(s.steps[is_test], s.values[is_test], s.epochs[is_test], s.wall_time[is_test]))
            if is_test.all():
                run.history.drop(target)
            else:
                run.history.set(target, Series(s.steps[~is_test], s.values[~is_test], s.epochs[~is_test], s.wall_time[~is_test]))
            run.notes.append(f"{c} is the trainer.test() result, kept as {keep_name} apart from the validation {target}")
