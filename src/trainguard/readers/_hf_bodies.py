"""The ``'key': value`` pairs of HF Trainer dict lines, parsed for a whole buffer at once.

Two parsers, one result. The usual line (numbers, or transformers-5 numbers
printed as strings) becomes JSON with one quote rewrite and goes through
``orjson`` in one call per buffer, its columns pulled out at C level. What
JSON cannot take (``nan``/``inf``, ``True``/``None``, apostrophes or
backslashes in keys, non-numeric strings) goes through :func:`parse_numpy`,
a column-wise byte parser that drops non-numeric values.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from .. import _compiled

_NUMCHARS = np.zeros(256, bool)
for _ch in b"0123456789.eE+-nNaAiIfFtTyY":
    _NUMCHARS[_ch] = True
_KEY_W = 48
_VAL_W = 24  # '-2.1176470588235296e-06' is 23 bytes; longer is not a logged float


_QUOTE = bytes.maketrans(b"'", b'"')


@dataclass
class Pairs:
    """The numeric key/value pairs of many dict bodies, as parallel arrays."""

    dict_idx: np.ndarray  # which body each pair belongs to
    key_id: np.ndarray  # index into ``keys``
    value: np.ndarray  # float64 (NaN / inf kept)
    keys: list[str]


def parse_bodies(bodies: list[bytes]) -> Pairs:
    """The numeric ``'key': value`` pairs of every body: JSON in one call when it can, else :func:`parse_numpy`.

    With the compiled extension, a list of bodies that are all in the plain
    shape (``'key': number`` or ``'key': 'number'``) is read by
    ``_speedups.hf_pairs`` into the same Pairs :func:`_parse_json` gives,
    without building the JSON text or a dict per body.
    """
    sp = _compiled.speedups
    if sp is not None and hasattr(sp, "hf_pairs") and type(bodies) is list:
        got = sp.hf_pairs(bodies)
        if got is not None:
            dict_idx, key_id, value, keys = got
            return Pairs(np.frombuffer(dict_idx, np.int64), np.frombuffer(key_id, np.int64), np.frombuffer(value, np.float64), keys)
    return _parse_json(bodies) or parse_numpy(bodies)


def _parse_json(bodies: list[bytes]) -> Pairs | None:
    """:func:`parse_bodies` through ``orjson``; None when a body is not plain numbers under plain keys.

    The rewrite turns ``'loss': '5.351', 'epoch': 0.25`` into
    ``"loss": 5.351, "epoch": 0.25``: apostrophes become quotes and the quotes
    around a value are dropped, so a numeric string becomes a number. Anything
    else then fails to parse or is not a number (a bool, a list), and the
    buffer goes to the byte parser, which knows those cases.
    """
    if not bodies:
        return None
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; the byte parser still works
        return None
    blob = b"},{".join(bodies)
    if b'"' in blob or b"\\" in blob:
        return None  # a key or string holding an apostrophe or an escape: JSON would read it differently
    blob = b"[{" + blob.translate(_QUOTE).replace(b'": "', b'": ').replace(b'", "', b', "').replace(b'"},{', b"},{") + b"}]"
    if blob.endswith(b'"}]'):
        blob = blob[:-3] + b"}]"
    try:
        dicts = orjson.loads(blob)
    except orjson.JSONDecodeError:
        return None
    values = list(chain.from_iterable(map(dict.values, dicts)))
    if not set(map(type, values)) <= {float, int}:
        return None  # a list, a bool: the byte parser decides what to keep
    keys = list(chain.from_iterable(dicts))
    names = list(dict.fromkeys(keys))
    ids = {k: i for i, k in enumerate(names)}
    counts = np.fromiter(map(len, dicts), np.int64, len(dicts))
    key_id = np.fromiter(map(ids.__getitem__, keys), np.int64, len(keys))
    value = np.array(values, np.float64)
    dict_idx = np.repeat(np.arange(len(dicts), dtype=np.int64), counts)
    long = [i for i, k in enumerate(names) if not k or len(k.encode()) > _KEY_W]
    if long:  # the byte parser ignores such keys; so does this one
        ok = ~np.isin(key_id, long)
        dict_idx, key_id, value = dict_idx[ok], key_id[ok], value[ok]
    return Pairs(dict_idx, key_id, value, names)


def parse_numpy(bodies: list[bytes]) -> Pairs:
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
    commas = np.append(commas, len(d))  # a sentinel: a body may hold one pair and no comma
    next_comma = commas[ci]
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


