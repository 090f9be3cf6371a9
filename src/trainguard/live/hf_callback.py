"""TrainguardCallback: the Guard inside an HF ``Trainer`` (and TRL's trainers, which subclass it).

>>> trainer = Trainer(..., callbacks=[TrainguardCallback()])   # doctest: +SKIP

A thin adapter: hooks feed :meth:`Guard.log`, the Guard decides, the hook
applies. What it does:

- ``on_log`` feeds train logs (loss, grad_norm, learning_rate, epoch);
  ``on_evaluate`` feeds the eval metrics.
- On a new best eval it sets ``control.should_save`` (even when ``save_steps``
  would not save now) and records the step as the Trainer's best
  (``state.best_global_step`` / ``best_metric``) when the user has not set
  ``metric_for_best_model``: the Trainer then marks that folder as
  ``best_model_checkpoint``, and its checkpoint rotation never deletes it,
  whatever ``save_total_limit`` is.
- When the Guard says stop it sets ``control.should_training_stop``.
- Every decision is reduced across ranks (any rank stops or saves → all do)
  when ``torch.distributed`` is initialised, so DDP never deadlocks with one
  rank in a save or an eval the others skipped. Only rank 0 writes files and
  notifies.
- At the end, rank 0 writes the diagnosis (markdown + json) and the guard's
  summary to ``output_dir/trainguard/``. A failure there is a warning, never an
  exception out of ``train()``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..run import RunConfig
from .guard import Guard, Notifier
from .policy import Action, Policy

log = logging.getLogger("trainguard.live")

# Keys of eval metrics that are bookkeeping, not model quality.
_EVAL_SKIP = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch")
_TRAIN_KEYS = {"loss": "train_loss", "grad_norm": "grad_norm", "learning_rate": "lr", "epoch": "epoch"}
# TrainingArguments fields worth knowing in the diagnosis (canonical RunConfig keys).
_ARGS = ("learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "num_train_epochs", "max_steps",
         "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay",
         "eval_strategy", "eval_steps", "save_strategy", "save_steps", "save_total_limit", "logging_steps",
         "load_best_model_at_end", "metric_for_best_model", "greater_is_better", "max_grad_norm", "optim", "seed",
         "bf16", "fp16", "gradient_checkpointing")


def reduce_any(*flags: bool) -> tuple[bool, ...]:
    """Each flag OR-ed over all ranks when torch.distributed is initialised; unchanged otherwise.

    One all-reduce (MAX) of a small int tensor, on the device the backend
    needs (CUDA for NCCL). Every rank must call it at the same point, which
    the Trainer guarantees for the hooks that use it (logging and evaluation
    run on every rank with gathered values).
    """
    try:
        import torch
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a Trainer dependency
        return flags
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return flags
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([int(f) for f in flags], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(x) for x in t.tolist())


class TrainguardCallback(TrainerCallback):
    """Guards an HF Trainer run: saves on each new best, stops when the policy says so, writes a diagnosis.

    ``policy``: the :class:`Policy` (default: stop on error-level overfitting,
    divergence and NaN). When none is given and the user set
    ``metric_for_best_model``, the guard monitors that metric in its direction.
    ``notifier``: ``send(title, body, level)``, called on rank 0 only.
    ``report``: write ``output_dir/trainguard/`` at the end. ``guard``: an
    existing Guard to drive (tests, resumption).
    """

    def __init__(self, policy: Policy | None = None, *, notifier: Notifier | None = None, report: bool = True,
                 guard: Guard | None = None, sync: bool = True) -> None:
        self.policy = policy
        self.notifier = notifier
        self.report = report
        self.sync = sync
        self.guard = guard
        self.actions: list[Action] = []  # every non-continue action, in order (for reports and tests)
        self.stop_action: Action | None = None
        self._pending_best: tuple[int, float] | None = None
        self._own_best = False  # we, not the Trainer, track the best checkpoint

    # -- setup -------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._own_best = getattr(args, "metric_for_best_model", None) is None
        if self.guard is None:
            policy = self.policy or self._policy_from_args(args)
            cfg = RunConfig()
            cfg.update({k: getattr(args, k, None) for k in _ARGS}, "TrainingArguments")
            cfg.set("world_size", getattr(args, "world_size", None), "TrainingArguments")
            cfg.set("framework", "hf", "TrainguardCallback")
            self.guard = Guard(policy, run_name=Path(str(args.output_dir)).name or "live", config=cfg)
        self.guard.notifier = self.notifier if state.is_world_process_zero else None

    @staticmethod
    def _policy_from_args(args: Any) -> Policy:
        metric = getattr(args, "metric_for_best_model", None)
        if not metric or metric in ("loss", "eval_loss"):
            return Policy()
        name = metric if metric.startswith("eval_") else f"eval_{metric}"
        return Policy(monitor=name, mode="max" if getattr(args, "greater_is_better", False) else "min")

    # -- feeding -----------------------------------------------------------
    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if not logs or "loss" not in logs or self.guard is None:
            return  # eval logs are fed by on_evaluate; the final summary log has train_loss, not loss
        kw2 = {_TRAIN_KEYS[k]: v for k, v in logs.items() if k in _TRAIN_KEYS}
        self._apply(self.guard.log(state.global_step, **kw2), args, state, control)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kw: Any) -> None:
        if not metrics or self.guard is None:
            return
        vals = {k: v for k, v in metrics.items() if k.startswith("eval_") and k not in _EVAL_SKIP}
        epoch = metrics.get("epoch", state.epoch)
        self._apply(self.guard.log(state.global_step, epoch=epoch, **vals), args, state, control)

    def _apply(self, action: Action, args: Any, state: Any, control: Any) -> None:
        stop, save = action.stop, action.save
        if self.sync:
            stop, save = reduce_any(stop, save)
        if action:
            self.actions.append(action)
        if save:
            control.should_save = True
            best = self.guard.best if self.guard is not None else None
            if best is not None and best.step == state.global_step:
                self._pending_best = (best.step, best.value)
                if self._own_best:
                    # The Trainer turns best_global_step into best_model_checkpoint when it saves, and
                    # its rotation (save_total_limit) keeps that folder.
                    state.best_global_step = best.step
                    state.best_metric = best.value
        if stop:
            control.should_training_stop = True
            if self.stop_action is None:
                self.stop_action = action if action.stop else Action(
                    state.global_step, stop=True, reason="another rank decided to stop")
                if state.is_world_process_zero:
                    log.warning("trainguard: %s", self.stop_action.reason)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        step = state.global_step
        path = os.path.join(str(args.output_dir), f"checkpoint-{step}")
        if self.guard is not None:
            from ..run import Checkpoint

            self.guard.run.checkpoints[step] = Checkpoint(step, path)
        if self._own_best and self._pending_best is not None and self._pending_best[0] == step:
            # save_strategy="no" or "epoch" skip the Trainer's own bookkeeping: record the folder ourselves
            if state.best_model_checkpoint is None or not str(state.best_model_checkpoint).endswith(f"checkpoint-{step}"):
                state.best_model_checkpoint = path
            state.best_metric = self._pending_best[1]

    # -- the end -----------------------------------------------------------
    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.guard is None or not self.report or not state.is_world_process_zero:
            return
        try:
            self.write_report(Path(str(args.output_dir)) / "trainguard", state)
        except Exception as e:  # a report must never turn a finished run into a crash
            log.warning("trainguard: could not write the report (%s: %s)", type(e).__name__, e)

    def summary(self, state: Any = None) -> dict[str, Any]:
        """What the guard did: stop step and reason, best step/value and its checkpoint."""
        g = self.guard
        best = g.best if g is not None else None
        return {
            "stopped": self.stop_action is not None,
            "stop_step": None if self.stop_action is None else self.stop_action.step,
            "reason": None if self.stop_action is None else self.stop_action.reason,
            "best_step": None if best is None else best.step,
            "best_value": None if best is None else best.value,
            "best_metric": None if best is None else best.metric,
            "best_model_checkpoint": None if state is None else state.best_model_checkpoint,
            "global_step": None if state is None else state.global_step,
            "max_steps": None if state is None else state.max_steps,
            "actions": [{"step": a.step, "kind": a.kind, "reason": a.reason} for a in self.actions if a.kind != "save"],
        }

    def write_report(self, folder: Path, state: Any = None) -> Path:
        """Write ``diagnosis.md``, ``diagnosis.json`` and ``guard.json`` into ``folder``; returns it."""
        assert self.guard is not None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "guard.json").write_text(json.dumps(self.summary(state), indent=2, default=str))
        d = self.guard.diagnose()
        try:
            from ..report.json import render_json

            js = render_json(d)
        except ImportError:
            js = json.dumps(d.to_dict(), indent=2)
        (folder / "diagnosis.json").write_text(js)
        try:
            from ..report.markdown import render_markdown

            md = render_markdown(d)
        except ImportError:
            md = f"# {d.run.name}\n\n{d.verdict()}\n"
        (folder / "diagnosis.md").write_text(md)
        return folder


__all__ = ["TrainguardCallback", "reduce_any"]
