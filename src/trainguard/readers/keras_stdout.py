"""Keras ``model.fit()`` stdout: ``Epoch 3/10`` headers, then progress lines ``... - loss: 0.41 - val_loss: 0.52``.

Keras prints one header per epoch and redraws a progress line (``\\r`` or
``\\b`` in a terminal, one line per update when piped) whose last version holds
the epoch's metrics; with validation data that version also holds the
``val_*`` metrics. So one record per epoch is kept: the last metric line
before the next header (a version with ``val_`` keys wins over an ETA line
printed after it, which no real log does but a pasted one might).

The step is the epoch number as printed (1-based), said in the notes: the log
has no batch counter. Keras 2 (``Train on 58 samples``, ``- 0s 7ms/step -``)
and Keras 3 (``━━━━ 2s 20ms/step - accuracy: ... - loss: ...``) print the same
``- key: value`` pairs. An epoch counter that starts again (a second ``fit``
in the same script, an aborted attempt) becomes a new, marked run.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import NoMetricsError
from ..run import Run
from ._collect import Collector, first_run, metric_name
from ._io import decode, read_text

NAME = "keras_stdout"
FORMAT = "keras_stdout"

_HEADER = re.compile(r"^\s*Epoch (\d+)/(\d+)\s*$")
_PAIR = re.compile(r"(?:^|\s)-\s+([A-Za-z][\w./]*):\s+([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)(?=\s|$)")
_SPLIT = re.compile(r"[\r\x08]+")
_TIME_KEYS = {"eta"}
_RELEVANT = re.compile(r"^.*(?:Epoch \d|loss:).*$", re.M)


def _last_segment(line: str) -> str:
    parts = [p for p in _SPLIT.split(line) if p.strip()]
    return parts[-1] if parts else ""


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.85 with two ``Epoch k/K`` headers and a ``- loss:`` progress line; 0 otherwise."""
    text = decode(data[:65536])
    headers = len(re.findall(r"(?m)^\s*Epoch \d+/\d+\s*$", text))
    if headers >= 2 and re.search(r"\s-\s+(?:\w+_)?loss:\s+[-\d.na]", text):
        return 0.85
    return 0.0


def read(path: Path | str) -> Run:
    """The first run of the log (``read_all`` gives each when the epoch counter restarts)."""
    return first_run(read_all(path))


def read_all(path: Path | str) -> list[Run]:
    """Every ``fit()`` run in the log at ``path``, oldest first; one point per epoch."""
    p = Path(path)
    text = read_text(p)
    col = Collector(p.stem, FORMAT, str(p))
    epoch: int | None = None
    planned: int | None = None
    best: tuple[dict[str, float], int] | None = None  # (metrics, line) of the epoch's final progress line
    orphan = 0

    def flush() -> None:
        nonlocal best
        if best is not None and epoch is not None:
            col.add(epoch, best[0], epoch=float(epoch), where=f"line {best[1]}")
        best = None

    n, pos = 1, 0
    for hit in _RELEVANT.finditer(text):  # one C pass; only header and metric lines come back to Python
        n += text.count("\n", pos, hit.start())
        pos = hit.start()
        line = _last_segment(hit.group(0))
        m = _HEADER.match(line)
        if m:
            flush()
            epoch, planned = int(m.group(1)), int(m.group(2))
            continue
        if "loss:" not in line:
            continue
        metrics: dict[str, float] = {}
        for k, v in _PAIR.findall(line):
            if k.lower() in _TIME_KEYS:
                continue
            metrics[metric_name(k)] = float(v)
        if not metrics:
            continue
        if epoch is None:
            orphan += 1
            continue
        has_val = any(k.startswith("eval_") for k in metrics)
        if best is None or has_val or not any(k.startswith("eval_") for k in best[0]):
            best = (metrics, n)
    flush()
    col.skipped = orphan
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, "no Keras epoch lines ('Epoch k/K' then '- loss: x') found")
    for r in runs:
        r.notes.insert(0, "Keras fit() stdout: one point per epoch, the step is the epoch number as printed (1-based)")
        r.steps_per_epoch = None
    if planned:
        runs[-1].config.set("num_train_epochs", planned, f"{p.name} (Epoch k/{planned} headers)")
    return runs
