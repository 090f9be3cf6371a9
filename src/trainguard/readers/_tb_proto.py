"""Hand-rolled protobuf decoding of TensorBoard ``Event`` records, scalars only.

Why by hand: the generated ``event_pb2`` classes build a Python object per
event and per value (tbparse and EventAccumulator then copy them again), which
caps reading at ~40k scalars/s. A scalar event is ~40 bytes with a fixed field
order, so walking the wire format directly with ``struct`` and byte indexing,
and keeping the results in flat lists that become numpy columns, is an order
of magnitude faster. Only the fields scalars need are decoded::

    Event          wall_time=1 (double)  step=2 (varint)  file_version=3  summary=5  session_log=7
    Summary        value=1 (repeated)
    Summary.Value  tag=1  simple_value=2 (float)  tensor=8  metadata=9
    TensorProto    dtype=1 tensor_shape=2 tensor_content=4 float_val=5 double_val=6
                   int_val=7 int64_val=10 half_val=13
    SummaryMetadata plugin_data=1 {plugin_name=1}  data_class=4

Histograms, images, audio and text are skipped by their length prefix without
being decoded. TF2 writes a tag's ``metadata`` (plugin name) only on its first
event, so the plugin is remembered per tag.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from .. import _compiled
from ._tfrecord import Corrupt, masked_crc32c_many, spans

_F32 = struct.Struct("<f").unpack_from
_F64 = struct.Struct("<d").unpack_from
_U64 = struct.Struct("<Q").unpack_from

# TensorProto dtypes we can turn into one float: code -> (struct format, item size)
_DTYPES: dict[int, tuple[str, int]] = {
    1: ("<f", 4),  # DT_FLOAT
    2: ("<d", 8),  # DT_DOUBLE
    3: ("<i", 4),  # DT_INT32
    4: ("<B", 1),  # DT_UINT8
    5: ("<h", 2),  # DT_INT16
    6: ("<b", 1),  # DT_INT8
    9: ("<q", 8),  # DT_INT64
    10: ("<?", 1),  # DT_BOOL
    14: ("bf16", 2),  # DT_BFLOAT16
    19: ("<e", 2),  # DT_HALF
}
_SCALAR_PLUGINS = {b"", b"scalars"}
_DATA_CLASS_SCALAR = 1


@dataclass
class Scalars:
    """Flat columns of every scalar in one event file, in file order."""

    tag_ids: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    file_version: str | None = None
    records: int = 0
    skipped_values: int = 0  # histograms, images, text ... (not scalars)
    restarts: list[int] = field(default_factory=list)  # index into the columns where a SessionLog START came
    corrupt: int = 0  # kept records whose checksum failed: dropped, reported by the reader
    error: Corrupt | None = None


def _varint(buf: bytes, p: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        b = buf[p]
        p += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, p
        shift += 7


def _skip(buf: bytes, p: int, wire: int) -> int:
    """Position after a field of wire type ``wire`` whose value starts at ``p``."""
    if wire == 0:
        while buf[p] >= 0x80:
            p += 1
        return p + 1
    if wire == 1:
        return p + 8
    if wire == 2:
        n, p = _varint(buf, p)
        return p + n
    if wire == 5:
        return p + 4
    raise ValueError(f"unsupported wire type {wire}")


def decode(buf: bytes, *, verify: bool = False) -> Scalars:
    """Every scalar in the event file bytes ``buf``; a bad or truncated record ends the read (see ``.error``).

    Two passes. The first walks the record framing and, for all records at
    once, finds those of the shape ``SummaryWriter.add_scalar`` writes
    (wall_time, step, one Summary.Value of tag + simple_value): their steps,
    wall times, values and tags are gathered in bulk and their checksums
    checked. With the C extension that pass is ``_speedups.tb_scan``, one
    loop; without it, one ``unpack`` per record and numpy over all of them.
    The other records (TF2 tensors, histograms, file_version, several values
    per event) go through the general decoder, one by one, and are merged
    back in file order.
    """
    if verify:
        return _decode_general(buf, verify=True)
    out = Scalars()
    n = len(buf)
    sp = _compiled.speedups
    scan = getattr(sp, "tb_scan", None) if sp is not None else None
    tag_of: dict[str, int] = {}
    if scan is not None:
        starts_b, pos, torn, *fast = scan(buf)
        st = np.frombuffer(starts_b, dtype=np.int64)
    else:
        st, pos, torn = _framing(buf)
    if torn >= 0:
        out.error = Corrupt(torn, f"truncated record ({n - torn} bytes left)")
    out.records = len(st)
    if not len(st):
        return out
    en = np.empty_like(st)
    en[:-1] = st[1:] - 16
    en[-1] = pos - 4
    raw = np.frombuffer(buf, dtype=np.uint8)
    if scan is not None:
        f, tids, steps, walls, vals, good = _compiled_columns(*fast, tag_of)
    else:
        parts = [_fast_chunk(buf, raw, st, en, c, min(c + _CHUNK, len(st)), tag_of) for c in range(0, len(st), _CHUNK)]
        f = np.concatenate([p[0] for p in parts])
        tids = np.concatenate([p[1] for p in parts])
        steps = np.concatenate([p[2] for p in parts])
        walls = np.concatenate([p[3] for p in parts])
        vals = np.concatenate([p[4] for p in parts])
        good = _checksums_ok(raw, st, en, f)  # the kept records, checked in bulk: a flipped bit drops the point
    ok = np.zeros(len(st), dtype=bool)
    ok[f] = True
    if not good.all():
        out.corrupt += int((~good).sum())
        f, tids, steps, walls, vals = f[good], tids[good], steps[good], walls[good], vals[good]
    order = f.astype(np.int64)
    slow = np.nonzero(~ok)[0]
    if len(slow):
        plugins: dict[bytes, bytes] = {}
        s_rec: list[int] = []
        s_tid: list[int] = []
        s_step: list[int] = []
        s_wall: list[float] = []
        s_val: list[float] = []
        for r in slow.tolist():
            at = int(st[r]) - 12
            sub = _decode_general(buf[at : int(en[r]) + 4], plugins=plugins)
            if sub.error is not None:
                out.error = Corrupt(at, sub.error.why)
                break
            if sub.values and not _checksums_ok(raw, st, en, np.asarray([r]))[0]:
                out.corrupt += 1
                continue
            out.file_version = sub.file_version or out.file_version
            out.skipped_values += sub.skipped_values
            for t, stp, w, val in zip(sub.tag_ids, sub.steps, sub.walls, sub.values, strict=True):
                s_rec.append(r)
                s_tid.append(tag_of.setdefault(sub.tags[t], len(tag_of)))
                s_step.append(stp)
                s_wall.append(w)
                s_val.append(val)
        if s_rec:
            order = np.concatenate([order, np.asarray(s_rec, dtype=np.int64)])
            tids = np.concatenate([tids, np.asarray(s_tid, dtype=np.int64)])
            steps = np.concatenate([steps, np.asarray(s_step, dtype=np.int64)])
            walls = np.concatenate([walls, np.asarray(s_wall, dtype=np.float64)])
            vals = np.concatenate([vals, np.asarray(s_val, dtype=np.float64)])
            o = np.argsort(order, kind="stable")
            tids, steps, walls, vals = tids[o], steps[o], walls[o], vals[o]
    out.tags = list(tag_of)
    out.tag_ids, out.steps, out.walls, out.values = tids, steps, walls, vals  # type: ignore[assignment]
    return out


def _framing(buf: bytes) -> tuple[np.ndarray, int, int]:
    """(payload offset of each complete record, the offset after the last one, where a torn last record starts or -1)."""
    n = len(buf)
    starts: list[int] = []
    add = starts.append
    unpack = _U64
    pos = 0
    try:
        while pos < n:  # one unpack per record: the only per-record Python work of the fast path
            add(pos + 12)
            pos += unpack(buf, pos)[0] + 16
    except struct.error:  # fewer than 8 bytes left for a length
        pos = n + 1
    torn = -1
    if pos > n:  # the last record runs past the end: a torn write
        torn = starts.pop() - 12
        pos = (starts[-1] - 12 + unpack(buf, starts[-1] - 12)[0] + 16) if starts else 0
    return np.asarray(starts, dtype=np.int64), pos, torn


def _compiled_columns(
    fast: bytearray, steps: bytearray, walls: bytearray, vals: bytearray, local: bytearray, ok: bytearray,
    tags: list[bytes], first: bytearray, tag_of: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``tb_scan``'s columns as the numpy path gives them, tag numbers included.

    The numpy path numbers the new tags of each batch of :data:`_CHUNK`
    records in the order of ``(length, bytes)``; the tags are numbered here in
    that same order, so that the series come out in the same order either way.
    """
    first_at = np.frombuffer(first, dtype=np.int64) // _CHUNK
    number = np.empty(len(tags), dtype=np.int64)
    for j in sorted(range(len(tags)), key=lambda j: (int(first_at[j]), len(tags[j]), tags[j])):
        number[j] = tag_of.setdefault(tags[j].decode("utf-8", "replace"), len(tag_of))
    col = np.frombuffer
    return (
        col(fast, dtype=np.int64),
        number[col(local, dtype=np.int64)],
        col(steps, dtype=np.int64),
        col(walls, dtype=np.float64),
        col(vals, dtype=np.float64),
        col(ok, dtype=np.uint8).astype(bool),
    )

def _checksums_ok(raw: np.ndarray, st: np.ndarray, en: np.ndarray, recs: np.ndarray) -> np.ndarray:
    """For records ``recs``: True where both the length and the data checksums match (masked CRC-32C).

    Only records that yield a point are checked (histograms and images, often
    most of the bytes, are skipped anyway): that keeps the check to about a
    third of the read time.
    """
    if not len(recs):
        return np.ones(0, dtype=bool)
    s, e = st[recs], en[recs]
    stored_len = raw[np.minimum(s[:, None] - 4 + np.arange(4), len(raw) - 1)].copy().view("<u4").ravel()
    stored_dat = raw[np.minimum(e[:, None] + np.arange(4), len(raw) - 1)].copy().view("<u4").ravel()
    ok = masked_crc32c_many(raw, s - 12, np.full(len(s), 8)) == stored_len
    return ok & (masked_crc32c_many(raw, s, e - s) == stored_dat)


_CHUNK = 1 << 16  # records per numpy batch: temporaries stay a few MB (no page-fault storm on big files)


def _fast_chunk(
    buf: bytes, raw: np.ndarray, st_all: np.ndarray, en_all: np.ndarray, c0: int, c1: int, tag_of: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For records ``c0:c1``: (record indices on the fast path, tag ids, steps, wall times, values)."""
    st, en = st_all[c0:c1], en_all[c0:c1]
    last = len(raw) - 1

    def at(i: np.ndarray) -> np.ndarray:
        return raw[np.minimum(i, last)].astype(np.int64)

    ok = (en - st >= 16) & (at(st) == 0x09) & (at(st + 9) == 0x10)
    step = np.zeros(len(st), dtype=np.uint64)
    nbytes = np.zeros(len(st), dtype=np.int64)
    cont = np.ones(len(st), dtype=bool)
    for k in range(10):  # the step varint, all records at once
        byte = at(st + 10 + k)
        step |= np.where(cont, (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k), np.uint64(0))
        nbytes += cont
        cont &= byte >= 0x80
        if not cont.any():
            break
    q = st + 10 + nbytes
    l1, l2, tl = at(q + 1), at(q + 3), at(q + 5)
    v = q + 6 + tl
    ok &= (at(q) == 0x2A) & (l1 < 0x80) & (q + 2 + l1 == en) & (at(q + 2) == 0x0A) & (l2 < 0x80)
    ok &= (q + 4 + l2 == en) & (at(q + 4) == 0x0A) & (tl < 0x80) & (v + 5 == en) & (at(v) == 0x15)
    f = np.nonzero(ok)[0]
    walls = raw[st[f][:, None] + 1 + np.arange(8)].view("<f8").ravel().astype(np.float64)
    with np.errstate(invalid="ignore"):  # a flipped bit can make a signalling NaN
        vals = raw[v[f][:, None] + 1 + np.arange(4)].view("<f4").ravel().astype(np.float64)
    tids = np.zeros(len(f), dtype=np.int64)
    if len(f):
        tlf, tstart = tl[f], q[f] + 6
        cols = np.arange(max(int(tlf.max()), 1))
        mat = np.where(cols < tlf[:, None], raw[np.minimum(tstart[:, None] + cols, last)], 0).astype(np.uint8)
        mat = np.ascontiguousarray(np.concatenate([tlf[:, None].astype(np.uint8), mat], axis=1))
        rows = mat.view(np.dtype((np.void, mat.shape[1]))).ravel()
        uniq, first, inv = np.unique(rows, return_index=True, return_inverse=True)
        ids = []
        for u in range(len(uniq)):
            i = int(first[u])
            name = buf[int(tstart[i]) : int(tstart[i]) + int(tlf[i])].decode("utf-8", "replace")
            ids.append(tag_of.setdefault(name, len(tag_of)))
        tids = np.asarray(ids, dtype=np.int64)[inv.ravel()]
    return f + c0, tids, step[f].view(np.int64), walls, vals


def _decode_general(buf: bytes, *, verify: bool = False, plugins: dict[bytes, bytes] | None = None) -> Scalars:
    """Every scalar in ``buf`` by the general field walk (``plugins`` carries TF2 tag metadata across calls)."""
    out = Scalars()
    tag_index: dict[bytes, int] = {}
    plugins = {} if plugins is None else plugins
    a_tag, a_step, a_wall, a_val = out.tag_ids.append, out.steps.append, out.walls.append, out.values.append
    f32, f64 = _F32, _F64
    nrec = 0
    try:
        for start, end in spans(buf, verify=verify):
            nrec += 1
            p = start
            step = 0
            wall = math.nan
            s_start = s_end = 0
            while p < end:
                key = buf[p]
                p += 1
                if key == 0x09:  # wall_time
                    wall = f64(buf, p)[0]
                    p += 8
                elif key == 0x10:  # step
                    b = buf[p]
                    if b < 0x80:
                        step = b
                        p += 1
                    else:
                        step, p = _varint(buf, p)
                        if step >= 1 << 63:
                            step -= 1 << 64
                elif key == 0x2A:  # summary
                    n = buf[p]
                    if n < 0x80:
                        p += 1
                    else:
                        n, p = _varint(buf, p)
                    s_start, s_end = p, p + n
                    p += n
                elif key == 0x1A:  # file_version
                    n, p = _varint(buf, p)
                    out.file_version = buf[p : p + n].decode("utf-8", "replace")
                    p += n
                elif key == 0x3A:  # session_log: status=1 (START=1)
                    n, p = _varint(buf, p)
                    if n >= 2 and buf[p] == 0x08 and buf[p + 1] == 1:
                        out.restarts.append(len(out.steps))
                    p += n
                else:
                    if key >= 0x80:
                        key, p = _varint(buf, p - 1)
                    p = _skip(buf, p, key & 7)
            if s_end == 0:
                continue
            p = s_start
            while p < s_end:
                if buf[p] != 0x0A:  # not Summary.value
                    key, p = _varint(buf, p)
                    p = _skip(buf, p, key & 7)
                    continue
                n = buf[p + 1]
                if n < 0x80:
                    p += 2
                else:
                    n, p = _varint(buf, p + 1)
                v_end = p + n
                # --- Summary.Value ---
                tag = b""
                if buf[p] == 0x0A:
                    tl = buf[p + 1]
                    if tl < 0x80:
                        tag = buf[p + 2 : p + 2 + tl]
                        p += 2 + tl
                    else:
                        tl, q = _varint(buf, p + 1)
                        tag = buf[q : q + tl]
                        p = q + tl
                if p < v_end and buf[p] == 0x15 and p + 5 == v_end:  # the common case: tag + simple_value
                    value = f32(buf, p + 1)[0]
                else:
                    value = _value_rest(buf, p, v_end, tag, plugins)
                p = v_end
                if value is None:
                    out.skipped_values += 1
                    continue
                tid = tag_index.get(tag)
                if tid is None:
                    tid = tag_index[tag] = len(out.tags)
                    out.tags.append(tag.decode("utf-8", "replace"))
                a_tag(tid)
                a_step(step)
                a_wall(wall)
                a_val(value)
    except Corrupt as e:
        out.error = e
    except (IndexError, ValueError, struct.error) as e:
        out.error = Corrupt(-1, f"malformed event record #{nrec} ({type(e).__name__})")
    out.records = nrec
    return out


def _value_rest(buf: bytes, p: int, end: int, tag: bytes, plugins: dict[bytes, bytes]) -> float | None:
    """The scalar in the rest of a Summary.Value (after its tag), or None when it is not a scalar."""
    simple: float | None = None
    t_span: tuple[int, int] | None = None
    while p < end:
        key, p = _varint(buf, p)
        field_no, wire = key >> 3, key & 7
        if field_no == 2 and wire == 5:
            simple = _F32(buf, p)[0]
            p += 4
        elif field_no == 8 and wire == 2:
            n, p = _varint(buf, p)
            t_span = (p, p + n)
            p += n
        elif field_no == 9 and wire == 2:
            n, p = _varint(buf, p)
            plugin, data_class = _metadata(buf, p, p + n)
            plugins[tag] = b"scalars" if data_class == _DATA_CLASS_SCALAR else plugin
            p += n
        else:
            p = _skip(buf, p, wire)
    if simple is not None:
        return simple
    if t_span is None or plugins.get(tag, b"") not in _SCALAR_PLUGINS:
        return None
    return _tensor_scalar(buf, *t_span)


def _metadata(buf: bytes, p: int, end: int) -> tuple[bytes, int]:
    plugin = b""
    data_class = 0
    while p < end:
        key, p = _varint(buf, p)
        if key == 0x0A:  # plugin_data
            n, p = _varint(buf, p)
            q, qend = p, p + n
            while q < qend:
                k, q = _varint(buf, q)
                if k == 0x0A:
                    m, q = _varint(buf, q)
                    plugin = buf[q : q + m]
                    q += m
                else:
                    q = _skip(buf, q, k & 7)
            p += n
        elif key == 0x20:
            data_class, p = _varint(buf, p)
        else:
            p = _skip(buf, p, key & 7)
    return plugin, data_class


def _tensor_scalar(buf: bytes, p: int, end: int) -> float | None:
    """The single number in a TensorProto, or None (several elements, strings, unknown dtype)."""
    dtype = 0
    content: bytes | None = None
    vals: list[float] = []
    elements = 1
    while p < end:
        key, p = _varint(buf, p)
        f, wire = key >> 3, key & 7
        if f == 1 and wire == 0:
            dtype, p = _varint(buf, p)
        elif f == 2 and wire == 2:  # tensor_shape: dim=2 {size=1}
            n, p = _varint(buf, p)
            elements = _shape_elements(buf, p, p + n)
            p += n
        elif f == 4 and wire == 2:
            n, p = _varint(buf, p)
            content = buf[p : p + n]
            p += n
        elif f in (5, 6) and wire == 2:  # packed float / double
            n, p = _varint(buf, p)
            size, fmt = (4, "<f") if f == 5 else (8, "<d")
            vals.extend(struct.unpack_from(f"{fmt[0]}{n // size}{fmt[1]}", buf, p))
            p += n
        elif f == 5 and wire == 5:
            vals.append(_F32(buf, p)[0])
            p += 4
        elif f == 6 and wire == 1:
            vals.append(_F64(buf, p)[0])
            p += 8
        elif f in (7, 10, 13) and wire == 2:  # packed int32 / int64 / half bits
            n, p = _varint(buf, p)
            q, qend = p, p + n
            while q < qend:
                x, q = _varint(buf, q)
                vals.append(_int_or_half(x, f))
            p = qend
        elif f in (7, 10, 13) and wire == 0:
            x, p = _varint(buf, p)
            vals.append(_int_or_half(x, f))
        else:
            p = _skip(buf, p, wire)
    if elements != 1:
        return None
    if vals:
        return float(vals[0]) if len(vals) == 1 else None
    if content is not None and dtype in _DTYPES:
        fmt, size = _DTYPES[dtype]
        if len(content) != size:
            return None
        if fmt == "bf16":
            return float(struct.unpack("<f", b"\x00\x00" + content)[0])
        return float(struct.unpack(fmt, content)[0])
    return None


def _int_or_half(x: int, field_no: int) -> float:
    if field_no == 13:  # half_val: the 16 bits of an IEEE half, stored in an int32
        return float(struct.unpack("<e", struct.pack("<H", x & 0xFFFF))[0])
    if x >= 1 << 63:
        x -= 1 << 64
    elif field_no == 7 and x >= 1 << 31:
        x -= 1 << 32
    return float(x)


def _shape_elements(buf: bytes, p: int, end: int) -> int:
    total = 1
    while p < end:
        key, p = _varint(buf, p)
        if key == 0x12:  # dim
            n, p = _varint(buf, p)
            q, qend = p, p + n
            size = 1
            while q < qend:
                k, q = _varint(buf, q)
                if k == 0x08:
                    size, q = _varint(buf, q)
                else:
                    q = _skip(buf, q, k & 7)
            total *= size
            p = qend
        else:
            p = _skip(buf, p, key & 7)
    return total
