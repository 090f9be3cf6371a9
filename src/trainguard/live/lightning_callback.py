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

As the HF callback does, it honours a stop request from ``trainguard run`` or
``watch`` (the stop file of ``live/control.py``, checked after every batch and
reduced across ranks), saves ``last.ckpt`` when it stops, loads the best
weights back at the end (``load_best=False`` or ``TRAINGUARD_LOAD_BEST=0``
keep the last), sends ``TRAINGUARD_NOTIFY`` notifications, and prints where
the best checkpoint and the report are.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]

from ..readers._names import canonical
from .control import ENV_LOAD_BEST, ENV_PARENT, ENV_RUN_NAME, EventWriter, StopWatch
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
                 dirpath: str | Path | None = None, report: bool = True, load_best: bool | None = None) -> None:
        super().__init__()
        self.guard = Guard(policy, run_name=os.environ.get(ENV_RUN_NAME) or "live")
        self.notifier = notifier
        self.save_best = save_best
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.report = report
        self.load_best = load_best
        self.stop_action: Action | None = None
        self.best_path: Path | None = None
        self.last_path: Path | None = None
        self.loaded_best = False
        self.report_path: Path | None = None
        self._stops: StopWatch | None = None
        self._events = EventWriter(None)
        self._notifier: Any = None

    @property
    def state_key(self) -> str:
        return f"TrainguardLightningCallback[{self.guard.policy.monitor}]"

    def _folder(self, trainer: Any) -> Path:
        return self.dirpath or Path(trainer.log_dir or trainer.default_root_dir)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.guard.notifier = None  # notifications go through _notify, which says what was done
        self.guard.run.config.set("framework", "lightning", "TrainguardLightningCallback")
        self.guard.run.config.set("guarded_by", "trainguard run" if os.environ.get(ENV_PARENT) else
                                  "TrainguardLightningCallback", "TrainguardLightningCallback")
        if trainer.is_global_zero:
            if self.notifier is not None:
                self._notifier = self.notifier
            elif not os.environ.get(ENV_PARENT):
                try:
                    from .notify import Notifier as _N

                    self._notifier = _N.from_config()
                except Exception as e:  # a bad notify config must not stop training
                    log.warning("trainguard: notifications are off (%s)", e)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._stops = StopWatch.from_env()
        planned = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if planned is None:
            with contextlib.suppress(Exception):  # no length: an iterable dataloader
                est = trainer.estimated_stepping_batches
                planned = int(est) if est is not None and math.isfinite(float(est)) else None
        if planned and hasattr(self.guard, "set_plan"):
            self.guard.set_plan(planned)
        if trainer.is_global_zero:
            self._events = EventWriter.from_env()
            self._events.emit("attached", framework="lightning", pid=os.getpid(), output_dir=str(self._folder(trainer)),
                              planned_steps=planned, run_name=self.guard.run.name)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        asked = self._stops is not None and self.stop_action is None and self._stops.requested()
        if trainer.strategy.reduce_boolean_decision(asked, all=False) and self.stop_action is None:
            why = (self._stops.request or {}) if self._stops is not None else {}
            reason = f"stop requested by {why.get('by', 'trainguard')}" + (f": {why['reason']}" if why.get("reason") else "")
            self._stop(Action(step, stop=True, alert=True, reason=reason), trainer)
            return
        if step % max(1, trainer.log_every_n_steps) != 0:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        x = _scalar(loss) if loss is not None else None
        if x is None:
            return
        self._events.emit("log", step=step, metrics={"train_loss": x})
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
        self._events.emit("log", step=trainer.global_step, metrics={"epoch": trainer.current_epoch, **metrics})
        action = self.guard.log(trainer.global_step, epoch=trainer.current_epoch, **metrics)
        if action.save and self.save_best:
            path = self._folder(trainer) / "best.ckpt"
            trainer.save_checkpoint(str(path), weights_only=False)  # resumable; collective under DDP: every rank reaches it (same metrics)
            self.best_path = path
            self._events.emit("checkpoint", step=trainer.global_step, path=str(path), best=True)
        self._apply(action, trainer)

    def _apply(self, action: Action, trainer: Any) -> None:
        if action.alert and not action.stop:
            self._notify(action, "alert sent, training continues")
        stop = trainer.strategy.reduce_boolean_decision(action.stop, all=False)
        if stop and self.stop_action is None:
            self._stop(action if action.stop else Action(trainer.global_step, stop=True,
                                                         reason="another rank decided to stop"), trainer)

    def _stop(self, action: Action, trainer: Any) -> None:
        """Save ``last.ckpt`` (every rank: it is a collective) and ask Lightning to stop after this batch."""
        self.stop_action = action
        trainer.should_stop = True
        self.last_path = self._folder(trainer) / "last.ckpt"
        trainer.save_checkpoint(str(self.last_path), weights_only=False)  # resumable: optimizer and loops too
        if trainer.is_global_zero:
            log.warning("trainguard: %s", action.reason)
            if self._stops is not None:
                self._stops.acknowledge(trainer.global_step)
            self._events.emit("stopping", step=trainer.global_step, reason=action.reason)
            self._events.emit("checkpoint", step=trainer.global_step, path=str(self.last_path), best=False)
            self._notify(action, f"stopping at step {trainer.global_step}: last.ckpt saved, Lightning exits")

    def _notify(self, action: Action, taken: str) -> None:
        if self._notifier is None:
            return
        self._notifier.notify_action(action, run_name=self.guard.run.name, step=action.step, best=self.guard.best,
                                     run=self.guard.run, taken=taken,
                                     checkpoint=None if self.best_path is None else str(self.best_path))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._load_best(pl_module)
        if not trainer.is_global_zero:
            return
        b = self.guard.best
        if self.report:
            try:
                import json

                folder = self._folder(trainer) / "trainguard"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "guard.json").write_text(json.dumps({
                    "stopped": self.stop_action is not None,
                    "stop_step": None if self.stop_action is None else self.stop_action.step,
                    "reason": None if self.stop_action is None else self.stop_action.reason,
                    "best_step": None if b is None else b.step,
                    "best_value": None if b is None or not math.isfinite(b.value) else b.value,
                    "best_checkpoint": None if self.best_path is None else str(self.best_path),
                    "loaded_best": self.loaded_best,
                }, indent=2))
                d = self.guard.diagnose()
                (folder / "diagnosis.json").write_text(json.dumps(d.to_dict(), indent=2, default=str))
                self.report_path = folder / "diagnosis.json"
                try:
                    from ..report.markdown import render_markdown

                    (folder / "diagnosis.md").write_text(render_markdown(d))
                    self.report_path = folder / "diagnosis.md"
                except ImportError:
                    pass
            except Exception as e:  # never turn a finished run into a crash
                log.warning("trainguard: could not write the report (%s: %s)", type(e).__name__, e)
        self._events.emit("end", step=trainer.global_step, stopped=self.stop_action is not None,
                          stop_step=None if self.stop_action is None else self.stop_action.step,
                          reason=None if self.stop_action is None else self.stop_action.reason,
                          best_step=None if b is None else b.step, best_value=None if b is None else b.value,
                          best_metric=None if b is None else b.metric,
                          best_checkpoint=None if self.best_path is None else str(self.best_path),
                          loaded_best=self.loaded_best,
                          report=None if self.report_path is None else str(self.report_path))
        line = self.last_line(trainer.global_step)
        print(line, file=sys.stderr, flush=True)
        if self._notifier is not None:
            from .notify import host

            name = self.guard.run.name
            self._notifier.notify_text(f"trainguard: {name} on {host()}: run finished",
                                       f"{name} on {host()}: {line.removeprefix('trainguard: ')}", level="info",
                                       key=f"{name}:finished")
            if self.notifier is None:
                self._notifier.close(timeout=15.0)

    def _load_best(self, pl_module: Any) -> None:
        """Load ``best.ckpt``'s weights back (tensors only: ``weights_only=True``), unless asked not to."""
        want = self.load_best if self.load_best is not None else os.environ.get(ENV_LOAD_BEST, "1") != "0"
        if not want or self.best_path is None or not self.best_path.is_file():
            return
        try:
            import torch

            ckpt = torch.load(self.best_path, map_location="cpu", weights_only=True)
            pl_module.load_state_dict(ckpt["state_dict"])
            self.loaded_best = True
        except Exception as e:  # never turn a finished run into a crash
            log.warning("trainguard: could not load the best checkpoint %s (%s: %s)", self.best_path,
                        type(e).__name__, e)

    def last_line(self, step: int | None = None) -> str:
        b = self.guard.best
        parts = [f"stopped at step {self.stop_action.step}" if self.stop_action is not None else f"finished at step {step}"]
        if self.best_path is not None and b is not None:
            loaded = ", loaded into the model" if self.loaded_best else ""
            parts.append(f"best checkpoint: {self.best_path} ({b.metric} {b.value:.6g} at step {b.step}{loaded})")
        if self.report_path is not None:
            parts.append(f"report: {self.report_path}")
        return "trainguard: " + "; ".join(parts)

    def state_dict(self) -> dict[str, Any]:
        return self.guard.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.guard.load_state_dict(state_dict)


__all__ = ["TrainguardLightningCallback"]
