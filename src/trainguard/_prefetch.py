"""Start reading a big HF Trainer log on the other core while the interpreter is still importing.

Why: ``trainguard analyze big.log`` spends its first 0.15-0.25 s importing
numpy, the readers and the diagnosis on one core before the reader sees a
byte, and reading a 200 MB log takes about as long again. ``start`` hands each
big file that looks like HF stdout to ``_speedups.HFPrefetch``, a thread that
holds no GIL and does what :meth:`StreamParser.feed_file` would do to each
chunk. When the reader gets to the file, it :func:`claim` s the thread, stops it and
gives the parser what it read, as records the parser would have built; the
parser goes on from there as if it had read those bytes itself, so the result
is the same with or without it (the tests compare both on every log they have).

This module imports neither numpy nor the readers: it runs before them.
Nothing here is ever needed: without the compiled extension, or with
``TRAINGUARD_NO_PREFETCH=1`` (to rule it out, or to keep ``analyze`` on one
core), the reader reads the whole file itself.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from . import _compiled

# A Trainer dict line (the sniff of hf_stdout, which imports this pattern from here).
SNIFF = re.compile(rb"\{'(?:loss|eval_loss|eval_[\w/]+|train_runtime|learning_rate|grad_norm)': '?[-\d.naif]")
SAVE_HEAD = b"Saving model checkpoint to "  # what the save regex of hf_stdout starts with
# The bytes StreamParser keeps before an unconsumed dict: the thread must keep what the parser keeps
# (which takes it from here). Where the chunks end does not change what is read (the tests cut
# everywhere): the thread reads 256 KB at a time, which stays in the core's L2 cache through the four
# passes over it (a third faster than 4 MB reads, which go to L3 and memory).
CONTEXT = 16
THREAD_CHUNK = 256 << 10
MAX_RUNNING = 2  # logs read ahead at once (``compare`` takes many): each holds up to BUDGET until taken
MIN_BYTES = 4 << 20  # one read: below that the thread would save a few milliseconds at most
# What the thread may hold before it is taken (about 230 MB of a tqdm-heavy log): it stops there, and
# the parser reads the rest itself, so that a 1 GB log peaks no higher than without it.
BUDGET = 16 << 20
_SNIFF_BYTES = 1 << 16

# (device, inode) -> the running prefetch of that file
_running: dict[tuple[int, int], Any] = {}


def start(paths: Iterable[str], *, min_bytes: int | None = None) -> int:
    """Start a prefetch for each of the first paths that is a big regular file with Trainer dict lines near its start.

    Returns how many were started (at most :data:`MAX_RUNNING` run at once).
    Never raises: a file that cannot be opened here is reported by the
    reader itself.
    """
    sp = _compiled.speedups
    cls = getattr(sp, "HFPrefetch", None)
    if cls is None or os.environ.get("TRAINGUARD_NO_PREFETCH", "").strip() not in ("", "0"):
        return 0
    least = MIN_BYTES if min_bytes is None else min_bytes
    started = 0
    for p in paths:
        if p == "-":
            continue
        if len(_running) >= MAX_RUNNING:
            break
        try:  # stat first: opening a FIFO blocks until someone writes to it (and O_NONBLOCK in case it became one)
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode) or st.st_size < least:
                continue
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except (OSError, ValueError):
            continue
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            if not stat.S_ISREG(st.st_mode) or st.st_size < least or key in _running:
                continue
            if not SNIFF.search(os.pread(fd, _SNIFF_BYTES, 0)):
                continue
            _running[key] = cls(fd, THREAD_CHUNK, CONTEXT, SAVE_HEAD, budget=BUDGET)
            started += 1
        except (OSError, RuntimeError, MemoryError):
            continue
        finally:
            os.close(fd)  # the prefetch holds a duplicate
    return started


def claim(f: BinaryIO) -> Any:
    """The prefetch of the file open at ``f``, no longer listed here (its ``take`` stops it); None when there is none.

    Only for a plain file read from its start: a gzip'd or transcoded stream
    has other bytes than the file.
    """
    if not _running or not isinstance(f, io.BufferedReader):  # gzip and transcoded streams are not the file's bytes
        return None
    try:
        if f.tell() != 0:
            return None
        st = os.fstat(f.fileno())
    except (OSError, ValueError):
        return None
    return _running.pop((st.st_dev, st.st_ino), None)


@contextmanager
def ahead(paths: Iterable[str]) -> Iterator[None]:
    """:func:`start` on ``paths`` for the block's reading, and :func:`cancel` whatever it did not take, however it ends."""
    start(paths)
    try:
        yield
    finally:
        cancel()


def cancel() -> None:
    """Stop every prefetch nobody took (the reader was another, or reading failed) and drop its results."""
    while _running:
        _running.popitem()[1].cancel()
