"""The compiled HF stdout scanner (``_speedups.hf_scan``) finds exactly what ``scan_exact`` finds.

``scan`` takes the C loop when the extension is built (issue 14: the Python
scanner was most of ``read_runs`` on a tqdm-heavy log). A user relies on it
reading the same dicts, bodies, bar counts and skips as the reference loop,
whatever the chunk boundaries, so both run here on the HF stdout fixtures, on
the real runs in ../shared/realruns that hold Trainer dict lines, on logs
written by ``bench/parse_speed.py``, and on seeded random logs built from the
pieces real logs contain plus the edge cases of each rule (bars over 1600
bytes, counts too long for int64, truncated and nested dicts, echoes,
non-ASCII bytes). The pure-Python path of ``scan`` is held to the same
reference, and whole files read the same with and without the extension.
The body parser ``_speedups.hf_pairs`` must give the orjson path's Pairs bit
for bit whenever it takes a list of bodies (random and real ones here).
Without a compiler the C side is skipped and the Python side still runs.
"""

from __future__ import annotations

import importlib.util
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REALRUNS
from tests.readers.speedups_support import feed_in_chunks, snapshot
from trainguard import _compiled
from trainguard.readers import _hf_scan, read_runs
from trainguard.readers._hf_scan import MAX_DICT, Scanned, scan_exact

sp = _compiled.load()
needs_c = pytest.mark.skipif(sp is None or not hasattr(sp, "hf_scan"),
                             reason="trainguard._speedups not built (no compiler?) or switched off")
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

Scan = Callable[..., int]


def c_scan(buf: bytes, base: int, sc: Scanned, *, final: bool, start: int = 0) -> int:
    return _hf_scan._scan_c(sp, buf, base, sc, final=final, start=start)


def py_scan(buf: bytes, base: int, sc: Scanned, *, final: bool, start: int = 0) -> int:
    """``scan`` with the extension off: the numpy fast path, falling back to the exact loop."""
    used = _hf_scan._scan_fast(buf, base, sc, final=final, start=start)
    return scan_exact(buf, base, sc, final=final, start=start) if used is None else used


def _state(sc: Scanned, used: object) -> tuple:
    return sc.pos, [bytes(b) for b in sc.bodies], sc.bar_n, sc.bar_total, sc.skipped, used


def _fed(fn: Scan, data: bytes, chunk: int) -> tuple:
    sc, used = feed_in_chunks(fn, data, chunk)
    return _state(sc, used)


def _once(fn: Scan, buf: bytes, *, final: bool, start: int = 0, base: int = 0) -> tuple:
    sc = Scanned()
    used = fn(buf, base, sc, final=final, start=start)
    return _state(sc, used)


def _same(data: bytes, chunks: tuple[int, ...], cuts: list[int]) -> None:
    """C, the Python path and the reference agree on ``data`` fed in chunks, and on prefixes of it, final or not."""
    for chunk in chunks:
        ref = _fed(scan_exact, data, chunk)
        assert _fed(c_scan, data, chunk) == ref, (chunk, data[:200])
    for cut in cuts:
        buf = data[:cut]
        for final in (False, True):
            for start in (0, min(cut, 7)):
                ref = _once(scan_exact, buf, final=final, start=start, base=1000)
                assert _once(c_scan, buf, final=final, start=start, base=1000) == ref, (cut, final, start)


# -- files ------------------------------------------------------------------------------------


def _bench_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("_tg_bench_parse_speed", ROOT / "bench" / "parse_speed.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _dict_logs() -> list[Path]:
    """Every fixture and real run that holds HF Trainer dict lines."""
    files = [p for p in sorted(DATA.rglob("*")) if p.is_file() and b"{'loss'" in p.read_bytes()]
    if REALRUNS.is_dir():  # ../shared is optional
        files += [p for p in sorted(REALRUNS.rglob("*")) if p.is_file() and b"{'loss'" in p.read_bytes()]
    return files


@pytest.fixture(scope="module")
def bench_logs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    mod = _bench_module()
    d = tmp_path_factory.mktemp("bench_logs")
    out = []
    for k, (mb, seed, width) in enumerate([(0.05, 0, 120), (0.4, 3, 80), (0.2, 7, 300)]):
        p = d / f"bench{k}.log"
        mod.write_log(p, mb, seed=seed, width=width)
        out.append(p)
    return out


def test_the_files_are_there() -> None:
    logs = _dict_logs()
    assert any(p.parent.name == "hf_stdout" for p in logs), logs


@needs_c
def test_c_scan_equals_exact_scan_on_fixture_and_real_logs() -> None:
    rng = random.Random(5)
    for log in _dict_logs():
        data = log.read_bytes()
        cuts = sorted({len(data), *(rng.randint(0, len(data)) for _ in range(12))})
        _same(data, (97, 777, 4096, 65536, 1 << 20, len(data) + 1), cuts)


@needs_c
def test_c_scan_equals_exact_scan_on_bench_logs(bench_logs: list[Path]) -> None:
    rng = random.Random(6)
    for log in bench_logs:
        data = log.read_bytes()
        assert data.count(b"{'loss'") > 10
        cuts = sorted({len(data), *(rng.randint(0, len(data)) for _ in range(6))})
        _same(data, (1000, 65536, 1 << 20, len(data) + 1), cuts)


def test_python_scan_equals_exact_scan_on_bench_logs(bench_logs: list[Path]) -> None:
    for log in bench_logs:
        data = log.read_bytes()
        for chunk in (65536, len(data) + 1):
            assert _fed(py_scan, data, chunk) == _fed(scan_exact, data, chunk), (log.name, chunk)


# -- fuzz -------------------------------------------------------------------------------------

_BAR_BODY = 1600
_PIECES = (
    # dict lines, plain and cut, each metric head of _METRICISH and others
    b"{'loss': '1.5', 'epoch': '0.1'}", b"{'loss': 2.0, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': 0.5}",
    b"{'eval_loss': 0.5, 'epoch': 1.0}", b"{'train_runtime': 10.5, 'train_loss': 1.2}", b"{'learning_rate': 0.001}",
    b"{'grad_norm': 3.5}", b"{'epoch': 2.0}", b"{'other': 1}", b"{'loss': nan}", b"{'loss': 2.0, 'grad_norm': 1.0",
    b"{'loss'", b"{'eval_", b"{'", b"{", b"}", b"'", b"{x}", b"{'a': {'b': 1}}", b"{'loss': 1,\n 'epoch': 2}",
    b"{'loss': '{1}'}", b"{'loss': 1}}", b"{{'loss': 1}", b"{'loss': '\xe2\x96\x88'}",
    # tqdm bars: whole, in pieces, after escapes and rank prefixes, wrong shapes
    b" 10%|###   | 5/50 [00:01<00:02, 1.0it/s]", b"100%|" + b"#" * 400 + b"| 50/50 [", b"12%|", b"|", b" 7/9 [",
    b"\r 50%|\xe2\x96\x88\xe2\x96\x88\xe2\x96\x8c  | 3/6 [", b"  0%|          | 0/100 [", b"\t5%|x|\t1/20\t[",
    b"\x1b[A", b"\x1b[A\n", b"\x1b[", b"[rank0]: ", b"[rank12]:", b"[rank]: ", b"[rank0]", b"[rank3]:\t\t",
    b"99999%|x| 1/2 [", b"1000%|x| 1/2 [", b"7%|", b"%|", b"5%|x|1/2[", b"5%|x| /2 [", b"5%|x| 1/ [", b"5%|x| 1-2 [",
    b"5%|" + b"=" * _BAR_BODY + b"| 3/9 [", b"5%|" + b"=" * (_BAR_BODY + 1) + b"| 3/9 [",
    b"5%|" + b"=" * (_BAR_BODY - 1) + b"| 3/9 [", b"5%|ab\ncd| 3/9 [",
    b" 5%|x| 1234567890123456789/1234567890123456789012 [", b" 5%|x| 999999999999999999/3 [",
    b" 5%|x| 9223372036854775808/9223372036854775807 [", b" 5%|x| 000000000000000000001/2 [",
    # echoes and what precedes a dict
    b"x = ", b"eval_results= ", b"metrics=(", b"f(", b", ", b"=" + b" " * 7, b"=" + b" " * 8, b"=\t", b"]", b"A", b":",
    # filler
    b"\n", b"\r", b" ", b"\t", b"1", b"/", b"[", b"\xff\xfe", b"\xe2\x96\x88", b"\x00", b"it/s]", b"x" * 300,
)


def _random_log(rng: random.Random) -> bytes:
    n = rng.choice((0, 1, 2, 5, 20, 60, 150))
    parts = [rng.choice(_PIECES) for _ in range(n)]
    r = rng.random()
    if r < 0.02:  # an unterminated metric dict followed by more than MAX_DICT bytes
        parts.insert(rng.randint(0, len(parts)), b"{'loss': 1" + b"x" * rng.choice((MAX_DICT - 20, MAX_DICT + 5)))
    elif r < 0.04:  # a dict body near MAX_DICT
        k = rng.choice((MAX_DICT - 3, MAX_DICT - 2, MAX_DICT - 1, MAX_DICT))
        parts.insert(rng.randint(0, len(parts)), b"{'loss': " + b"1" * (k - 9) + b"}")
    elif r < 0.06:  # a dict followed by ~BAR_WINDOW bytes of blanks, then a bar (line ends: a run of spaces
        # makes the reference regex quadratic, which only slows the test)
        blanks = b"\n" * rng.randint(2000, 2100) + b" " * rng.randint(0, 3)
        parts.insert(rng.randint(0, len(parts)), b"{'loss': 1}" + blanks + b"5%|x| 1/2 [")
    return b"".join(parts)


@needs_c
def test_c_scan_equals_exact_scan_on_random_logs() -> None:
    rng = random.Random(14)
    for _ in range(3000):
        data = _random_log(rng)
        for final in (False, True):
            start = rng.randint(0, len(data) + 2) if rng.random() < 0.3 else 0
            base = rng.randint(0, 1 << 40)
            ref = _once(scan_exact, data, final=final, start=start, base=base)
            assert _once(c_scan, data, final=final, start=start, base=base) == ref, (data, final, start)
        small = max(1, len(data) // 60)  # tiny chunks on a big log only make the test quadratic
        for chunk in (rng.randint(small, small + 64), rng.randint(64, 4096)):
            assert _fed(c_scan, data, chunk) == _fed(scan_exact, data, chunk), (data, chunk)


@needs_c
def test_c_scan_accepts_bytearray_and_memoryview() -> None:
    rng = random.Random(15)
    for _ in range(200):
        data = _random_log(rng)
        ref = _once(scan_exact, data, final=True)
        assert _once(c_scan, bytearray(data), final=True) == ref
        assert _once(c_scan, memoryview(data), final=True) == ref
        for buf in (data, bytearray(data), memoryview(data)):  # bodies are slices of buf: the same type
            sc = Scanned()
            c_scan(buf, 0, sc, final=True)
            assert all(type(b) is type(buf[:0]) for b in sc.bodies)


def test_python_scan_equals_exact_scan_on_random_logs() -> None:
    rng = random.Random(16)
    for _ in range(300):
        data = _random_log(rng)
        if re.search(rb"\d{19}", data):
            continue  # a count past int64: the numpy path raises OverflowError (reported as out of range), C reads it
        for final in (False, True):
            assert _once(py_scan, data, final=final) == _once(scan_exact, data, final=final), data


@needs_c
def test_c_scan_reads_long_counts_with_the_regex() -> None:
    big = b"{'loss': 1.0}\n 5%|x| 12345678901234567890123/99999999999999999999999999 [\n"
    sc = Scanned()
    assert c_scan(big, 0, sc, final=True) == len(big)
    assert sc.bar_n == [12345678901234567890123] and sc.bar_total == [99999999999999999999999999]
    assert _once(c_scan, big, final=True) == _once(scan_exact, big, final=True)


@needs_c
def test_c_scan_rules() -> None:
    bar = b"\n 10%|##| 5/50 [00:01"
    d = b"{'loss': 1.0}"
    assert _once(c_scan, b"", final=True) == ([], [], [], [], 0, 0)
    assert _once(c_scan, b"", final=False) == ([], [], [], [], 0, 0)
    assert _once(c_scan, d + bar, final=True) == ([0], [b"'loss': 1.0"], [5], [50], 0, len(d + bar))
    assert _once(c_scan, d + b"\n", final=False)[-1] == 0  # the bar may still come
    assert _once(c_scan, d + b"\n", final=True) == ([0], [b"'loss': 1.0"], [-1], [-1], 0, len(d) + 1)
    assert _once(c_scan, b"x = " + d + bar, final=True)[0] == []  # an echo
    assert _once(c_scan, b"{'loss': 1.0\n{'loss': 2.0}" + bar, final=True)[:5] == ([13], [b"'loss': 2.0"], [5], [50], 1)
    assert _once(c_scan, b"ab{", final=False)[-1] == 2
    assert _once(c_scan, b"ab{'lo", final=False)[-1] == 2
    assert _once(c_scan, b"ab{'lo", final=True)[4:] == (0, 6)
    assert _once(c_scan, b"ab{'loss': 1", final=True)[4:] == (1, 12)
    with pytest.raises(ValueError):
        sp.hf_scan(b"", -1, True)
    with pytest.raises(TypeError):
        sp.hf_scan("{'loss': 1}", 0, True)


@needs_c
def test_c_scan_of_a_prefix_equals_the_scan_of_its_copy() -> None:
    """``end``: the reader scans the first bytes of a reused buffer, with the rest left from an earlier read."""
    rng = random.Random(17)
    for _ in range(500):
        data = _random_log(rng)
        end = rng.randint(0, len(data))
        for final in (False, True):
            ref = sp.hf_scan(data[:end], 0, final)
            got = sp.hf_scan(bytearray(data), 0, final, end)
            assert got[:3] == ref[:3] and [bytes(b) for b in got[3]] == ref[3], (data, end, final)
            assert sp.hf_scan(data, 0, final, len(data) + 5)[:3] == sp.hf_scan(data, 0, final)[:3]


@needs_c
def test_c_find_equals_bytes_find() -> None:
    rng = random.Random(18)
    alphabet = b"ab\nk-{"
    for _ in range(20000):
        hay = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        needle = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
        start, end = rng.randint(0, 70), rng.randint(0, 70)
        for buf in (hay, bytearray(hay), memoryview(hay)):
            assert sp.find(buf, needle, start, end) == hay.find(needle, start, end), (hay, needle, start, end)
    log = b"x" * 5000 + b"Saving model checkpoint to out/checkpoint-500\n" + b"y" * 100
    assert sp.find(log, b"checkpoint-", 0, len(log)) == log.find(b"checkpoint-")
    with pytest.raises(ValueError):
        sp.find(log, b"x", -1, 5)


# -- whole files: read_runs with and without the extension --------------------------------------


def _outcome(path: Path) -> object:
    try:
        return snapshot(list(read_runs(path)))
    except Exception as e:  # the same error either way is the point
        return (type(e).__name__, str(e))


@needs_c
def test_read_runs_alike_with_and_without_the_extension(bench_logs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    files = _dict_logs() + bench_logs
    for f in files:
        monkeypatch.setattr(_compiled, "speedups", sp)
        fast = _outcome(f)
        monkeypatch.setattr(_compiled, "speedups", None)
        slow = _outcome(f)
        assert fast == slow, f
        assert not isinstance(fast, tuple), (f, fast)


# -- the dict bodies: _speedups.hf_pairs gives the Pairs of the orjson path ---------------------

_KEYS = ("loss", "grad_norm", "learning_rate", "epoch", "eval_loss", "eval_runtime", "train_runtime", "a: b", "x, y",
         "k" * 48, "k" * 49, "", "caf\u00e9", 'say "hi"', "back\\slash", "tab\there", "{", "e", "rewards/chosen")
_VALUES = ("1.5", "0.25", "-0", "0", "-0.0", "1E+5", "1e-05", "2.1176470588235296e-06", "007", "1.", ".5", "+1", "nan",
           "NaN", "inf", "-inf", "True", "None", "1e400", "1e-400", "[1, 2]", "'abc'", "1234567890123456789",
           "123456789012345678", "-999999999999999999", "12345678901234567890123", "6900.25", "1_000", " 1.5", "1.5 ",
           "0.1" * 30, "''")


def _random_value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.3:
        return repr(rng.uniform(-10, 10) * 10 ** rng.randint(-12, 12))
    if r < 0.5:
        return f"'{rng.uniform(0, 5):.{rng.randint(1, 17)}g}'"
    if r < 0.6:
        return str(rng.randint(-(10**rng.randint(1, 20)), 10**rng.randint(1, 20)))
    v = rng.choice(_VALUES)
    return f"'{v}'" if rng.random() < 0.3 and "'" not in v else v


def _random_body(rng: random.Random, plain: bool) -> bytes:
    n = rng.randint(1, 8)
    keys = rng.sample(_KEYS[:7], min(n, 7)) if plain else [rng.choice(_KEYS) for _ in range(n)]
    parts = []
    for k in keys:
        v = _random_value(rng)
        if plain and not re.fullmatch(r"'?-?(0|[1-9]\d{0,17}|\d+\.\d+(e[+-]?\d+)?|[1-9]e[+-]?\d{1,2})'?", v.lower()):
            v = "0.5"  # a JSON number that fits int64 when it is an int
        q = "'" if "'" not in k else '"'
        parts.append(f"{q}{k}{q}: {v}")
    sep = ", " if plain or rng.random() < 0.9 else rng.choice((",", ",  ", " , "))
    return sep.join(parts).encode()


def _pairs_key(p) -> tuple:  # type: ignore[no-untyped-def]
    return (p.dict_idx.dtype, p.dict_idx.tobytes(), p.key_id.dtype, p.key_id.tobytes(), p.value.dtype, p.value.tobytes(), p.keys)


def _c_pairs(bodies: list) -> object:  # type: ignore[type-arg]
    from trainguard.readers._hf_bodies import Pairs

    got = sp.hf_pairs(bodies)
    if got is None:
        return None
    di, ki, va, keys = got
    return Pairs(np.frombuffer(di, np.int64), np.frombuffer(ki, np.int64), np.frombuffer(va, np.float64), keys)


def _check_pairs(bodies: list) -> bool:  # type: ignore[type-arg]
    """C, when it takes the bodies, gives exactly the orjson path's Pairs; True when it took them."""
    from trainguard.readers._hf_bodies import _parse_json

    c = _c_pairs(bodies)
    if c is None:
        return False
    ref = _parse_json(bodies)
    assert ref is not None, bodies
    assert _pairs_key(c) == _pairs_key(ref), bodies
    return True


@needs_c
def test_c_pairs_equal_the_json_path_on_random_bodies() -> None:
    rng = random.Random(21)
    taken = 0
    for i in range(4000):
        plain = i % 2 == 0
        bodies = [_random_body(rng, plain and rng.random() < 0.995) for _ in range(rng.randint(1, 30))]
        if rng.random() < 0.1:
            bodies = [bytearray(b) for b in bodies]
        taken += _check_pairs(bodies)
    assert taken > 1000  # the plain shape is read in C, not always handed back


@needs_c
def test_c_pairs_on_edge_bodies() -> None:
    assert sp.hf_pairs([]) is None
    assert sp.hf_pairs([b""]) is None
    assert sp.hf_pairs([b"'loss': 1, 'loss': 2"]) is None  # orjson keeps the last: left to Python
    assert sp.hf_pairs([b"'loss': 1e400"]) is None
    assert sp.hf_pairs([memoryview(b"'loss': 1")]) is None
    assert _check_pairs([b"'loss': -0, 'x': -0.0", b"'loss': '123456789012345678'"])
    c = _c_pairs([b"'loss': -0, 'x': -0.0"])
    assert c is not None and np.signbit(c.value).tolist() == [False, True]  # orjson reads "-0" as the int 0
    with pytest.raises(TypeError):
        sp.hf_pairs((b"'loss': 1",))


@needs_c
def test_c_pairs_equal_the_json_path_on_log_bodies(bench_logs: list[Path]) -> None:
    for log in _dict_logs() + bench_logs:
        sc = Scanned()
        scan_exact(log.read_bytes(), 0, sc, final=True)
        for k in range(0, len(sc.bodies), 500):
            _check_pairs(sc.bodies[k : k + 500])
    sc = Scanned()
    scan_exact(bench_logs[0].read_bytes(), 0, sc, final=True)
    assert _check_pairs(sc.bodies)


# -- one pass: _speedups.hf_chunk gives what hf_scan, the body parsers and _ingest give ------------


class _WithoutChunk:
    """The extension as it was before hf_chunk: the parser scans with hf_scan and ingests in numpy."""

    def __getattr__(self, name: str) -> object:
        if name == "hf_chunk":
            raise AttributeError(name)
        return getattr(sp, name)


def _parser_state(data: bytes, chunk: int, ext: object, monkeypatch: pytest.MonkeyPatch) -> tuple:
    from trainguard.readers.hf_stdout import StreamParser

    monkeypatch.setattr(_compiled, "speedups", ext)
    p = StreamParser()
    try:
        for i in range(0, len(data), chunk):
            p.feed_bytes(data[i : i + chunk])
        p.feed_bytes(b"", final=True)
    except OverflowError as e:  # a tqdm count past int64: both paths refuse it alike
        return ("OverflowError", str(e))
    cols, pairs = p._columns()
    arrays = {k: (v.dtype.str, v.tobytes()) for k, v in {**cols, **{"p_" + k: v for k, v in pairs.items()}}.items()}
    return arrays, p._key_names, p._summaries, p.skipped, p._saves, p._n


def _plain_log(rng: random.Random) -> bytes:
    """Trainer dict lines in the plain shape (each then a bar), with summaries and the odd echo or cut line."""
    parts = []
    for i in range(rng.randint(1, 80)):
        r = rng.random()
        if r < 0.05:
            parts.append(b"{'train_runtime': 12.5, 'train_samples_per_second': 3.1, 'train_loss': 1.25, 'epoch': 3.0}\n")
        elif r < 0.08:
            parts.append(b"metrics = {'eval_loss': 0.5}\n")  # an echo, dropped
        elif r < 0.1:
            parts.append(b"{'other': 1, 'step': 5}\n")  # no key that makes it a record
        else:
            parts.append(b"{" + _random_body(rng, plain=True) + b"}\n")
        if rng.random() < 0.8:
            total = 10 ** rng.randint(1, 19) if rng.random() < 0.05 else 80  # now and then past 18 digits
            parts.append(f"\r {i % 100}%|##| {i}/{total} [00:01<00:02]".encode())
    return b"".join(parts)


@needs_c
def test_c_chunk_equals_scan_and_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(19)
    plain_taken = 0
    for k in range(300):
        data = _plain_log(rng) if k % 2 else _random_log(rng)
        for chunk in (rng.randint(1, 200), rng.randint(200, 5000), len(data) + 1):
            ref = _parser_state(data, chunk, _WithoutChunk(), monkeypatch)
            assert _parser_state(data, chunk, sp, monkeypatch) == ref, (data, chunk)
        if k % 2:
            got = sp.hf_chunk(data, 0, 0, True, len(data), lambda name: (0, 2, False), b"\x04\x03\x00\x01\x02", 1)[4]
            plain_taken += got is not None
    assert plain_taken > 75, plain_taken  # the one-pass path, not only its fallback, was compared


@needs_c
def test_c_chunk_on_real_and_bench_logs(bench_logs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    for log in _dict_logs() + bench_logs:
        data = log.read_bytes()
        for chunk in (4096, 1 << 20):
            assert _parser_state(data, chunk, sp, monkeypatch) == _parser_state(data, chunk, _WithoutChunk(), monkeypatch), log


@needs_c
def test_c_chunk_arguments() -> None:
    line = b"{'loss': 1.5, 'epoch': 0.5}\n 5%|x| 1/20 [\n"
    kinds = b"\x04\x03\x00\x01\x02"
    used, skipped, rows, bodies, got = sp.hf_chunk(line, 100, 0, True, len(line), lambda name: (7, 2 if name == "loss" else 1, name == "epoch"), kinds, 1)
    assert (used, skipped, rows, bodies) == (len(line), 0, None, None)
    pos, kind, epoch, bar_n, bar_total, rec, key, value, summaries = got
    assert np.frombuffer(pos, np.int64).tolist() == [100] and bytes(kind) == b"\x00"
    assert np.frombuffer(epoch, np.float64).tolist() == [0.5] and np.frombuffer(bar_n, np.int64).tolist() == [1]
    assert np.frombuffer(bar_total, np.int64).tolist() == [20] and np.frombuffer(rec, np.int64).tolist() == [0]
    assert np.frombuffer(key, np.int64).tolist() == [7]
    assert np.frombuffer(value, np.float64).tolist() == [1.5] and summaries == []  # epoch is a skipped key
    with pytest.raises(ZeroDivisionError):
        sp.hf_chunk(line, 0, 0, True, len(line), lambda name: 1 / 0, kinds, 1)
    with pytest.raises(ValueError):
        sp.hf_chunk(line, 0, 0, True, len(line), lambda name: (0, 9, False), kinds, 1)
    with pytest.raises(TypeError):
        sp.hf_chunk(line.decode(), 0, 0, True, len(line), lambda name: (0, 1, False), kinds, 1)


# -- banner lines: _speedups.lines_with finds what _lines_with finds, for every keyword at once ----


@needs_c
def test_c_lines_with_equals_the_find_loop() -> None:
    from trainguard.readers._hf_scan import _INFO_KEYS, _lines_with

    rng = random.Random(20)
    needles = (*_INFO_KEYS, b".py", b"o", b"oo", b"num")
    pieces = (*needles, b"\n", b"\r", b"\r\n", b" ", b"x" * 40, b"orl", b"--n", b".p", b"py", b" 5%|##| 3/9 [00:01, 1.2it/s]", b"\xff")
    for _ in range(3000):
        text = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        limits = tuple(rng.choice((0, 1, 2, 4, 64)) for _ in needles)
        buf = bytearray(text) if rng.random() < 0.5 else text
        got = [[bytes(buf[a:b]) for a, b in spans] for spans in sp.lines_with(buf, needles, limits)]
        want = [[bytes(x) for x in _lines_with(buf, kw, lim)] for kw, lim in zip(needles, limits, strict=True)]
        assert got == want, (text, limits)
    with pytest.raises(TypeError):
        sp.lines_with(b"abc", (b"",), (1,))
    with pytest.raises(ValueError):
        sp.lines_with(b"abc", (b"a",) * 65, (1,) * 65)


def test_banner_facts_alike_with_and_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    for log in _dict_logs():
        head = bytearray(log.read_bytes()[: 8 << 20])
        monkeypatch.setattr(_compiled, "speedups", None)
        slow = _hf_scan.scan_info(head)
        monkeypatch.setattr(_compiled, "speedups", sp)
        assert _hf_scan.scan_info(head) == slow, log
