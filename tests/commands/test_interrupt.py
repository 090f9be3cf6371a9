"""Ctrl-C ends every command the same way: ``interrupted`` on stderr and status 130, never 1 or a traceback.

Status 1 means "error-level findings" to a CI gate, so an interrupt must
never come out as 1; and a user who presses Ctrl-C must not get a traceback,
wherever the interrupt lands: while the CLI is being imported, while typer
parses the arguments, or inside a command, where Python may have wrapped it
(a Ctrl-C while a dataclass is being created comes out as a RuntimeError).
"""

from __future__ import annotations

import sys
import types

import pytest
import typer

from trainguard import _entry, cli
from trainguard.commands._common import guarded
from trainguard.errors import by_interrupt


def _wrapped_interrupt() -> BaseException:
    """What Python raises when Ctrl-C lands in a descriptor's ``__set_name__`` during class creation."""

    class Trap:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    try:
        type("Made", (), {"field": Trap()})
    except BaseException as e:  # which class Python raises (3.11 wraps, 3.12 does not) is what is under test
        return e
    raise AssertionError("class creation did not raise")


def test_a_wrapped_interrupt_is_known_as_one() -> None:
    e = _wrapped_interrupt()
    assert by_interrupt(e)
    assert not by_interrupt(RuntimeError("a bug"))
    try:
        try:
            raise ValueError("first")
        except ValueError as inner:
            raise RuntimeError("second") from inner
    except RuntimeError as chained:
        assert not by_interrupt(chained)


def test_interrupt_during_the_cli_import(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class Importing(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "trainguard.cli", Importing("trainguard.cli"))
    with pytest.raises(SystemExit) as e:
        _entry.main()
    assert e.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_interrupt_wrapped_inside_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    wrapped = _wrapped_interrupt()

    @guarded
    def command() -> None:
        raise wrapped

    with pytest.raises(typer.Exit) as e:
        command()
    assert e.value.exit_code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "internal error" not in err


def test_interrupt_outside_a_command_body_is_not_status_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that typer catches: typer 0.29 exits 130; older ones, like click, say "Aborted!" and exit 1 (main makes that 130)."""
    app = typer.Typer()

    @app.command()
    def unguarded() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["trainguard"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 130


def test_ordinary_exits_keep_their_status(monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()

    @app.command()
    def findings() -> None:
        raise typer.Exit(1)

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["trainguard"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 1
