"""Byte-level scanning of HF Trainer stdout: metric dicts, the tqdm count after each, launcher facts.

Why bytes and not lines: a real log is mostly tqdm refreshes joined by ``\\r``
(about 2 KB of progress bar per logged point), so a per-line Python loop
spends all its time on noise. Here the only Python-level iteration is one
``bytes.find(b"{")`` (memchr) per candidate dict; the dict bodies are then
parsed together, column-wise, by :func:`parse_bodies` with numpy. Memory is
bounded by the number of points, never by the file or line size (a 100 MB
line without a newline is scanned in bounded windows).

The step of a dict line is the tqdm counter printed right after it: HF's
``ProgressCallback.on_log`` calls ``tqdm.write``, which clears the bar, prints
the dict, then redraws the bar with ``n == global_step``. The counter printed
*before* a dict is stale (tqdm refreshes at most every 0.1 s), so it is not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

MAX_DICT = 16384  # a Trainer log dict is < 4 KB even with many eval metrics; longer is junk
BAR_WINDOW = 2048  # a redrawn bar follows the dict within a few hundred bytes (wide unicode bars ~600)

# The bar redrawn right after a dict: blanks, cursor-up escapes, optional rank prefix, then
# "NN%|<bar>| n/N [". ``[^|\n]`` keeps the bar body on one line; the eval bar has the same
# shape and is told apart later by its total.
_BAR_AFTER = re.compile(
    rb"[ \t\r\n]*(?:\x1b\[A[ \t\r\n]*)*(?:\[rank\d+\]:[ \t]*)?[ \t]*\d{1,3}%\|[^|\n]{0,1600}\|[ \t]*(\d+)/(\d+)[ \t]*\["
)
_METRICISH = (b"{'loss'", b"{'eval_", b"{'train_", b"{'learning_rate'", b"{'grad_norm'", b"{'epoch'")
_REJECT_BEFORE = frozenset(b"=(,")
_CLEAN_BEFORE = frozenset(b"\r\n]A:")  # line start, tqdm "it/s]", "\x1b[A", "[rank0]:": never an echo  # `x = {...}`, `TrainOutput(metrics={...})`: echoes, not logs

KIND_TRAIN, KIND_EVAL, KIND_SUMMARY, KIND_OTHER, KIND_IGNORE = 0, 1, 2, 3, 4


@dataclass
class Scanned:
    """Candidate dicts found in one buffer, in file order (columns, not objects)."""

    pos: list[int] = field(default_factory=list)  # absolute byte offset of "{"
    bodies: list[bytes] = field(default_factory=list)
    bar_n: list[int] = field(default_factory=list)  # -1: no bar right after
    bar_total: list[int] = field(default_factory=list)
    skipped: int = 0


def scan(buf: bytes, base: int, scanned: Scanned, *, final: bool, start: int = 0) -> int:
    """Append the dicts of ``buf`` to ``scanned``; returns how many bytes were consumed.

    Unconsumed bytes (a dict still open, or a dict whose bar may not have
    arrived yet) are for the caller to prepend to the next buffer, with a few
    bytes before them passed again as context (``start`` skips them). With
    ``final`` everything is consumed and an unterminated metric dict is a
    counted skip (a truncated last line).
    """
    n = len(buf)
    find = buf.find
    match = _BAR_AFTER.match
    pos, bodies, bar_n, bar_total = scanned.pos, scanned.bodies, scanned.bar_n, scanned.bar_total
    i = find(b"{", start)
    while i >= 0:
        if i + 1 >= n:
            return n if final else i
        if buf[i + 1] != 39:  # "'": python dict repr starts {'key'
            i = find(b"{", i + 1)
            continue
        c = find(b"}", i + 2, i + MAX_DICT)
        if c < 0:
            if not final and n - i < MAX_DICT:
                return i  # may complete with the next chunk
            if buf.startswith(_METRICISH, i):
                scanned.skipped += 1
            i = find(b"{", i + 2)
            continue
        body = buf[i + 1 : c]
        if b"\n" in body or b"{" in body:
            # a dict cut by a newline or by another dict: a truncated line
            if buf.startswith(_METRICISH, i):
                scanned.skipped += 1
            j = find(b"{", i + 2, c)
            i = j if j >= 0 else find(b"{", i + 2)
            continue
        m = match(buf, c + 1, c + 1 + BAR_WINDOW)
        if m is None and not final and c + 1 + BAR_WINDOW > n and find(b"{", c + 1) < 0:
            return i  # the bar that tqdm redraws after the dict may still be on its way
        if i and buf[i - 1] not in _CLEAN_BEFORE and _echo(buf, i):
            i = find(b"{", c + 1)
            continue
        pos.append(base + i)
        bodies.append(body)
        if m is None:
            bar_n.append(-1)
            bar_total.append(-1)
        else:
            bar_n.append(int(m.group(1)))
            bar_total.append(int(m.group(2)))
        i = find(b"{", c + 1)
    if not final and n and buf[-1] == 123:
        return n - 1
    return n


def _echo(buf: bytes, i: int) -> bool:
    """True when the dict is an echo (``eval_results= {...}``) rather than a Trainer log line."""
    k = i - 1
    stop = max(0, i - 8)
    while k >= stop and buf[k] in (32, 9):
        k -= 1
    return k >= 0 and buf[k] in _REJECT_BEFORE


# -- body parsing (column-wise) -------------------------------------------------

_NUMCHARS = np.zeros(256, bool)
for _ch in b"0123456789.eE+-nNaAiIfFtTyY":
    _NUMCHARS[_ch] = True
_KEY_W = 48
_VAL_W = 24  # '-2.1176470588235296e-06' is 23 bytes; longer is not a logged float


@dataclass
class Pairs:
    """The numeric key/value pairs of many dict bodies, as parallel arrays."""

    dict_idx: np.ndarray  # which body each pair belongs to
    key_id: np.ndarray  # index into ``keys``
    value: np.ndarray  # float64 (NaN / inf kept)
    keys: list[str]


def parse_bodies(bodies: list[bytes]) -> Pairs:
    """Parse ``'key': value`` pairs of every body at once (values numbers or quoted numbers).

    Non-numeric values (lists, strings, nested reprs) are dropped; the caller
    decides from the keys what kind of dict each body is.
    """
    empty = Pairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), [])
    if not bodies:
        return empty
    joined = b"\x00".join(bodies) + b"\x00"
    d = np.frombuffer(joined, np.uint8)
    ends = np.flatnonzero(d == 0)  # end of each body
    colon = np.flatnonzero(d == 58)
    colon = colon[(colon > 0) & (colon + 2 < len(d))]
    colon = colon[(d[colon - 1] == 39) & (d[colon + 1] == 32)]  # "': "
    if not len(colon):
        return empty
    quotes = np.flatnonzero(d == 39)
    qi = np.searchsorted(quotes, colon - 1)  # index of the key's closing quote
    ok = qi >= 1
    colon, qi = colon[ok], qi[ok]
    kstart = quotes[qi - 1] + 1
    kend = colon - 1
    body_of = np.searchsorted(ends, colon)
    ok = kstart > np.where(body_of > 0, ends[np.maximum(body_of - 1, 0)], -1)  # key inside its own body
    colon, qi, kstart, kend, body_of = colon[ok], qi[ok], kstart[ok], kend[ok], body_of[ok]
    vstart = colon + 2
    quoted = d[vstart] == 39
    vstart = vstart + quoted
    # value end: the closing quote, else the next "," or the body end
    commas = np.flatnonzero(d == 44)
    ci = np.searchsorted(commas, vstart)
    next_comma = np.where(ci < len(commas), commas[np.minimum(ci, len(commas) - 1)], len(d))
    body_end = ends[body_of]
    vend_plain = np.minimum(next_comma, body_end)
    qn = np.searchsorted(quotes, vstart)
    next_quote = np.where(qn < len(quotes), quotes[np.minimum(qn, len(quotes) - 1)], len(d))
    vend = np.where(quoted, next_quote, vend_plain)
    # strip blanks around plain values
    vlen = vend - vstart
    good = (vlen > 0) & (vlen <= _VAL_W) & (kend > kstart) & (kend - kstart <= _KEY_W)
    vals = _gather(d, vstart, vend, _VAL_W)
    numeric = good & (_NUMCHARS[vals] | (vals == 0)).all(axis=1)
    value = np.full(len(vstart), np.nan)
    if numeric.any():
        raw = np.ascontiguousarray(vals[numeric]).view(f"S{_VAL_W}").ravel()
        try:
            value[numeric] = raw.astype(np.float64)
        except ValueError:
            value[numeric] = [_float(x) for x in raw]
        numeric &= ~np.isnan(value) | _is_nan_text(vals)
    # key identity without copying every key: length, first 8 and last 8 bytes, and the byte sum
    ks, ke = kstart[numeric], kend[numeric]
    klen = ke - ks
    cs = np.concatenate([[0], np.cumsum(d, dtype=np.int64)])
    first = _gather(d, ks, np.minimum(ke, ks + 8), 8).copy().view(np.uint64).ravel()
    lstart = np.maximum(ks, ke - 8)
    last = _gather(d, lstart, ke, 8).copy().view(np.uint64).ravel()
    with np.errstate(over="ignore"):
        sig = (klen.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ first ^ (last * np.uint64(0xC2B2AE3D27D4EB4F)) \
            ^ ((cs[ke] - cs[ks]).astype(np.uint64) * np.uint64(0x165667B19E3779F9))
    _, rep, inv = np.unique(sig, return_index=True, return_inverse=True)
    keys = [bytes(d[ks[r]:ke[r]]).decode("utf-8", "replace") for r in rep]
    return Pairs(body_of[numeric].astype(np.int64), np.asarray(inv, np.int64).ravel(), value[numeric], keys)


def _gather(d: np.ndarray, start: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Rows ``d[start:end]`` NUL-padded to ``width``: one strided-window row copy each, then a mask."""
    pad = np.concatenate([d, np.zeros(width, np.uint8)])
    win = np.lib.stride_tricks.sliding_window_view(pad, width)
    rows = win[start]
    rows[np.arange(width)[None, :] >= (end - start)[:, None]] = 0
    return rows


def _is_nan_text(rows: np.ndarray) -> np.ndarray:
    """Rows that spell nan/NaN (so a parsed NaN is a real NaN, not a failed parse)."""
    r = rows[:, :4] | 0x20  # lower-case letters; '-' and digits change but cannot spell "nan"
    plain = (r[:, 0] == ord("n")) & (r[:, 1] == ord("a")) & (r[:, 2] == ord("n"))
    signed = (r[:, 1] == ord("n")) & (r[:, 2] == ord("a")) & (r[:, 3] == ord("n")) & (rows[:, 0] == ord("-"))
    return plain | signed


def _float(x: bytes) -> float:
    try:
        return float(x)
    except ValueError:
        return float("nan")


# -- launcher and Trainer banner facts -------------------------------------------

_INFO = re.compile(
    rb"CUDA_VISIBLE_DEVICES[=:]\s*(?P<cvd>[\d][\d, ]*)"
    rb"|(?:dist_world_size|WORLD_SIZE|world_size|[Ww]orld [Ss]ize|WORLD SIZE)\s*[=:]\s*(?P<ws>\d+)"
    rb"|num_local_procs=(?P<nlp>\d+)"
    rb"|--(?:num_gpus|nproc_per_node|nproc-per-node|num_processes|num-processes)[= ](?P<ng>\d+)"
    rb"|Total optimization steps = (?P<tos>[\d,]+)"
    rb"|Num Epochs = (?P<ne>[\d,]+)"
    rb"|Instantaneous batch size per device = (?P<bs>[\d,]+)"
    rb"|Gradient Accumulation steps = (?P<ga>[\d,]+)"
    rb"|Num examples = (?P<nx>[\d,]+)"
    rb"|global_step=(?P<gs>\d+)"
)
_LAUNCH = re.compile(rb"(?m)^[^\n]*?(?:^|[\s'\"=/])(?P<tool>deepspeed|torchrun|accelerate launch|python[\d.]*)\b[^\n]*?[\s'\"](?P<script>[\w./-]+\.py)\b(?P<args>[^\n]*)$"
                     rb"|^[ \t]*(?P<script2>[\w./-]+\.py)(?P<args2>(?:[ \t]+\S+)+)[ \t]*$")


_INFO_KEYS = (b"CUDA_VISIBLE_DEVICES", b"world_size", b"WORLD_SIZE", b"orld size", b"ORLD SIZE", b"num_local_procs",
              b"--num_gpus", b"--nproc", b"--num_processes", b"--num-processes", b"Total optimization steps",
              b"Num Epochs", b"Instantaneous batch size", b"Gradient Accumulation steps", b"Num examples", b"global_step=")


def _lines_with(text: bytes, needle: bytes, limit: int = 64):
    """The lines containing ``needle`` (at most ``limit``), found with bytes.find: no regex over tqdm noise."""
    i = text.find(needle)
    while i >= 0 and limit:
        a = max(text.rfind(b"\n", 0, i), text.rfind(b"\r", 0, i)) + 1
        b = text.find(b"\n", i)
        b = len(text) if b < 0 else b
        yield text[a:b]
        limit -= 1
        i = text.find(needle, b)


def scan_info(text: bytes) -> dict[str, object]:
    """Launcher/banner facts in ``text``: GPU count, planned steps, batch, and the launch command."""
    out: dict[str, object] = {}
    for kw in _INFO_KEYS:
        for line in _lines_with(text, kw, 4):
            for m in _INFO.finditer(line):
                g = m.lastgroup
                raw = m.group(g or 0)
                if g == "cvd":
                    ids = [x for x in raw.decode().replace(" ", "").split(",") if x]
                    out.setdefault("cuda_visible_devices", len(ids))
                elif g:
                    out.setdefault(g, int(raw.replace(b",", b"")))
    for line in _lines_with(text, b".py"):
        m = _LAUNCH.search(line)
        if not m:
            continue
        if m.group("script"):
            tool = "deepspeed" if b"deepspeed" in line else m.group("tool").decode()
            script, args = m.group("script"), m.group("args")
        else:
            tool, script, args = "", m.group("script2"), m.group("args2")
        args = re.sub(rb"[\[\]',\"]", b" ", args)
        args = re.sub(rb"--local_rank=\d+", b"", args)
        words = [w.decode("utf-8", "replace") for w in args.split()]
        out["launch_command"] = " ".join([*(tool.split() if tool else []), script.decode("utf-8", "replace"), *words])
        out["launch_args"] = words
        break
    return out
