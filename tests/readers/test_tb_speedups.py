"""The compiled TensorBoard pass (``_speedups.tb_scan``) decodes exactly what the numpy path decodes.

Event files are built here record by record, in every shape the two paths
must tell apart: the add_scalar record (the fast path), steps of one to ten
varint bytes, tags of 127 and 128 bytes (a one-byte length or not), several
values in one event, TF2 tensor scalars, histograms, file_version and
session-log records, trailing bytes inside a record. Then bits are flipped,
lengths broken and files cut, and both paths must give the same scalars, tag
order, corrupt count and error. Without a compiler the compiled side is
skipped.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from trainguard import _compiled
from trainguard.readers import _tb_proto
from trainguard.readers._tfrecord import frame

sp = _compiled.load()
needs_c = pytest.mark.skipif(sp is None or not hasattr(sp, "tb_scan"), reason="trainguard._speedups not built (or switched off)")


def _varint(x: int) -> bytes:
    out = bytearray()
    while True:
        b, x = x & 0x7F, x >> 7
        out.append(b | (0x80 if x else 0))
        if not x:
            return bytes(out)


def _value(tag: bytes, body: bytes) -> bytes:
    v = b"\x0a" + _varint(len(tag)) + tag + body
    return b"\x0a" + _varint(len(v)) + v


def _event(step: int, wall: float, summary: bytes, *, tail: bytes = b"") -> bytes:
    return b"\x09" + struct.pack("<d", wall) + b"\x10" + _varint(step) + b"\x2a" + _varint(len(summary)) + summary + tail


def _record(rng: random.Random, tags: list[bytes], i: int) -> bytes:
    """One event of a random shape; most are add_scalar records, as in real files."""
    tag = rng.choice(tags)
    val = rng.choice([rng.uniform(-5, 5), float("nan"), float("inf"), 1e-38, -0.0, 3.4e38])
    simple = b"\x15" + struct.pack("<f", val)
    step = rng.choice([i, i, rng.randrange(1 << 20), rng.randrange(1 << 63), (1 << 64) - 1 - rng.randrange(9)])
    wall = 1.7e9 + i * 0.25
    kind = rng.random()
    if kind < 0.75:
        return _event(step, wall, _value(tag, simple))
    if kind < 0.80:  # two values in one event
        return _event(step, wall, _value(tag, simple) + _value(rng.choice(tags), simple))
    if kind < 0.85:  # a TF2 tensor scalar with its plugin metadata
        meta = b"\x4a" + _varint(11) + b"\x0a\x09\x0a\x07scalars"
        tensor = b"\x42" + _varint(7) + b"\x08\x01\x2a\x04" + struct.pack("<f", val)
        return _event(step, wall, _value(tag, tensor + meta))
    if kind < 0.88:  # a histogram-like value: skipped, counted
        return _event(step, wall, _value(tag, b"\x2a\x04\x09\x00\x00\x00"))
    if kind < 0.91:  # bytes after the summary: not the add_scalar shape
        return _event(step, wall, _value(tag, simple), tail=b"\x38\x01")
    if kind < 0.94:
        return b"\x09" + struct.pack("<d", wall) + b"\x1a\x0dbrain.Event:2"
    if kind < 0.97:  # a session log START
        return b"\x09" + struct.pack("<d", wall) + b"\x10" + _varint(step) + b"\x3a\x02\x08\x01"
    return _event(step, wall, _value(tag, simple))[:-3]  # an add_scalar record with its value cut short


def _file(seed: int, n: int, tags: list[bytes]) -> bytes:
    rng = random.Random(seed)
    return b"".join(frame(_record(rng, tags, i)) for i in range(n))


def _decoded(buf: bytes, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setattr(_compiled, "speedups", sp if compiled else None)
    d = _tb_proto.decode(buf)
    err = None if d.error is None else (d.error.offset, d.error.why)
    return {
        "tags": d.tags,
        "tag_ids": np.asarray(d.tag_ids, dtype=np.int64).tobytes(),
        "steps": np.asarray(d.steps, dtype=np.int64).tobytes(),
        "walls": np.asarray(d.walls, dtype=np.float64).tobytes(),
        "values": np.where(np.isnan(v := np.asarray(d.values, dtype=np.float64)), np.nan, v).tobytes(),
        "rest": (d.records, d.corrupt, d.skipped_values, d.file_version, d.restarts, err),
    }


def _same(buf: bytes, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    got = _decoded(buf, True, monkeypatch)
    assert got == _decoded(buf, False, monkeypatch)
    return got


TAGS = [b"train/loss", b"eval/loss", b"train/learning_rate", b"\xc3\xa9val/perte", b"x" * 127, b"y" * 128, b"", b"\xff\xfe"]


@needs_c
@pytest.mark.parametrize("seed", range(6))
def test_mixed_event_files_decode_the_same(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    got = _same(_file(seed, 400, TAGS), monkeypatch)
    assert len(got["steps"]) // 8 > 200  # most records are scalars: the fast path was exercised


@needs_c
def test_damaged_files_decode_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cut of a small file, and flipped bits and broken lengths anywhere in it."""
    buf = _file(7, 30, TAGS)
    for cut in range(len(buf) + 1):
        _same(buf[:cut], monkeypatch)
    rng = random.Random(1)
    for _ in range(400):
        bad = bytearray(buf)
        at = rng.randrange(len(bad))
        bad[at] ^= 1 << rng.randrange(8)
        _same(bytes(bad), monkeypatch)
    for at in range(0, 200, 7):  # a length field overwritten with a huge or a small number
        for length in (0, 3, 1 << 40, (1 << 64) - 1):
            bad = bytearray(buf)
            bad[at : at + 8] = struct.pack("<Q", length)
            _same(bytes(bad), monkeypatch)


@needs_c
def test_flipped_value_bit_is_dropped_as_corrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    recs = [frame(_event(s, 1.7e9, _value(b"train/loss", b"\x15" + struct.pack("<f", 1.0 / (s + 1))))) for s in range(50)]
    bad = bytearray(b"".join(recs))
    bad[len(recs[0]) * 10 + len(recs[0]) - 6] ^= 0x04  # inside the 11th record's float
    got = _same(bytes(bad), monkeypatch)
    assert got["rest"][1] == 1 and len(got["steps"]) // 8 == 49


@needs_c
def test_tag_order_across_record_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tags first seen in later batches of records, in an order unlike their sorted one, come out in the same order."""
    n = _tb_proto._CHUNK * 2 + 500
    names = [b"zz/late", b"a/late", b"mm", b"b"]
    recs = []
    for i in range(n):
        tag = b"train/loss" if i < _tb_proto._CHUNK + 3 else names[i % 4]
        if i == 5:
            tag = b"eval/loss"
        recs.append(frame(_event(i, 1.7e9 + i, _value(tag, b"\x15" + struct.pack("<f", i % 97)))))
    got = _same(b"".join(recs), monkeypatch)
    assert got["tags"][:2] == ["eval/loss", "train/loss"]  # the numpy path sorts the new tags of a batch
    assert set(got["tags"]) == {"train/loss", "eval/loss", "zz/late", "a/late", "mm", "b"}


@needs_c
def test_compiled_pass_is_what_makes_tensorboard_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader takes the compiled pass when the extension is there (a regression here is a 8x slowdown)."""
    calls = []

    def spy(buf: bytes) -> object:
        calls.append(len(buf))
        return sp.tb_scan(buf)

    class Fake:
        tb_scan = staticmethod(spy)

    monkeypatch.setattr(_compiled, "speedups", Fake)
    buf = _file(3, 50, TAGS)
    _tb_proto.decode(buf)
    assert calls == [len(buf)]
