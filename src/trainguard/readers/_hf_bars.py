"""The tqdm counter redrawn right after an HF Trainer dict line: ``n/N`` of the bar, read for many dicts at once.

HF's ``ProgressCallback.on_log`` calls ``tqdm.write``, which clears the bar,
prints the dict, then redraws the bar with ``n == global_step``: that count is
the dict's step (see ``_hf_steps``). ``_BAR_AFTER`` is the definition;
:func:`bars` reads the same thing without running the regex over every bar.
"""

from __future__ import annotations

import re

import numpy as np

BAR_WINDOW = 2048  # a redrawn bar follows the dict within a few hundred bytes (wide unicode bars ~600)

# The bar redrawn right after a dict: blanks, cursor-up escapes, optional rank prefix, then
# "NN%|<bar>| n/N [". ``[^|\n]`` keeps the bar body on one line; the eval bar has the same
# shape and is told apart later by its total.
_BAR_AFTER = re.compile(
    rb"[ \t\r\n]*(?:\x1b\[A[ \t\r\n]*)*(?:\[rank\d+\]:[ \t]*)?[ \t]*\d{1,3}%\|[^|\n]{0,1600}\|[ \t]*(\d+)/(\d+)[ \t]*\["
)

_BLANK = np.zeros(256, bool)
_BLANK[list(b" \t\r\n")] = True
_SPACE = np.zeros(256, bool)
_SPACE[list(b" \t")] = True
_DIGIT = np.zeros(256, bool)
_DIGIT[list(b"0123456789")] = True
_HEAD_W = 24  # blanks + "NN%|" after a dict fit here; otherwise the regex decides
_TAIL_W = 48  # " n/N [" after the bar body
_MAX_DIGITS = 15


def bars(buf: bytes, closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tqdm ``n/N`` redrawn after each dict (``-1`` where none), exactly as ``_BAR_AFTER`` reads it.

    Why not the regex per dict: it walks the bar body (often 100+ bytes) one
    byte at a time. Here the short head (``\\n\\r 12%|``) and tail
    (``| 120/800 [``) are checked for all dicts at once on small windows, and
    the bar body is crossed with ``bytes.find`` (memchr). The pattern admits
    one match at most (each part ends where the next must begin), so these
    steps decide what the regex would; a bar opening with an escape or a
    ``[rankN]:`` prefix, or one that does not fit the windows, goes through
    the regex itself.
    """
    m = len(closes)
    out_n = np.full(m, -1, np.int64)
    out_t = np.full(m, -1, np.int64)
    slow = np.zeros(m, bool)
    arr = np.frombuffer(buf, np.uint8)
    start = closes + 1
    rows = windows(arr, start, _HEAD_W)
    idx = np.arange(m)
    col = np.arange(_HEAD_W)
    nb = ~_BLANK[rows]
    lead = nb.argmax(axis=1)
    ch = rows[idx, lead]
    slow |= ~nb[idx, lead] | (ch == 0x1B) | (ch == 0x5B)  # only blanks so far, ESC, "["
    go = ~slow & _DIGIT[ch]
    after = ~_DIGIT[rows] & (col[None, :] > lead[:, None])
    p = after.argmax(axis=1)  # the first non-digit after the percent digits
    pc = np.minimum(p + 1, _HEAD_W - 1)
    go &= after[idx, p] & (p - lead <= 3) & (p + 1 < _HEAD_W) & (rows[idx, p] == 37) & (rows[idx, pc] == 124)
    q = _bar_ends(buf, arr, start + pc, go)
    go &= q >= 0
    if go.any():
        g = np.flatnonzero(go)
        t = windows(arr, q[g] + 1, _TAIL_W)
        tn, tt, tslow = _tail(t)
        out_n[g], out_t[g] = tn, tt
        slow[g[tslow]] = True
    for k in np.flatnonzero(slow).tolist():
        a = int(start[k])
        mt = _BAR_AFTER.match(buf, a, a + BAR_WINDOW)
        if mt is not None:
            out_n[k] = int(mt.group(1))
            out_t[k] = int(mt.group(2))
    return out_n, out_t


def _bar_ends(buf: bytes, arr: np.ndarray, first: np.ndarray, go: np.ndarray) -> np.ndarray:
    """Where each bar body ends (its closing ``|``, as ``[^|\\n]{0,1600}\\|`` finds it); ``-1`` for none or not ``go``.

    A run's bars are all as wide as the terminal, so the width seen on the
    first bars is checked for every row at once (that byte is ``|`` and none
    before it is ``|`` or a newline); rows of another width use ``find``.
    """
    m = len(first)
    q = np.full(m, -1, np.int64)
    todo = np.flatnonzero(go)
    find = buf.find
    if len(todo) >= 8:
        widths = [find(b"|", a + 1, a + 1602) - a for a in first[todo[:8]].tolist()]
        w = max(set(widths), key=widths.count)
        if 1 <= w <= 1601:
            rows = windows(arr, first[todo] + 1, w)
            ok = (rows[:, w - 1] == 124) & ~((rows[:, : w - 1] == 124) | (rows[:, : w - 1] == 10)).any(axis=1)
            q[todo[ok]] = first[todo[ok]] + w
            todo = todo[~ok]
    for k, a in zip(todo.tolist(), first[todo].tolist(), strict=True):
        e = find(b"|", a + 1, a + 1602)
        if e >= 0 and find(b"\n", a + 1, e) < 0:
            q[k] = e
    return q


def windows(arr: np.ndarray, start: np.ndarray, w: int) -> np.ndarray:
    """Rows of the ``w`` bytes from each start; bytes past the end read as NUL (which no part of a bar matches).

    Only the rows that run past the end are copied from a padded tail (a few
    KB), never the buffer itself.
    """
    n = len(arr)
    late = start + w > n
    if not late.any():
        return np.lib.stride_tricks.sliding_window_view(arr, w)[start]
    out = np.zeros((len(start), w), np.uint8)
    if not late.all():
        out[~late] = np.lib.stride_tricks.sliding_window_view(arr, w)[start[~late]]
    lo = int(start[late].min())
    tail = np.concatenate([arr[lo:], np.zeros(w, np.uint8)])
    out[late] = np.lib.stride_tricks.sliding_window_view(tail, w)[start[late] - lo]
    return out


def _tail(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[ \\t]*(\\d+)/(\\d+)[ \\t]*\\[`` at the start of each row: (n, total, undecided); -1 where it fails."""
    m, w = t.shape
    idx = np.arange(m)
    col = np.arange(w)
    sp = _SPACE[t]
    dg = _DIGIT[t]
    s1 = _first(~sp, col, np.full(m, -1))
    e1 = _first(~dg, col, s1 - 1)
    e2 = _first(~dg, col, e1)
    s3 = _first(~sp, col, e2 - 1)
    fits = s3 < w
    s3c = np.minimum(s3, w - 1)
    e1c = np.minimum(e1, w - 1)
    ok = fits & (e1 > s1) & (t[idx, e1c] == 47) & (e2 > e1 + 1) & (t[idx, s3c] == 91)
    long = ok & (((e1 - s1) > _MAX_DIGITS) | ((e2 - e1 - 1) > _MAX_DIGITS))
    ok &= ~long
    n = np.full(m, -1, np.int64)
    tot = np.full(m, -1, np.int64)
    if ok.any():
        n[ok] = _digits(t[ok], s1[ok], e1[ok])
        tot[ok] = _digits(t[ok], e1[ok] + 1, e2[ok])
    return n, tot, ~fits | long


def _first(mask: np.ndarray, col: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per row, the first column > ``after`` where ``mask`` holds; the row width when none."""
    sel = mask & (col[None, :] > after[:, None])
    k = sel.argmax(axis=1)
    return np.where(sel[np.arange(len(k)), k], k, mask.shape[1])


def _digits(rows: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The integers spelled by ``rows[i, a[i]:b[i]]`` (all digits, at most 15)."""
    out = np.zeros(len(rows), np.int64)
    r = np.arange(len(rows))
    for j in range(_MAX_DIGITS):
        at = a + j
        live = at < b
        if not live.any():
            break
        d = rows[r, np.minimum(at, rows.shape[1] - 1)].astype(np.int64) - 48
        out = np.where(live, out * 10 + d, out)
    return out


