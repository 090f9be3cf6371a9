"""PyTorch Lightning ``CSVLogger`` ``metrics.csv``: sparse columns, train and val rows interleaved.

Lightning writes one row per ``log`` call with every column it has seen so
far, leaving the others empty: a train row has ``train_loss_step`` (or
``loss``), a validation row ``val_loss``, both with ``epoch`` and ``step``.
Reading empty cells as missing (not zero) keeps the two series apart; see
:mod:`.table`, which does the work. ``train_loss_epoch`` (the per-epoch mean)
is kept under its own name, apart from the per-step ``train_loss``.
"""

from __future__ import annotations

from pathlib import Path

from ..run import Run
from . import table

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
    return table.read_all(path, fmt=NAME)
