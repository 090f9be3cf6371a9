"""``trainguard analyze PATH...``: a log or output folder becomes a diagnosis."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def analyze(paths: list[str] = typer.Argument(..., help="Log files, output folders, or - for stdin.")) -> None:
        """Diagnose a run from its log or output folder."""
        raise NotImplementedError
