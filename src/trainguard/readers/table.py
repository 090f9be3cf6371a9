"""Generic CSV/TSV metric tables with a header: W&B history exports, Keras CSVLogger, ``step<TAB>loss``.

Columns are mapped through the shared alias table (``val_loss`` ->
``eval_loss`` ...). The step comes from the first step-like column
(``step``, ``global_step``, ``_step``, ``train/global_step``, ``iteration``
...); a table with only ``epoch`` (Keras CSVLogger) uses the epoch as the step
and says so, since "step 3" there means "after the 4th epoch". Empty cells are
missing values, not zeros, so sparse tables (Lightning, W&B) keep train and
eval rows apart.

Reading is columnar. A plain numeric body (numbers, empty cells) is parsed in
one pass over the file's bytes by the optional C extension
(:mod:`trainguard._speedups`, issue 14: >= 150 MB/s); without it, or for
anything else (quotes, text cells, ragged rows), the ``csv`` module splits rows
and numpy parses each column in one call. Both paths give the same Run. Only a
table whose step goes back (a resumed or concatenated run) takes the per-row
path through :class:`~._collect.Collector`.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

from .. import _compiled
from ..errors import InputError, NoMetricsError
from ..run import EPOCH, Run, Series
from ._collect import Collector, first_run, metric_name
from ._io import decode, open_binary

NAME = "table"

STEP_COLUMNS = (
    "step",
    "global_step",
    "train/global_step",
    "trainer/global_step",
    "_step",
    "iteration",
    "iter",
    "current_steps",
    "steps",
    "num_updates",
    "batch",
)
EPOCH_COLUMNS = ("epoch", "train/epoch", "epochs", "trainer/epoch")
WALL_COLUMNS = ("_timestamp", "timestamp", "wall_time", "time_stamp")
IGNORED = {"_runtime", "created_at", "percentage", "total_steps", "remaining_time", "elapsed_time", "eta_seconds"}
_WANDB_COL = re.compile(r"^.+? - (.+?)(__MIN|__MAX)?$")
_NUMERIC = re.compile(rb"^\s*[-+]?(\d+(?:\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$|^\s*$|^\s*(nan|NaN|inf|-inf)\s*$")


def _split_head(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    lines = data.replace(b"\r\n", b"\n").split(b"\n")[:20]
    header = lines[0] if lines else b""
    delim = b"\t" if b"\t" in header else b","
    rows = [ln for ln in lines[1:] if ln.strip()]
    return header, rows, delim


def table_score(data: bytes) -> tuple[float, list[str]]:
    """(confidence, lower-cased header) that ``data`` is a header + numeric rows table."""
    if data.lstrip()[:1] in (b"{", b"["):
        return 0.0, []
    header, rows, delim = _split_head(data)
    cols = [c.strip().strip('"').lower() for c in header.decode("utf-8", "replace").split(delim.decode())]
    if len(cols) < 2 or not rows or any(not c or _NUMERIC.match(c.encode()) for c in cols[:1]):
        return 0.0, []
    if any(len(c) > 80 for c in cols):
        return 0.0, []
    numeric = 0
    for r in rows[:10]:
        cells = r.split(delim)
        if len(cells) == len(cols) and sum(bool(_NUMERIC.match(c.strip(b'"'))) for c in cells) >= len(cells) * 0.5:
            numeric += 1
    if numeric < max(1, min(len(rows), 10) // 2):
        return 0.0, []
    known = any(c in STEP_COLUMNS or c in EPOCH_COLUMNS or "loss" in c for c in cols)
    return (0.7 if known else 0.4), cols


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.7 for a CSV/TSV with a header and mostly numeric rows that names a step, epoch or loss column."""
    return table_score(data)[0]


def read(path: Path | str, *, fmt: str = NAME) -> Run:
    """The table at ``path`` as a Run (several, oldest first, via :func:`read_all`; this returns the first)."""
    return first_run(read_all(path, fmt=fmt))


def read_all(path: Path | str, *, fmt: str = NAME) -> list[Run]:
    """Every run in the table at ``path`` (more than one when the step counter restarts from the beginning)."""
    p = Path(path)
    with open_binary(p) as f:
        data = f.read()
    notes: list[str] = []
    compiled = _compiled_matrix(data)
    text = ""
    if compiled is not None:
        header, matrix, dropped_last = compiled
        if dropped_last:
            notes.append(_INCOMPLETE_LAST_ROW)
        fast: tuple[list[str], np.ndarray] | None = (header, matrix)
    else:
        text = _one_newline(decode(data))
        fast = _numeric_matrix(text)
    if fast is not None:
        header, matrix = fast
        width = len(header)
        nrows = matrix.shape[0]

        def col(i: int, strict: bool = True) -> np.ndarray | None:
            return matrix[:, i]

    else:
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if len(lines) < 2:
            raise NoMetricsError(p, "table has a header but no rows")
        delim = "\t" if "\t" in lines[0] else ","
        rows = list(csv.reader(lines, delimiter=delim))
        header = [c.strip() for c in rows[0]]
        body = rows[1:]
        width = len(header)
        bad = [i for i, r in enumerate(body) if len(r) != width]
        if bad:
            if bad == [len(body) - 1] and len(body[-1]) < width:
                body.pop()
                notes.append(_INCOMPLETE_LAST_ROW)
            else:
                i = bad[0]
                raise InputError(p, f"ragged rows: line {i + 2} has {len(body[i])} fields, the header has {width}")
        if not body:
            raise NoMetricsError(p, "table has a header but no complete rows")
        nrows = len(body)
        cells = list(zip(*body, strict=True))

        def col(i: int, strict: bool = True) -> np.ndarray | None:
            return _column(cells[i], strict=strict)

    lower = [h.lower() for h in header]
    step_i = next((lower.index(c) for c in STEP_COLUMNS if c in lower), None)
    epoch_i = next((lower.index(c) for c in EPOCH_COLUMNS if c in lower), None)
    wall_i = next((lower.index(c) for c in WALL_COLUMNS if c in lower), None)
    epochs = col(epoch_i) if epoch_i is not None else None
    walls = col(wall_i) if wall_i is not None else None
    steps_per_epoch_unknown = False
    if step_i is not None:
        s = col(step_i)
    elif epochs is not None:
        s = epochs
        steps_per_epoch_unknown = True
        fmt = "keras_csv" if fmt == NAME else fmt
        notes.append("no step column: the epoch is used as the step (one point per epoch; steps per epoch unknown)")
    else:
        s = np.arange(nrows, dtype=np.float64)
        notes.append("no step or epoch column: the row number is used as the step")
    finite = np.isfinite(s)
    have_step = finite & (np.abs(s) < 2.0**63)  # a step of 1e30 would wrap to -2^63 and split the run in two
    if not finite.all():
        notes.append(f"{int((~finite).sum())} rows without a step were skipped")
    if not (have_step == finite).all():
        huge = s[finite & ~have_step]
        notes.append(f"{len(huge)} row{'s' if len(huge) != 1 else ''} whose step is past a 64-bit counter "
                     f"(such as {huge[0]:g}) {'were' if len(huge) != 1 else 'was'} skipped")
    steps = np.where(have_step, s, -1).astype(np.int64)
    metrics: dict[str, np.ndarray] = {}
    nan_cells = _written_nan(data, nrows, width)
    written: dict[str, np.ndarray] = {}  # per metric: rows whose cell says NaN (a diverged value, not a gap)
    for i, h in enumerate(header):
        if i in (step_i, epoch_i, wall_i) or h.lower() in IGNORED or h.lower() in STEP_COLUMNS:
            continue
        m = _WANDB_COL.match(h)
        if m:
            if m.group(2):
                continue  # W&B chart export min/max bands
            h = m.group(1)
        v = col(i, strict=False)
        if v is None:
            continue
        name = metric_name(h)
        w = nan_cells[:, i] if nan_cells is not None else None
        if name in metrics:  # two columns for one metric (loss and train_loss): fill the gaps of the first
            gap = np.isnan(metrics[name]) & ~written[name] if name in written else np.isnan(metrics[name])
            metrics[name] = np.where(gap, v, metrics[name])
            if w is not None:
                written[name] = np.where(gap, w, written.get(name, np.zeros(nrows, bool)))
        else:
            metrics[name] = v
            if w is not None and w.any():
                written[name] = w
    if epochs is not None and not steps_per_epoch_unknown and EPOCH not in metrics:
        metrics[EPOCH] = epochs
    if not metrics:
        raise NoMetricsError(p, f"no numeric metric columns (header: {', '.join(header)})")
    runs = _build(p, fmt, steps, have_step, metrics, epochs, walls, written)
    for r in runs:
        r.notes[:0] = notes
        if steps_per_epoch_unknown:
            r.steps_per_epoch = None
    return runs


def _written_nan(data: bytes, nrows: int, width: int) -> np.ndarray | None:
    """Rows x columns: True where the cell itself says NaN; None when no cell does (the usual case, one search).

    Both an empty cell and ``nan`` parse to NaN, but they mean different
    things: a gap (the metric was not logged on that row) against a value
    that went NaN (Keras' and Lightning's CSV loggers write ``nan`` for a
    diverged loss). Gaps are dropped; a written NaN must reach the detectors.
    """
    body = data.find(b"\n") + 1  # the header may name a column with an "a"
    if (data.find(b"a", body) < 0 and data.find(b"A", body) < 0) or not _NAN_WORD.search(data):
        return None  # a memchr for the letter first: the regex alone costs more than the C parse of the table
    lines = [ln for ln in _one_newline(decode(data)).split("\n") if ln.strip()][1 : nrows + 1]
    delim = "\t" if "\t" in decode(data.split(b"\n", 1)[0]) else ","
    out = np.zeros((nrows, width), bool)
    for r, row in enumerate(csv.reader(lines, delimiter=delim)):
        for c, cell in enumerate(row[:width]):
            if cell.strip().strip('"').lower().lstrip("+-") == "nan":
                out[r, c] = True
    return out if out.any() else None


_NAN_WORD = re.compile(rb"(?i)(?:^|[,\t\"\s+-])nan(?:$|[,\t\"\s])", re.M)
_INCOMPLETE_LAST_ROW = "last row is incomplete (file still being written?); skipped"
_LINE_END = re.compile(rb"[\r\n]")


def _compiled_matrix(data: bytes) -> tuple[list[str], np.ndarray, bool] | None:
    """(header, rows x columns float64, last row dropped) from the C extension; None to take the Python path.

    Works on the file's bytes, so the decode and newline passes over the whole
    file are skipped; the header line is decoded and split as the Python path
    would (after :func:`_one_newline`), and a quoted or blank header is left to
    the ``csv`` path. The extension refuses every body that is not plain numbers
    (see ``parse_table`` in ``_speedups.c``), so each result is the one the
    Python path gives, the note on an unfinished last row included.
    """
    sp = _compiled.speedups
    if sp is None:
        return None
    end = _LINE_END.search(data)
    if end is None:
        return None
    head = decode(data[: end.start()])
    if '"' in head or not head.strip():
        return None
    delim = "\t" if "\t" in head else ","
    header = [c.strip() for c in head.split(delim)]
    parsed = sp.parse_table(memoryview(data)[end.end() :], ord(delim), len(header))
    if parsed is None:
        return None
    values, rows, dropped_last = parsed  # column after column: each column a contiguous array
    return header, np.frombuffer(values, np.float64).reshape(len(header), rows).T, dropped_last


def _one_newline(text: str) -> str:
    """``text`` with every line ending made ``\\n`` and blank lines dropped.

    Keras' CSVLogger on Windows writes ``\\r\\r\\n`` (the csv module's ``\\r\\n``
    through a text-mode file), which a line split reads as a row, then an
    empty row: a blank line is never data, so it goes.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n\n" in text:
        text = _BLANK_LINES.sub("\n", text)
    return text


_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")


def _numeric_matrix(text: str) -> tuple[list[str], np.ndarray] | None:
    """(header, rows x columns float64) when every cell is a number: the whole body parsed in one C call.

    Only for the plain case (no quotes, no empty cells, every line the same
    width, checked line by line); anything else returns None and takes the
    ``csv`` module path, which reports ragged rows and handles sparse cells.
    The body goes through ``orjson`` as one JSON array (4x numpy's
    ``fromstring`` here); cells JSON does not take (``nan``, ``1.``) fall back
    to ``fromstring``, which reads them as Python's ``float`` would.
    """
    if '"' in text:
        return None
    nl = text.find("\n")
    if nl < 0:
        return None
    head = text[:nl]
    delim = "\t" if "\t" in head else ","
    header = [c.strip() for c in head.split(delim)]
    body = text[nl + 1 :].rstrip("\n")
    if not body or delim + delim in body or "\n\n" in body or body.startswith(delim) or delim + "\n" in body:
        return None
    width = len(header)
    raw = np.frombuffer(body.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    seps = np.flatnonzero(raw == ord(delim))
    per_line = np.diff(np.searchsorted(seps, np.concatenate([[-1], ends, [len(raw)]])))
    if not np.all(per_line == width - 1):
        return None
    flat = _parse_cells(body.replace("\n", delim), delim)
    if flat is None:
        return None
    rows = len(ends) + 1
    if flat.size != rows * width:
        return None
    return header, flat.reshape(rows, width)


def _parse_cells(cells: str, delim: str) -> np.ndarray | None:
    """Every ``delim``-separated number in ``cells`` as float64; None when one is not a number."""
    # a TSV cell "1,5" must not become two numbers; true/false/null and nesting are not metric values
    if (delim == "," or "," not in cells) and not any(t in cells for t in ("true", "false", "null", "[", "{")):
        try:
            import orjson

            values = orjson.loads("[" + (cells if delim == "," else cells.replace(delim, ",")) + "]")
            return np.fromiter(values, np.float64, len(values))
        except (ImportError, ValueError, TypeError):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.fromstring(cells, dtype=np.float64, sep=delim)
        except ValueError:
            return None


def _column(cells: tuple[str, ...], *, strict: bool = True) -> np.ndarray | None:
    """A column as float64, empty cells NaN; None (or InputError-free NaNs) for non-numeric columns."""
    a = np.asarray(cells)
    a = np.where(np.char.str_len(np.char.strip(a)) == 0, "nan", a)
    try:
        return a.astype(np.float64)
    except ValueError:
        out = np.full(len(cells), np.nan)
        ok = 0
        for i, c in enumerate(cells):
            try:
                out[i] = float(c)
                ok += 1
            except ValueError:
                pass
        if not strict and ok == 0:
            return None
        return out


def _build(
    p: Path,
    fmt: str,
    steps: np.ndarray,
    have_step: np.ndarray,
    metrics: dict[str, np.ndarray],
    epochs: np.ndarray | None,
    walls: np.ndarray | None,
    written: dict[str, np.ndarray] | None = None,
) -> list[Run]:
    """The Run(s) of the columns; an empty cell is no point, a cell that says NaN is a NaN point (see ``_written_nan``)."""
    written = written or {}
    name = p.parent.name if p.stem in ("metrics", "history", "train", "log") and p.parent.name else p.stem
    st = steps[have_step]
    if len(st) < 2 or bool(np.all(np.diff(st) >= 0)):
        run = Run(name=name, format=fmt, sources=[str(p)])
        for mname, v in metrics.items():
            m = have_step & (~np.isnan(v) | written[mname]) if mname in written else have_step & ~np.isnan(v)
            if mname == EPOCH:  # one epoch point per step (sparse tables repeat it on train and eval rows)
                m &= np.r_[True, np.diff(steps) != 0]
            if m.all():  # a dense column: Series copies the arrays anyway, so no masked copy first
                run.history.set(mname, Series(steps, v, epochs, walls))  # a column not given is not stored
            elif m.any():
                run.history.set(
                    mname,
                    Series(
                        steps[m],
                        v[m],
                        None if epochs is None else epochs[m],
                        None if walls is None else walls[m],
                    ),
                )
        if not len(run.history):
            raise NoMetricsError(p, "no values in the metric columns")
        return [run]
    col = Collector(name, fmt, str(p))
    names = list(metrics)
    arrays = [metrics[n] for n in names]
    for r in np.nonzero(have_step)[0]:
        rec = {n: float(a[r]) for n, a in zip(names, arrays, strict=True) if not np.isnan(a[r]) or (n in written and written[n][r])}
        col.add(
            int(steps[r]),
            rec,
            epoch=None if epochs is None or np.isnan(epochs[r]) else float(epochs[r]),
            wall_time=None if walls is None or np.isnan(walls[r]) else float(walls[r]),
            where=f"line {r + 2}",
        )
    runs = col.runs()
    if not runs:
        raise NoMetricsError(p, "no values in the metric columns")
    return runs
