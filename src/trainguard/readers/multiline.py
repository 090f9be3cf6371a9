"""Multi-line record logs: a counter line, then one ``key: value`` per line until the next counter.

Hand-written loops often print a record over several lines::

    Epoch: 3
    Training loss: 0.417
    Validation loss: 0.451
    Validation f1: 0.800
    Saved
    -----------------------------------

The single-line readers see no record here (no line holds both a counter and
a metric). A record line may also hold several pairs
(``train_loss: 0.9 | val_loss: 1.0``). A *header* is a line holding only a counter (``Epoch: 3``,
``epoch 3``, ``Epoch 3/10``, ``===== Step 400 =====``); the ``key: value`` or
``key = value`` lines after it, up to the next header, are its metrics. Other
lines (``Saved``, rules, messages) are ignored, and a metric line before the
first header is counted as skipped. Keys go through the shared names
(``Validation loss`` -> ``eval_loss``, ``test accuracy`` -> ``eval_accuracy``).

The step is the counter as printed. A counter that starts again (a second
training in the same script, cross-validation folds) becomes a new, marked run.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import NoMetricsError
from ..run import Run
from ._collect import Collector, first_run, metric_name
from ._io import decode, read_text

NAME = "multiline"

# Each run of blanks is its own: two starred classes side by side (``[^\S\n]*\]?[^\w\n]*``) let the
# engine try every split of a long blank run, and a 40 KB line of spaces took 30 s.
_HEADER_RX = (r"[\W_]*?(?P<kw>epoch|step|iteration|iter|round)\b[^\S\n]*(?:[:#=][^\S\n]*)?(?:\[[^\S\n]*)?(?P<n>\d+)"
              r"(?:[^\S\n]*/[^\S\n]*(?P<tot>\d+))?[^\w\n]*")
_KV_RX = (r"[^\S\n]*(?:[|>*-][^\S\n]*)*(?P<key>[A-Za-z][\w ./@()-]{0,60}?)[^\S\n]*[:=][^\S\n]*"
          r"(?P<val>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)[^\S\n]*(?:(?P<pct>%)[^\S\n]*)?")
# One pass in C over the whole text: only header and key-value lines come back to Python.
_MULTI_RX = r"(?P<multi>[^\S\n]*(?:[|>*-][^\S\n]*)?[A-Za-z][^\n]*?[:=][^\S\n]*[-+]?(?:\d|\.\d|nan|inf)[^\n]*)"
_LINE = re.compile(rf"^(?:{_HEADER_RX}|{_KV_RX}|{_MULTI_RX})$", re.IGNORECASE | re.MULTILINE)
# ``train_loss: 0.9 | val_loss: 1.0``: several pairs on one line of a record (two or more, or it is prose)
_PAIR = re.compile(r"(?<![\w.])([A-Za-z][\w./@-]*(?: [A-Za-z][\w./@-]*)?)\s*[:=]\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)(%)?(?![\w.:])",
                   re.IGNORECASE)
_COUNTER_KEYS = {"epoch", "step", "iteration", "iter", "round", "batch", "global_step"}


def _records(text: str) -> tuple[list[tuple[int, str, dict[str, float], int]], int, int | None]:
    """(records as (counter, keyword, metrics, line), metric lines before any header, planned total)."""
    out: list[tuple[int, str, dict[str, float], int]] = []
    cur: tuple[int, str, dict[str, float], int] | None = None
    orphans = 0
    total: int | None = None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    n, pos = 1, 0
    for m in _LINE.finditer(text):
        n += text.count("\n", pos, m.start())
        pos = m.start()
        if m.group("kw"):
            if cur is not None and cur[2]:
                out.append(cur)
            cur = (int(m.group("n")), m.group("kw").lower(), {}, n)
            if m.group("tot"):
                total = int(m.group("tot"))
            continue
        if m.group("multi"):
            pairs = [(k, v, pct) for k, v, pct in _PAIR.findall(m.group("multi")) if k.lower() not in _COUNTER_KEYS]
            if len(pairs) < 2:
                continue
            if cur is None:
                orphans += 1
                continue
            for k, v, pct in pairs:
                cur[2][metric_name(k)] = float(v) / 100 if pct else float(v)
            continue
        key = m.group("key").strip()
        if key.lower() in _COUNTER_KEYS:
            continue
        if cur is None:
            orphans += 1
            continue
        v = float(m.group("val"))
        cur[2][metric_name(key)] = v / 100 if m.group("pct") else v
    if cur is not None and cur[2]:
        out.append(cur)
    return out, orphans, total


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.75 when two or more counter-only lines are each followed by ``key: value`` lines; else 0."""
    text = decode(data[:65536])
    recs, _, _ = _records(text)
    if len(recs) < 2:
        return 0.0
    if sum(len(r[2]) for r in recs) < 2 * len(recs) and len(recs) < 4:
        return 0.0
    return 0.75


def read(path: Path | str) -> Run:
    """The first run in the log (``read_all`` gives each when the counter restarts)."""
    return first_run(read_all(path))


def read_all(path: Path | str) -> list[Run]:
    """Every run in the multi-line log at ``path``, oldest first."""
    p = Path(path)
    recs, orphans, total = _records(read_text(p))
    if not recs:
        raise NoMetricsError(p, "no multi-line records (a counter line such as 'Epoch: 3' followed by 'key: value' lines)")
    col = Collector(p.stem, NAME, str(p))
    col.skipped = orphans
    kw = recs[0][1]
    for step, k, metrics, line in recs:
        col.add(step, metrics, epoch=float(step) if k == "epoch" else None, where=f"line {line}")
    runs = col.runs()
    for r in runs:
        r.notes.insert(0, f"multi-line records: the step is the {kw} counter as printed on each record's first line")
        if kw == "epoch":
            r.steps_per_epoch = None
    if total:
        runs[-1].config.set("num_train_epochs" if kw == "epoch" else "max_steps", total, f"{p.name} ({kw} k/{total} lines)")
    return runs
