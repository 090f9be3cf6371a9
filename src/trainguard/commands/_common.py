"""What every command shares: one-line errors on stderr, exit codes, the stderr console."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from ..errors import TrainguardError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2

# Report on stdout, everything else (progress, errors) on stderr, so --json pipes cleanly.
err_console = Console(stderr=True, highlight=False)


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
                raise
            _one_line(f"error: {e}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            _one_line("interrupted")
            raise typer.Exit(130) from None
        except Exception as e:  # a bug: still one line unless debugging
            if debug_enabled():
                raise
            _one_line(f"error: internal error ({type(e).__name__}: {e}); re-run with TRAINGUARD_DEBUG=1 and report it")
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


def _one_line(msg: str) -> None:
    msg = " ".join(msg.split())
    if len(msg) > 400:
        msg = msg[:397] + "..."
    print(msg, file=sys.stderr)
