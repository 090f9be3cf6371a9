"""Megatron-LM and NeMo 2 stdout: ``iteration 100/ 1000 | ... | lm loss: 2.3E+00 |``.

Megatron prints one ``|``-separated line per log interval::

     iteration      100/    1000 | consumed samples: 12800 | elapsed time per iteration (ms): 512.3 |
     learning rate: 3.000E-04 | global batch size: 128 | lm loss: 2.312E+00 | loss scale: 1.0 |
     grad norm: 1.234 | number of skipped iterations: 0 | number of nan iterations: 0 |

and validation blocks ``validation loss at iteration 100 | lm loss value: 2.2E+00 | lm loss PPL: 9.0E+00 |``
(``validation loss at the end of training`` belongs to the last iteration).
``lm loss`` is the train loss; the iteration is the step and its total the
planned steps. Counters such as consumed samples, skipped/nan iteration
counts and the loss scale are kept under their own names; ``elapsed time per
iteration (ms)`` becomes ``step_time`` in seconds. NeMo 2 prints the same
shape (``Training epoch 0, iteration 10/99 | lr: ... | reduced_train_loss: 2.30 |
val_loss: 2.1 |``); its ``reduced_train_loss`` is the train loss.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import NoMetricsError
from ..run import EVAL_LOSS, LEARNING_RATE, STEP_TIME, TRAIN_LOSS, Run
from ._collect import Collector, first_run, metric_name
from ._io import decode, read_text

NAME = "megatron"
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
_ITER = re.compile(r"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|(.*)$", re.M)
_VAL = re.compile(r"validation loss at (?:iteration (\d+)|the end of training)[^|]*\|(.*)$", re.I)
_PAIR = re.compile(r"\s*([A-Za-z][\w ()/.-]*?)\s*:\s*(" + _NUM + r")\s*$", re.I)
_NAMES = {
    "lm loss": TRAIN_LOSS,
    "learning rate": LEARNING_RATE,
    "grad norm": "grad_norm",
    "elapsed time per iteration (ms)": STEP_TIME,
    "lm loss value": EVAL_LOSS,
    "lm loss ppl": "eval_perplexity",
    # NeMo 2 (``Training epoch 0, iteration 10/99 | lr: ... | reduced_train_loss: 2.30 | ...``)
    "reduced_train_loss": TRAIN_LOSS,
    "lr": LEARNING_RATE,
    "train_step_timing in s": STEP_TIME,
    "global_step": "",
    "epoch": "",
}


def _pairs(body: str, *, val: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in body.split("|"):
        m = _PAIR.match(part)
        if not m:
            continue
        k = m.group(1).strip().lower()
        v = float(m.group(2))
        name = _NAMES.get(k)
        if name == "":
            continue  # counters, not metrics
        name = name or metric_name(k, eval_context=val)
        if k.endswith("(ms)"):
            v /= 1000.0
        out[name] = v
    return out


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.85 with ``iteration N/ M |`` lines holding ``lm loss:`` (or another ``key: value`` field); else 0."""
    text = decode(data[:65536])
    hits = sum(1 for m in _ITER.finditer(text) if ":" in m.group(3))
    if hits >= 1 and ("lm loss" in text or "loss:" in text):
        return 0.85
    return 0.0


def read(path: Path | str) -> Run:
    """The first run of the log (``read_all`` gives each when the iteration counter restarts)."""
    return first_run(read_all(path))


def read_all(path: Path | str) -> list[Run]:
    """Every Megatron run in the log at ``path``, oldest first."""
    p = Path(path)
    col = Collector(p.stem, NAME, str(p))
    last = 0
    planned = None
    for n, line in enumerate(read_text(p).splitlines(), 1):
        if "iteration" not in line:
            continue
        m = _ITER.search(line)
        if m:
            last, planned = int(m.group(1)), int(m.group(2))
            col.add(last, _pairs(m.group(3), val=False), where=f"line {n}")
            continue
        m = _VAL.search(line)
        if m:
            step = int(m.group(1)) if m.group(1) else last
            col.add(step, _pairs(m.group(2), val=True), where=f"line {n}")
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, "no Megatron 'iteration N/ M | ... | lm loss: x |' lines found")
    if planned:
        runs[-1].planned_steps = planned
        runs[-1].config.set("max_steps", planned, f"{p.name} (iteration N/{planned})")
    return runs
