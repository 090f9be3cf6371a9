"""HF Trainer stdout: ``{'loss': ...}`` / ``{'eval_loss': ...}`` dict lines among tqdm noise.

Handles transformers 4.x (numbers) and 5.x (values printed as strings,
``'5.351'``), ``nan``/``inf``, tqdm ``\\r`` redraws with dicts mid-line, DeepSpeed
launcher and torchrun/accelerate ``[rank0]:`` prefixes, ideographic-space
indentation, CRLF, several runs in one file, and the final
``{'train_runtime': ...}`` summary (whose ``train_loss`` is the run *mean*,
never a point). Steps are recovered as ``_hf_steps`` explains.

:class:`StreamParser` is the one parser: ``read`` feeds it the file in large
binary chunks, ``trainguard run``/``watch`` feed it text as it arrives.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .. import _compiled, _prefetch
from .._hf_nan import restore_nans
from .._prefetch import CONTEXT, SAVE_HEAD, SNIFF
from ..errors import InputError, NoMetricsError
from ..run import EPOCH, Run, Series
from . import log_config
from ._hf_scan import (
    KIND_EVAL,
    KIND_IGNORE,
    KIND_OTHER,
    KIND_SUMMARY,
    KIND_TRAIN,
    Found,
    find_bytes,
    found_of,
    parse_bodies,
    scan_found,
    scan_info,
)
from ._hf_steps import Hints, resolve, segments
from ._io import open_binary
from ._names import canonical
from ._stream import Point

NAME = "hf_stdout"
CHUNK = 4 << 20  # read size: per-chunk overhead is already negligible at 4 MB, and memory stays small
_CONTEXT = CONTEXT  # bytes kept before an unconsumed dict (see _hf_scan._echo)
_SLACK = 1 << 16  # room for the carry in the reused read buffer: an unfinished dict and its bar (< 20 KB)
_INFO_HEAD = 8 << 20  # launcher and banner lines are printed before training starts
_SKIP_KEYS = {"epoch", "step", "total_flos", "num_input_tokens_seen"}
_EVAL_META = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss"}
_SAVE = re.compile(re.escape(SAVE_HEAD) + rb"(\S*?checkpoint-(\d+))")  # a save line; no match spans a blank
_SAVE_SPAN = 4096  # longer than any save line: what is kept of one chunk to read a line cut at its end


def sniff(data: bytes, path: Path | None = None) -> float:
    """0.9 with two or more Trainer dict lines in the head, 0.6 with one, else 0."""
    hits = len(SNIFF.findall(data, 0, 1 << 20))
    if hits >= 2:
        return 0.9
    return 0.6 if hits == 1 else 0.0


class StreamParser:
    """Incremental HF stdout parser: ``feed(text)`` returns the points completed so far.

    A dict line is completed once the tqdm bar redrawn after it has arrived (or
    clearly will not); call :meth:`close` at the end. Offline readers use
    :meth:`feed_bytes` and :meth:`runs`, which build columnar Series without
    per-point objects.
    """

    def __init__(self, *, logging_steps: int | None = None, num_train_epochs: float | None = None,
                 max_steps: int | None = None) -> None:
        self.hints = Hints(logging_steps=logging_steps, num_train_epochs=num_train_epochs, max_steps=max_steps)
        self.info: dict[str, object] = {}
        self.skipped = 0
        self._carry = b""
        self._offset = 0  # absolute offset of the carry's first byte
        self._ctx = 0  # bytes at the carry's start that were already scanned
        self._head = bytearray()
        self._keys: dict[str, int] = {}
        self._key_names: list[str] = []
        self._prio = np.empty(0, np.int8)  # per key id: what its presence makes a dict (_prio)
        self._skip = np.empty(0, bool)  # per key id: never a point (_SKIP_KEYS)
        self._cols = {"pos": _Grow(np.int64), "kind": _Grow(np.int8), "epoch": _Grow(np.float64),
                      "bar_n": _Grow(np.int64), "bar_total": _Grow(np.int64)}
        self._pairs = {"rec": _Grow(np.int32), "key": _Grow(np.int32), "value": _Grow(np.float64)}
        self._n = 0
        self._emitted = 0
        self._summaries: dict[int, dict[str, float]] = {}  # record index -> summary values
        self._closed = False
        self._info_len = -1
        self._saves: dict[int, tuple[int, str]] = {}  # step -> (byte offset, path) of "Saving model checkpoint to"
        self._save_tail = b""  # the bytes just before the carry, for a save line a chunk cut (_find_saves)

    # -- feeding -------------------------------------------------------------
    def feed(self, chunk: str) -> list[Point]:
        self.feed_bytes(chunk.encode("utf-8", "surrogateescape"))
        return self._emit()

    def close(self) -> list[Point]:
        self.feed_bytes(b"", final=True)
        return self._emit()

    def feed_bytes(self, data: bytes, *, final: bool = False) -> None:
        if self._closed:
            return
        self._keep_head(data)
        buf = self._carry + data if self._carry else data
        self._scan(buf, len(buf), final)

    def _keep_head(self, data: bytes | memoryview) -> None:
        """The first 8 MB, where the launcher and the Trainer banner print the run's settings."""
        if len(self._head) < _INFO_HEAD:
            self._head += data[: _INFO_HEAD - len(self._head)]

    def _scan(self, buf: bytes | bytearray, n: int, final: bool) -> None:
        """Scan ``buf[:n]``: the carry from the last chunk, then the new bytes (``buf`` may be a reused read buffer)."""
        self._find_saves(buf, n, final)
        sp = _compiled.speedups
        got = None
        if sp is not None and hasattr(sp, "hf_chunk"):  # scan, pairs and records in one C pass
            used, skipped, rows, bodies, got = sp.hf_chunk(buf, self._offset, self._ctx, final, n, self._key_info, _PRIO_KINDS, _PRIO_EPOCH)
            found = None if got is not None else found_of(buf, self._offset, rows, bodies, skipped, n)
        else:
            used, found = scan_found(buf, self._offset, final=final, start=self._ctx, end=n)
            skipped = found.skipped
        keep = max(0, used - _CONTEXT)  # a few bytes of context so the echo check can look back
        if keep >= _SAVE_SPAN:
            self._save_tail = bytes(buf[keep - _SAVE_SPAN : keep])
        elif keep:  # a small chunk: what came before it still counts
            self._save_tail = (self._save_tail + bytes(buf[:keep]))[-_SAVE_SPAN:]
        self._carry = bytes(buf[keep:n])
        self._ctx = used - keep
        self._offset += keep
        self.skipped += skipped
        if got is not None:
            self._ingest_records(got)
        elif found is not None:
            self._ingest(found)
        if final:
            self._closed = True
            if len(self._head) != self._info_len:
                self.info = scan_info(self._head)  # the bytearray itself: no 8 MB copy
                self._info_len = len(self._head)

    def _find_saves(self, buf: bytes | bytearray, n: int, final: bool) -> None:
        """Record the "Saving model checkpoint to .../checkpoint-N" lines of ``buf[:n]``, wherever a chunk cuts them.

        A line cut at the end of the bytes so far (``checkpoint-50|0``) is left
        for the next call: taken then, it would name a checkpoint that does not
        exist. The next call reads it whole, from the carry or from the tail of
        this buffer kept in front of the next one (``_save_tail``).
        """
        tail = self._save_tail
        if tail:  # the lines that begin before this buffer and end in it
            joined = tail + bytes(buf[: min(n, _SAVE_SPAN)])
            t, whole = len(tail), final and n <= _SAVE_SPAN
            if b"checkpoint-" in joined:
                for m in _SAVE.finditer(joined):
                    if m.start() < t < m.end() and (m.end() < len(joined) or whole):
                        self._add_save(m, self._offset - t)
        if find_bytes(buf, b"checkpoint-", 0, n) >= 0:
            for m in _SAVE.finditer(buf, 0, n):
                if m.end() < n or final:
                    self._add_save(m, self._offset)

    def _add_save(self, m: re.Match, base: int) -> None:
        self._saves.setdefault(int(m.group(2)), (base + m.start(), bytes(m.group(1)).decode("utf-8", "replace")))

    def feed_file(self, f: BinaryIO) -> None:
        """Feed a whole binary stream through one reused buffer (file reads straight into it).

        Why not ``feed_bytes(f.read(CHUNK))``: every fresh 4 MB bytes object is
        new memory the kernel must fault in, and prepending the carry copies
        the chunk again; on a 200 MB log those cost about 0.15 s, more than
        the scan itself. Here the carry is moved to the front of the one
        buffer and the next chunk is read in after it.
        """
        buf = bytearray(CHUNK + _SLACK)
        size = _file_size(f)
        if not self._offset and not self._carry and not self._head:
            early = _prefetch.claim(f)  # a thread started before the imports may have read it (``trainguard._prefetch``)
            if early is not None:
                self._go_on_from(early, f)
        while not self._closed:
            c = len(self._carry)
            if c + CHUNK > len(buf):  # a carry bigger than the slack: only a pathological dict gets here
                buf = bytearray(c + CHUNK)
            with memoryview(buf) as mv:
                buf[:c] = self._carry  # the same length: in place, allowed while mv is held
                got = _readinto(f, mv[c : c + CHUNK])
                if not got:
                    break
                self._keep_head(mv[c : c + got])
            self._scan(buf, c + got, False)
            if size and self._n and 0 < self._offset < size:  # after the first chunk: room for the whole file
                self._reserve(size / self._offset)
                size = 0

    def _go_on_from(self, prefetch: object, f: BinaryIO) -> None:
        """Take what ``_speedups.HFPrefetch`` read of ``f`` (see its ``take``), and seek ``f`` to where it stopped.

        The records come built as :meth:`_scan` would have built them; the
        state it leaves (offset, context, carry) is the one :meth:`_scan`
        would have after those chunks. The save lines, the head and the bytes
        just before the carry are read back from the file, which the thread
        does not hand over.
        """
        early = prefetch.take(self._key_info, _PRIO_KINDS, _PRIO_EPOCH)  # type: ignore[attr-defined]
        if early is None:
            return
        got, skipped, saves, offset, ctx, pending, read_to, _why = early
        size = _file_size(f)
        if size < read_to:  # cut short since (a log rewritten in place): what the thread read is not there any more
            return
        if size and offset:  # room for the whole file, as after a first chunk
            self._reserve(size / offset, (len(got[1]), memoryview(got[5]).nbytes // 8))
        self._ingest_records(got)
        fd = f.fileno()
        for at in np.frombuffer(saves, np.int64).tolist():
            if at < offset:  # a later one is in the carry, which the next _scan reads
                line = os.pread(fd, _SAVE_SPAN, at)
                m = _SAVE.match(line)
                if m is not None and m.end() < len(line):
                    self._add_save(m, at)
        self.skipped += skipped
        self._head = _read_head(fd, min(_INFO_HEAD, read_to))
        self._save_tail = os.pread(fd, min(_SAVE_SPAN, offset), offset - min(_SAVE_SPAN, offset))
        self._carry, self._ctx, self._offset = pending, ctx, offset
        f.seek(read_to)

    def _reserve(self, scale: float, counts: tuple[int, int] | None = None) -> None:
        """Size the columns for the whole file from what its first chunk held (or ``counts``: dicts, pairs), a quarter more.

        Why: growing by half copies each column again and again, onto new pages
        (a third of the page faults of reading a 200 MB log). Reserved pages
        that are never written cost nothing; a file denser later on grows as before.
        """
        records, pairs = counts or (self._n, self._pairs["rec"].n)
        for cols, n in ((self._cols, records), (self._pairs, pairs)):
            cap = int(n * scale * 1.25) + 4096
            for g in cols.values():
                g.reserve(cap)

    def _ingest(self, sc: Found) -> None:
        m = len(sc.bodies)
        if not m:
            return
        pairs = parse_bodies(sc.bodies)
        gid = np.array([self._key_id(k) for k in pairs.keys], np.int64)
        key = gid[pairs.key_id] if len(pairs.keys) else pairs.key_id
        names = self._key_names
        # a dict's kind is its strongest key: train_runtime (summary) > eval_* > loss > epoch > none
        prio = np.zeros(m, np.int8)
        kp = self._prio[key]
        np.maximum.at(prio, pairs.dict_idx, kp)
        kind = _KIND_OF_PRIO[prio]
        epoch = np.full(m, np.nan)
        ep = np.flatnonzero(kp == _PRIO_EPOCH)
        epoch[pairs.dict_idx[ep]] = pairs.value[ep]
        keep = kind != KIND_IGNORE
        newidx = np.cumsum(keep) - 1 + self._n
        self._cols["pos"].extend(sc.pos[keep])
        self._cols["kind"].extend(kind[keep])
        self._cols["epoch"].extend(epoch[keep])
        self._cols["bar_n"].extend(sc.bar_n[keep])
        self._cols["bar_total"].extend(sc.bar_total[keep])
        # pairs kept compact (16 bytes each: a 1 GB log has millions): meta keys (epoch, step, flos)
        # never become points, and the epoch already has its own column
        pk = keep[pairs.dict_idx] & ~self._skip[key]
        self._pairs["rec"].extend(newidx[pairs.dict_idx[pk]])
        self._pairs["key"].extend(key[pk])
        self._pairs["value"].extend(pairs.value[pk])
        for i in np.flatnonzero(kind == KIND_SUMMARY).tolist():
            sel = pairs.dict_idx == i
            self._summaries[int(newidx[i])] = {names[g]: float(v) for g, v in zip(key[sel], pairs.value[sel], strict=True)}
        self._n = int(newidx[-1]) + 1

    def _ingest_records(self, got: tuple) -> None:
        """What ``_speedups.hf_chunk`` made of a buffer: :meth:`_ingest`'s records and pairs, already built."""
        pos, kind, epoch, bar_n, bar_total, rec, key, value, summaries = got
        c, p, n = self._cols, self._pairs, self._n
        c["pos"].extend(np.frombuffer(pos, np.int64))
        c["kind"].extend(np.frombuffer(kind, np.int8))
        c["epoch"].extend(np.frombuffer(epoch, np.float64))
        c["bar_n"].extend(np.frombuffer(bar_n, np.int64))
        c["bar_total"].extend(np.frombuffer(bar_total, np.int64))
        r = np.frombuffer(rec, np.int64)
        p["rec"].extend(r + n if n else r)
        p["key"].extend(np.frombuffer(key, np.int64))
        p["value"].extend(np.frombuffer(value, np.float64))
        names = self._key_names
        for i, kv in summaries:
            self._summaries[n + i] = {names[g]: v for g, v in kv}
        self._n = n + len(kind)

    def _key_info(self, name: str) -> tuple[int, int, bool]:
        """A key's id, what its presence makes a dict (``_prio``) and whether it is never a point: for hf_chunk."""
        i = self._key_id(name)
        return i, int(self._prio[i]), bool(self._skip[i])

    def _key_id(self, k: str) -> int:
        i = self._keys.get(k)
        if i is None:
            i = self._keys[k] = len(self._key_names)
            self._key_names.append(k)
            self._prio = np.append(self._prio, np.int8(_prio(k)))
            self._skip = np.append(self._skip, k in _SKIP_KEYS)
        return i

    # -- results ---------------------------------------------------------------
    def _columns(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Views of the records and pairs so far (valid snapshots; later feeding grows new buffers)."""
        return {k: g.view() for k, g in self._cols.items()}, {k: g.view() for k, g in self._pairs.items()}

    def _hints_for(self, lo: int, hi: int) -> Hints:
        """The hints for records ``lo`` to ``hi - 1`` (one run): the banner's plan and that run's summary line."""
        h = Hints(**vars(self.hints))
        if not self._closed and (self._info_len < 0 or len(self._head) - self._info_len >= 65536):
            # live: rescan the (bounded) head only when it grew, so feeding stays O(chunk)
            self.info = scan_info(self._head)  # the bytearray itself: no 8 MB copy
            self._info_len = len(self._head)
        info = self.info
        if h.max_steps is None and isinstance(info.get("tos"), int):
            h.max_steps = int(info["tos"])  # type: ignore[arg-type]
        if h.num_train_epochs is None and isinstance(info.get("ne"), int):
            h.num_train_epochs = float(info["ne"])  # type: ignore[arg-type]
        for i in sorted(i for i in self._summaries if lo <= i < hi):
            s = self._summaries.get(i)
            if s:
                h.runtime = s.get("train_runtime")
                h.steps_per_second = s.get("train_steps_per_second")
                h.final_epoch = s.get("epoch")
        return h

    def _emit(self) -> list[Point]:
        """Points for records completed since the last call (steps as known now)."""
        if self._emitted >= self._n:
            return []
        cols, pairs = self._columns()
        seg = segments(cols["kind"], cols["epoch"])
        bounds = np.searchsorted(seg, np.arange(int(seg[-1]) + 2))  # segments are contiguous: seg never decreases
        k = int(seg[self._emitted])
        first, end = int(bounds[k]), int(bounds[k + 1])
        r = resolve(*_cut(cols, first, end), self._hints_for(first, end))
        steps = np.zeros(self._n, np.int64)
        steps[first:end] = r.steps
        if end < self._n:  # a new run began in this chunk: number it on its own
            a, b = end, int(bounds[k + 2])
            steps[a:b] = resolve(*_cut(cols, a, b), self._hints_for(a, b)).steps
        lo = max(self._emitted, first)
        sel = pairs["rec"] >= lo
        out = []
        names = self._key_names
        kinds, epochs = cols["kind"], cols["epoch"]
        for rec, k, v in zip(pairs["rec"][sel].tolist(), pairs["key"][sel].tolist(), pairs["value"][sel].tolist(), strict=True):
            name = _point_name(names[k], int(kinds[rec]))
            if name is not None:
                e = float(epochs[rec])
                out.append(Point(name, int(steps[rec]), v, None if e != e else e))
        self._emitted = self._n
        return out

    def runs(self, *, name: str, source: str) -> list[Run]:
        """Every run seen (several when one file holds consecutive runs), with steps resolved."""
        if not self._closed:
            self.feed_bytes(b"", final=True)
        cols, pairs = self._columns()
        if not len(cols["kind"]):
            return []
        seg = segments(cols["kind"], cols["epoch"])
        nseg = int(seg[-1]) + 1
        bounds = np.searchsorted(seg, np.arange(nseg + 1))  # segments are contiguous: views, never copies
        del seg
        out: list[Run] = []
        spans: list[tuple[int, int]] = []  # the records each run came from (all-summary segments make no run)
        for s in range(nseg):
            a, b = int(bounds[s]), int(bounds[s + 1])
            if not ((cols["kind"][a:b] != KIND_SUMMARY).any()):
                continue
            h = self._hints_for(a, b)
            r = resolve(*_cut(cols, a, b), h)
            run = Run(name=name if nseg == 1 else f"{name}#{len(out) + 1}", format=NAME, sources=[source])
            self._fill(run, a, b, r.steps, cols, pairs)
            run.planned_steps = r.planned_steps
            run.steps_per_epoch = r.steps_per_epoch
            run.notes.extend(r.notes)
            if r.logging_steps:
                run.config.set("logging_steps", r.logging_steps, "log (inferred)")
            if h.runtime is not None:
                run.train_runtime = h.runtime
                run.finished = True
            else:
                run.finished = False
            out.append(run)
            spans.append((a, b))
        if out:
            self._apply_printed(out, spans, cols["pos"])
            _apply_info(out[0], self.info)
            for run in out[1:]:
                gpus = self.info.get("cuda_visible_devices") or self.info.get("ws")
                if isinstance(gpus, int):
                    run.num_gpus = gpus
            out[-1].skipped_lines += self.skipped
            if nseg > 1:
                for run in out:
                    run.notes.append(f"hf_stdout: {source} holds {len(out)} consecutive runs (split at summary lines / epoch restarts)")
            for run in out:
                restore_nans(run)
        return out

    def _apply_printed(self, runs: list[Run], spans: list[tuple[int, int]], pos: np.ndarray) -> None:
        """Printed settings and checkpoint saves, each given to its own run when a log holds several.

        Settings are printed before a run's first dict line, after the previous
        run's last one; a "Saving model checkpoint" line belongs to the run in
        progress. Settings are looked for in the first 8 MB of the log.
        """
        head = self._head  # sliced below: never a copy of the whole 8 MB
        first = [int(pos[a]) for a, _ in spans]
        last = [int(pos[b - 1]) for _, b in spans]
        for j, run in enumerate(runs):
            lo = 0 if j == 0 else last[j - 1]
            if lo >= len(head):
                break
            facts = log_config.scan(head[lo : first[j] + 65536].decode("utf-8", "replace"), first_line=head.count(b"\n", 0, lo) + 1)
            facts.checkpoints = {}
            facts.apply(run)
        by_run: dict[int, dict[int, str]] = {}
        for step, (off, path) in self._saves.items():
            k = max(0, int(np.searchsorted(first, off, "right")) - 1)
            by_run.setdefault(k, {})[step] = path
        for k, ck in by_run.items():
            log_config.LogFacts(checkpoints=ck).apply(runs[k])

    def _fill(self, run: Run, lo: int, end: int, steps: np.ndarray, cols: dict[str, np.ndarray], pairs: dict[str, np.ndarray]) -> None:
        """The points of records ``lo`` to ``end - 1`` (one run) as Series, built key by key so temporaries stay small.

        Keys logged in the same records (loss, grad_norm, learning_rate) share
        one steps and one epochs array: on a long log that is most of the memory.
        """
        a = np.searchsorted(pairs["rec"], lo, "left")
        b = np.searchsorted(pairs["rec"], end, "left")
        rec = pairs["rec"][a:b]
        key = pairs["key"][a:b]
        val = pairs["value"][a:b]
        step_of = steps
        kind_of = cols["kind"][lo:end]
        ep_of = cols["epoch"][lo:end]
        shared: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # kind -> (records, steps, epochs)

        def columns(kd: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            prev = shared.get(kd)
            if prev is not None and np.array_equal(prev[0], r):
                return prev[1], prev[2]
            st, ep = step_of[r], ep_of[r]
            shared[kd] = (r, st, ep)
            return st, ep

        for k in np.flatnonzero(np.bincount(key, minlength=0)).tolist() if len(key) else []:
            kname = self._key_names[k]
            at = np.flatnonzero(key == k)
            r_k = rec[at] - lo
            kinds = kind_of[r_k]
            for kd in (KIND_TRAIN, KIND_OTHER, KIND_EVAL):
                name = _point_name(kname, kd)
                if name is None:
                    continue
                sel = kinds == kd
                if not sel.any():
                    continue
                r = r_k if sel.all() else r_k[sel]
                st, ep = columns(kd, r)
                v = val[at if sel.all() else at[sel]]
                s = run.history.get(name)
                if s is not None and len(s):
                    ser = Series(np.concatenate([s.steps, st]), np.concatenate([s.values, v]), np.concatenate([s.epochs, ep]))
                else:
                    ser = Series.adopt(st, v, ep)
                run.history.set(name, ser.sorted())
        tr = np.flatnonzero((kind_of == KIND_TRAIN) & np.isfinite(ep_of))
        if len(tr):
            st, ep = columns(KIND_TRAIN, tr)
            run.history.set(EPOCH, Series.adopt(st, ep, ep))


def _file_size(f: BinaryIO) -> int:
    """The size of a plain file behind ``f``; 0 when unknown (gzip and transcoded streams read more than the file holds)."""
    if not isinstance(f, io.BufferedReader):
        return 0
    try:
        return os.fstat(f.fileno()).st_size
    except (OSError, ValueError):
        return 0


def _read_head(fd: int, n: int) -> bytearray:
    """The first ``n`` bytes of the file open at ``fd``, read in place where the system has ``preadv`` (no second 8 MB copy)."""
    if hasattr(os, "preadv"):  # not on every platform Python runs on (macOS before 3.12's builds)
        head = bytearray(n)
        del head[os.preadv(fd, [head], 0) :]
        return head
    return bytearray(os.pread(fd, n, 0))


def _readinto(f: BinaryIO, mv: memoryview) -> int:
    """Fill ``mv`` from ``f`` as far as the stream goes (a gzip stream may return short reads); bytes read."""
    into = getattr(f, "readinto", None)
    got = 0
    while got < len(mv):
        if into is not None:
            k = into(mv[got:])
        else:
            data = f.read(len(mv) - got)
            k = len(data)
            mv[got : got + k] = data
        if not k:
            break
        got += k
    return got


def _cut(cols: dict[str, np.ndarray], a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """kind, epoch, bar_n and bar_total of records ``a`` to ``b - 1``, as views."""
    return cols["kind"][a:b], cols["epoch"][a:b], cols["bar_n"][a:b], cols["bar_total"][a:b]


class _Grow:
    """A growable numpy column: each chunk's points are copied in, the buffer grows by half when full.

    Why not a list of per-chunk arrays joined at the end: a 1 GB log has
    thousands of chunks, whose small arrays live on the C heap; joined at the
    end they double the memory for a moment and leave the heap holding their
    size after they are freed. A buffer that grows geometrically is always
    large enough to be its own mapping, returned to the system when replaced.
    """

    __slots__ = ("buf", "n")

    def __init__(self, dtype: type) -> None:
        self.buf = np.empty(1 << 12, dtype)
        self.n = 0

    def extend(self, a: np.ndarray) -> None:
        m = self.n + len(a)
        if m > len(self.buf):
            new = np.empty(max(m, len(self.buf) * 3 // 2), self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new
        self.buf[self.n : m] = a  # cast to the column's compact type (int8 kinds, int32 pair indices)
        self.n = m

    def reserve(self, cap: int) -> None:
        """Room for ``cap`` items at once: an estimate made early saves the copies of growing (pages never written cost nothing)."""
        if cap > len(self.buf):
            new = np.empty(cap, self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new

    def view(self) -> np.ndarray:
        return self.buf[: self.n]


_PRIO_EPOCH = 1
# prio -> kind: no key that says (ignored), epoch only (other), loss (train), eval_* (eval), train_runtime (summary)
_KIND_OF_PRIO = np.array([KIND_IGNORE, KIND_OTHER, KIND_TRAIN, KIND_EVAL, KIND_SUMMARY], np.int8)
_PRIO_KINDS = _KIND_OF_PRIO.tobytes()  # for hf_chunk: the highest prio (the summary's) is last


def _prio(key: str) -> int:
    """How strongly ``key`` says what its dict is: the strongest key of a dict decides its kind (_KIND_OF_PRIO)."""
    if key == "train_runtime":
        return 4
    if key.startswith("eval_"):
        return 3
    if key == "loss":
        return 2
    if key == "epoch":
        return _PRIO_EPOCH
    return 0


def _point_name(key: str, kind: int) -> str | None:
    """Canonical series name for ``key`` in a dict of ``kind``; None for meta keys."""
    if key in _SKIP_KEYS or kind in (KIND_SUMMARY, KIND_IGNORE):
        return None
    if kind == KIND_EVAL:
        if not key.startswith("eval_") or key in _EVAL_META:
            return None
        return canonical(key)
    if key.startswith("eval_"):
        return None
    return canonical(key)


def _apply_info(run: Run, info: dict[str, object]) -> None:
    """GPU count, planned steps and the launch command from launcher / banner lines."""
    src = "log"
    gpus = None
    for k in ("cuda_visible_devices", "ws", "nlp", "ng"):
        v = info.get(k)
        if isinstance(v, int) and v > 0:
            gpus = v if gpus is None else gpus
    if k := next((k for k in ("ws", "nlp", "ng") if isinstance(info.get(k), int)), None):
        run.config.set("world_size", info[k], src)
    if gpus:
        run.num_gpus = gpus
        run.config.set("world_size", gpus, src)
    if isinstance(info.get("tos"), int) and not run.planned_steps:
        run.planned_steps = int(info["tos"])  # type: ignore[arg-type]
    for key, ck in (("tos", "max_steps"), ("ne", "num_train_epochs"), ("bs", "per_device_train_batch_size"),
                    ("ga", "gradient_accumulation_steps"), ("nx", "train_samples")):
        v = info.get(key)
        if isinstance(v, int):
            run.config.set(ck, v, src)
    cmd = info.get("launch_command")
    if isinstance(cmd, str):
        run.config.set("launch_command", cmd, "log (launch command)")
        if "deepspeed" in cmd.split()[0:1]:
            run.config.set("framework", "deepspeed", "log (launch command)")
        args = info.get("launch_args")
        if isinstance(args, list):
            from ..configs import flags_to_config

            for k, v in flags_to_config(args).items():
                run.config.set(k, v, "log (launch command)")


def read_all(path: str | Path) -> list[Run]:
    """Every run in an HF stdout log (usually one); NoMetricsError when there is no dict line."""
    p = Path(path)
    parser = StreamParser()
    try:
        with open_binary(p) as f:
            parser.feed_file(f)
    except (OSError, EOFError) as e:
        raise InputError(p, f"unreadable ({e})") from None
    runs = parser.runs(name=_run_name(p), source=str(p))
    if not runs:
        extra = f" ({parser.skipped} truncated dict lines)" if parser.skipped else ""
        raise NoMetricsError(p, f"no HF Trainer dict lines ({{'loss': ...}}) found{extra}")
    return runs


def read(path: str | Path) -> Run:
    """The first run of the log (``read_all`` gives each when the file holds several)."""
    runs = read_all(path)
    run = runs[0]
    if len(runs) > 1:
        run.notes.append(f"hf_stdout: {len(runs) - 1} later run(s) in this file are not in this Run; read_runs() returns each")
    return run


def _run_name(p: Path) -> str:
    name = p.name
    for suf in (".gz", ".log", ".out", ".txt"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name or p.name
