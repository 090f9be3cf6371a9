"""Returns a TrainerCallback that drives a rich Progress bar: steps, the last train and eval loss, and ETA.

The Trainer's own tqdm is turned off (``disable_tqdm=True``): its ``\\r``
updates interleave with rich's live display and garble both. Only the main
process draws, so a multi-process launch shows one bar.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class RichProgress(TrainerCallback):
    """One rich task per ``trainer.train()``; resumed runs start the bar at the resumed step."""

    def __init__(self, label: str = "train", *, console: Any = None, progress: Any = None) -> None:
        self.label = label
        self.console = console
        self._external = progress is not None
        self.progress = progress
        self.task: Any = None
        self.train_loss: float | None = None
        self.eval_loss: float | None = None

    def _describe(self) -> str:
        parts = [f"[bold]{self.label}[/]"]
        if self.train_loss is not None:
            parts.append(f"loss {self.train_loss:.3f}")
        if self.eval_loss is not None:
            parts.append(f"eval {self.eval_loss:.3f}")
        return "  ".join(parts)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self.progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self.progress.start()
        self.task = self.progress.add_task(self._describe(), total=state.max_steps or None, completed=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.task is None or not logs:
            return
        if "loss" in logs:
            self.train_loss = float(logs["loss"])
        if "eval_loss" in logs:
            self.eval_loss = float(logs["eval_loss"])
        self.progress.update(self.task, description=self._describe())

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.task is None:
            return
        self.progress.update(self.task, completed=state.global_step, description=self._describe())
        if not self._external:
            self.progress.stop()
        self.task = None


class StderrPrinter(TrainerCallback):
    """The HF ``PrinterCallback`` on stderr: dict lines ``trainguard analyze`` and ``watch`` can parse."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        import sys

        if state.is_world_process_zero and logs:
            print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in logs.items()}, file=sys.stderr,
                  flush=True)


__all__ = ["RichProgress", "StderrPrinter"]
