"""W&B panel CSV exports: ``"Step","<run> - <key>","<run> - <key>__MIN","<run> - <key>__MAX"``.

A chart exported from the W&B UI has one ``Step`` column and, per run shown
in the panel, a value column plus ``__MIN``/``__MAX`` band columns (the
smoothing/sampling envelope, never a point). One file may hold several runs,
one Run each, named as W&B names them. The key is the logged one
(``batch/loss``, ``epoch/val_loss``, ``train/loss``); a Keras-style W&B group
prefix (``batch/``, ``epoch/``) is dropped before the shared name table, so
``batch/loss`` is the train loss and ``epoch/val_loss`` the eval loss.

One chart is one metric, so a run is usually spread over several exports;
``folder.py`` joins the exports of one run that sit in one folder.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path

import numpy as np

from ..errors import InputError, NoMetricsError
from ..run import Run, Series
from ._collect import metric_name
from ._io import decode, read_text

NAME = "wandb_export"
_COL = re.compile(r"^(?P<run>.+?) - (?P<key>.+?)(?P<band>__MIN|__MAX)?$")
_GROUPS = ("batch/", "epoch/", "charts/", "step/", "iteration/")


def _header(data: bytes) -> list[str]:
    first = decode(data[:8192]).splitlines()[:1]
    if not first:
        return []
    try:
        return next(csv.reader(first))
    except (csv.Error, StopIteration):
        return []


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.9 for a CSV whose first column is ``Step`` and whose others are ``<run> - <key>``."""
    cols = _header(data)
    if len(cols) < 2 or cols[0].strip().lower() not in ("step", "_step", "epoch"):
        return 0.0
    return 0.9 if all(_COL.match(c) for c in cols[1:]) else 0.0


def key_name(key: str) -> str:
    """The canonical name of a W&B key (``batch/loss`` -> ``train_loss``, ``epoch/val_loss`` -> ``eval_loss``)."""
    k = key.strip()
    for g in _GROUPS:
        if k.lower().startswith(g) and len(k) > len(g):
            k = k[len(g):]
            break
    return metric_name(k)


def read(path: Path | str) -> Run:
    """The first run of the export (``read_all`` gives each when the chart shows several)."""
    return read_all(path)[0]


def read_all(path: Path | str) -> list[Run]:
    """One Run per W&B run shown in the exported chart at ``path``."""
    p = Path(path)
    rows = list(csv.reader(io.StringIO(read_text(p))))
    if len(rows) < 2:
        raise NoMetricsError(p, "W&B export has a header but no rows")
    header = rows[0]
    width = len(header)
    body = [r for r in rows[1:] if r]
    bad = [i for i, r in enumerate(body) if len(r) != width]
    if bad:
        raise InputError(p, f"ragged rows: line {bad[0] + 2} has {len(body[bad[0]])} fields, the header has {width}")
    cols = list(zip(*body, strict=True))
    steps = _floats(cols[0])
    ok = np.isfinite(steps)
    runs: dict[str, Run] = {}
    for i, h in enumerate(header[1:], 1):
        m = _COL.match(h)
        if m is None or m.group("band"):
            continue
        v = _floats(cols[i])
        sel = ok & ~np.isnan(v)
        if not sel.any():
            continue
        rname = m.group("run").strip()
        run = runs.setdefault(rname, Run(name=rname, format=NAME, sources=[str(p)]))
        name = key_name(m.group("key"))
        ser = Series(steps[sel].astype(np.int64), v[sel])
        old = run.history.get(name)
        if old is not None:
            ser = Series(np.concatenate([old.steps, ser.steps]), np.concatenate([old.values, ser.values])).sorted()
        run.history.set(name, ser)
    if not runs:
        raise NoMetricsError(p, "W&B export holds no values")
    out = list(runs.values())
    for r in out:
        r.notes.append(f"W&B panel export ({p.name}): __MIN/__MAX band columns are not points and were left out")
    if not ok.all():
        out[-1].skipped_lines += int((~ok).sum())
    return out


def _floats(cells: tuple[str, ...]) -> np.ndarray:
    """A column as float64 (empty cells NaN) in one numpy call; cell by cell only when a cell is not a number."""
    a = np.char.strip(np.asarray(cells, dtype=str))
    a = np.where(a == "", "nan", a)
    try:
        return a.astype(np.float64)
    except ValueError:
        out = np.full(len(cells), np.nan)
        for i, c in enumerate(a.tolist()):
            with contextlib.suppress(ValueError):
                out[i] = float(c)
        return out
