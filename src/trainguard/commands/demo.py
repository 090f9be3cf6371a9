"""``trainguard demo``: a tiny GPT-2 trained from scratch twice (a common overfitting config, then trainguard's guarded defaults)."""

from __future__ import annotations

import typer

from ._common import err_console, guarded


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def demo(
        out: str = typer.Option("trainguard-demo", "--out", "-o", help="Folder for both runs, models and reports."),
        quick: bool = typer.Option(False, "--quick", help="Fewer epochs (for a smoke test)."),
    ) -> None:
        """Show the guard on a tiny CPU run: a common config overfits and the guard marks where it would stop; trainguard's defaults, guarded."""
        import shutil
        from pathlib import Path

        from rich.console import Console

        from ..train.demo import run_demo, show

        path = Path(out).resolve()
        if path.exists() and (path / "base-model").is_dir():
            shutil.rmtree(path)  # our own previous demo: start clean so resume logic never kicks in
        console = Console(stderr=False, highlight=False)
        err_console.print(f"[bold]trainguard demo[/]: writing to {path}")
        runs = run_demo(path, console=console, quick=quick)
        show(runs, path, console)
