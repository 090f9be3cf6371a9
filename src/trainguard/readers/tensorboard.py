"""TensorBoard event files and logdirs, read by our own TFRecord + protobuf decoder.

Why not tbparse / EventAccumulator: they decode every event into protobuf
objects (about 40k scalars/s), and EventAccumulator keeps a 10,000-point
reservoir per tag by default, silently dropping points. We decode the wire
format by hand (``_tb_proto``), check the checksums of the records we keep in
bulk (a corrupt one is dropped and counted in the notes), and keep every point.

Resumed runs: a run restarted from a checkpoint appends a new event file (or
continues the old one) whose steps go back to the checkpoint. Like TensorBoard's
own purge, the newer points win: for each tag, a point is dropped when a later
point has a smaller step, or the same step in a later file. The run's notes say
where the step rewound and how many points were replaced, so nothing is lost
silently.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .._hf_nan import restore_nans
from ..errors import InputError, NoMetricsError
from ..run import EPOCH, EVAL_LOSS, TRAIN_LOSS, Run, Series
from . import _tb_proto
from ._io import open_binary
from ._names import canonical
from ._tfrecord import first_length_ok

NAME = "tensorboard"
BINARY = True

_EVENT_RE = re.compile(r"(?:^|\.)tfevents\.")
_TS_RE = re.compile(r"tfevents\.(\d+)")
# Keras' TensorBoard callback writes a run as sibling train/ and validation/ logdirs.
_SPLIT_DIRS = {"train": "", "validation": "val_", "val": "val_", "eval": "val_", "valid": "val_", "test": "val_"}
_KERAS_PREFIXES = ("epoch_", "batch_")


def is_event_file(name: str) -> bool:
    """True for TensorBoard event file names (``events.out.tfevents.<time>.<host>...``)."""
    return bool(_EVENT_RE.search(os.path.basename(name)))


def sniff(data: bytes, path: Path | None = None) -> float:
    """1.0 for a TFRecord whose first record is a TF Event; 0.6 for an event-file name whose header is damaged."""
    if first_length_ok(data):
        return 1.0 if b"brain.Event:" in data[:64] else 0.95
    if path is not None and is_event_file(path.name):
        return 0.6
    return 0.0


def sniff_dir(path: Path) -> float:
    """0.8 when the folder tree holds event files (a logdir)."""
    return 0.8 if any(_event_files(path, recursive=True)) else 0.0


def read(path: Path | str, *, verify: bool = False) -> Run:
    """One event file as a Run."""
    p = Path(path)
    run = Run(name=p.parent.name or p.name, format=NAME, sources=[str(p)])
    _fill(run, [(p, "")], verify=verify)
    return run


def read_dir(path: Path | str, *, verify: bool = False) -> list[Run]:
    """One Run per folder under ``path`` holding event files (a Keras train/ + validation/ pair is one run)."""
    root = Path(path)
    groups: dict[Path, list[tuple[Path, str]]] = {}
    for d, files in sorted(_dirs_with_events(root).items()):
        prefix = _SPLIT_DIRS.get(d.name.lower())
        siblings = prefix is not None and d != root and any(
            s.name.lower() in _SPLIT_DIRS and s != d for s in _dirs_with_events(root) if s.parent == d.parent
        )
        key = d.parent if siblings else d
        groups.setdefault(key, []).extend((f, prefix if siblings else "") for f in files)
    if not groups:
        raise NoMetricsError(root, "no TensorBoard event files (events.out.tfevents.*) in this folder")
    runs = []
    for d, files in groups.items():
        name = str(d.relative_to(root)) if d != root else root.name
        run = Run(name=name if name != "." else root.name, format=NAME, sources=[str(f) for f, _ in files])
        _fill(run, files, verify=verify)
        if len(run.history):
            runs.append(run)
    if not runs:
        raise NoMetricsError(root, f"event files hold no scalars ({sum(len(v) for v in groups.values())} files)")
    return runs


def _event_files(d: Path, *, recursive: bool) -> list[Path]:
    it = d.rglob("*") if recursive else d.iterdir()
    try:
        return [f for f in it if f.is_file() and is_event_file(f.name)]
    except OSError:
        return []


def _dirs_with_events(root: Path) -> dict[Path, list[Path]]:
    out: dict[Path, list[Path]] = {}
    for f in _event_files(root, recursive=True):
        out.setdefault(f.parent, []).append(f)
    return {d: sorted(fs, key=_file_order) for d, fs in out.items()}


def _file_order(f: Path) -> tuple[int, str]:
    """Event files sort by the creation timestamp in their name, then by name."""
    m = _TS_RE.search(f.name)
    return (int(m.group(1)) if m else 0, f.name)


def _tag_name(tag: str, prefix: str) -> str:
    t = tag
    if prefix or t.startswith(_KERAS_PREFIXES):
        for kp in _KERAS_PREFIXES:
            if t.startswith(kp):
                t = t[len(kp):]
                break
    name = canonical(prefix + t) if prefix else canonical(t)
    if prefix and name == TRAIN_LOSS:
        return EVAL_LOSS
    return name


def _fill(run: Run, files: list[tuple[Path, str]], *, verify: bool = False) -> None:
    """Decode ``files`` (in order) into ``run.history``, applying the resume rule and writing notes."""
    cols: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]] = {}
    records = 0
    skipped = 0
    for fi, (f, prefix) in enumerate(files):
        with open_binary(f) as fh:
            try:
                buf = fh.read()
            except (OSError, EOFError) as e:
                raise InputError(f, f"unreadable event file ({e})") from None
        dec = _tb_proto.decode(buf, verify=verify)
        records += dec.records
        skipped += dec.skipped_values
        if dec.corrupt:
            run.skipped_lines += dec.corrupt
            run.notes.append(f"{f.name}: {dec.corrupt} corrupt record{'s' if dec.corrupt != 1 else ''} "
                             "(checksum mismatch) dropped")
        if dec.error is not None:
            if dec.records == 0 and len(files) == 1:
                raise InputError(f, f"not a readable TensorBoard event file: {dec.error.why}")
            run.notes.append(
                f"{f.name}: {dec.error.why} at byte {dec.error.offset}; read the {dec.records} complete records before it"
            )
        if not len(dec.values):
            continue
        tid = np.asarray(dec.tag_ids, dtype=np.int64)
        steps = np.asarray(dec.steps, dtype=np.int64)
        vals = np.asarray(dec.values, dtype=np.float64)
        walls = np.asarray(dec.walls, dtype=np.float64)
        order = np.argsort(tid, kind="stable")
        bounds = np.searchsorted(tid[order], np.arange(len(dec.tags) + 1))
        for t, tag in enumerate(dec.tags):
            idx = order[bounds[t] : bounds[t + 1]]
            name = _tag_name(tag, prefix)
            cols.setdefault(name, []).append((steps[idx], vals[idx], walls[idx], fi))
    if not cols:
        src = files[0][0] if len(files) == 1 else files[0][0].parent
        raise NoMetricsError(src, f"TensorBoard events hold no scalars ({records} records, {skipped} non-scalar values)")
    rewinds: dict[str, list[int]] = {}
    for name, parts in cols.items():
        run.history.set(name, _merge(parts, files, rewinds))
    for fname, (at, peak, gone) in rewinds.items():
        run.notes.append(
            f"step rewound from {peak} to {at} in {fname} (a resumed run, stitched): the newer points "
            f"replace {gone} older ones at steps >= {at}"
        )
    if skipped:
        run.notes.append(f"{skipped} non-scalar summaries (histograms, images, text) skipped")
    restore_nans(run)
    _attach_epochs(run)
    walls = [s.wall_time for s in run.history.values() if s.has_wall_time()]
    if walls:
        w = np.concatenate(walls)
        w = w[np.isfinite(w)]
        run.start_time, run.end_time = float(w.min()), float(w.max())


def _merge(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]],
    files: list[tuple[Path, str]],
    rewinds: dict[str, list[int]],
) -> Series:
    """One tag's points across files, in file order; at a step rewind the newer points replace the older ones.

    A point is superseded when a later point has a smaller step, or the same
    step in a later file (a resume that re-logs the checkpoint step). Equal
    steps within one file are kept: some loops log several values per step.
    """
    steps = np.concatenate([p[0] for p in parts])
    vals = np.concatenate([p[1] for p in parts])
    walls = np.concatenate([p[2] for p in parts])
    fidx = np.concatenate([np.full(len(p[0]), p[3], dtype=np.int64) for p in parts])
    n = len(steps)
    if n < 2:
        return Series(steps, vals, wall_time=walls)
    d = np.diff(steps)
    if bool(np.all((d > 0) | ((d == 0) & (np.diff(fidx) == 0)))):
        return Series(steps, vals, wall_time=walls)
    big = np.iinfo(np.int64).max
    later = np.empty(n, np.int64)
    later[:-1] = np.minimum.accumulate(steps[::-1])[::-1][1:]
    later[-1] = big
    drop = later < steps
    # the smallest step in any later file, per point
    suffix = big
    later_file: dict[int, int] = {}
    for p in reversed(parts):
        later_file[p[3]] = suffix
        suffix = min(suffix, int(p[0].min()))
    drop |= np.fromiter((later_file[int(f)] for f in fidx), np.int64, n) <= steps
    runmax = np.maximum.accumulate(steps)
    starts = np.nonzero((steps[1:] < steps[:-1]) | ((fidx[1:] != fidx[:-1]) & (steps[1:] <= runmax[:-1])))[0] + 1
    for i in starts:
        note = rewinds.setdefault(files[int(fidx[i])][0].name, [int(steps[i]), int(runmax[i - 1]), 0])
        note[0] = min(note[0], int(steps[i]))
        note[1] = max(note[1], int(runmax[i - 1]))
    if len(starts):
        key = files[int(fidx[starts[0]])][0].name
        rewinds[key][2] += int(drop.sum())
    keep = ~drop
    return Series(steps[keep], vals[keep], wall_time=walls[keep])


def _attach_epochs(run: Run) -> None:
    """Give every series the epoch logged at the same step (HF writes ``train/epoch`` beside each log)."""
    ep = run.history.get(EPOCH)
    if ep is None or not len(ep):
        return
    es = ep.sorted()
    for name, s in list(run.history.items()):
        if name == EPOCH:
            continue
        i = np.clip(np.searchsorted(es.steps, s.steps), 0, len(es) - 1)
        e = np.where(es.steps[i] == s.steps, es.values[i], np.nan)
        run.history.set(name, Series(s.steps, s.values, e, s.wall_time))
