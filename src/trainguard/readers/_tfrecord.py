"""TFRecord framing: the container TensorBoard event files use, read and written without TensorFlow.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little-endian. The record walk itself does not check them (a pure-Python CRC
pass over every byte is most of the time tbparse spends); the fast decoder
checks the records it keeps in bulk with :func:`masked_crc32c_many`, so a
flipped bit in a value drops that point instead of becoming a "best" loss of 1e-9.
``verify=True`` checks every record, one by one.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_HEADER = 12  # uint64 length + uint32 length crc
_FOOTER = 4  # uint32 data crc
_MASK_DELTA = 0xA282EAD8


def _crc_table() -> list[int]:
    poly = 0x82F63B78  # CRC-32C (Castagnoli), reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C of ``data`` (pure Python, about 10 MB/s: only for ``verify=True`` and writing)."""
    crc = 0xFFFFFFFF
    t = _TABLE
    for b in bytes(data):
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | memoryview) -> int:
    """The rotated-and-offset CRC TFRecord stores (so a CRC of CRCs is not trivially zero)."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF


_NP_TABLE: Any = None


def masked_crc32c_many(raw: Any, starts: Any, lengths: Any) -> Any:
    """Masked CRC-32C of many byte ranges ``raw[starts[i] : starts[i] + lengths[i]]`` at once (numpy).

    Ranges of equal length are stacked into one matrix and the table-driven CRC
    runs down its columns, one numpy step per byte position for all records
    together: a TensorBoard file's scalar records have a handful of distinct
    lengths, so checking 100k of them costs a few hundred array operations,
    not 4 million Python steps. Small groups (under 32 records) use the
    pure-Python :func:`masked_crc32c`, which is faster for them.
    """
    import numpy as np

    global _NP_TABLE
    if _NP_TABLE is None:
        _NP_TABLE = np.asarray(_TABLE, dtype=np.uint32)
    table = _NP_TABLE
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros(len(starts), dtype=np.uint32)
    if not len(starts):
        return out
    order = np.argsort(lengths, kind="stable")
    sl = lengths[order]
    cuts = np.flatnonzero(np.diff(sl)) + 1
    for grp in np.split(order, cuts):
        length = int(lengths[grp[0]])
        if len(grp) < 32:
            for i in grp.tolist():
                s = int(starts[i])
                out[i] = masked_crc32c(raw[s : s + length].tobytes())
            continue
        # one copy of the n x length bytes (a window view indexed by row), columns contiguous
        cols = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(raw, length)[starts[grp]].T)
        crc = np.full(len(grp), 0xFFFFFFFF, dtype=np.uint32)
        tmp = np.empty(len(grp), dtype=np.uint32)
        for j in range(length):
            np.bitwise_xor(crc, cols[j], out=tmp)
            np.bitwise_and(tmp, 0xFF, out=tmp)
            np.right_shift(crc, 8, out=crc)
            np.bitwise_xor(crc, table.take(tmp), out=crc)
        crc ^= np.uint32(0xFFFFFFFF)
        out[grp] = (((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA)) & np.uint32(0xFFFFFFFF)
    return out


class Corrupt(Exception):
    """A record that fails its checksum or runs past the end of the data (internal; readers turn it into notes)."""

    def __init__(self, offset: int, why: str) -> None:
        self.offset = offset
        self.why = why
        super().__init__(f"offset {offset}: {why}")


def spans(buf: bytes, *, verify: bool = False) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each record's payload in ``buf``; raises :class:`Corrupt` at the first bad record.

    Records already yielded stay valid, so a caller that catches ``Corrupt``
    keeps a partial read of a file still being written (or cut by a crash).
    """
    n = len(buf)
    pos = 0
    unpack = _U64.unpack_from
    while pos < n:
        if pos + _HEADER > n:
            raise Corrupt(pos, f"truncated record header ({n - pos} of {_HEADER} bytes)")
        (length,) = unpack(buf, pos)
        start = pos + _HEADER
        end = start + length
        if end + _FOOTER > n:
            raise Corrupt(pos, f"truncated record (needs {length + _HEADER + _FOOTER} bytes, {n - pos} left)")
        if verify:
            (lcrc,) = _U32.unpack_from(buf, pos + 8)
            if masked_crc32c(buf[pos : pos + 8]) != lcrc:
                raise Corrupt(pos, "length checksum mismatch")
            (dcrc,) = _U32.unpack_from(buf, end)
            if masked_crc32c(buf[start:end]) != dcrc:
                raise Corrupt(pos, "data checksum mismatch")
        yield start, end
        pos = end + _FOOTER


def first_length_ok(head: bytes) -> bool:
    """True when ``head`` starts with a TFRecord header whose length checksum matches (cheap: 8 bytes)."""
    if len(head) < _HEADER:
        return False
    (lcrc,) = _U32.unpack_from(head, 8)
    return masked_crc32c(head[:8]) == lcrc


def frame(data: bytes) -> bytes:
    """One record holding ``data``, with real checksums (what TensorFlow writes)."""
    length = _U64.pack(len(data))
    return length + _U32.pack(masked_crc32c(length)) + data + _U32.pack(masked_crc32c(data))
