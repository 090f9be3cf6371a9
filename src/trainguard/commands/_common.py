"""What every command shares: one-line errors on stderr, exit codes, the stderr console."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from .._sanitize import clean
from ..errors import TrainguardError, by_interrupt

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2


class _StderrConsole:
    """rich's stderr Console, built on first use: importing rich costs ~40 ms a start, and ``analyze --json`` on a clean run never prints to stderr."""

    _console: Any = None

    @property
    def is_terminal(self) -> bool:
        """Whether stderr is a terminal, without building the console when it plainly is not (a pipe, a file, CI).

        rich is asked only when stderr is a TTY or an environment variable can
        make rich call it one: otherwise ``analyze --json`` of a big log, which
        asks before it shows a spinner, would import rich for nothing.
        """
        if _StderrConsole._console is None and not _may_be_terminal():
            return False
        return bool(self.__getattr__("is_terminal"))

    def __getattr__(self, name: str) -> Any:
        if _StderrConsole._console is None:
            from rich.console import Console

            _StderrConsole._console = Console(stderr=True, highlight=False)
        return getattr(_StderrConsole._console, name)


_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def load_numpy() -> None:
    """Import numpy with OpenBLAS's thread pool at one thread, then put the environment back as it was.

    Why: OpenBLAS starts a thread per core when numpy loads, 15 ms of start-up
    on an idle two-core machine and 70 ms when the other core is busy (a shared
    GPU box), and an analysis never does linear algebra big enough to use
    them. A thread count the user set is kept; child processes see the
    environment unchanged. Call it before anything imports numpy.
    """
    if "numpy" in sys.modules or any(k in os.environ for k in _BLAS_THREADS):
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401  # loads OpenBLAS, which reads the variable once, now
    finally:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)


def _may_be_terminal() -> bool:
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError, OSError):  # a closed or replaced stderr
        pass
    return any(k in os.environ for k in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JPY_PARENT_PID", "VSCODE_PID"))


# Report on stdout, everything else (progress, errors) on stderr, so --json pipes cleanly.
err_console: Any = _StderrConsole()


def _wide_help() -> None:
    """Render piped ``--help`` at least 120 columns wide when no width is set.

    typer's rich help truncates a long default (``[default: ~/.config/trainguard/notify.yam…]``)
    to fit 80 columns, which is also what it assumes when output is piped. A
    ``TERMINAL_WIDTH`` the user set still wins.
    """
    import shutil

    import typer.rich_utils as ru

    if ru.MAX_WIDTH is None and not sys.stdout.isatty():  # a real terminal keeps its own width
        ru.MAX_WIDTH = max(120, shutil.get_terminal_size((120, 24)).columns)


if "--help" in sys.argv:  # typer.rich_utils costs ~0.3 s to import: only when help is asked for
    _wide_help()


def debug_enabled() -> bool:
    return os.environ.get("TRAINGUARD_DEBUG", "") not in ("", "0")


def guarded(fn: F) -> F:
    """Turn a TrainguardError into ``error: <message>`` on one stderr line and exit 2.

    Set ``TRAINGUARD_DEBUG=1`` (or pass ``--debug`` where a command offers it)
    to keep the traceback. Unexpected exceptions (bugs) are also reduced to
    one line, with a hint to re-run with debug on.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except TrainguardError as e:
            if debug_enabled():
                _debug_exit()
            _one_line(f"error: {e}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Terminated:
            _one_line("terminated")
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            _one_line("interrupted")
            raise typer.Exit(130) from None
        except OSError as e:  # permission denied on an input, a config or an output target
            if debug_enabled():
                _debug_exit()
            what = (e.strerror or str(e)).lower()
            _one_line(f"error: {e.filename}: {what}" if e.filename else f"error: {what}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except RecursionError:
            if debug_enabled():
                _debug_exit()
            _one_line("error: input too deeply nested (thousands of levels); not a log or config")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as e:  # a bug: still one line unless debugging
            if by_interrupt(e):  # a Ctrl-C that Python wrapped (while a dataclass was being made, say)
                _one_line("interrupted")
                raise typer.Exit(130) from None
            if debug_enabled():
                _debug_exit()
            _one_line(f"error: internal error ({type(e).__name__}: {e}); re-run with TRAINGUARD_DEBUG=1 and report it")
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


def _debug_exit() -> None:
    """Under debug: the full traceback, but still exit 2 (1 means "error-level findings", never a crash)."""
    import traceback

    traceback.print_exc()
    raise typer.Exit(EXIT_BAD_INPUT) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so ``finally`` blocks run (a spooled stdin file is removed)."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of killing the process outright.

    A killed process leaves its temp files behind; an exception unwinds through
    the ``finally`` that removes them. Only the main thread can set handlers;
    elsewhere (a test runner's worker thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _one_line(msg: str) -> None:
    """One stderr line: whitespace folded, control characters from file names or logs made visible."""
    msg = clean(" ".join(msg.split()), newlines=False)
    if len(msg) > 400:
        msg = msg[:397] + "..."
    print(msg, file=sys.stderr)
