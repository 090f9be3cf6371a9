"""W&B run folders: the full history and config from ``run-<id>.wandb``, parsed with wandb's own protobufs.

Offline runs keep their history, summary and config only in this file (there
is no ``wandb-history.jsonl`` offline, and ``files/output.log`` holds just
what the script printed), and wandb 0.31 ships no reader for it. The records
are ``wandb.proto.wandb_internal_pb2.Record`` messages; the framing around
them is LevelDB-log style (checked on files written by wandb 0.31):

- a 7-byte file header: ``:W&B``, magic ``0xBEE1`` (little-endian u16), format version ``0`` (u8);
- then 32 KiB blocks (the header sits in the first); each record fragment starts with a
  ``<IHB`` header: CRC-32 over the type byte and the data, data length, type
  (1 full, 2 first, 3 middle, 4 last); a block tail shorter than 7 bytes is zero padding.

Supported: file format version 0 (``SUPPORTED``), verified on files written by
wandb 0.31; the ``trainguard[wandb]`` extra pins ``wandb<0.32`` until a newer
release is checked. Any other format version is one clear InputError line. A record with a bad CRC or a
torn tail (a run still being written) is a counted skip: the rest is read.

Steps: W&B's own ``_step`` counter, unless the run logs ``train/global_step``
(the HF integration does), which is the optimizer step a user would look for.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from ..errors import InputError, NoMetricsError
from ..run import Run
from ._names import canonical

NAME = "wandb_run"
FORMAT = "wandb"
BINARY = True
SOURCE = "W&B config"
HEADER = b":W&B"
MAGIC = 0xBEE1
VERSION = 0
SUPPORTED = "file format version 0 (written by wandb up to 0.31)"
_BLOCK = 32 * 1024
_REC = struct.Struct("<IHB")
_STEP_KEYS = ("train/global_step", "global_step", "trainer/global_step")


def sniff(data: bytes, path: Path | None = None) -> float:
    """1.0 for a ``.wandb`` file (its header), else 0."""
    return 1.0 if data[:4] == HEADER else 0.0


def run_file(d: Path) -> Path | None:
    """The ``run-<id>.wandb`` of a run folder, if any."""
    hits = sorted(Path(d).glob("run-*.wandb"))
    return hits[-1] if hits else None


def _run_folders(d: Path) -> list[Path]:
    """``d`` itself when it is a run folder, else its run sub-folders (a ``wandb/`` folder)."""
    if run_file(d) is not None:
        return [d]
    try:
        return sorted(p for p in d.iterdir() if p.is_dir() and run_file(p) is not None)
    except OSError:
        return []


def sniff_dir(path: Path) -> float:
    """0.95 for a W&B run folder or a ``wandb/`` folder of them, else 0."""
    return 0.95 if _run_folders(Path(path)) else 0.0


def read_dir(path: Path | str) -> list[Run]:
    """One Run per W&B run folder at or under ``path``."""
    dirs = _run_folders(Path(path))
    if not dirs:
        raise NoMetricsError(path, "no W&B run file (run-<id>.wandb) in this folder")
    runs = []
    for d in dirs:
        f = run_file(d)
        assert f is not None
        run = read(f)
        run.sources.insert(0, str(d))
        runs.append(run)
    return runs


def read(path: Path | str) -> Run:
    """One ``.wandb`` file as a Run: every history row, the config as a config source."""
    from ..configs import config_from_dict

    p = Path(path)
    pb = _proto(p)
    rows: list[tuple[int | None, dict[str, Any]]] = []
    config: dict[str, Any] = {}
    name = run_id = None
    start = None
    bad = 0
    for data in _records(p):
        try:
            rec = pb.Record.FromString(data)
        except Exception:
            bad += 1
            continue
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            items = {}
            for it in rec.history.item:
                key = "/".join(it.nested_key) if it.nested_key else it.key
                items[key] = _json(it.value_json)
            step = rec.history.step.num if rec.history.HasField("step") else None
            rows.append((step, items))
        elif kind == "config":
            _config_items(rec.config.update, config)
        elif kind == "run":
            run_id = rec.run.run_id or run_id
            name = rec.run.display_name or name
            if rec.run.HasField("start_time"):
                start = rec.run.start_time.seconds + rec.run.start_time.nanos / 1e9
            _config_items(rec.run.config.update, config)
    run = Run(name=name or (run_id and f"run-{run_id}") or p.stem, format=FORMAT, sources=[str(p)])
    run.skipped_lines = bad
    _history(run, rows)
    if not any(len(s) for s in run.history.values()):
        raise NoMetricsError(p, f"W&B run file holds no numeric history ({len(rows)} rows)")
    cfg = {k: v for k, v in config.items() if not k.startswith("_") and not isinstance(v, (dict, list))}
    if cfg:
        run.config.merge(config_from_dict(cfg, SOURCE))
    if start:
        run.start_time = start
    run.notes.append(f"read from a W&B run file ({len(rows)} history rows{f', {bad} damaged records skipped' if bad else ''})")
    return run


def _history(run: Run, rows: list[tuple[int | None, dict[str, Any]]]) -> None:
    use_global = any(k in items for _, items in rows for k in _STEP_KEYS)
    last_step = -1
    walls = []
    for i, (wstep, items) in enumerate(rows):
        step: Any = None
        if use_global:
            step = next((items[k] for k in _STEP_KEYS if _is_num(items.get(k))), None)
        if step is None:
            step = wstep if wstep is not None else items.get("_step", i)
        try:
            step = int(step)
        except (TypeError, ValueError, OverflowError):
            step = last_step + 1
        last_step = step
        wall = items.get("_timestamp")
        wall = float(wall) if _is_num(wall) else None
        if wall is not None:
            walls.append(wall)
        epoch = items.get("train/epoch", items.get("epoch"))
        epoch = float(epoch) if _is_num(epoch) else None
        for key, v in items.items():
            if key.startswith("_") or key in _STEP_KEYS or not _is_num(v):
                continue
            run.history.add(canonical(key), step, float(v), epoch, wall)
    if len(walls) >= 2:
        run.end_time = max(walls)
        run.start_time = min(walls)


def _config_items(updates: Any, out: dict[str, Any]) -> None:
    for it in updates:
        key = "/".join(it.nested_key) if it.nested_key else it.key
        v = _json(it.value_json)
        if isinstance(v, dict) and set(v) <= {"value", "desc"} and "value" in v:
            v = v["value"]  # the config.yaml shape: {value: ..., desc: ...}
        out[key] = v


def _records(p: Path) -> Any:
    """Yield each record's bytes, joining fragments; checks the header and each CRC."""
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read ({e.strerror})") from None
    if len(data) < 7 or data[:4] != HEADER:
        raise InputError(p, "not a W&B run file (no :W&B header)")
    magic, version = struct.unpack("<HB", data[4:7])
    if magic != MAGIC or version != VERSION:
        raise InputError(p, f"unknown W&B file format (magic {magic:#x}, version {version}); trainguard reads {SUPPORTED}")
    pos, n = 7, len(data)
    frag = b""
    while pos + _REC.size <= n:
        left = _BLOCK - pos % _BLOCK
        if left < _REC.size:
            pos += left
            continue
        crc, length, kind = _REC.unpack_from(data, pos)
        if kind == 0 and length == 0:  # zero padding (a preallocated or torn tail)
            pos += left
            continue
        body = data[pos + _REC.size: pos + _REC.size + length]
        pos += _REC.size + length
        if len(body) < length or zlib.crc32(body, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            frag = b""
            continue  # torn or damaged: skip it, keep reading
        if kind == 1:
            yield body
        elif kind == 2:
            frag = body
        elif kind == 3:
            frag += body
        elif kind == 4:
            yield frag + body
            frag = b""


def _proto(p: Path) -> Any:
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError:
        raise InputError(p, "reading W&B run files needs the wandb package: pip install 'trainguard[wandb]'") from None
    return wandb_internal_pb2


def _json(s: str) -> Any:
    try:
        return json.loads(s)
    except ValueError:
        return s


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


__all__ = ["FORMAT", "NAME", "SUPPORTED", "read", "read_dir", "sniff", "sniff_dir"]
