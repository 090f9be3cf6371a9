"""Raw log text in, Guard actions out: the glue shared by ``trainguard run`` and ``trainguard watch``.

A :class:`LineFeed` takes text exactly as a training process wrote it (any
chunking, tqdm ``\\r`` redraws, ANSI cursor moves) and

1. **picks the reader by sniffing** the first bytes with the readers' own
   ``sniff`` (``readers.hf_stdout``, ``readers.text``): it buffers until one
   is confident (>= 0.5) or ``sniff_bytes`` have arrived, then replays the
   buffer into that reader's incremental ``StreamParser``, so the live parse
   is exactly the offline one. A reader module that is missing is skipped;
   with none at all a small built-in parser of HF dict lines keeps the guard
   working (and says so once);
2. **groups the points** of one logged step into one ``guard.log`` call (a HF
   dict line is one call, not four), and drops the final ``train_runtime``
   summary's ``train_loss``, which is the run's *average* loss and would look
   like a jump;
3. **follows the training progress bar** (``n/total [``): the bar with the
   largest total is the training bar (eval bars count eval batches), which
   gives the planned steps and, through :class:`ResourceMonitor`, the step
   time from the wall clock of each redraw;
4. **notices the end of training**: a ``train_runtime`` summary or a
   user-given end marker;
5. **bounds what it holds**: text with no line end (``/dev/zero``, a binary
   blob) is kept up to ``MAX_LINE`` characters; past that the rest of the
   line is skipped (counted in ``skipped_chars``) and parsing resumes at the
   next line end, so memory stays bounded whatever arrives.
"""

from __future__ import annotations

import ast
import importlib
import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..readers._names import canonical
from ..readers._stream import Point
from .resources import ResourceMonitor

log = logging.getLogger(__name__)

READERS = ("hf_stdout", "text")  # candidate line readers, in preference order on a tie
MAX_LINE = 1 << 20  # characters of one unfinished line held for the parser (a metric line is < 1 KB)
SNIFF_CONFIDENT = 0.5
_BAR_TAIL = re.compile(r"/(\d+) \[")
_DICT_SEG = re.compile(r"\{'[^\r\n]*\}(?=[ \t]*[\r\n])")
_DICT_LINE = re.compile(r"\{'[a-z_/]+': [^\n\r]*\}\s*[\r\n]")
_END = re.compile(r"['\"]train_runtime['\"]\s*:")
_ARGS = {"train_loss": "train_loss", "eval_loss": "eval_loss", "learning_rate": "lr",
         "grad_norm": "grad_norm", "epoch": "epoch"}


class _Progress:
    """The training progress bar's position, from tqdm redraws (``  12%|█▏   | 96/800 [00:03<...``)."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.n: int | None = None

    def scan(self, text: str) -> int | None:
        r"""Update from text holding any number of redraws; returns the training bar's last new position.

        The regex anchors on ``/TOTAL [`` and the digits before the slash
        are read by hand: a pattern that starts with ``\d+`` is retried at
        every digit of the log and runs ~60x slower on number-heavy output.
        """
        moved = None
        for m in _BAR_TAIL.finditer(text):
            i = j = m.start()
            while j > 0 and text[j - 1].isdigit():
                j -= 1
            if j == i or (j > 0 and text[j - 1] in "/."):
                continue
            n, total = int(text[j:i]), int(m.group(1))
            if total <= 0 or n > total:
                continue
            if self.total is None or total > self.total:
                self.total, self.n = total, None
            if total == self.total and n != self.n:
                self.n = moved = n
        return moved


class _HFDictLines:
    """Built-in fallback parser: HF ``{'loss': ...}`` dict lines, the step taken from the training bar.

    Only used when no reader module is importable; the real reader
    (``readers/hf_stdout.py``) also knows DeepSpeed, accelerate and torchrun
    prefixes and older transformers' ``'step'`` keys.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._bar = _Progress()

    def feed(self, chunk: str) -> list[Point]:
        self._buf += chunk
        cut = max(self._buf.rfind("\r"), self._buf.rfind("\n")) + 1
        done, self._buf = self._buf[:cut], self._buf[cut:]
        return self._lines(done)

    def close(self) -> list[Point]:
        done, self._buf = self._buf + "\n", ""
        return self._lines(done)

    def _lines(self, text: str) -> list[Point]:
        out: list[Point] = []
        pos = 0
        for m in _DICT_SEG.finditer(text):  # the bar moves between dict lines: scan it in order
            self._bar.scan(text[pos:m.start()])
            pos = m.end()
            out += self._segment(m.group(0))
        self._bar.scan(text[pos:])
        return out

    def _segment(self, seg: str) -> list[Point]:
        i = seg.find("{'")
        if i < 0 or not seg.rstrip().endswith("}"):
            return []
        try:
            d = ast.literal_eval(seg[i:].strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return []
        if not isinstance(d, dict):
            return []
        step = d.get("step", self._bar.n if self._bar.n is not None else 0)
        out = []
        epoch = _float(d.get("epoch"))
        for k, v in d.items():
            x = _float(v)
            if x is None or k in ("step", "epoch"):
                continue
            out.append(Point(canonical(str(k)), int(step), x, epoch))
        if epoch is not None:
            out.append(Point("epoch", int(step), epoch, epoch))
        return out


def _float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


_BROKEN: set[str] = set()


def available_readers() -> dict[str, ModuleType]:
    """The importable line readers (name -> module), each with ``sniff`` and ``StreamParser``."""
    out: dict[str, ModuleType] = {}
    for name in READERS:
        try:
            mod = importlib.import_module(f"trainguard.readers.{name}")
        except ImportError:
            continue
        except Exception as e:  # a broken reader must not take the guard down with it
            if name not in _BROKEN:
                _BROKEN.add(name)
                log.warning("trainguard: log reader %s failed to load (%s: %s); skipping it", name, type(e).__name__, e)
            continue
        if hasattr(mod, "StreamParser") and hasattr(mod, "sniff"):
            out[name] = mod
    return out


class LineFeed:
    """Parses live text into points and feeds them to ``guard``; returns the actions it gave.

    ``fmt`` forces a reader (``hf_stdout``, ``text``); ``end_marker`` is a
    regex that also ends the run (besides HF's ``train_runtime`` summary).
    ``on_action`` is called with each action that is not a plain continue.
    """

    def __init__(self, guard: Any, *, monitor: ResourceMonitor | None = None, fmt: str | None = None,
                 end_marker: str | None = None, sniff_bytes: int = 65536,
                 on_action: Callable[[Any], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.guard = guard
        self.monitor = monitor
        self.fmt = fmt
        self.end_marker = re.compile(end_marker, re.MULTILINE) if end_marker else None
        self.sniff_bytes = sniff_bytes
        self.on_action = on_action
        self.clock = clock
        self.parser_name: str | None = None
        self.ended = False
        self.points = 0
        self.last_step: int | None = None
        self.actions: list[Any] = []
        self._parser: Any = None
        self._head: list[str] = []
        self._head_len = 0
        self._bar = _Progress()
        self._seg_tail = ""
        self._open_line = 0  # characters since the last line end
        self._skipping = False
        self.skipped_chars = 0

    # -- input ------------------------------------------------------------
    def feed(self, text: str) -> list[Any]:
        """Take any piece of text; returns the non-continue actions it caused."""
        if not text:
            return []
        text = self._bound(text)
        if not text:
            return []
        self._scan(text)
        if self._parser is None:
            self._head.append(text)
            self._head_len += len(text)
            if not self._decide(final=False):
                return []
            text, self._head = "".join(self._head), []
        return self._apply(self._parser.feed(text))

    def _bound(self, text: str) -> str:
        """Drop the part of an over-long unfinished line (see ``MAX_LINE``); returns what may be parsed."""
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut < 0:
            if self._skipping or self._open_line + len(text) > MAX_LINE:
                self._skipping = True
                self.skipped_chars += len(text)
                return ""
            self._open_line += len(text)
            return text
        if self._skipping:
            first = min(i for i in (text.find("\n"), text.find("\r")) if i >= 0)
            self.skipped_chars += first
            self._skipping = False
            text = "\n" + text[first + 1:]  # end the parser's partial line, resume after the long one
        self._open_line = len(text) - cut - 1
        return text

    def close(self) -> list[Any]:
        """Flush a partial last line (end of stream)."""
        self._scan("\n")
        if self._parser is None:
            self._decide(final=True)
            text, self._head = "".join(self._head), []
            pts = self._parser.feed(text) if text else []
            return self._apply(pts + self._parser.close())
        return self._apply(self._parser.close())

    def restart_line(self) -> None:
        """End a partial line without ending the stream (the file was truncated or rotated)."""
        self.feed("\n")

    # -- reader choice ------------------------------------------------------
    def _decide(self, *, final: bool) -> bool:
        mods = available_readers()
        if self.fmt is not None:
            if self.fmt not in mods:
                from ..errors import GuardError

                known = ", ".join(sorted(mods)) or "none installed"
                raise GuardError(f"unknown live format {self.fmt!r}; known: {known}")
            return self._use(self.fmt, mods[self.fmt].StreamParser())
        if not mods:
            log.warning("trainguard: no log reader module is installed; using the built-in HF dict-line parser")
            return self._use("hf_dict_lines", _HFDictLines())
        text = "".join(self._head)
        scored = sorted(((_sniff(m, text.encode("utf-8", "replace")), -i, n) for i, (n, m) in enumerate(mods.items())),
                        reverse=True)
        if scored[0][0] >= SNIFF_CONFIDENT:
            return self._use(scored[0][2], mods[scored[0][2]].StreamParser())
        # Undecided: wait for more text, unless the stream ended, the head is long, or a metric dict
        # line already arrived (waiting longer would only delay the guard).
        if not final and self._head_len < self.sniff_bytes and not _DICT_LINE.search(text):
            return False
        if scored[0][0] > 0:
            return self._use(scored[0][2], mods[scored[0][2]].StreamParser())
        return self._use("hf_dict_lines", _HFDictLines())

    def _use(self, name: str, parser: Any) -> bool:
        self.parser_name, self._parser = name, parser
        return True

    # -- side channels: progress bar and end of run --------------------------
    def _scan(self, text: str) -> None:
        """Progress bar and end marker, over whole chunks: one C-level regex pass, not a Python loop per line."""
        text = self._seg_tail + text
        cut = max(text.rfind("\r"), text.rfind("\n")) + 1
        done, self._seg_tail = text[:cut], text[cut:]
        if len(self._seg_tail) > 4096:  # a line with no end in sight: keep the recent part only
            self._seg_tail = self._seg_tail[-1024:]
        if not done:
            return
        n = self._bar.scan(done)
        if n is not None:
            self._on_bar(n)
        if ("train_runtime" in done and _END.search(done)) or (
                self.end_marker is not None and self.end_marker.search(done)):
            self.ended = True

    def _on_bar(self, n: int) -> None:
        run = getattr(self.guard, "run", None)
        if run is not None and self._bar.total and (run.planned_steps or 0) < self._bar.total:
            run.planned_steps = self._bar.total
            if hasattr(self.guard, "set_plan"):  # the minimum-progress condition of the stop rule
                self.guard.set_plan(self._bar.total)
        if self.monitor is not None:
            self.monitor.on_step(n, now=self.clock())

    @property
    def progress(self) -> tuple[int | None, int | None]:
        """(step, planned steps) of the training progress bar, when one was seen."""
        return self._bar.n, self._bar.total

    # -- points -> guard.log ---------------------------------------------------
    def _apply(self, points: list[Point]) -> list[Any]:
        out: list[Any] = []
        for step, metrics in _group(points):
            if "train_runtime" in metrics:
                self.ended = True
                metrics.pop("train_loss", None)  # the run's average loss, not a point of the curve
                run = getattr(self.guard, "run", None)
                if run is not None and run.train_runtime is None:
                    run.train_runtime = metrics["train_runtime"]
                continue
            kwargs: dict[str, Any] = {}
            for name, v in metrics.items():
                kwargs[_ARGS.get(name, name)] = v
            self.points += 1
            self.last_step = step
            action = self.guard.log(step, **kwargs)
            if action.stop or action.save or action.alert:
                out.append(action)
                self.actions.append(action)
                if self.on_action is not None:
                    self.on_action(action)
        return out


def _group(points: list[Point]) -> list[tuple[int, dict[str, float]]]:
    """Consecutive points of one step, as (step, {name: value}); a repeated name starts a new group."""
    groups: list[tuple[int, dict[str, float]]] = []
    for p in points:
        v = float(p.value)
        if groups and groups[-1][0] == p.step and (p.name not in groups[-1][1] or p.name == "epoch"):
            groups[-1][1][p.name] = v
        else:
            groups.append((int(p.step), {p.name: v}))
        if p.epoch is not None and "epoch" not in groups[-1][1] and math.isfinite(p.epoch):
            groups[-1][1]["epoch"] = float(p.epoch)
    return groups


def _sniff(mod: ModuleType, head: bytes) -> float:
    try:
        return float(mod.sniff(head, Path("<stream>")))
    except Exception:  # a reader's sniff must not take the guard down
        return 0.0


__all__ = ["READERS", "LineFeed", "available_readers"]
