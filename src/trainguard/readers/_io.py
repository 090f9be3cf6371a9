"""Opening inputs: files, ``.gz``, ``-`` for stdin; and the checks that turn bad input into one line.

Readers never open paths themselves: they call :func:`open_binary` so that a
gzip'd or UTF-16 log reads like any UTF-8 file, and :func:`head` for sniffing.
Only regular files are opened: a FIFO or a device (``/dev/zero``) would block
or never end, and every reader opens its input more than once (sniff, then
read), which drains a FIFO. Streams come in through stdin (``-``), which is
spooled once, with a cap, to a temp file that is always removed.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

HEAD_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# stdin is spooled to disk so it can be sniffed and then read; past this it is refused
# (TRAINGUARD_STDIN_MAX_MB raises it). 2 GiB holds tens of millions of log lines.
STDIN_MAX_BYTES = 2 * 1024**3
# json.loads recurses once per nesting level; a log or config is never this deep.
MAX_JSON_DEPTH = 200


def check_regular(path: str | Path) -> None:
    """InputError unless ``path`` is a regular file (a FIFO, socket or device would block or never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(path, "no such file or folder") from None
    except OSError as e:
        raise InputError(path, f"cannot open ({e.strerror or e})") from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise InputError(path, "is a folder; expected a file")
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode))
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise InputError(path, f"{kind}, not a log file; to read a stream, pipe it in: trainguard analyze - < STREAM")


def is_gzip(path: Path) -> bool:
    try:
        check_regular(path)
        with open(path, "rb") as f:
            return f.read(2) == _GZIP_MAGIC
    except (OSError, InputError):
        return False


# -- text encodings ------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# codec, code unit width, offsets that are NUL for ASCII-range text, offset of the character byte
_PATTERNS: tuple[tuple[str, int, tuple[int, ...], int], ...] = (
    ("utf-32-le", 4, (1, 2, 3), 0),
    ("utf-32-be", 4, (0, 1, 2), 3),
    ("utf-16-le", 2, (1,), 0),
    ("utf-16-be", 2, (0,), 1),
)


def wide_encoding(data: bytes) -> tuple[str, int] | None:
    """``(codec, bom_length)`` when ``data`` is UTF-16/32 text, from its BOM or its byte pattern; else None.

    Without a BOM, ASCII-range text in UTF-16LE has a NUL at every odd offset
    (``l\\0o\\0s\\0s\\0``), UTF-16BE at every even one, UTF-32 three NULs in four.
    The pattern must hold for nearly every code unit of the sample and the
    sample must decode, so a binary file with scattered NULs (TensorBoard,
    pickle, /dev/zero) is never mistaken for text.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    sample = data[:4096]
    if b"\x00" not in sample:
        return None  # ASCII-range UTF-16/32 always has NULs; plain text skips the per-unit count (ms per call)
    for codec, width, zero_at, char_at in _PATTERNS:
        units = len(sample) // width
        if units < 4:
            continue
        zeros = sum(all(sample[i * width + z] == 0 for z in zero_at) for i in range(units))
        chars = sum(sample[i * width + char_at] != 0 for i in range(units))
        if zeros >= units * 0.95 and chars >= units * 0.95:
            try:
                sample[: units * width].decode(codec)
            except UnicodeDecodeError:
                continue
            return codec, 0
    return None


def _transcoded(f: BinaryIO, codec: str, skip: int, path: str | Path) -> BinaryIO:
    """The UTF-8 bytes of a UTF-16/32 stream (readers scan UTF-8 bytes), decoded in 1 MiB chunks."""
    f.read(skip)
    dec = codecs.getincrementaldecoder(codec)(errors="replace")
    out = io.BytesIO()
    while chunk := f.read(1 << 20):
        out.write(dec.decode(chunk).encode("utf-8"))
    out.write(dec.decode(b"", final=True).encode("utf-8"))
    f.close()
    out.seek(0)
    out.name = str(path)  # type: ignore[attr-defined]
    return out


def open_binary(path: str | Path) -> BinaryIO:
    """A binary stream of UTF-8 (or binary) bytes over ``path``: gunzipped, UTF-16/32 transcoded.

    Raises InputError, never OSError; refuses FIFOs and devices (see :func:`check_regular`).
    """
    p = Path(path)
    check_regular(p)
    try:
        f: BinaryIO = gzip.open(p, "rb") if is_gzip(p) else open(p, "rb")  # type: ignore[assignment]  # noqa: SIM115 (returned open)
    except OSError as e:
        raise InputError(p, f"cannot open ({e.strerror or e})") from None
    try:
        start = f.read(4096)
        f.seek(0)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        f.close()
        raise InputError(p, f"unreadable or corrupt gzip ({e})") from None
    wide = wide_encoding(start)
    if wide is not None:
        return _transcoded(f, wide[0], wide[1], p)
    return f


def head(path: str | Path, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` (decompressed, UTF-8) bytes of ``path``; a corrupt gzip is an InputError."""
    try:
        with open_binary(path) as f:
            return f.read(n)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(path, f"unreadable or corrupt gzip ({e})") from None


def _stdin_cap() -> int:
    raw = os.environ.get("TRAINGUARD_STDIN_MAX_MB", "")
    try:
        return int(float(raw) * 1024 * 1024) if raw.strip() else STDIN_MAX_BYTES
    except ValueError:
        return STDIN_MAX_BYTES


def spool_stdin() -> Path:
    """Copy standard input to a temp file so it can be sniffed and then read (``-`` as a path).

    The copy stops with an InputError past ``TRAINGUARD_STDIN_MAX_MB`` (2 GiB by
    default), and at once when the first block is binary and no reader of a
    binary format claims it (``/dev/zero`` as stdin). The temp file is removed
    here on any failure, Ctrl-C included; the caller removes it after reading
    (the CLI turns SIGTERM into the same clean exit).
    """
    import tempfile  # here, not at the top: only reading stdin needs it (2.6 ms of every start)

    cap = _stdin_cap()
    fd, name = tempfile.mkstemp(prefix="trainguard-stdin-", suffix=".log")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            src = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else io.BytesIO(sys.stdin.read().encode())
            total = 0
            first = True
            while chunk := src.read(1 << 20):
                if first:
                    first = False
                    _refuse_binary_stdin(chunk)
                total += len(chunk)
                if total > cap:
                    raise InputError("stdin", f"more than {cap / 2**20:.0f} MiB on stdin; save it to a file and analyze "
                                     "the file, or raise TRAINGUARD_STDIN_MAX_MB")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _refuse_binary_stdin(chunk: bytes) -> None:
    if chunk.startswith(_GZIP_MAGIC) or not looks_binary(chunk) or wide_encoding(chunk) is not None:
        return
    from . import _binary_ok  # the registry in readers/__init__

    if not _binary_ok(Path("stdin"), chunk):
        raise InputError("stdin", "binary data, not a text log")


def looks_binary(data: bytes) -> bool:
    """True when ``data`` is not text: NUL bytes, or mostly control bytes outside tab/CR/LF/ESC.

    UTF-16/32 text (by BOM or byte pattern) is text: :func:`open_binary` transcodes it.
    """
    if not data:
        return False
    if wide_encoding(data) is not None:
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


def loads_json(text: str, path: str | Path) -> object:
    """``json.loads`` whose failures are one InputError line naming ``path``.

    Malformed or truncated JSON says where; nesting past Python's recursion
    limit says "too deeply nested"; an integer with thousands of digits says
    which number is out of range (Python refuses to convert it).
    """
    import json

    try:
        return json.loads(text, parse_int=lambda s: checked_int(s, text, path))
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); truncated?") from None
    except RecursionError:
        raise InputError(path, "JSON too deeply nested (thousands of levels of [ or {); not a log or config") from None
    except ValueError as e:  # int('9' * 5000): Python's integer-string conversion limit
        raise InputError(path, f"a number out of range ({str(e).split(';')[0]})") from None


MAX_INT_DIGITS = 40  # a step, a count or a seed: 40 digits is already far past any real one


def checked_int(s: str, text: str, path: str | Path) -> int:
    """``int(s)`` for ``json.loads(parse_int=...)``; an absurdly long integer is an InputError saying which and where.

    Python refuses integers past 4,300 digits with a ValueError that names no
    file; anything past :data:`MAX_INT_DIGITS` is no real step or count anyway.
    """
    digits = len(s.lstrip("-"))
    if digits <= MAX_INT_DIGITS:
        return int(s)
    line = text.count("\n", 0, max(text.find(s), 0)) + 1
    raise InputError(path, f"line {line}: the number {s[:12]}… ({digits:,} digits) is out of range")


def read_json(path: str | Path) -> object:
    """The parsed JSON document at ``path``; a malformed, truncated or absurd one is one InputError line."""
    return loads_json(read_text(path), path)
