"""Turning records (one step's metrics) into Runs: names, perplexity, restarts.

Shared by the table, JSONL, free-text and pattern readers so that the quirks
of real logs are handled once and said once in ``run.notes``:

* **names**: ``readers/_names.canonical`` plus what free text and tables add
  (``Train Loss``, ``test acc``, bare ``train``/``val``, ``ppl``, ``xent``,
  ``tok/sec``, ``dt``);
* **perplexity instead of loss**: a record with ``*_perplexity`` and no loss
  gets ``loss = ln(ppl)``; both are kept;
* **a step counter that goes back**: a rewind to at or below the first step of
  the current run starts a *new run* (split); a rewind to a later step is a
  *resume* from a checkpoint, stitched so that the newer points replace the
  older tail (what the user saw in their plots after resuming).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping

import numpy as np

from ..run import EVAL_LOSS, STEP_TIME, THROUGHPUT, TRAIN_LOSS, Run, Series
from ._names import ALIASES, canonical

_EXTRA: dict[str, str] = {
    "train": TRAIN_LOSS,
    "trn": TRAIN_LOSS,
    "xent": TRAIN_LOSS,
    "val": EVAL_LOSS,
    "valid": EVAL_LOSS,
    "validation": EVAL_LOSS,
    "eval": EVAL_LOSS,
    "test": EVAL_LOSS,
    "dev": EVAL_LOSS,
    "ppl": "train_perplexity",
    "perplexity": "train_perplexity",
    "train_ppl": "train_perplexity",
    "time": STEP_TIME,
    "dt": STEP_TIME,
    "step_time": STEP_TIME,
    "iter_time": STEP_TIME,
    "tok/sec": THROUGHPUT,
    "tok/s": THROUGHPUT,
    "tokens/s": THROUGHPUT,
    "tokens/sec": THROUGHPUT,
    "tokens_per_second": THROUGHPUT,
    "tokens_per_second_per_gpu": THROUGHPUT,
    "wps": THROUGHPUT,
    "val_xent": EVAL_LOSS,
    "valid_xent": EVAL_LOSS,
}
_EVAL_PREFIXES = ("eval_", "val_", "valid_", "validation_", "test_", "dev_")
_SUFFIXES = (("_ppl", "_perplexity"), ("_acc", "_accuracy"))
_WS = re.compile(r"[\s]+")


@functools.lru_cache(maxsize=8192)  # pure, and a log repeats a handful of keys millions of times
def metric_name(raw: str, *, eval_context: bool = False) -> str:
    """The canonical name of a metric key as a log or table spells it.

    ``eval_context`` is for lines that are evaluations as a whole
    (``Validation perplexity: 5.45``, fairseq's ``valid on 'valid' subset``):
    a bare ``loss`` there is the eval loss.
    """
    key = _WS.sub("_", raw.strip().lower()).strip("_:")
    if key in ALIASES:
        name = ALIASES[key]
    elif key.replace("_", " ") in ALIASES:
        name = ALIASES[key.replace("_", " ")]
    else:
        name = _EXTRA.get(key) or canonical(key)
        for pre in _EVAL_PREFIXES:
            if name.startswith(pre) and name != EVAL_LOSS:
                rest = name[len(pre) :]
                if pre == "eval_" and rest.startswith("train_"):
                    break  # eval_train_loss: the train split measured at eval time, already canonical
                name = EVAL_LOSS if rest in ("loss", "xent") else "eval_" + _EXTRA.get(rest, rest).removeprefix("train_")
                break
        for suf, full in _SUFFIXES:
            if name.endswith(suf):
                name = name[: -len(suf)] + full
        if name in ("accuracy", "acc"):
            name = "train_accuracy"
    if eval_context and not name.startswith("eval_"):
        if name == TRAIN_LOSS:
            return EVAL_LOSS
        if name in (STEP_TIME, THROUGHPUT, "learning_rate", "epoch"):
            return name
        return "eval_" + name.removeprefix("train_")
    return name


_I64 = 2**63  # steps are int64: past that a number is a corrupt field, not a step

def _through(where: Callable[[int], str], keep: np.ndarray) -> Callable[[int], str]:
    """``where`` for a block cut down to the records ``keep``: its record i is record ``keep[i]`` of the original."""
    return lambda i: where(int(keep[i]))


class _Col:
    """One metric's points in a run: Python lists for records added one by one, numpy parts for blocks.

    ``add`` appends to the lists (cheap per record); ``add_block`` first turns
    the lists into a part, then appends its arrays as another part, so the
    order of points is the order they were added and a block of 200k points
    never becomes 200k Python floats.
    """

    __slots__ = ("e", "parts", "s", "v", "w")

    def __init__(self) -> None:
        self.s: list[int] = []
        self.v: list[float] = []
        self.e: list[float] = []
        self.w: list[float] = []
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def flush(self) -> None:
        if self.s:
            self.parts.append((
                np.array(self.s, dtype=np.int64),
                np.array(self.v, dtype=np.float64),
                np.array(self.e, dtype=np.float64),
                np.array(self.w, dtype=np.float64),
            ))
            self.s, self.v, self.e, self.w = [], [], [], []

    def extend(self, s: np.ndarray, v: np.ndarray, e: np.ndarray, w: np.ndarray) -> None:
        self.flush()
        self.parts.append((s, v, e, w))

    def __len__(self) -> int:
        return len(self.s) + sum(len(p[0]) for p in self.parts)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self.flush()
        if len(self.parts) != 1:
            self.parts = [tuple(np.concatenate([p[i] for p in self.parts]) for i in range(4))]  # type: ignore[list-item]
        return self.parts[0]

    def keep_below(self, step: int) -> int:
        """Drop the points at steps >= ``step`` (a resume); how many were dropped."""
        s, v, e, w = self.arrays()
        keep = s < step
        self.parts = [(s[keep], v[keep], e[keep], w[keep])]
        return len(s) - int(keep.sum())


class Collector:
    """Accumulates records into Runs, splitting or stitching where the step counter goes back.

    ``add`` takes one record: the step, its metrics (canonical names) and
    optionally epoch and wall time. ``runs()`` returns the finished Runs, oldest
    first, with notes saying what was converted, stitched or split.
    """

    def __init__(self, name: str, fmt: str, source: str) -> None:
        self.name = name
        self.fmt = fmt
        self.source = source
        self._runs: list[Run] = []
        # per run: name -> its points (lists and numpy parts); Series are built once in runs()
        self._cols: list[dict[str, _Col]] = []
        self._ppl_noted: set[str] = set()
        self._first_step: int | None = None
        self._last_step: int | None = None
        self._where = ""
        self.skipped = 0
        self._far: list[int | float] = []  # steps past a 64-bit counter: dropped, counted, one note
        self._new_run()

    @property
    def run(self) -> Run:
        return self._runs[-1]

    def _new_run(self) -> None:
        self._runs.append(Run(name=self.name, format=self.fmt, sources=[self.source]))
        self._cols.append({})
        self._first_step = None
        self._last_step = None

    def add(
        self,
        step: int,
        metrics: Mapping[str, float],
        *,
        epoch: float | None = None,
        wall_time: float | None = None,
        where: str = "",
    ) -> None:
        """Add one record at ``step``; ``where`` (``line 12``) is quoted in restart notes."""
        if not metrics:
            return
        if not -_I64 <= step < _I64:  # a corrupt or absurd step: this record only, not the whole log
            self._far.append(step)
            return
        if self._last_step is not None and step < self._last_step:
            self._rewind(step, where)
        if self._first_step is None:
            self._first_step = step
        self._last_step = step if self._last_step is None else max(self._last_step, step)
        cols = self._cols[-1]
        e = math.nan if epoch is None else epoch
        w = math.nan if wall_time is None else wall_time
        for name, value in metrics.items():
            c = cols.get(name)
            if c is None:
                c = cols[name] = _Col()
            c.s.append(step)
            c.v.append(value)
            c.e.append(e)
            c.w.append(w)
        for split in ("train", "eval") if ("train_perplexity" in metrics or "eval_perplexity" in metrics) else ():
            ppl = f"{split}_perplexity"
            loss = TRAIN_LOSS if split == "train" else EVAL_LOSS
            if ppl in metrics and loss not in metrics:
                v = metrics[ppl]
                c = cols.get(loss)
                if c is None:
                    c = cols[loss] = _Col()
                c.s.append(step)
                c.v.append(math.log(v) if v > 0 else math.nan)
                c.e.append(e)
                c.w.append(w)
                if ppl not in self._ppl_noted:
                    self._ppl_noted.add(ppl)
                    self.run.notes.append(f"{loss} derived from logged perplexity (loss = ln ppl); {ppl} kept as logged")

    def add_block(
        self,
        steps: np.ndarray,
        metrics: Mapping[str, np.ndarray],
        *,
        epoch: float | None = None,
        where: Callable[[int], str] = lambda i: "",
    ) -> None:
        """The same as ``add(steps[i], {name: col[i]}, epoch=epoch, where=where(i))`` for each i, in order.

        The free-text reader hands over thousands of consecutive records of one
        line shape at once; a Python call per record was a third of its time.
        Records before the first step that goes back are appended as arrays;
        that record goes through :meth:`add` (split or stitch, and its note),
        and the rest is handled the same way.
        """
        n = len(steps)
        if not metrics or n == 0:
            return
        raw = np.asarray(steps)
        if raw.dtype.kind not in "iu":  # floats, or Python ints past int64 (object): keep the records that fit
            fits = np.fromiter((-_I64 <= x < _I64 for x in raw.tolist()), bool, n)
            if not fits.all():
                self._far.extend(raw[~fits].tolist())
                keep = np.flatnonzero(fits)
                raw = raw[keep]
                metrics = {k: np.asarray(v)[keep] for k, v in metrics.items()}
                where = _through(where, keep)
                n = len(raw)
                if n == 0:
                    return
        steps = raw.astype(np.int64)
        i = 0
        while i < n:
            seg = steps[i:]
            if self._last_step is None:
                high = np.maximum.accumulate(seg)
                back = np.flatnonzero(seg[1:] < high[:-1]) + 1
            else:
                high = np.maximum.accumulate(np.maximum(seg, self._last_step))
                back = np.flatnonzero(seg < np.concatenate(([self._last_step], high[:-1])))
            j = i + (int(back[0]) if back.size else len(seg))
            if j > i:
                self._append(steps[i:j], {k: v[i:j] for k, v in metrics.items()}, epoch)
            if j < n:
                self.add(int(steps[j]), {k: float(v[j]) for k, v in metrics.items()}, epoch=epoch, where=where(j))
            i = j + 1

    def _append(self, steps: np.ndarray, metrics: Mapping[str, np.ndarray], epoch: float | None) -> None:
        """Records whose steps never go back below the run's last step, as ``add`` would store them."""
        if self._first_step is None:
            self._first_step = int(steps[0])
        top = int(steps.max())
        self._last_step = top if self._last_step is None else max(self._last_step, top)
        cols = self._cols[-1]
        e = np.full(len(steps), math.nan if epoch is None else epoch, dtype=np.float64)
        w = np.full(len(steps), math.nan, dtype=np.float64)
        for name, values in metrics.items():
            c = cols.get(name)
            if c is None:
                c = cols[name] = _Col()
            c.extend(steps, np.asarray(values, dtype=np.float64), e, w)
        for split in ("train", "eval"):
            ppl = f"{split}_perplexity"
            loss = TRAIN_LOSS if split == "train" else EVAL_LOSS
            if ppl in metrics and loss not in metrics:
                # math.log per value: np.log may differ from it in the last bit
                logs = np.array([math.log(v) if v > 0 else math.nan for v in metrics[ppl].tolist()], dtype=np.float64)
                c = cols.get(loss)
                if c is None:
                    c = cols[loss] = _Col()
                c.extend(steps, logs, e, w)
                if ppl not in self._ppl_noted:
                    self._ppl_noted.add(ppl)
                    self.run.notes.append(f"{loss} derived from logged perplexity (loss = ln ppl); {ppl} kept as logged")

    def _rewind(self, step: int, where: str) -> None:
        first, last = self._first_step, self._last_step
        assert first is not None and last is not None
        at = f" at {where}" if where else ""
        if step <= first:
            old = self.run
            self._new_run()
            n = len(self._runs)
            self.run.name = f"{self.name}#{n}"
            if n == 2:
                old.name = f"{self.name}#1"
            msg = (
                f"the step counter restarted from {last} to {step}{at}: a new run, split from the previous one "
                f"(this file holds {n} runs)"
            )
            old.notes.append(msg)
            self.run.notes.append(msg)
            return
        dropped = sum(c.keep_below(step) for c in self._cols[-1].values())
        self.run.notes.append(
            f"the step counter went back from {last} to {step}{at}: a resumed run, stitched "
            f"(the newer points replace {dropped} older ones at steps >= {step})"
        )
        self._last_step = step

    def runs(self) -> list[Run]:
        """The runs read, oldest first; empty runs (no metrics) are dropped."""
        out = []
        for r, cols in zip(self._runs, self._cols, strict=True):
            for name, c in cols.items():
                if len(c):
                    r.history.set(name, Series(*c.arrays()))
            if len(r.history):
                out.append(r)
        if out:
            out[-1].skipped_lines += self.skipped + len(self._far)
            if self._far:
                n = len(self._far)
                out[-1].notes.append(f"{n} record{'s' if n != 1 else ''} whose step is past a 64-bit counter "
                                     f"(such as {self._far[0]:g}) {'were' if n != 1 else 'was'} skipped")
        return out


def first_run(runs: list[Run]) -> Run:
    """The first of the runs a file holds, noting the others (like ``hf_stdout``: ``read_all`` gives each)."""
    if len(runs) > 1:
        runs[0].notes.append(f"{len(runs) - 1} later run(s) in this file are not in this Run; read_all() returns each")
    return runs[0]
