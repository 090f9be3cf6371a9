"""The compiled CSV path (``trainguard._speedups``) reads exactly what the pure-Python path reads.

The extension exists for speed only (issue 14), so every number it parses must
be bit-identical to Python's ``float()``, and every table must come out as the
same Runs, notes and errors as with the extension switched off. The float
checks run on edge cases and on seeded random numbers in every shape a log
writes them; the table checks run both paths on the CSV fixtures, on the real
runs in ../shared/realruns, and on small tables built to hit each rule (CRLF,
blank lines, empty cells, an unfinished last row, ragged rows, text cells).
Without a compiler the C side is skipped and the Python path still runs.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REALRUNS
from tests.readers.speedups_support import snapshot
from trainguard import _compiled
from trainguard.errors import InputError, NoMetricsError
from trainguard.readers import read_runs, table

sp = _compiled.load()
needs_c = pytest.mark.skipif(sp is None, reason="trainguard._speedups not built (no compiler?) or switched off")
DATA = Path(__file__).resolve().parents[1] / "data"

PATHS = ["compiled", "python"]


@pytest.fixture(params=PATHS)
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with the extension and once with the pure-Python path."""
    if request.param == "compiled":
        if sp is None:
            pytest.skip("trainguard._speedups not built (or TRAINGUARD_NO_SPEEDUPS set)")
        monkeypatch.setattr(_compiled, "speedups", sp)
    else:
        monkeypatch.setattr(_compiled, "speedups", None)
    return str(request.param)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


# -- numbers -------------------------------------------------------------------------

EDGE_NUMBERS = [
    "0", "-0", "+0", "0.0", "-0.0", "00", "007", "0.", ".0", "-.5", "+.5", "5.", "1.e5", "1E5", "1e+5", "1e-5",
    "0.1", "0.2", "0.3", "1.1", "2.675", "3.0000", "1.0000e-03", "6900.25", "100.50", "229884",
    "9007199254740991", "9007199254740992", "9007199254740993", "9007199254740994", "18014398509481985",
    "123456789012345678", "1234567890123456789", "12345678901234567890", "99999999999999999999",
    "0.000000000000000000001", "0.1234567890123456789", "1.00000000000000000000000", "0." + "0" * 30 + "1",
    "1e22", "1e23", "1e-22", "1e-23", "9e22", "9007199254740991e22", "1e37", "123e30", "4e37", "1e38",
    "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "1e309", "-1e309", "1e400",
    "2.2250738585072014e-308", "2.2250738585072011e-308", "4.9e-324", "5e-324", "2.4703282292062327e-324",
    "2.4703282292062328e-324", "1e-400", "-1e-400", "0e999999", "1e0000000000000000000000005", "1e-99999999999",
    "8.98846567431158e307", "3.4028235677973366e38", "7.038531e-26", "0.30000000000000004", "1e15", "1e16",
    "9.999999999999999e22", "5e-1", "4.35e-2", "1" + "0" * 22, "1" + "0" * 40,
    "nan", "NaN", "NAN", "-nan", "+nan", "inf", "-inf", "+inf", "Inf", "INF", "infinity", "-Infinity", "INFINITY",
]
NOT_PLAIN = [
    "1e", "1e+", "1e-", ".", "-", "+", "+-1", "--1", "1.2.3", "0x10", "1_000", "1,5", "١", "nan1", "in", "infinit",
    "1 2", "e5", ".e5", "1e5.5", "1.5f", "abc", "nana", "- 1", "1e5e5", "0b1", "1j", "\x00", "1\x00",
    "9" * 200,
]


@needs_c
@pytest.mark.parametrize("s", EDGE_NUMBERS)
def test_edge_numbers_parse_as_float_does(s: str) -> None:
    got = sp.parse_float(s.encode())
    assert got is not None, s
    assert _bits(got) == _bits(float(s)), (s, got, float(s))


@needs_c
@pytest.mark.parametrize("s", NOT_PLAIN)
def test_cells_outside_the_plain_grammar_are_refused(s: str) -> None:
    assert sp.parse_float(s.encode()) is None  # the Python path decides these


def _random_numbers(rng: random.Random, n: int) -> Iterator[str]:
    """Numbers in the shapes logs write: repr, %.Ng, %e, %f, long digit strings, scientific with big exponents."""
    for _ in range(n):
        kind = rng.randrange(8)
        if kind == 0:  # any double, shortest repr
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            yield repr(x)
        elif kind == 1:
            yield f"{rng.uniform(-1e6, 1e6):.{rng.randrange(0, 18)}g}"
        elif kind == 2:
            yield f"{rng.uniform(-10, 10) * 10 ** rng.randrange(-30, 30):.{rng.randrange(0, 20)}e}"
        elif kind == 3:
            yield f"{rng.uniform(0, 1e4):.{rng.randrange(0, 25)}f}"
        elif kind == 4:  # digit strings around the 2^53 / 19-digit limits, with a point somewhere
            d = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 26)))
            i = rng.randrange(len(d) + 1)
            yield rng.choice(["", "-", "+"]) + d[:i] + "." + d[i:] if i < len(d) else d
        elif kind == 5:  # mantissa and exponent near the exact-fast-path bounds
            m = rng.choice([rng.randrange(1, 10**6), rng.randrange(2**52, 2**54), rng.randrange(1, 10**19)])
            yield f"{m}e{rng.randrange(-40, 45)}"
        elif kind == 6:  # tiny and huge: subnormals, overflow
            yield f"{rng.randrange(1, 10**17)}e{rng.choice([-340, -330, -324, -308, -307, 290, 300, 308, 309])}"
        else:  # float32 values printed as torch/numpy print them
            x = struct.unpack("<f", struct.pack("<f", rng.uniform(-100, 100)))[0]
            yield f"{x:.{rng.choice([4, 6, 8, 9])}g}"


@needs_c
def test_random_numbers_are_bit_identical_to_float() -> None:
    rng = random.Random(14)
    tokens = list(_random_numbers(rng, 200_000))
    for s in tokens[:20_000]:
        got = sp.parse_float(s.encode())
        assert got is not None and _bits(got) == _bits(float(s)), (s, got, float(s))
    # the same numbers through the table parser, one column: the path the reader takes
    values, rows, dropped = sp.parse_table("\n".join(tokens).encode(), ord(","), 1)
    assert rows == len(tokens) and not dropped
    got = np.frombuffer(values, np.float64)
    want = np.array([float(s) for s in tokens])
    bad = np.flatnonzero(got.view(np.uint64) != want.view(np.uint64))
    assert not len(bad), [(tokens[i], got[i], want[i]) for i in bad[:5]]


# -- the table parser ------------------------------------------------------------------


def _table(body: bytes, width: int, delim: str = ",") -> tuple[np.ndarray, bool] | None:
    out = sp.parse_table(body, ord(delim), width)
    if out is None:
        return None
    values, rows, dropped = out
    return np.frombuffer(values, np.float64).reshape(width, rows).T, dropped


@needs_c
def test_parse_table_layout_line_ends_blank_lines_and_empty_cells() -> None:
    got = _table(b"1,2,3\r\n4,,6\r\r\n\n  \t \n7, 8 ,9\r10,11,12", 3)
    assert got is not None
    m, dropped = got
    assert not dropped and m.shape == (4, 3) and all(m[:, i].flags.c_contiguous for i in range(3))
    assert m[0].tolist() == [1, 2, 3] and m[2].tolist() == [7, 8, 9] and m[3].tolist() == [10, 11, 12]
    assert m[1, 0] == 4 and math.isnan(m[1, 1]) and m[1, 2] == 6


@needs_c
def test_parse_table_grows_past_its_first_guess_of_the_row_count() -> None:
    body = b"1,2\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(100_000, 150_000))  # first line short
    m, _ = _table(body, 2)  # type: ignore[misc]
    assert m.shape == (50_001, 2) and m[-1].tolist() == [149_999, 149_999] and m[0].tolist() == [1, 2]


@needs_c
def test_parse_table_tsv() -> None:
    m, _ = _table(b"1\t 2.5 \n3\t\n", 2, "\t")  # type: ignore[misc]
    assert m[0].tolist() == [1, 2.5] and m[1, 0] == 3 and math.isnan(m[1, 1])


@needs_c
@pytest.mark.parametrize("body", [
    b"1,2\n3,x\n",             # a text cell
    b"1,2\n3\n4,5\n",          # a short row that is not the last
    b"1,2\n3,4,5\n",           # a long row
    b"1,2\n\"3\",4\n",         # quotes: the csv module's business
    b"1,2\n3,4 5\n",           # two numbers in a cell
    b"",                       # no rows
    b"\n \n\r\n",              # only blank lines
    b"1,2\n3,4\n5\xc3\xa9\n",  # a short last row with non-ASCII (splitlines may see more lines)
    b"1,2\n3,4\n5\x0c\n",      # a short last row with a form feed (a line end to str.splitlines)
    b"7\n",                    # only a short row
])
def test_parse_table_refuses_what_the_python_path_must_decide(body: bytes) -> None:
    assert sp.parse_table(body, ord(","), 2) is None


@needs_c
@pytest.mark.parametrize(("body", "width"), [
    (b"1,2\n3,4\n5", 2), (b"1,2,0\n3,4,0\n5,\n", 3), (b"1,2\n3,4\n5.1e\n \n\n", 2), (b"1,2,0\n3,4,0\n\n5,", 3),
])
def test_parse_table_drops_only_an_unfinished_last_row(body: bytes, width: int) -> None:
    got = _table(body, width)
    assert got is not None
    m, dropped = got
    assert dropped and m.shape[0] == 2 and m[:, 0].tolist() == [1, 3]


@needs_c
def test_parse_table_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sp.parse_table(b"1\n", ord(","), 0)
    with pytest.raises(ValueError):
        sp.parse_table(b"1\n", ord("1"), 1)
    with pytest.raises(TypeError):
        sp.parse_table("1\n", ord(","), 1)


# -- the reader: both paths, same Runs ----------------------------------------------------


def _outcome(fn, path: Path) -> object:  # type: ignore[no-untyped-def]
    try:
        return snapshot(list(fn(path)))
    except (InputError, NoMetricsError) as e:
        return (type(e).__name__, str(e))


def _both(fn, path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_compiled, "speedups", sp)
    fast = _outcome(fn, path)
    monkeypatch.setattr(_compiled, "speedups", None)
    slow = _outcome(fn, path)
    return fast, slow


def _csv_files() -> list[Path]:
    files = sorted(p for p in DATA.rglob("*") if p.suffix.lower() in (".csv", ".tsv"))
    if REALRUNS.is_dir():  # ../shared is optional
        files += sorted(p for p in REALRUNS.rglob("*") if p.suffix.lower() in (".csv", ".tsv"))
    return files


@needs_c
def test_both_paths_read_the_fixture_and_real_tables_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _csv_files()
    assert files
    for f in files:
        fast, slow = _both(table.read_all, f, monkeypatch)
        assert fast == slow, f
        fast, slow = _both(read_runs, f, monkeypatch)  # as the CLI picks the reader (lightning, W&B export ...)
        assert fast == slow, f


@needs_c
def test_both_paths_read_the_real_run_folders_of_tables_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    if not REALRUNS.is_dir():
        pytest.skip(f"real runs not found at {REALRUNS}")
    folders = [d for d in sorted(REALRUNS.iterdir()) if d.is_dir() and any(d.glob("*.csv"))]
    for d in folders:
        fast, slow = _both(read_runs, d, monkeypatch)
        assert fast == slow, d


HEAD = "step,loss,lr,grad_norm\n"
EDGE_TABLES = {
    "plain": HEAD + "".join(f"{i},{3 - i / 100:.4f},{1e-3:.4e},{0.5 + i / 7:.6f}\n" for i in range(50)),
    "crlf": (HEAD + "1,2.5,0.1,1\n2,2.4,0.1,1\n").replace("\n", "\r\n"),
    "keras_windows": "epoch,loss,val_loss\r\r\n0,1.2,1.3\r\r\n1,1.0,1.1\r\r\n",
    "old_mac": "step,loss\r1,2\r2,1.5\r",
    "blank_lines": HEAD + "1,2.5,0.1,1\n\n   \n2,2.4,0.1,1\n\t\n3,2.3,0.1,1\n\n\n",
    "sparse": "epoch,step,train_loss,val_loss\n0,9,2.5,\n0,9,,2.3\n1,19,1.9,\n1,19,,2.0\n",
    "no_step": "epoch,loss\n0,1.0\n1,0.9\n",
    "no_step_or_epoch": "loss,acc\n1.0,0.1\n0.9,0.2\n",
    "unfinished_last_row": HEAD + "1,2.5,0.1,1\n2,2.4,0.1,1\n3,2.",
    "unfinished_then_blank": HEAD + "1,2.5,0.1,1\n2,2.4,0.1,1\n3,\n\n  \n",
    "unfinished_only_row": HEAD + "3,2",
    "nan_inf": HEAD + "1,nan,0.1,inf\n2,-inf,NaN,1\n3,Infinity,0.1,-0.0\n4,2.0,0.1,+1\n",
    "empty_step": HEAD + "1,2.5,0.1,1\n,2.4,0.1,1\n3,2.3,0.1,1\n",
    "restart": HEAD + "1,2.5,0.1,1\n2,2.4,0.1,1\n1,2.6,0.1,1\n2,2.2,0.1,1\n",
    "text_cell": HEAD + "1,2.5,0.1,1\n2,oops,0.1,1\n",
    "text_column": "step,loss,phase\n1,2.5,train\n2,2.4,eval\n",
    "ragged_middle": HEAD + "1,2.5,0.1,1\n2,2.4\n3,2.3,0.1,1\n",
    "long_row": HEAD + "1,2.5,0.1,1,9\n2,2.4,0.1,1\n",
    "quoted": '"step","loss"\n"1","2.5"\n"2","2.4"\n',
    "quoted_body": 'step,loss\n1,"2.5"\n2,2.4\n',
    "header_only": HEAD,
    "header_blank_lines": HEAD + "\n\n",
    "spaces": "step , loss\n 1 , 2.5 \n 2 ,\t2.4\n",
    "tsv": "step\tloss\tlr\n1\t2.5\t0.1\n2\t\t0.1\n3\t2.3\t\n",
    "underscores": "step,loss\n1_000,2.5\n2_000,2.4\n",
    "wandb_columns": "Step,run - train/loss,run - train/loss__MIN,run - train/loss__MAX\n1,2,1,3\n2,1.5,1,2\n",
    "big_exponents": "step,loss\n1,1e400\n2,1e-400\n3,123456789012345678901234567890\n",
    "single_column": "loss\n1.0\n0.5\n",
    "bom": "\ufeffstep,loss\n1,2\n2,1\n",
    "latin1_cell": None,  # written as bytes below
    "leading_blank_line": "\nstep,loss\n1,2\n",
    "duplicate_metric": "step,loss,train_loss\n1,2.5,\n2,,2.4\n3,2.3,2.2\n",
    "all_empty_metric": "step,loss,acc\n1,2.5,\n2,2.4,\n",
    "exp_notation_steps": "step,loss\n1e3,2.5\n2e3,2.4\n",
}


@needs_c
@pytest.mark.parametrize("name", sorted(EDGE_TABLES))
def test_both_paths_read_edge_tables_alike(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / f"{name}.csv"
    text = EDGE_TABLES[name]
    if text is None:
        f.write_bytes(b"step,loss\n1,2.5\n2,2.4\xe9\n")
    else:
        f.write_bytes(text.encode())
    fast, slow = _both(table.read_all, f, monkeypatch)
    assert fast == slow


@needs_c
def test_the_compiled_path_is_taken_on_plain_tables(tmp_path: Path) -> None:
    """The speed-up must not silently fall back on the shapes it exists for."""
    for name in ("plain", "crlf", "keras_windows", "old_mac", "blank_lines", "sparse", "unfinished_last_row",
                 "nan_inf", "tsv", "spaces", "big_exponents"):
        data = EDGE_TABLES[name].encode()  # type: ignore[union-attr]
        assert table._compiled_matrix(data) is not None, name


def test_unfinished_last_row_note_on_either_path(tmp_path: Path, path_kind: str) -> None:
    f = tmp_path / "metrics.csv"
    f.write_text(EDGE_TABLES["unfinished_last_row"])  # type: ignore[arg-type]
    [run] = table.read_all(f)
    assert run.train_loss.steps.tolist() == [1, 2]
    assert "last row is incomplete (file still being written?); skipped" in run.notes


def test_ragged_rows_error_on_either_path(tmp_path: Path, path_kind: str) -> None:
    f = tmp_path / "metrics.csv"
    f.write_text(EDGE_TABLES["ragged_middle"])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="ragged rows: line 3 has 2 fields, the header has 4"):
        table.read_all(f)


def test_switch_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINGUARD_NO_SPEEDUPS", "1")
    assert _compiled.load() is None
    monkeypatch.setenv("TRAINGUARD_NO_SPEEDUPS", "0")
    try:
        from trainguard import _speedups
    except ImportError:  # not built: the Python path is all there is
        _speedups = None  # type: ignore[assignment]
    assert _compiled.load() is _speedups
