"""Opening inputs: files, ``.gz``, ``-`` for stdin; and the checks that turn bad input into one line.

Readers never open paths themselves: they call :func:`open_binary` so that a
gzip'd log or a pipe reads like any file, and :func:`head` for sniffing.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

HEAD_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == _GZIP_MAGIC
    except OSError:
        return False


def open_binary(path: str | Path) -> BinaryIO:
    """A binary stream over ``path``, transparently gunzipped. Raises InputError, never OSError."""
    p = Path(path)
    try:
        if is_gzip(p):
            return gzip.open(p, "rb")  # type: ignore[return-value]
        return open(p, "rb")
    except OSError as e:
        raise InputError(p, f"cannot open ({e.strerror or e})") from None


def head(path: str | Path, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` (decompressed) bytes of ``path``; a corrupt gzip is an InputError."""
    try:
        with open_binary(path) as f:
            return f.read(n)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(path, f"unreadable or corrupt gzip ({e})") from None


def spool_stdin() -> Path:
    """Copy standard input to a temp file so it can be sniffed and then read (``-`` as a path)."""
    fd, name = tempfile.mkstemp(prefix="trainguard-stdin-", suffix=".log")
    with os.fdopen(fd, "wb") as out:
        src = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else io.BytesIO(sys.stdin.read().encode())
        shutil.copyfileobj(src, out, 1 << 20)
    return Path(name)


def looks_binary(data: bytes) -> bool:
    """True when ``data`` is not text: NUL bytes, or mostly control bytes outside tab/CR/LF/ESC."""
    if not data:
        return False
    if b"\x00" in data:
        return True
    sample = data[:8192]
    ctrl = sum(1 for b in sample if b < 32 and b not in (9, 10, 13, 27, 12, 8))
    return ctrl > len(sample) * 0.05


def decode(data: bytes) -> str:
    """Bytes to text: UTF-8, with undecodable bytes replaced (a log with stray Latin-1 still reads)."""
    return data.decode("utf-8", errors="replace")


def read_text(path: str | Path) -> str:
    """The whole (decompressed) file as text, undecodable bytes replaced.

    The line and table readers parse whole files: their hot loops work on one
    string, and a log that fits a run's points fits memory.
    """
    with open_binary(path) as f:
        return decode(f.read())


def read_json(path: str | Path) -> object:
    """The parsed JSON document at ``path``; a malformed or truncated one is one InputError line."""
    import json

    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); truncated?") from None
