"""The ``trainguard`` command line: a thin typer app over the library.

Each command lives in ``trainguard/commands/<name>.py`` and exposes
``register(app)``; this file only lists them. A command's module is imported
only when that command runs (or when ``trainguard CMD --help`` asks for its
options): ``trainguard --help`` lists the commands from the summaries below and
imports none of them, so it starts without numpy, rich tables or pydantic.
Command modules import heavy libraries (matplotlib, torch, transformers)
inside their functions, so ``trainguard analyze`` starts fast too.

Exit codes: 0 healthy, 1 error-level findings or worse, 2 bad input or usage.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from ._entry import EXIT_INTERRUPTED
from .errors import by_interrupt

# Add a command by adding its module name here.
_COMMANDS: tuple[str, ...] = ("analyze", "version", "run", "watch", "train", "compare", "lint", "demo", "scan")

# One line per command for `trainguard --help`, so listing them imports nothing. A command
# missing here still works: its module is imported to show its own docstring.
_SUMMARIES: dict[str, str] = {
    "analyze": "Diagnose a run from its log or output folder: findings, best point, waste, causes, config changes.",
    "version": "Print the trainguard version.",
    "run": "Run a training command, guard it live, stop it cleanly (the trainer saves and exits) when told.",
    "watch": "Follow a training log as it grows (surviving truncation and rotation) and guard the run.",
    "train": "Fine-tune a causal LM under the guard; writes the best model, config and report to output_dir.",
    "compare": "Compare runs: settings, best and final eval, wall time, waste, verdict, and what separates good from bad.",
    "lint": "Check training configs before launch: DeepSpeed overrides, lost best checkpoints, no eval, LR, LoRA, early stopping.",
    "demo": "Show the guard on a tiny CPU run: an unguarded run overfits, the guard stops it near its best.",
    "scan": "Find and diagnose every run under folders and on MLflow servers; write a fleet index.",
}


class _LazyGroup(TyperGroup):
    """A typer group that imports a command's module on first use, not at start-up.

    ``get_command`` builds the real command from ``commands/<name>.py``; while
    the group's own help is being written it hands out a stub carrying the
    one-line summary instead, so listing the commands imports none of them.
    """

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in _COMMANDS:
            return None
        if self._listing and cmd_name in _SUMMARIES:
            text = _SUMMARIES[cmd_name]
            return typer.core.TyperCommand(cmd_name, help=text, short_help=text)
        cached = self.commands.get(cmd_name)
        if cached is None:
            cached = self.commands[cmd_name] = _load(cmd_name)
        return cached

    def get_help_option(self, ctx: Any) -> Any:
        from .commands._coerce import plain_param

        option = super().get_help_option(ctx)
        if option is not None:
            plain_param(option)  # typer would build a pydantic adapter for this one bool
        return option

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _load(name: str) -> Any:
    """The click command that ``commands/<name>.py`` registers."""
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    importlib.import_module(f"trainguard.commands.{name}").register(sub)
    cmd = typer.main.get_command(sub)
    if isinstance(cmd, TyperGroup):  # a module that registers several commands keeps the one named after it
        cmd = cmd.commands.get(name) or next(iter(cmd.commands.values()))
    cmd.name = name
    from .commands._coerce import plain_coercion

    plain_coercion(cmd)  # typer's per-option pydantic adapters cost ~0.1 s a start; ours are plain types
    return cmd


app = typer.Typer(
    name="trainguard",
    cls=_LazyGroup,
    help="Stop LLM training runs from wasting GPU-days: diagnose logs, guard live runs, fine-tune safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: rich's help renderer (markdown-it and all) costs more start-up than the rest of --help
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Stop LLM training runs from wasting GPU-days: diagnose logs, guard live runs, fine-tune safely."""


# Commands that open nothing which outlives them: their process may end without the final garbage collections.
_QUICK = frozenset({"analyze", "compare", "lint", "version", "--help", "-h"})


def main() -> None:
    """Console-script entry point (through :mod:`trainguard._entry`)."""
    quick = len(sys.argv) < 2 or sys.argv[1] in _QUICK
    try:
        app()
    except SystemExit as e:
        if e.code == 1 and by_interrupt(e):  # an older typer, like click, made a Ctrl-C "Aborted!", status 1
            raise SystemExit(EXIT_INTERRUPTED) from None
        raise
    except KeyboardInterrupt:  # between typer's handling and the exit
        sys.stderr.write("interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        if quick:
            _exit_without_collecting()


def _exit_without_collecting() -> None:
    """Let the interpreter end without traversing every object it holds: ``gc.freeze()``.

    Why: at exit CPython collects and clears the objects of every module
    (numpy's, typer's, ours), about 30 ms: a tenth of an ``analyze`` of a
    small file. A quick command has written and closed its output by now;
    module teardown and atexit handlers still run, only the cycle collector
    skips what is left, as the OS reclaims the memory anyway. Not for
    ``train``, ``run`` or ``watch``, whose libraries may rely on collection
    at exit, and never in-process (tests call ``app``, not ``main``).
    """
    import gc

    gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
