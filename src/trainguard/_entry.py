"""The ``trainguard`` console script: the CLI, imported where a Ctrl-C during the import is still caught.

Why a module of its own: the script pip writes runs ``from <module> import
main`` before calling anything, and importing :mod:`trainguard.cli` (typer,
click, our command table) takes 30-60 ms. A Ctrl-C in that window used to
print a Python traceback and end with status -2. Here the import happens
inside ``main``, so an interrupt at any point after the interpreter started
ends the way an interrupted command does: ``interrupted`` on stderr, status
130. This module imports nothing but ``sys``.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    """Console-script entry point: :func:`trainguard.cli.main`, with Ctrl-C during its import caught."""
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    cli_main()
