"""``trainguard version``."""

from __future__ import annotations

import typer

from .. import __version__


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print the trainguard version."""
        typer.echo(__version__)
