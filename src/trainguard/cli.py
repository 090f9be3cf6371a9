"""The ``trainguard`` command line: a thin typer app over the library.

Each command lives in ``trainguard/commands/<name>.py`` and exposes
``register(app)``; this file only lists them. Command modules import heavy
libraries (matplotlib, torch, transformers) inside their functions, so
``trainguard analyze`` starts fast.

Exit codes: 0 healthy, 1 error-level findings or worse, 2 bad input or usage.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="trainguard",
    help="Stop LLM training runs from wasting GPU-days: diagnose logs, guard live runs, fine-tune safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Add a command by adding its module name here.
_COMMANDS: tuple[str, ...] = ("analyze", "version", "run", "watch", "train", "compare", "lint", "demo", "scan")

for _name in _COMMANDS:
    importlib.import_module(f"trainguard.commands.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
