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
from typing import NamedTuple

import numpy as np

from .. import _compiled
from ._hf_bars import _BAR_AFTER, BAR_WINDOW, bars
from ._hf_bodies import Pairs, parse_bodies

MAX_DICT = 16384  # a Trainer log dict is < 4 KB even with many eval metrics; longer is junk

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


class Found(NamedTuple):
    """:class:`Scanned` as arrays, for one buffer: what the parser ingests."""

    pos: np.ndarray  # int64 absolute offsets of "{"
    bodies: list[bytes]
    bar_n: np.ndarray  # int64; -1: no bar right after
    bar_total: np.ndarray
    skipped: int


_CLEAN = np.zeros(256, bool)
_CLEAN[list(_CLEAN_BEFORE)] = True


def scan(buf: bytes | bytearray, base: int, scanned: Scanned, *, final: bool, start: int = 0, end: int | None = None) -> int:
    """Append the dicts of ``buf[:end]`` to ``scanned``; returns how many bytes were consumed.

    Unconsumed bytes (a dict still open, or a dict whose bar may not have
    arrived yet) are for the caller to prepend to the next buffer, with a few
    bytes before them passed again as context (``start`` skips them). With
    ``final`` everything is consumed and an unterminated metric dict is a
    counted skip (a truncated last line).

    Three paths give the same result. With the compiled extension,
    ``_speedups.hf_scan`` runs :func:`scan_exact`'s loop in C (:func:`_scan_c`).
    Without it, :func:`_scan_fast` (one ``find`` per brace, the rest in numpy)
    handles a buffer of well-formed dicts; anything unusual in it (a dict cut
    by a newline, a brace inside a dict, an unterminated dict that is not at
    the end) sends the whole buffer through :func:`scan_exact`, the per-dict
    reference loop.
    """
    sp = _compiled.speedups
    if sp is not None and hasattr(sp, "find"):  # an extension built before hf_scan took ``end`` lacks find
        return _scan_c(sp, buf, base, scanned, final=final, start=start, end=len(buf) if end is None else end)
    if end is not None and end < len(buf):
        buf = bytes(buf[:end])
    used = _scan_fast(buf, base, scanned, final=final, start=start)
    return scan_exact(buf, base, scanned, final=final, start=start) if used is None else used


def scan_found(buf: bytes | bytearray, base: int, *, final: bool, start: int = 0, end: int | None = None) -> tuple[int, Found]:
    """:func:`scan` of one buffer, its dicts as arrays: bytes consumed and what was found.

    Why a second entry point: with the extension, the C scanner's rows become
    the columns without a round trip through Python lists (on a 200 MB log
    that round trip cost more than the scan).
    """
    sp = _compiled.speedups
    n = len(buf) if end is None else end
    if sp is not None and hasattr(sp, "find"):
        used, skipped, rows, bodies = sp.hf_scan(buf, start, final, n)
        return used, found_of(buf, base, rows, bodies, skipped, n)
    sc = Scanned()
    used = scan(buf, base, sc, final=final, start=start, end=n)
    i64 = np.int64
    return used, Found(np.asarray(sc.pos, i64), sc.bodies, np.asarray(sc.bar_n, i64), np.asarray(sc.bar_total, i64), sc.skipped)


def found_of(buf: bytes | bytearray, base: int, rows: bytearray, bodies: list[bytes] | None, skipped: int, end: int) -> Found:
    """The C scanner's result (``_speedups.hf_scan``'s rows and bodies) as a :class:`Found`.

    A bar count marked ``-2`` (more than 18 digits) is read with ``_BAR_AFTER``
    itself; past int64 it raises OverflowError, which the front door reports as
    a number out of range, as the Python path does.
    """
    a = np.frombuffer(rows, np.int64).reshape(-1, 4)
    bar_n, bar_total = a[:, 2], a[:, 3]
    big = np.flatnonzero(bar_n == -2).tolist()
    if big:
        bn, bt, closes = bar_n.tolist(), bar_total.tolist(), a[:, 1].tolist()
        for k in big:
            m = _BAR_AFTER.match(buf, closes[k] + 1, min(closes[k] + 1 + BAR_WINDOW, end))
            assert m is not None  # hf_scan marks only bars that match
            bn[k], bt[k] = int(m.group(1)), int(m.group(2))
        bar_n, bar_total = np.asarray(bn, np.int64), np.asarray(bt, np.int64)
    if bodies is None:  # a memoryview: its slices would be views of a buffer that is reused
        bodies = [bytes(buf[o + 1 : c]) for o, c in zip(a[:, 0].tolist(), a[:, 1].tolist(), strict=True)]
    return Found(a[:, 0] + base, bodies, bar_n, bar_total, skipped)


def _scan_c(sp, buf: bytes | bytearray, base: int, scanned: Scanned, *, final: bool, start: int, end: int | None = None) -> int:
    """:func:`scan` through ``_speedups.hf_scan``: :func:`scan_exact` in C, one pass over the buffer.

    The C loop returns where each kept dict opens and closes and the bar
    count after it, and the bodies as ``buf``'s slices (bytes or bytearray;
    other buffers are sliced here); a bar count too long for int64 (marked
    ``-2``) is read with ``_BAR_AFTER`` itself.
    """
    end = len(buf) if end is None else end
    used, skipped, rows, bodies = sp.hf_scan(buf, start, final, end)
    scanned.skipped += skipped
    if not rows:
        return used
    a = np.frombuffer(rows, np.int64).reshape(-1, 4)
    opens, closes = a[:, 0].tolist(), a[:, 1].tolist()
    bar_n, bar_total = a[:, 2].tolist(), a[:, 3].tolist()
    for k in np.flatnonzero(a[:, 2] == -2).tolist():
        m = _BAR_AFTER.match(buf, closes[k] + 1, min(closes[k] + 1 + BAR_WINDOW, end))
        assert m is not None  # hf_scan marks only bars that match
        bar_n[k], bar_total[k] = int(m.group(1)), int(m.group(2))
    scanned.pos.extend((a[:, 0] + base).tolist())
    scanned.bodies.extend(bodies if bodies is not None else [buf[o + 1 : c] for o, c in zip(opens, closes, strict=True)])
    scanned.bar_n.extend(bar_n)
    scanned.bar_total.extend(bar_total)
    return used


def _scan_fast(buf: bytes, base: int, scanned: Scanned, *, final: bool, start: int) -> int | None:
    """The common case of :func:`scan`; None (nothing appended) when the buffer needs the exact loop.

    Why this shape: in a tqdm-heavy log the Python-level work per dict is what
    costs, so the loop only records where each dict opens and closes (memchr
    finds); the body check, the echo check and the bar after each dict are
    then done for all dicts of the buffer at once.
    """
    n = len(buf)
    find = buf.find
    braces: list[int] = []
    add = braces.append
    i = find(b"{", start)
    while i >= 0:  # the only per-brace Python: memchr from one "{" to the next
        add(i)
        i = find(b"{", i + 1)
    if not braces:
        return n
    br = np.asarray(braces, np.int64)
    arr = np.frombuffer(buf, np.uint8)
    used = n
    if br[-1] == n - 1:  # a "{" as the last byte: the exact loop stops there
        used = n if final else n - 1
        br_dicts = br[:-1]
    else:
        br_dicts = br
    k_dict = np.flatnonzero(arr[br_dicts + 1] == 39) if len(br_dicts) else np.empty(0, np.int64)  # "{'"
    if not len(k_dict):
        return used
    o = br[k_dict]
    c = _closes(buf, arr, o)
    cut = np.flatnonzero(c < 0)
    if len(cut):
        i = int(o[cut[0]])
        if final or n - i >= MAX_DICT:
            return None  # a truncated dict: the exact loop counts it
        used = i  # may complete with the next chunk
        k_dict, o, c = k_dict[: cut[0]], o[: cut[0]], c[: cut[0]]
        if not len(o):
            return used
    nxt = np.append(br, n + 1)[k_dict + 1]  # the next "{" after each dict
    if (nxt < c).any():
        return None  # a brace inside a dict
    last_j = int(nxt[-1]) if nxt[-1] <= n else -1  # with no "{" after the last dict, its bar may still be coming
    opens, closes = o.tolist(), c.tolist()
    bodies = [buf[a + 1 : b] for a, b in zip(opens, closes, strict=True)]
    if b"\n" in b"".join(bodies):
        return None  # a dict cut by a newline (truncated line): the exact loop counts it
    bar_n, bar_total = bars(buf, c)
    last = len(opens) - 1
    if bar_n[last] < 0 and not final and last_j < 0 and int(c[last]) + 1 + BAR_WINDOW > n:
        used = opens[last]  # the bar redrawn after the last dict may still be on its way
        o, c, bar_n, bar_total, bodies = o[:last], c[:last], bar_n[:last], bar_total[:last], bodies[:last]
    keep = np.ones(len(o), bool)
    prev = arr[np.maximum(o - 1, 0)]
    for k in np.flatnonzero((o > 0) & ~_CLEAN[prev]).tolist():
        keep[k] = not _echo(buf, int(o[k]))
    if not keep.all():
        o, bar_n, bar_total = o[keep], bar_n[keep], bar_total[keep]
        bodies = [b for b, k in zip(bodies, keep.tolist(), strict=True) if k]
    scanned.pos.extend((o + base).tolist())
    scanned.bodies.extend(bodies)
    scanned.bar_n.extend(bar_n.tolist())
    scanned.bar_total.extend(bar_total.tolist())
    return used


def find_bytes(buf: bytes | bytearray, needle: bytes, start: int, end: int) -> int:
    """``buf.find(needle, start, end)``, with the C library's memmem when the extension is built (3x faster)."""
    sp = _compiled.speedups
    if sp is not None and hasattr(sp, "find"):
        return sp.find(buf, needle, start, end)
    return buf.find(needle, start, end)


_CLOSE_W = 256  # a train or eval dict body fits; a longer one is found with bytes.find


def _closes(buf: bytes, arr: np.ndarray, opens: np.ndarray) -> np.ndarray:
    """The first ``}`` after each ``{'`` (within MAX_DICT), ``-1`` when there is none: what ``find`` gives, for all at once."""
    from ._hf_bars import windows

    rows = windows(arr, opens + 2, _CLOSE_W)
    hit = rows == 125
    k = hit.argmax(axis=1)
    found = hit[np.arange(len(k)), k]
    out = np.where(found, opens + 2 + k, -1)
    for r in np.flatnonzero(~found).tolist():
        i = int(opens[r])
        out[r] = buf.find(b"}", i + 2, i + MAX_DICT)
    return out


def scan_exact(buf: bytes, base: int, scanned: Scanned, *, final: bool, start: int = 0) -> int:
    """:func:`scan` as a plain loop over the dicts: the reference the fast path must equal, and its fallback.

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


def _lines_with(text: bytes | bytearray, needle: bytes, limit: int = 64):
    """The lines containing ``needle`` (at most ``limit``), found with bytes.find: no regex over tqdm noise."""
    n = len(text)
    i = find_bytes(text, needle, 0, n)
    while i >= 0 and limit:
        a = max(text.rfind(b"\n", 0, i), text.rfind(b"\r", 0, i)) + 1
        b = text.find(b"\n", i)
        b = n if b < 0 else b
        yield text[a:b]
        limit -= 1
        i = find_bytes(text, needle, b, n)


def _all_lines(text: bytes | bytearray, needles: tuple[bytes, ...], limits: tuple[int, ...]) -> list[list[bytes]]:
    """:func:`_lines_with` for each needle; with the extension, one pass over ``text`` for all of them (17 memmem passes cost 26 ms on an 8 MB head)."""
    sp = _compiled.speedups
    if sp is not None and hasattr(sp, "lines_with"):
        return [[text[a:b] for a, b in spans] for spans in sp.lines_with(text, needles, limits)]
    return [list(_lines_with(text, kw, lim)) for kw, lim in zip(needles, limits, strict=True)]


_LINE_LIMITS = (4,) * len(_INFO_KEYS) + (64,)


def scan_info(text: bytes | bytearray) -> dict[str, object]:
    """Launcher/banner facts in ``text``: GPU count, planned steps, batch, and the launch command."""
    out: dict[str, object] = {}
    *info_lines, py_lines = _all_lines(text, (*_INFO_KEYS, b".py"), _LINE_LIMITS)
    for lines in info_lines:
        for line in lines:
            for m in _INFO.finditer(line):
                g = m.lastgroup
                raw = m.group(g or 0)
                if g == "cvd":
                    ids = [x for x in raw.decode().replace(" ", "").split(",") if x]
                    out.setdefault("cuda_visible_devices", len(ids))
                elif g:
                    out.setdefault(g, int(raw.replace(b",", b"")))
    for line in py_lines:
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


__all__ = ["KIND_EVAL", "KIND_IGNORE", "KIND_OTHER", "KIND_SUMMARY", "KIND_TRAIN", "Found", "Pairs", "Scanned", "find_bytes", "found_of", "parse_bodies", "scan", "scan_exact", "scan_found", "scan_info"]
