"""Coqui TTS / 🐸 Trainer logs: ``--> STEP: 24/406 -- GLOBAL_STEP: 25`` then ``| > key: value (avg)`` lines.

The trainer prints a record over several lines::

     > EPOCH: 0/1000
     --> TIME: 2023-01-04 10:00:00 -- STEP: 24/406 -- GLOBAL_STEP: 25
         | > loss: 3.51  (3.62)
         | > grad_norm: 5.60  (6.01)
         | > current_lr: 2.5e-07
         | > step_time: 0.31  (0.42)
     > EVALUATION
      --> EVAL PERFORMANCE
         | > avg_loss: 3.30 (+0.00)
         | > avg_loss_mel: ... (-0.12)

The value before the parenthesis is the current one (the parenthesis holds a
running average or the change since the last eval). Train records are keyed by
``GLOBAL_STEP``; an eval block belongs to the last global step seen, and its
``avg_`` prefix is dropped (``avg_loss`` -> ``eval_loss``). ANSI colours are stripped.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import NoMetricsError
from ..run import EPOCH, LEARNING_RATE, STEP_TIME, Run
from ._collect import Collector, first_run, metric_name
from ._io import decode, read_text

NAME = "coqui"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STEP = re.compile(r"STEP:\s*(\d+)/(\d+)\s*--\s*GLOBAL_STEP:\s*(\d+)")
_EPOCH = re.compile(r">\s*EPOCH:\s*(\d+)/(\d+)")
_KV = re.compile(r"\|\s*>\s*([\w/.-]+):\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)")
_NAMES = {"current_lr": LEARNING_RATE, "step_time": STEP_TIME}
_SKIP = {"loader_time", "avg_loader_time"}


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.9 with a ``GLOBAL_STEP:`` record line and ``| > key: value`` lines; else 0."""
    text = decode(data[:65536])
    return 0.9 if _STEP.search(_ANSI.sub("", text)) and "| > " in text else 0.0


def read(path: Path | str) -> Run:
    """The first run of the log (``read_all`` gives each when the global step restarts)."""
    return first_run(read_all(path))


def read_all(path: Path | str) -> list[Run]:
    """Every run in the Coqui trainer log at ``path``."""
    p = Path(path)
    col = Collector(p.stem, NAME, str(p))
    step: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    mode = ""  # "train" after a STEP line, "eval" inside an EVAL PERFORMANCE block
    rec: dict[str, float] = {}
    at = 0
    orphans = 0

    def flush() -> None:
        nonlocal rec
        if rec and step is not None:
            if mode == "train" and epoch is not None:
                rec[EPOCH] = float(epoch)
            col.add(step, rec, epoch=None if epoch is None else float(epoch), where=f"line {at}")
        rec = {}

    for n, raw in enumerate(read_text(p).splitlines(), 1):
        line = _ANSI.sub("", raw)
        m = _STEP.search(line)
        if m:
            flush()
            step, mode, at = int(m.group(3)), "train", n
            continue
        m = _EPOCH.search(line)
        if m:
            flush()
            epoch, epochs, mode = int(m.group(1)), int(m.group(2)), ""
            continue
        if "EVAL PERFORMANCE" in line:
            flush()
            mode, at = "eval", n
            continue
        if "> EVALUATION" in line or "> TRAINING" in line or "> TEST" in line:
            flush()
            mode = ""
            continue
        m = _KV.search(line)
        if not m:
            continue
        k, v = m.group(1), float(m.group(2))
        if k in _SKIP:
            continue
        if not mode or step is None:
            orphans += 1
            continue
        if mode == "eval":
            rec[metric_name(k.removeprefix("avg_"), eval_context=True)] = v
        else:
            rec[_NAMES.get(k) or metric_name(k)] = v
    flush()
    col.skipped = orphans
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, "no Coqui trainer records ('--> STEP: i/n -- GLOBAL_STEP: g' then '| > key: value')")
    if epochs:
        runs[-1].config.set("num_train_epochs", epochs, f"{p.name} (EPOCH: k/{epochs})")
    return runs
