"""W&B as a live sink: the guard's alerts and stops become ``wandb.alert`` on the active run.

Reading W&B runs is ``readers/wandb_run.py``; this module only reports. W&B
routes alerts to the Slack or e-mail a team already set up for the project.
Offline, ``wandb.alert`` is a no-op, so a disconnected training host loses
nothing but the alert. Without an active run (``wandb.run is None``) the sink
does nothing, and it never imports wandb in a process that has not.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger("trainguard.trackers")


class WandbSink:
    """``wandb.alert`` for each alert (level WARN) and stop (level ERROR) of the guard.

    ``wait_s``: W&B's own rate limit between alerts with the same title; the
    guard already dedupes, so the default lets each distinct alert through.
    """

    def __init__(self, *, wait_s: float = 0.0) -> None:
        self.wait_s = wait_s
        self._failed = False
        self.sent = 0

    def on_action(self, action: Any, guard: Any) -> None:
        if not (action.alert or action.stop):
            return
        wandb = sys.modules.get("wandb")  # the training script imported it, or there is no W&B run
        if wandb is None or getattr(wandb, "run", None) is None:
            return
        try:
            level = wandb.AlertLevel.ERROR if action.stop else wandb.AlertLevel.WARN
            name = getattr(getattr(guard, "run", None), "name", "run")
            title = f"trainguard: {'stopping' if action.stop else 'alert'} {name} at step {action.step}"
            text = action.reason or title
            b = getattr(guard, "best", None)
            if b is not None:
                text += f"\nbest {b.metric} {b.value:.6g} at step {b.step}"
            from datetime import timedelta

            wandb.alert(title=title[:64], text=text, level=level, wait_duration=timedelta(seconds=self.wait_s))
            self.sent += 1
        except Exception as e:
            if not self._failed:
                self._failed = True
                log.warning("trainguard: wandb.alert failed (%s); training continues", type(e).__name__)

    def close(self) -> None:
        return None


__all__ = ["WandbSink"]
