"""Control characters from input never reach an output raw.

A log, a folder name, a metric key or a config value can carry terminal escape
sequences: a colour code, an unterminated OSC 0 that rewrites the window title,
an OSC 8 hyperlink to any URL. Printed raw, they let a file someone sent you
drive your terminal. Everything that came from input is passed through
:func:`clean` before it is printed, written to Markdown or put in an error
line; rich output is wrapped in :class:`Sanitized`, which cleans every text
segment after layout (rich's own styling codes are added later, so they
survive). JSON escapes control characters itself; HTML is escaped.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls except tab and newline, DEL, C1 controls (CSI 0x9b, OSC 0x9d ...), and the
# bidirectional overrides that make text display in another order than it reads.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_NO_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    """``\\x1b`` as the four characters a person can read (and nothing a terminal obeys)."""
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean(s: object, *, newlines: bool = True) -> str:
    """``s`` as text with every control character shown as ``\\xNN``.

    Tab and (unless ``newlines=False``) newline are kept: they lay out text but
    cannot start an escape sequence.
    """
    text = s if isinstance(s, str) else str(s)
    pat = _CONTROL if newlines else _CONTROL_NO_NEWLINE
    return pat.sub(_visible, text) if pat.search(text) else text


class Sanitized:
    """A rich renderable that prints ``inner`` with control characters in its text made visible.

    Cleaning happens on the rendered segments, so it covers every cell, title
    and footnote of ``inner`` whichever renderer built it; segments rich marks
    as control (cursor moves it emits itself) pass through.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        for seg in console.render(self.inner, options):
            if seg.control or not _CONTROL_NO_NEWLINE.search(seg.text.replace("\n", "")):
                yield seg
            else:
                yield Segment(clean(seg.text), seg.style, seg.control)


__all__ = ["Sanitized", "clean"]
