"""_speedups.text_rows (the C pass of the free-text block path) against a Python model and the numpy path.

The model states the rule text_rows keeps: a line is read when its runs of
0-9.+-eE bytes sit where the shape has them, the runs inside literals equal
the shape's, and every number run is a JSON number of at most 128 bytes that
float() reads to a finite value; its values are float() bit for bit. The
numpy/orjson path (_check without the extension) must agree on every line
both read. Seeded fuzz over odd tokens, non-ASCII bytes, empty lines, CRLF.
"""

from __future__ import annotations

import math
import random
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from trainguard import _compiled
from trainguard.readers import _text_block, text

from .test_text_block import _read, assert_same

sp = _compiled.load()
pytestmark = pytest.mark.skipif(sp is None or not hasattr(sp, "text_rows"), reason="trainguard._speedups not built")

_RUN = re.compile(rb"[0-9.+\-eE]+")
_JSON = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
ODD = [
    "-0", "0", "1.", ".5", "+5", "007", "1e999", "-1e999", "1e-400", "1e308", "1.7976931348623157e308", "5e-324",
    "-0.0", "1e5", "2E-3", "-12", "1e", "1e+", "--1", "1-", "1.2.3", "e5", "-", ".", "123456789012345678901234",
    "9007199254740993", "0.1", "3.14159265358979323846264338327950288", "1" * 40, "1" * 127, "1" * 128, "1" * 129,
    "0." + "0" * 60 + "1", "-0e0", "1E22", "1e23", "8.98846567431158e307",
]


def _model(data: bytes, start: int, lines: int, gaps: list[int], lits: list[bytes | None]) -> tuple[int, list[float]]:
    vals: list[float] = []
    f = 0
    pos = start
    while f < lines:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        runs = list(_RUN.finditer(line))
        row: list[float] = []
        ok = len(runs) == len(gaps)
        e_before = 0
        for m, gap, lit in zip(runs, gaps, lits, strict=False):
            if not ok:
                break
            tok = m.group()
            if m.start() - e_before != gap:
                ok = False
            elif lit is not None:
                ok = tok == lit
            elif len(tok) > 128 or not _JSON.fullmatch(tok) or not math.isfinite(float(tok)):
                ok = False
            else:
                row.append(float(tok))
            e_before += len(tok)
        if not ok:
            break
        vals += row
        f += 1
        pos = nl + 1
    return f, vals


def _bits(xs: list[float] | np.ndarray) -> bytes:
    return b"".join(struct.pack("<d", float(x)) for x in xs)


def _token(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return rng.choice(ODD)
    if r < 0.8:
        return repr(rng.uniform(-1e6, 1e6) * 10.0 ** rng.randint(-30, 30))
    return str(rng.randint(-(10**20), 10**20))


def _line(rng: random.Random, i: int) -> str:
    r = rng.random()
    if r < 0.03:
        return ""
    if r < 0.06:
        return f"step {i} | loss: {_token(rng)} | é {_token(rng)}"  # a different skeleton
    if r < 0.08:
        return f"step {i} | loss: {_token(rng)}{_token(rng)} | lr {_token(rng)}"
    tail = "ms" if rng.random() < 0.9 else "m\u00e9s"
    return f"step {i if rng.random() < 0.9 else _token(rng)} | loss: {_token(rng)} | lr {_token(rng)}{tail}"


@pytest.mark.parametrize("seed", range(12))
def test_text_rows_matches_the_model(seed: int) -> None:
    rng = random.Random(seed)
    shape = text._shape_regex("step 1 | loss: 2 | lr 3ms", [])[2]
    info = _text_block._info(shape)
    assert info.ok
    body = "\n".join(_line(rng, i) for i in range(300)) + "\n"
    data = body.encode()
    start = 0
    for _ in range(300):
        if start >= len(data):
            break
        f, buf = sp.text_rows(data, start, 50, info.c_gaps, info.c_lits)
        mf, mvals = _model(data, start, 50, info.c_gaps, info.c_lits)
        assert f == mf
        assert bytes(buf) == _bits(mvals)
        start = data.index(b"\n", start) + 1  # every start line: accepted runs and rejected first lines


@pytest.mark.parametrize("seed", range(6))
def test_text_rows_agrees_with_the_numpy_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where both paths read a line (the numpy path also refuses -0 and numbers orjson cannot hold), same bits."""
    rng = random.Random(100 + seed)
    p = text.LineParser()
    p.parse("step 1 | loss: 2 | lr 3ms")
    _rx, plan, shape = p._mru[0]
    info = _text_block._info(shape)
    lines = [f"step {i} | loss: {_token(rng) if rng.random() < 0.3 else repr(rng.random())} | lr {rng.random():.3e}ms" for i in range(400)]
    body = "\r\n".join(lines) if seed % 2 else "\n".join(lines)
    for lo in range(0, 400, 7):
        monkeypatch.setattr(_compiled, "speedups", sp)
        tx = _text_block._Text(body)
        hi = min(400, lo + 60)
        fc, vc = _text_block._check(tx, lo, hi, info, plan)
        monkeypatch.setattr(_compiled, "speedups", None)
        tx = _text_block._Text(body)
        fp, vp = _text_block._check(tx, lo, hi, info, plan)
        n = min(fc, fp)
        assert vc[:n].tobytes() == vp[:n].tobytes()
        if fc != fp:  # the lines only one of them reads: -0 (C reads it as float() does), huge integers
            first = lines[lo + n]
            assert "-0 " in first or any(len(t) > 18 for t in re.findall(r"[0-9]+", first)) or fc < fp, first


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_logs_read_the_same_with_the_extension(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1000 + seed)
    body = "\n".join(_line(rng, i) for i in range(600)) + "\n"
    if seed % 2:
        body = body.replace("\n", "\r\n")
    f = tmp_path / "fuzz.log"
    f.write_bytes(body.encode())
    monkeypatch.setattr(_compiled, "speedups", sp)
    assert_same(_read(f, True, monkeypatch), _read(f, False, monkeypatch))


def test_text_rows_arguments() -> None:
    with pytest.raises(ValueError):
        sp.text_rows(b"1\n", 0, 1, [0], [])
    with pytest.raises(ValueError):
        sp.text_rows(b"1\n", 5, 1, [0], [None])
    with pytest.raises(TypeError):
        sp.text_rows(b"1\n", 0, 1, [0], ["1"])
    assert sp.text_rows(b"1\n", 0, 0, [0], [None]) == (0, bytearray())
    assert sp.text_rows(b"1", 0, 1, [0], [None]) == (0, bytearray())  # no newline: no line
    f, buf = sp.text_rows(b"x -0 y\n", 0, 1, [2], [None])
    assert f == 1 and math.copysign(1.0, np.frombuffer(buf)[0]) == -1.0
