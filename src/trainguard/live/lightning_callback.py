"""TrainguardLightningCallback: the Guard inside a Lightning ``Trainer``.

>>> trainer = lightning.Trainer(callbacks=[TrainguardLightningCallback()])   # doctest: +SKIP

A thin adapter, like Lightning's own ``EarlyStopping``: after each validation
it reads ``trainer.callback_metrics`` (``val_loss`` → ``eval_loss``), feeds
the Guard, reduces the stop decision across ranks with
``strategy.reduce_boolean_decision`` (any rank stops → all stop) and sets
``trainer.should_stop``. Train losses are fed from ``on_train_batch_end``
every ``log_every_n_steps``. On a new best it saves ``best.ckpt`` in
``dirpath`` (default: the trainer's log dir) when ``save_best`` is on; only
rank 0 writes the diagnosis. Importing this module imports lightning.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]

from ..readers._names import canonical
from .guard import Guard, Notifier
from .policy import Action, Policy

log = logging.getLogger("trainguard.live")


def _scalar(v: Any) -> float | None:
    try:
        x = float(v.item() if hasattr(v, "item") else v)
    except (TypeError, ValueError, RuntimeError):
        return None
    return x


class TrainguardLightningCallback(Callback):
    """Stops a Lightning run when the policy says so; saves the best checkpoint; writes the diagnosis."""

    def __init__(self, policy: Policy | None = None, *, notifier: Notifier | None = None, save_best: bool = True,
                 dirpath: str | Path | None = None, report: bool = True) -> None:
        super().__init__()
        self.guard = Guard(policy)
        self.notifier = notifier
        self.save_best = save_best
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.report = report
        self.stop_action: Action | None = None
        self.best_path: Path | None = None

    @property
    def state_key(self) -> str:
        return f"TrainguardLightningCallback[{self.guard.policy.monitor}]"

    def _folder(self, trainer: Any) -> Path:
        return self.dirpath or Path(trainer.log_dir or trainer.default_root_dir)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.guard.notifier = self.notifier if trainer.is_global_zero else None

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step % max(1, trainer.log_every_n_steps) != 0:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        x = _scalar(loss) if loss is not None else None
        if x is None:
            return
        self._apply(self.guard.log(step, train_loss=x), trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        metrics: dict[str, float] = {}
        for k, v in trainer.callback_metrics.items():
            name = canonical(k)
            x = _scalar(v)
            if x is not None and name.startswith("eval_"):
                metrics[name] = x
        if not metrics:
            return
        action = self.guard.log(trainer.global_step, epoch=trainer.current_epoch, **metrics)
        if action.save and self.save_best:
            path = self._folder(trainer) / "best.ckpt"
            trainer.save_checkpoint(str(path))  # collective under DDP: every rank reaches it (same metrics)
            self.best_path = path
        self._apply(action, trainer)

    def _apply(self, action: Action, trainer: Any) -> None:
        stop = trainer.strategy.reduce_boolean_decision(action.stop, all=False)
        if stop:
            trainer.should_stop = True
            if self.stop_action is None:
                self.stop_action = action if action.stop else Action(trainer.global_step, stop=True,
                                                                     reason="another rank decided to stop")
                if trainer.is_global_zero:
                    log.warning("trainguard: %s", self.stop_action.reason)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if not self.report or not trainer.is_global_zero:
            return
        try:
            import json

            folder = self._folder(trainer) / "trainguard"
            folder.mkdir(parents=True, exist_ok=True)
            b = self.guard.best
            (folder / "guard.json").write_text(json.dumps({
                "stopped": self.stop_action is not None,
                "stop_step": None if self.stop_action is None else self.stop_action.step,
                "reason": None if self.stop_action is None else self.stop_action.reason,
                "best_step": None if b is None else b.step,
                "best_value": None if b is None or not math.isfinite(b.value) else b.value,
                "best_checkpoint": None if self.best_path is None else str(self.best_path),
            }, indent=2))
            d = self.guard.diagnose()
            (folder / "diagnosis.json").write_text(json.dumps(d.to_dict(), indent=2, default=str))
        except Exception as e:  # never turn a finished run into a crash
            log.warning("trainguard: could not write the report (%s: %s)", type(e).__name__, e)

    def state_dict(self) -> dict[str, Any]:
        return self.guard.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.guard.load_state_dict(state_dict)


__all__ = ["TrainguardLightningCallback"]
