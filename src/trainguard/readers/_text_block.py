"""Whole-file reading for the free-text reader: runs of same-shape lines read in a few whole-buffer passes.

Why: :class:`~.text.LineParser` costs ~20 us a line (a regex ``fullmatch``,
float() calls, a dict and a ``Collector.add`` per record): 5 MB/s, a minute
for a 300 MB log. Logs repeat one or two line shapes hundreds of thousands of
times, so the work per line can be done per shape instead (issue 14).

What stays exact (the same Runs as LineParser fed line by line; the reference
is kept: ``text.BLOCKS = False``, and tests/readers/test_text_block.py
compares both on every fixture and real run):

* Every line goes through LineParser unless it is proven to be read by the
  plan LineParser would use for it, in the same way. The first line of a new
  shape always goes through it (it plans the shape), as does any line that
  fails a check below; those lines keep their order, so counter state, notes
  and restarts are the same.
* **Runs.** A line's *skeleton* is the line with the bytes numbers are made
  of (``0-9 . + - e E``) deleted: one ``translate`` and one ``split`` for the
  whole file. Consecutive lines with one skeleton form a run.
* **Which plan.** A shape regex (text.py) is literal text around generalised
  numbers, and a generalised number only contains ``0-9.+-eE`` and the letters
  of nan/inf/infinity. So a line a shape matches has that shape's literals
  with those characters deleted as its skeleton (``dc``): a shape whose ``dc``
  differs cannot match it. LineParser tries its most-recently-used shapes in
  order; lines are read here as a block only when the *first* MRU shape with
  the run's ``dc`` is a plan with the run's skeleton, so no earlier shape can
  take the line.
* **Same match.** Each line must be that shape's literal bytes with number
  tokens where the shape has numbers: checked with numpy on the whole run
  (exactly the shape's count of ``0-9.+-eE`` runs per line, each at the same
  place among the other bytes, the runs inside literals (the ``e`` of
  ``step``) equal to the shape's), and every number token must be valid JSON,
  which is a subset of what the shape regex's number pattern matches (and a
  number is always followed by a byte outside ``0-9.+-eE``, so the regex takes
  the whole token). Values come from one ``orjson.loads`` over the run, which
  rounds like float() (checked on random decimals; ``-0`` is sent per line).
* **Same effects.** Only plans without an epoch on the line are read as blocks
  (a per-epoch counter is per-record state); a block starts only once the
  plan's one-time notes (percent, planned steps) have fired, so what a record
  changes is the last step, the count of train lines and the record itself.
* **With the C extension** (``_compiled.speedups``), ``_check`` is one pass of
  ``_speedups.text_rows`` over the run's bytes: the same structure checks, and
  each number token that is a JSON number (at most 128 bytes, finite) read
  bit-identical to float(), so ``-0`` is read here too (as -0.0). The numpy
  passes (``ts``/``te``/``js`` in :class:`_Text`, orjson) are then skipped;
  they stay as the path without it (tests run both: test_text_block.py,
  test_text_rows_speedups.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

from .. import _compiled
from ..run import TRAIN_LOSS
from .text import MAX_LINE, Block, LineParser, Record, Shape, _Plan

_E = b"0123456789.+-eE"  # bytes a number token is made of
_C = _E + b"nNaAiIfFtTyY"  # plus the letters of nan/inf/infinity: all a generalised number can match (in ASCII)
_IS_E = bytes(1 if c in _E else 0 for c in range(256))
_KEEP_E = bytes(c if c in _E else 32 for c in range(256))  # numbers stay, the rest becomes JSON whitespace
MIN_RUN = 4  # a run shorter than this goes line by line: the numpy set-up costs more


@dataclass
class _Info:
    """A shape in bytes: its skeletons, and where its number tokens sit among the other bytes."""

    dc: bytes  # literals without the bytes of any generalised number (which shapes could match a line)
    ok: bool = False  # readable as blocks (numbers are whole tokens, not glued to other literal digits)
    key: bytes = b""  # literals without 0-9.+-eE: the skeleton of every line of this shape
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per token: other bytes before it
    num_tok: list[int] = field(default_factory=list)  # token index of each number
    lit_tok: list[tuple[int, bytes]] = field(default_factory=list)  # tokens inside literals and their bytes
    slot_of: dict[int, int] = field(default_factory=dict)  # regex group -> number index
    c_gaps: list[int] = field(default_factory=list)  # gaps, for _speedups.text_rows
    c_lits: list[bytes | None] = field(default_factory=list)  # per token: its literal bytes, None for a number


def _info(shape: Shape) -> _Info:
    if isinstance(shape.info, _Info):
        return shape.info
    lits = [s.encode("utf-8", "surrogatepass") for s in shape.lits]
    k = len(shape.slots)
    tpl = b"0".join(lits)  # one "0" per number
    key = tpl.translate(None, _E)
    info = _Info(dc=key.translate(None, _C), key=key)
    shape.info = info
    edges_ok = all(lits[1:k]) and not any(
        (lits[i][-1:] and lits[i][-1] in _E) or (lits[i + 1][:1] and lits[i + 1][0] in _E) for i in range(k)
    )
    if k == 0 or not edges_ok:
        return info
    at = {}
    pos = 0
    for i in range(k):
        pos += len(lits[i])
        at[pos] = i
        pos += 1
    gaps, e_before = [], 0
    for tok, (a, b) in enumerate(_run_spans(tpl)):
        gaps.append(a - e_before)
        e_before += b - a
        if a in at and b == a + 1:
            info.num_tok.append(tok)
        else:
            info.lit_tok.append((tok, tpl[a:b]))
    info.ok = len(info.num_tok) == k
    info.c_gaps = gaps
    lit_of = dict(info.lit_tok)
    info.c_lits = [lit_of.get(tok) for tok in range(len(gaps))]
    info.gaps = np.array(gaps, dtype=np.int64)
    info.slot_of = {g: i for i, g in enumerate(shape.slots) if g is not None}
    return info


def _run_spans(b: bytes) -> list[tuple[int, int]]:
    """(start, end) of each run of 0-9.+-eE bytes in ``b`` (a template line: short)."""
    out, start = [], -1
    for i, c in enumerate(b):
        if c in _E:
            if start < 0:
                start = i
        elif start >= 0:
            out.append((start, i))
            start = -1
    if start >= 0:
        out.append((start, len(b)))
    return out


def _eligible(p: LineParser, key: bytes, dc: bytes) -> tuple[_Plan, _Info] | None:
    """The plan LineParser would read lines with skeleton ``key`` by, when no earlier MRU shape can take them."""
    for _rx, plan, shape in p._mru:
        info = _info(shape)
        if info.dc == dc:
            if plan is None or not info.ok or info.key != key or plan.epoch is not None or plan.epoch_tot is not None:
                return None
            return plan, info
    return None


class _Text:
    """The text as bytes, with its line offsets, skeletons and number-byte runs found once for the whole file."""

    def __init__(self, text: str) -> None:
        if "\r" in text:  # the same lines as re.split(r"\r\n|\r|\n")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        data = text.encode("utf-8", "surrogatepass")
        if not data.endswith(b"\n"):
            data += b"\n"
        self.data = data
        self.ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)  # line i is data[s[i]:e[i]]
        starts = np.empty_like(self.ends)
        starts[:1] = 0
        starts[1:] = self.ends[:-1] + 1
        self.s, self.e = starts.tolist(), self.ends.tolist()
        self.long = np.flatnonzero(self.ends - starts > MAX_LINE)  # LineParser skips these, with a note
        self.skel = data.translate(None, _E)  # every line's skeleton, newline-terminated
        self.c = _compiled.speedups  # with it, _check is one C pass (text_rows) and needs none of the below
        if self.c is not None:
            return
        is_e = np.frombuffer(data.translate(_IS_E), bool)
        self.ts = np.flatnonzero(is_e[1:] > is_e[:-1]) + 1  # number-byte runs: [ts, te); data ends with a newline
        self.te = np.flatnonzero(is_e[:-1] > is_e[1:]) + 1
        if is_e[0]:
            self.ts = np.concatenate(([0], self.ts))
        self.js = bytearray(data.translate(_KEEP_E))  # numbers stay, the rest is JSON whitespace

    def __len__(self) -> int:
        return len(self.e)

    def line(self, i: int) -> str:
        return self.data[self.s[i] : self.e[i]].decode("utf-8", "surrogatepass")

    def same_skeleton(self, o: int, key_nl: bytes, most: int) -> int:
        """How many lines (at most ``most``) from skeleton offset ``o`` have the skeleton ``key_nl``; the first does."""
        w, sk = len(key_nl), self.skel
        lo = 1
        while lo < most:
            hi = min(most, max(16, lo * 2))
            if sk.startswith(key_nl * (hi - lo), o + lo * w):
                lo = hi
                continue
            seg = np.frombuffer(sk, np.uint8, count=min((hi - lo) * w, len(sk) - o - lo * w), offset=o + lo * w)
            diff = np.flatnonzero(seg != np.frombuffer(key_nl * (hi - lo), np.uint8)[: len(seg)])
            return lo + int(diff[0] if diff.size else len(seg)) // w
        return lo


def block_records(text: str, p: LineParser) -> list[Record | Block]:
    """What feeding every line of ``text`` to ``p`` returns, with runs of same-shape lines as Blocks."""
    tx = _Text(text)
    out: list[Record | Block] = []
    st = p.s
    cache: dict[bytes, tuple[_Plan, _Info] | None] = {}
    head: object = None
    cap = 1 << 16  # lines checked at once: doubles while whole chunks pass, shrinks after a line that fails
    long = [*tx.long.tolist(), len(tx)]
    nxt_long = 0
    i, o, n = 0, 0, len(tx)
    while i < n:
        eol = tx.skel.index(b"\n", o)
        while long[nxt_long] < i:
            nxt_long += 1
        most = min(n, long[nxt_long]) - i
        found = None
        if most >= MIN_RUN:
            if (p._mru[0] if p._mru else None) is not head:
                head, cache = (p._mru[0] if p._mru else None), {}
            key = tx.skel[o:eol]
            found = cache[key] if key in cache else cache.setdefault(key, _eligible(p, key, key.translate(None, _C)))
        if found is not None:
            plan, info = found
            if not (plan.percent and not st.percent) and not (
                plan.step_tot is not None and plan.step_kw != "batch" and st.planned_steps is None
            ):  # otherwise the plan's one-time notes fire on a line read as usual, below
                m = tx.same_skeleton(o, tx.skel[o : eol + 1], min(most, cap))
                if m >= MIN_RUN:
                    f, vals = _check(tx, i, i + m, info, plan)
                    cap = min(cap * 2, 1 << 20) if f == m else max(4 * MIN_RUN, 2 * f)
                    if f:
                        _block(p, plan, info, vals, out)
                        i += f
                        o += f * (eol + 1 - o)
                        continue
        r = p.parse(tx.line(i))
        if r is not None:
            out.append(r)
        i += 1
        o = eol + 1
    return out


def _check(tx: _Text, lo: int, hi: int, info: _Info, plan: _Plan) -> tuple[int, np.ndarray]:
    """How many of lines ``lo``..``hi`` (one skeleton) from the first on are the plan's shape, and their numbers.

    Every line has the shape's skeleton already, so its other bytes are the
    shape's; what is left is that each line has the shape's number-byte runs
    at the same places (counted in other bytes, which grow by the skeleton's
    length a line), the runs inside literals equal to the shape's, and numbers
    orjson reads.
    """
    k, t, width = len(info.num_tok), len(info.gaps), len(info.key) + 1
    if tx.c is not None:  # the same checks in one pass (numbers read as float() reads them: -0 included)
        f, buf = tx.c.text_rows(tx.data, tx.s[lo], hi - lo, info.c_gaps, info.c_lits)
        vals = np.frombuffer(buf, np.float64).reshape(f, k)
        if plan.step is not None and f:
            far = np.flatnonzero(~(np.abs(vals[:, info.slot_of[plan.step]]) < 2.0**62))
            if far.size:
                f = int(far[0])
                vals = vals[:f]
        return f, vals
    r0, r1 = tx.s[lo], tx.e[hi - 1] + 1
    a, b = np.searchsorted(tx.ts, [r0, r1])
    ts, te = tx.ts[a:b] - r0, tx.te[a:b] - r0
    n = hi - lo
    q = min(len(ts), n * t) // t * t
    lens = te[:q] - ts[:q]
    where = ts[:q] - (np.cumsum(lens) - lens) - (np.arange(q // t)[:, None] * width + info.gaps).ravel()
    bad = np.flatnonzero(where)
    f = int(bad[0]) // t if bad.size else q // t
    if f == n and len(ts) != n * t:
        f = n - 1  # more runs than the shape has: the extra ones are in the last line
    s2, e2 = ts[: f * t].reshape(f, t), te[: f * t].reshape(f, t)
    for tok, lit in info.lit_tok:
        wrong = e2[:, tok] - s2[:, tok] != len(lit)
        for j, ch in enumerate(lit):
            wrong |= np.frombuffer(tx.data, np.uint8)[np.minimum(s2[:, tok] + r0 + j, len(tx.data) - 1)] != ch
        first = np.flatnonzero(wrong[:f])
        if first.size:
            f = int(first[0])
    if f == 0:
        return 0, np.zeros((0, k))
    cut = tx.e[lo + f - 1] + 1 - r0
    js = tx.js
    jv = np.frombuffer(js, np.uint8)
    for tok, lit in info.lit_tok:
        for j in range(len(lit)):
            jv[s2[:f, tok] + r0 + j] = 32
    jv[e2[:f, info.num_tok].ravel() + r0] = 44
    doc = b"[" + js[r0 : r0 + cut].translate(None, b" ") + b"0]"

    def retry(upto: int) -> tuple[int, np.ndarray]:
        """Lines before ``upto`` again; the one at ``upto`` goes through LineParser."""
        js[r0 : r0 + cut] = tx.data[r0 : r0 + cut].translate(_KEEP_E)  # as it was: those lines are read again
        return _check(tx, lo, lo + upto, info, plan) if upto else (0, np.zeros((0, k)))

    minus0 = 0 if doc.startswith(b"[-0,") else doc.find(b",-0,")
    if minus0 >= 0:  # JSON's -0 is the integer 0, float("-0") is -0.0
        return retry(doc.count(b",", 0, minus0 + 1) // k)
    try:
        nums = orjson.loads(doc)
    except orjson.JSONDecodeError as err:  # 1., +5, 007, 1e999
        return retry(doc.count(b",", 0, err.pos) // k)
    vals = np.fromiter(nums, np.float64, f * k).reshape(f, k)  # the trailing 0 left out; ints as float(int)
    if plan.step is not None:  # int(float(x)) raises past float range: LineParser's business
        far = np.flatnonzero(~(np.abs(vals[:, info.slot_of[plan.step]]) < 2.0**62))
        if far.size:
            return retry(int(far[0]))
    return f, vals


def _block(p: LineParser, plan: _Plan, info: _Info, vals: np.ndarray, out: list[Record | Block]) -> None:
    """What LineParser._apply does for each row of ``vals`` (an epoch-less plan whose one-time notes fired)."""
    st = p.s
    n = len(vals)
    first = p.lineno + 1
    p.lineno += n
    metrics = {name: vals[:, info.slot_of[g]] / div for g, name, div in plan.metrics}
    if plan.step is not None:
        steps = vals[:, info.slot_of[plan.step]].astype(np.int64)
    elif st.last_step is not None:
        steps = np.full(n, st.last_step, dtype=np.int64)
    else:
        return  # an eval line before any step: LineParser returns None for each
    is_eval = any(name.startswith("eval_") for name in metrics)
    if not is_eval:
        st.train_lines += n
    elif TRAIN_LOSS in metrics and st.train_lines:
        metrics["eval_train_loss"] = metrics.pop(TRAIN_LOSS)
    st.last_step = int(steps[-1])
    out.append(Block(steps, metrics, st.epoch, np.arange(first, first + n), is_eval))
