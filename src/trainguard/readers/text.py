"""Free-text logs from custom training loops, through a few generic patterns anchored on a counter.

A line is a record when it names a counter (``step 400``, ``iter 425:``,
``Step 50/100000;``, ``Epoch 1/35``, ``| epoch 001 |``, ``ep: 0, batch: 20``,
``num_updates=100``) and holds ``key: number``, ``key=number`` or
``key number`` pairs (``train loss 3.33``, ``val loss 3.37``, ``lr 1.0e-03``,
``dt: 25213.31ms``, ``Test Acc: 59.86%``). Keys go through the shared alias
table; a key of one bare word ``train``/``val`` is that split's loss. A line
without a counter is read only when it is an evaluation (``Validation
perplexity: 5.45``), and then belongs to the last step seen.

Traps avoided:

* HF Trainer dict lines (``{'loss': ...}``) are left to the ``hf_stdout``
  reader: they are skipped here, and sniff stays low on such files.
* A counter that restarts every epoch (``ep: 0, batch: 20``) is made global
  (epoch offset + batch) instead of being taken for a restart.
* ``ms`` becomes seconds for step times; ``%`` becomes a fraction (noted).
* nanoGPT prints both per-iteration ``loss`` and an eval-time estimate
  ``train loss`` at the same step: when a log has both, the estimate is kept as
  ``eval_train_loss`` (the train split measured at eval time) so the two never
  interleave in one series.

``StreamParser`` is what ``trainguard run``/``watch`` feed live output into;
:func:`read` uses the same line parser, with runs of same-shape lines read as
blocks in whole-buffer passes (readers/_text_block.py; the same Runs, ~8x
faster; ``BLOCKS = False`` keeps every line on the line parser).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NoMetricsError
from ..run import EPOCH, STEP_TIME, TRAIN_LOSS, Run
from ._collect import Collector, first_run, metric_name
from ._io import decode, read_text
from ._stream import Point

NAME = "text"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?|\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?")
_STEP_KW = ("num_updates", "global_step", "step", "iteration", "iter", "update", "batch")
_ANCHOR = re.compile(
    r"(?<![\w/.])(?P<kw>num_updates|global_step|steps?|iteration|iter|update|batch|epoch|ep)\b"
    r"[ \t]*+[:=#]?[ \t]*+\[?[ \t]*+(?P<n>\d++(?:\.\d++)?)(?:[ \t]*+/[ \t]*+(?P<tot>\d++))?\]?(?![\w.])",
    re.IGNORECASE,
)
_KV = re.compile(
    r"(?<![\w./])(?P<key>[A-Za-z][\w./@\-]*(?:[ \t][A-Za-z][\w./@\-]*)?)(?:[ \t]*+[:=][ \t]*+|[ \t]++)"
    r"(?P<val>(?>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|infinity|inf)))(?P<unit>%|ms\b|s\b)?(?![\w.])",
    re.IGNORECASE,
)
_EVAL_WORD = re.compile(r"\b(eval\w*|valid\w*|val|test\w*|dev)\b", re.IGNORECASE)
_STOP_FIRST = {"info", "debug", "warning", "warn", "error", "critical", "the", "at", "of", "and", "with", "avg", "mean", "current", "running"}
_COUNTERS = {"step", "steps", "iter", "iteration", "epoch", "epochs", "ep", "batch", "num_updates", "global_step", "update", "it"}


@dataclass
class Record:
    """One parsed line: its step, metrics (canonical names), epoch, and what kind of line it was."""

    step: int
    metrics: dict[str, float]
    epoch: float | None = None
    line: int = 0
    is_eval: bool = False


@dataclass
class Block:
    """Consecutive records of one plan (readers/_text_block.py): what LineParser returns for each, as columns."""

    steps: np.ndarray  # int64
    metrics: dict[str, np.ndarray]  # canonical name -> float64 values, in the plan's order
    epoch: float | None  # the epoch state when the block was read (a block's lines never change it)
    lines: np.ndarray  # 1-based line numbers, for restart notes
    is_eval: bool


@dataclass(eq=False)
class Shape:
    """A line shape as literal text around numbers: ``lits[i]``, number ``i``, ``lits[i + 1]``, ...

    ``slots[i]`` is the regex group capturing number ``i`` (None: not captured).
    ``info`` is the block reader's analysis of the shape, cached there.
    """

    lits: tuple[str, ...]
    slots: tuple[int | None, ...]
    info: object = None


@dataclass
class _State:
    last_step: int | None = None
    epoch: float | None = None
    inner_last: int | None = None
    inner_epoch: float | None = None
    offset: int = 0
    interval: int = 0
    train_lines: int = 0
    planned_steps: int | None = None
    planned_epochs: int | None = None
    epoch_is_step: bool = False
    per_epoch_counter: str | None = None
    percent: bool = False
    notes: list[str] = field(default_factory=list)
    long_lines: int = 0
    long_note: int = -1  # index of the long-line note in ``notes``


# Atomic: a shape regex chains many numbers, and a backtracking number pattern
# (``\d+\.?\d*``) would make a near-miss line cost exponential time.
_NUM_RX = r"(?>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|inf(?:inity)?))"
_MRU = 16  # line shapes remembered (a log repeats a handful: train, eval, noise)
MAX_LINE = 8192  # a metric line is a few hundred bytes; a longer one is a dump (and would cost a huge shape regex)
# Whole files go through readers/_text_block.py (runs of same-shape lines read in a few whole-buffer passes,
# identical results); False, or TRAINGUARD_TEXT_PER_LINE=1, keeps every line on LineParser (the reference path).
BLOCKS = os.environ.get("TRAINGUARD_TEXT_PER_LINE", "").strip() in ("", "0")


def _blank(m: re.Match[str]) -> str:
    return " " * (m.end() - m.start())


@dataclass(frozen=True)
class _Plan:
    """How to read every line of one shape: a regex for the shape and what each captured number is.

    Building a plan runs the generic patterns on one line (slow, ~50 us);
    every later line of the same shape is one ``fullmatch`` of the plan's regex
    (literal text with the numbers generalised) and a few float() calls. Logs
    repeat a handful of shapes, so nearly every line takes the fast path.
    """

    rx: re.Pattern[str]
    step: int | None  # index into the captured groups
    step_kw: str
    step_tot: int | None
    epoch: int | None
    epoch_tot: int | None
    metrics: tuple[tuple[int, str, float], ...]  # (group index, canonical name, divisor)
    percent: bool


class LineParser:
    """Parses one line at a time into :class:`Record` s, keeping the counter state between lines."""

    def __init__(self) -> None:
        self.s = _State()
        self.lineno = 0
        self._first_long = (0, 0)
        self._mru: list[tuple[re.Pattern[str], _Plan | None, Shape]] = []

    def parse(self, raw: str) -> Record | None:
        self.lineno += 1
        if len(raw) > MAX_LINE:
            self._long_line(len(raw))
            return None
        line = raw.strip()
        if not line:
            return None
        for rx, plan, _ in self._mru:
            m = rx.fullmatch(line)
            if m is not None:
                return None if plan is None else self._apply(plan, m.groups())
        if not any(c.isdigit() for c in line) or line.startswith(("{", "[{")) or "{'" in line:
            return None  # no number, or HF dict lines / JSON (other readers' business)
        clean = _ANSI.sub(_blank, line) if "\x1b" in line else line
        clean = _TIMESTAMP.sub(_blank, clean)  # same-length blanking: spans stay valid in ``line``
        spans, plan_of = self._plan(clean)
        rx, group_of, shape = _shape_regex(line, spans)
        plan = plan_of(rx, group_of) if plan_of is not None else None
        self._mru.insert(0, (rx, plan, shape))
        del self._mru[_MRU:]
        m = rx.fullmatch(line)
        if plan is None or m is None:
            return None
        return self._apply(plan, m.groups())

    def _long_line(self, size: int) -> None:
        """Count a skipped over-long line in one note (the first line number and the cap, in plain words)."""
        st = self.s
        st.long_lines += 1
        if st.long_note < 0:
            st.long_note = len(st.notes)
            st.notes.append("")
            self._first_long = (self.lineno, size)
        first, first_size = self._first_long
        st.notes[st.long_note] = (
            f"{st.long_lines} line(s) longer than {MAX_LINE // 1024} KB skipped (the first: line {first}, "
            f"{first_size // 1024} KB); a metric line is far shorter"
        )

    def _plan(self, line: str):  # type: ignore[no-untyped-def]
        """The number spans a record of ``line`` uses, and a function building its plan from group numbers."""
        anchors = list(_ANCHOR.finditer(line))
        step_m = None
        epoch_m = None
        for m in anchors:
            kw = m.group("kw").lower()
            if kw in ("epoch", "ep"):
                epoch_m = epoch_m or m
            elif step_m is None or _STEP_KW.index(_kw(m)) < _STEP_KW.index(_kw(step_m)):
                step_m = m
        pieces, pos = [], 0
        for m in anchors:  # same-length blanking keeps positions valid in ``line``; one join: linear
            pieces += [line[pos : m.start()], " | ".ljust(m.end() - m.start())]
            pos = m.end()
        rest = "".join([*pieces, line[pos:]])
        kvs = list(_KV.finditer(rest))
        if not kvs:
            return [], None
        eval_ctx = bool(_EVAL_WORD.search(rest[: kvs[0].start()])) or " valid on " in f" {line} "
        metrics: list[tuple[tuple[int, int], str, float]] = []
        names: set[str] = set()
        percent = False
        for kv in kvs:
            key = kv.group("key")
            words = key.split()
            if len(words) == 2 and words[0].lower() in _STOP_FIRST:
                key = words[1]
            if key.lower() in _COUNTERS:
                continue
            name = metric_name(key, eval_context=eval_ctx)
            if name in names:
                continue
            unit = (kv.group("unit") or "").lower()
            div = 1.0
            if unit == "ms" and name == STEP_TIME:
                div = 1000.0
            elif unit == "%":
                div = 100.0
                percent = True
            names.add(name)
            metrics.append((kv.span("val"), name, div))
        if not metrics:
            return [], None
        only_eval = eval_ctx or all(n.startswith("eval_") for _, n, _ in metrics)
        if step_m is None and epoch_m is None and not only_eval:
            return [], None

        def span(m: re.Match[str] | None, g: str) -> tuple[int, int] | None:
            return None if m is None or m.group(g) is None else m.span(g)

        roles = {
            "step": span(step_m, "n"),
            "step_tot": span(step_m, "tot"),
            "epoch": span(epoch_m, "n"),
            "epoch_tot": span(epoch_m, "tot"),
        }
        spans = [sp for sp in roles.values() if sp is not None] + [sp for sp, _, _ in metrics]

        def build(rx: re.Pattern[str], group_of: dict[tuple[int, int], int]) -> _Plan:
            def g(sp: tuple[int, int] | None) -> int | None:
                return None if sp is None else group_of[sp]

            return _Plan(
                rx=rx,
                step=g(roles["step"]),
                step_kw=_kw(step_m) if step_m else "",
                step_tot=g(roles["step_tot"]),
                epoch=g(roles["epoch"]),
                epoch_tot=g(roles["epoch_tot"]),
                metrics=tuple((group_of[sp], n, d) for sp, n, d in metrics),
                percent=percent,
            )

        return spans, build

    def _apply(self, plan: _Plan, nums: tuple[str, ...]) -> Record | None:
        st = self.s
        try:
            metrics = {name: float(nums[i]) / div for i, name, div in plan.metrics}
            line_epoch = float(nums[plan.epoch]) if plan.epoch is not None else None
            step_n = int(float(nums[plan.step])) if plan.step is not None else None
        except (ValueError, IndexError):
            return None
        if plan.percent and not st.percent:
            st.percent = True
            st.notes.append("values logged as percentages are stored as fractions (59.86% -> 0.5986)")
        if plan.epoch_tot is not None and st.planned_epochs is None:
            st.planned_epochs = int(nums[plan.epoch_tot])
        if step_n is not None:
            tot = nums[plan.step_tot] if plan.step_tot is not None else None
            step = self._global_step(step_n, plan.step_kw, line_epoch, tot)
        elif line_epoch is not None:
            step = int(line_epoch)
            if not st.epoch_is_step:
                st.epoch_is_step = True
                st.notes.append("no step counter in the log: the epoch number is used as the step (steps per epoch unknown)")
        elif st.last_step is not None:
            step = st.last_step
        else:
            return None
        if line_epoch is not None:
            st.epoch = line_epoch
        st.last_step = step
        is_eval = any(n.startswith("eval_") for n in metrics)
        if not is_eval:
            st.train_lines += 1
        elif TRAIN_LOSS in metrics and st.train_lines:
            metrics["eval_train_loss"] = metrics.pop(TRAIN_LOSS)
        return Record(step, metrics, st.epoch, self.lineno, is_eval)

    def _global_step(self, n: int, kw: str, line_epoch: float | None, tot: str | None) -> int:
        """``n`` made global when the counter restarts with each new epoch (``ep: 1, batch: 0``).

        Only a counter printed beside an epoch on the same line can be
        per-epoch; its offset is the epoch length as logged (``20/500``) or
        estimated from the last value plus the logging interval.
        """
        st = self.s
        if tot and kw != "batch" and st.planned_steps is None:
            st.planned_steps = int(tot)
        if line_epoch is None or (st.per_epoch_counter is not None and kw != st.per_epoch_counter):
            return n
        if st.inner_last is not None and n > st.inner_last:
            st.interval = n - st.inner_last if not st.interval else min(st.interval, n - st.inner_last)
        if st.inner_epoch is not None and line_epoch > st.inner_epoch and st.inner_last is not None and n < st.inner_last:
            per_epoch = int(tot) if tot else st.inner_last + max(st.interval, 1)
            st.offset += per_epoch
            if st.per_epoch_counter is None:
                st.per_epoch_counter = kw
                st.notes.append(
                    f"the '{kw}' counter restarts every epoch: global step = epoch offset + {kw} "
                    f"({per_epoch} per epoch{' as logged' if tot else ', estimated'})"
                )
        st.inner_last = n
        st.inner_epoch = line_epoch
        return st.offset + n


def _shape_regex(line: str, used: list[tuple[int, int]]) -> tuple[re.Pattern[str], dict[tuple[int, int], int], Shape]:
    """A regex matching ``line`` with every number generalised, capturing the ``used`` spans (group index per span)."""
    parts: list[str] = []
    lits: list[str] = []
    slots: list[int | None] = []
    group_of: dict[tuple[int, int], int] = {}
    wanted = set(used)
    spans = sorted(wanted)  # disjoint, so sorted by start is sorted by end too
    cuts = list(spans)
    j = 0
    for m in re.finditer(_NUM_RX, line):  # one merge pass: linear in the line (issue 12 was quadratic here)
        a, b = m.span()
        while j < len(spans) and spans[j][1] <= a:
            j += 1
        if j == len(spans) or spans[j][0] >= b:
            cuts.append((a, b))
    cuts.sort()
    pos = 0
    for a, b in cuts:
        if a < pos:
            continue
        parts.append(re.escape(line[pos:a]))
        lits.append(line[pos:a])
        if (a, b) in wanted:
            slots.append(len(group_of))
            group_of[(a, b)] = len(group_of)
            parts.append(f"({_NUM_RX})")
        else:
            slots.append(None)
            parts.append(_NUM_RX)
        pos = b
    parts.append(re.escape(line[pos:]))
    lits.append(line[pos:])
    return re.compile("".join(parts)), group_of, Shape(tuple(lits), tuple(slots))


def _kw(m: re.Match[str]) -> str:
    kw = m.group("kw").lower()
    return "step" if kw == "steps" else kw


class StreamParser:
    """Incremental free-text parser (see ``readers/_stream.py``): feed text, get metric Points."""

    def __init__(self) -> None:
        self._lines = LineParser()
        self._buf = ""

    @property
    def notes(self) -> list[str]:
        return self._lines.s.notes

    def feed(self, chunk: str) -> list[Point]:
        data = self._buf + chunk
        parts = re.split(r"\r\n|\r|\n", data)
        self._buf = parts.pop()
        return self._points(parts)

    def close(self) -> list[Point]:
        rest, self._buf = self._buf, ""
        return self._points([rest]) if rest else []

    def _points(self, lines: list[str]) -> list[Point]:
        out: list[Point] = []
        for ln in lines:
            r = self._lines.parse(ln)
            if r is not None:
                out.extend(Point(n, r.step, v, r.epoch) for n, v in r.metrics.items())
        return out


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.5-0.6 when counter-anchored metric lines are found; at most 0.1 on files with HF dict lines."""
    text = decode(data[:32768])
    hf = "{'loss'" in text or "{'eval_loss'" in text or "{'train_runtime'" in text
    p = LineParser()
    hits = 0
    for ln in re.split(r"\r\n|\r|\n", text)[:400]:
        if p.parse(ln) is not None:
            hits += 1
            if hits >= 3:
                break
    if hits == 0:
        return 0.0
    if hf:
        return 0.1
    return 0.6 if hits >= 2 else 0.45


def records(text: str) -> tuple[list[Record | Block], LineParser]:
    """Every record in ``text`` (single lines, and blocks of same-shape lines) and the parser (notes, planned steps)."""
    p = LineParser()
    if BLOCKS:
        from ._text_block import block_records  # it builds on LineParser, defined here

        return block_records(text, p), p
    out: list[Record | Block] = []
    parse = p.parse
    for ln in re.split(r"\r\n|\r|\n", text):
        r = parse(ln)
        if r is not None:
            out.append(r)
    return out, p


def read(path: Path | str) -> Run:
    """The run in the log at ``path`` (the first when the log holds several; see :func:`read_all`)."""
    return first_run(read_all(path))


def read_all(path: Path | str) -> list[Run]:
    """Every run in the free-text log at ``path``, oldest first."""
    p = Path(path)
    text = read_text(p)
    recs, parser = records(text)
    if not recs:
        raise NoMetricsError(p, "no metrics found; try --pattern REGEX with named groups (step, loss, ...)")
    st = parser.s
    if st.train_lines:  # nanoGPT: per-iteration loss lines plus eval-time train-loss estimates
        for r in recs:
            if r.is_eval and TRAIN_LOSS in r.metrics:
                r.metrics["eval_train_loss"] = r.metrics.pop(TRAIN_LOSS)
        if any(r.is_eval and "eval_train_loss" in r.metrics for r in recs):
            st.notes.append("train loss printed on eval lines is kept as eval_train_loss (an eval-time estimate), apart from per-step train_loss")
    col = Collector(p.stem, NAME, str(p))
    for r in recs:
        with_epoch = r.epoch is not None and not r.is_eval and not st.epoch_is_step
        if isinstance(r, Block):
            mb = dict(r.metrics)
            if with_epoch:
                mb[EPOCH] = np.full(len(r.steps), r.epoch, dtype=np.float64)
            col.add_block(r.steps, mb, epoch=r.epoch, where=lambda i, lines=r.lines: f"line {lines[i]}")
            continue
        m = dict(r.metrics)
        if with_epoch:
            m[EPOCH] = r.epoch
        col.add(r.step, m, epoch=r.epoch, where=f"line {r.line}")
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, "no metrics found; try --pattern REGEX with named groups (step, loss, ...)")
    for r in runs:
        r.notes[:0] = st.notes
        if st.epoch_is_step:
            r.steps_per_epoch = None
    last = runs[-1]
    if st.planned_steps:
        last.planned_steps = st.planned_steps
        last.config.set("max_steps", st.planned_steps, p.name)
    if st.planned_epochs:
        last.config.set("num_train_epochs", st.planned_epochs, p.name)
    return runs
