"""The Guard: feed it points as they arrive, get back an Action (continue, alert, save, stop).

>>> from trainguard import Guard
>>> guard = Guard()
>>> for step, loss in [(10, 2.0), (20, 1.5)]:
...     action = guard.log(step, train_loss=loss)
>>> action.kind
'continue'

The Guard grows a :class:`~trainguard.run.Run` (the same data model the
offline ``analyze`` reads), keeps O(1) running state in a
:class:`~trainguard.live.policy.Tracker`, and asks its
:class:`~trainguard.live.policy.Policy` what to do after each point. At each
eval it asks the facts layer (:func:`trainguard.facts.facts_of`) for the one
overfitting verdict, the same judgement ``analyze`` gives on the whole run,
so the guard and the report can never disagree on a curve; evals are few, so
this costs little. The full offline detectors (``trainguard.detectors``) run on
a geometric schedule (after at least ``detect_min_gap`` new points and at
least ``detect_frac`` of the history, so their amortised cost per point stays
bounded), and their warnings become alerts. A detector that raises is
reported once and skipped: the guard never breaks training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Protocol

from .._hf_nan import is_placeholder
from .._numbers import as_float as _num
from ..diagnosis import Best, Diagnosis
from ..facts import facts_of
from ..facts.curves import clean_curve, train_at
from ..facts.overfit import OverfitVerdict, judge_overfitting
from ..facts.train import TrainVerdict
from ..findings import Finding
from ..run import EPOCH, EVAL_LOSS, GRAD_NORM, LEARNING_RATE, TRAIN_LOSS, Run, RunConfig
from .policy import Action, Policy, Tracker

log = logging.getLogger("trainguard.live")

STATE_VERSION = 1


class Notifier(Protocol):
    """Anything with ``send(title, body, level)`` (see ``live/notify.py``)."""

    def send(self, title: str, body: str, level: str) -> Any: ...


# Framework names for what the Guard is handed as **metrics, so callbacks can pass logs through.
_ALIASES = {"loss": TRAIN_LOSS, "lr": LEARNING_RATE, "val_loss": EVAL_LOSS, "valid_loss": EVAL_LOSS,
            "validation_loss": EVAL_LOSS}


class Guard:
    """Watches one training run point by point.

    ``policy``: what to do (default :class:`Policy`); ``notifier``: an object
    with ``send(title, body, level)``, called on alerts and stops (a failing
    notifier logs one warning and is otherwise ignored); ``run_name``: the
    name of the growing Run; ``config``: what is known of the run's
    hyper-parameters, used by the diagnosis.
    """

    def __init__(self, policy: Policy | None = None, *, notifier: Notifier | None = None, run_name: str = "live",
                 config: RunConfig | None = None, detect_min_gap: int = 200, detect_frac: float = 0.25) -> None:
        self.policy = policy if policy is not None else Policy()
        self.notifier = notifier
        self.run = Run(name=run_name, format="live", config=config if config is not None else RunConfig())
        self.detect_min_gap = detect_min_gap
        self.detect_frac = detect_frac
        self.tracker: Tracker = self.policy.new_tracker()
        self.planned_steps: int | None = None
        self._train_checked = 0  # tracker.trains at the last train-verdict pass
        self._trackers: dict[str, Any] = {}  # MLflow / W&B sinks, joined when the script imports them
        self.verdict: OverfitVerdict | None = None  # the overfitting verdict at the latest eval
        self.points = 0  # log() calls
        self.stopped: Action | None = None  # the first stop action, if any
        self._last_pass = 0  # self.points at the last detector pass
        self._seen: set[tuple[str, str]] = set()  # (code, severity) already alerted
        self._detector_failed: set[str] = set()
        self._notify_failed = False
        if self.policy.detector_alerts:
            self._warm_detectors()

    def _warm_detectors(self) -> None:
        """Import the detector modules now, at setup, so the first detector pass inside the
        training loop does not pay ~20 ms of module imports (a measured 25% of the callback's
        in-loop cost on a 300-step run)."""
        try:
            from ..detectors import modules

            modules()
        except Exception as e:  # a broken detector is reported once, on its first pass
            self._warn_detector("registry", e)

    # -- the one hot path ----------------------------------------------------
    def log(self, step: int, train_loss: float | None = None, eval_loss: float | None = None, lr: float | None = None,
            grad_norm: float | None = None, epoch: float | None = None, **metrics: Any) -> Action:
        """Record the metrics logged at ``step`` and return what to do now.

        Pass the values a training loop has (any subset). Extra metrics are
        kept under their own names (``eval_accuracy`` ...); ``loss``/``lr`` are
        taken as ``train_loss``/``learning_rate``. Non-numeric values are ignored.
        """
        step = int(step)
        vals: dict[str, float] = {}
        for name, v in ((TRAIN_LOSS, train_loss), (EVAL_LOSS, eval_loss), (LEARNING_RATE, lr), (GRAD_NORM, grad_norm)):
            x = None if v is None else _num(v)
            if x is not None:
                vals[name] = x
        for k, v in metrics.items():
            x = _num(v)
            if x is not None:
                vals.setdefault(_ALIASES.get(k, k), x)
        if TRAIN_LOSS in vals and is_placeholder(vals[TRAIN_LOSS], vals.get(GRAD_NORM)):
            vals[TRAIN_LOSS] = math.nan  # the HF Trainer's NaN filter logged 0.0 for a window of NaN steps
        h = self.run.history
        ep = None if epoch is None else _num(epoch)
        for name, x in vals.items():
            h.add(name, step, x, ep)
        if ep is not None:
            h.add(EPOCH, step, ep)
        self.points += 1

        p, t = self.policy, self.tracker
        if TRAIN_LOSS in vals:
            t.on_train(step, vals[TRAIN_LOSS])
        is_eval = p.monitor in vals
        new_best = t.on_eval(step, vals[p.monitor], ep) if is_eval else False
        if is_eval:
            self.verdict = self._verdict()
        if new_best:
            self._seen = {k for k in self._seen if k[0] not in ("overfitting", "divergence")}
        if not is_eval and p.monitor != EVAL_LOSS and EVAL_LOSS in vals and not math.isfinite(vals[EVAL_LOSS]):
            t.nan_metric, t.nan_step = EVAL_LOSS, step

        train_verdict = self._train_verdict(is_eval) if TRAIN_LOSS in vals or is_eval else None
        fresh: tuple[Finding, ...] = ()
        if self._pass_due(is_eval):
            fresh = self._detector_pass()
        action = p.decide(t, step, new_best=new_best, is_eval=is_eval, detector_findings=fresh, verdict=self.verdict,
                          train_verdict=train_verdict, planned_steps=self.planned_steps)
        if action.alert or action.stop:
            action = self._dedupe(action)
        if action.stop and self.stopped is None:
            self.stopped = action
        if action.alert or action.stop:
            self._notify(action)
        if action:
            self._track(action)
        return action

    def set_plan(self, total_steps: int | None) -> None:
        """The planned length of the run in optimizer steps (``max_steps``, epochs x steps/epoch, a tqdm total).

        With it, an overfitting stop waits until ``Policy.min_progress`` of the
        run has passed, and the report can say how much of the plan was saved.
        """
        if total_steps is not None and total_steps > 0:
            self.planned_steps = int(total_steps)
            self.run.planned_steps = int(total_steps)

    def _train_verdict(self, is_eval: bool) -> TrainVerdict | None:
        """The facts' train-loss verdict, re-assessed at evals and after every 5 % more train logs.

        It is the offline judgement on the whole train curve so far, so a noisy
        per-step loss cannot trip it the way a short window would; spacing the
        passes geometrically keeps its cost per point bounded.
        """
        n = self.tracker.trains
        if not is_eval and n - self._train_checked < max(1.0, 0.05 * n):
            return None
        self._train_checked = n
        v = facts_of(self.run).train_verdict
        t = self.tracker
        if v is not None and v.blew_up:
            if t.blowup_at is None:
                t.blowup_at = n
        elif v is not None:
            t.blowup_at = None
        return v

    def _verdict(self) -> OverfitVerdict | None:
        """The overfitting verdict on the monitored curve so far: the facts layer's, as ``analyze`` computes it."""
        p = self.policy
        f = facts_of(self.run)
        if f.eval is not None and f.eval.metric == p.monitor:
            return f.overfit
        curve = clean_curve(p.monitor, p.mode == "max", self.run.history.get_series(p.monitor),
                            last_train_step=int(f.train[0][-1]) if len(f.train[0]) else None)
        if not len(curve):
            return None
        st, tv = f.train
        t = f.train_verdict
        return judge_overfitting(curve.steps, curve.values, higher=curve.higher, run_last_step=self.run.last_step,
                                 train_at_eval=train_at(st, tv, curve.steps) if len(tv) else None,
                                 train_learned=None if t is None else t.learned)

    def log_dict(self, step: int, metrics: Mapping[str, Any]) -> Action:
        """:meth:`log` for a dict of framework-named metrics (``loss``, ``eval_loss``, ``learning_rate`` ...)."""
        kw = {_ALIASES.get(k, k): v for k, v in metrics.items() if k not in ("step", "self")}
        return self.log(step, **kw)

    # -- detectors -------------------------------------------------------------
    def _pass_due(self, is_eval: bool) -> bool:
        since = self.points - self._last_pass
        need = max(self.detect_min_gap, self.detect_frac * self.points)
        # eval points are where the picture changes: run there once half the usual gap has passed
        return since >= (need / 2 if is_eval else need)

    def _detector_pass(self) -> tuple[Finding, ...]:
        self._last_pass = self.points
        return tuple(self._run_detectors())

    def _run_detectors(self) -> list[Finding]:
        try:
            from ..detectors import modules
        except Exception as e:  # pragma: no cover - the registry itself broke
            self._warn_detector("registry", e)
            return []
        out: list[Finding] = []
        try:
            mods = modules()
        except Exception as e:
            self._warn_detector("registry", e)
            return []
        for m in mods:
            try:
                out.extend(m.detect(self.run))
            except Exception as e:
                self._warn_detector(m.__name__, e)
        return out

    def _warn_detector(self, name: str, e: BaseException) -> None:
        if name not in self._detector_failed:
            self._detector_failed.add(name)
            log.warning("trainguard: detector %s failed (%s: %s); skipping it", name, type(e).__name__, e)

    def _dedupe(self, action: Action) -> Action:
        """Drop alert findings already reported (same code and severity); a stop is always kept.

        A new best eval forgets past overfitting alerts, so a second episode
        (alert-only mode) is reported again.
        """
        keys = [(f.code, f.severity.value) for f in action.findings]
        if action.stop:
            self._seen.update(keys)
            return action
        keep = [f for f, k in zip(action.findings, keys, strict=True) if k not in self._seen]
        self._seen.update(keys)
        if not keep:
            return Action(action.step, save=action.save, reason=_save_reason(action, self))
        return Action(action.step, save=action.save, alert=True, reason=f"alert ({keep[0].code}): {keep[0].message}",
                      findings=tuple(keep))

    def _track(self, action: Action) -> None:
        """Hand alerts, saves and stops to the trackers the training script already uses (MLflow, W&B).

        A tracker joins when its module is imported (checked in ``sys.modules``,
        never imported here) and it acts only on an active run: ``mlflow``
        with an active run gets ``trainguard.*`` tags and a decision metric,
        ``wandb`` with a run gets ``wandb.alert``. A failing tracker warns once
        (inside the sink) and never breaks training.
        """
        import sys

        for name in ("mlflow", "wandb"):
            if name in sys.modules and name not in self._trackers:
                try:
                    if name == "mlflow":
                        from ..trackers.mlflow import MlflowSink

                        self._trackers[name] = MlflowSink()
                    else:
                        from ..trackers.wandb import WandbSink

                        self._trackers[name] = WandbSink()
                except Exception as e:  # the extra is broken: say so once, keep training
                    self._trackers[name] = None
                    log.warning("trainguard: %s tracker unavailable (%s)", name, type(e).__name__)
        for sink in self._trackers.values():
            if sink is not None:
                try:
                    sink.on_action(action, self)
                except Exception as e:
                    log.warning("trainguard: tracker failed (%s); training continues", type(e).__name__)

    def _notify(self, action: Action) -> None:
        if self.notifier is None:
            return
        level = "error" if action.stop else "warning"
        title = f"trainguard: {'stopping' if action.stop else 'alert'} {self.run.name} at step {action.step}"
        body = action.reason
        if self.best is not None:
            body += f"\nbest {self.best.metric} {self.best.value:.6g} at step {self.best.step}"
        try:
            self.notifier.send(title, body, level)
        except Exception as e:
            if not self._notify_failed:
                self._notify_failed = True
                log.warning("trainguard: notification failed (%s); training continues", type(e).__name__)

    # -- queries ---------------------------------------------------------------
    @property
    def best(self) -> Best | None:
        """The best monitored eval so far (``.step``, ``.value``), or None before the first eval."""
        t = self.tracker
        if t.best is None or t.best_step is None:
            return None
        return Best(metric=self.policy.monitor, step=int(t.best_step), value=float(t.best), epoch=t.best_epoch)

    @property
    def should_stop(self) -> bool:
        return self.stopped is not None

    def findings(self) -> list[Finding]:
        """A full offline detector pass over everything seen so far (``trainguard.detectors.run_all``)."""
        from ..detectors import run_all

        return run_all(self.run)

    def diagnose(self) -> Diagnosis:
        """The offline diagnosis of the run so far (``trainguard.diagnosis.diagnose``).

        Raises :class:`~trainguard.errors.GuardError` when no numeric point was
        logged: a run with no data gets no verdict, never "healthy" (NaN counts:
        it gets the critical ``nan_loss``).
        """
        from ..diagnosis import diagnose
        from ..errors import GuardError

        if not any(len(s) for s in self.run.history.values()):
            raise GuardError(f"nothing to diagnose yet: {self.points} log() calls and no usable numeric point")
        return diagnose(self.run)

    # -- resume ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Counters, bests, and the curves the verdicts are judged on, as plain JSON-safe values.

        The verdicts are functions of the eval curve and the train loss, so a
        resumed guard needs them to decide exactly as an uninterrupted one: the
        monitored eval series is kept whole (evals are few) and the train loss
        up to :data:`_KEEP_TRAIN` points (older points thinned evenly, the
        latest kept as logged). Other metrics regrow after the resume.
        """
        return {
            "version": STATE_VERSION,
            "tracker": self.tracker.state_dict(),
            "points": self.points,
            "last_pass": self._last_pass,
            "seen": sorted(list(k) for k in self._seen),
            "stopped": None if self.stopped is None else {"step": self.stopped.step, "reason": self.stopped.reason},
            "planned_steps": self.planned_steps,
            "curves": {name: _curve_state(self.run.history.get_series(name), keep)
                       for name, keep in ((self.policy.monitor, None), (TRAIN_LOSS, _KEEP_TRAIN))
                       if len(self.run.history.get_series(name))},
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict`; keys an older version lacked keep their defaults."""
        self.tracker = Tracker.from_state_dict(dict(d.get("tracker", {})))
        self.tracker.mode = self.policy.mode
        self.points = int(d.get("points", 0))
        self._last_pass = int(d.get("last_pass", 0))
        self._seen = {(str(a), str(b)) for a, b in d.get("seen", [])}
        self.planned_steps = d.get("planned_steps") or self.planned_steps
        st = d.get("stopped")
        self.stopped = None if not st else Action(int(st["step"]), stop=True, alert=True, reason=str(st.get("reason", "")))
        curves = d.get("curves") or {}
        for name, c in curves.items():
            for step, value in zip(c.get("steps", []), c.get("values", []), strict=False):
                self.run.history.add(str(name), int(step), float(value))
        t = self.tracker
        if self.policy.monitor not in curves and t.best is not None and t.best_step is not None:
            # an older state dict kept no curve: the best point is the one eval point it proves
            self.run.history.add(self.policy.monitor, int(t.best_step), float(t.best))

    def __repr__(self) -> str:
        b = self.best
        best = f"best {b.value:.4g}@{b.step}" if b else "no eval yet"
        return f"Guard({self.points} points, {best}{', stopped' if self.stopped else ''})"


_KEEP_TRAIN = 20_000  # train points a state dict keeps (about 400 KB of JSON at most)


def _curve_state(series: Any, keep: int | None) -> dict[str, list[float]]:
    """``{"steps": [...], "values": [...]}`` in append order, thinned evenly to ``keep`` points (the last 1,000 as logged)."""
    steps, values = series.steps.tolist(), series.values.tolist()
    if keep is not None and len(steps) > keep:
        tail = 1000
        head_n = len(steps) - tail
        stride = max(1, head_n // (keep - tail))
        steps = steps[:head_n:stride] + steps[head_n:]
        values = values[:head_n:stride] + values[head_n:]
    return {"steps": steps, "values": values}


def _save_reason(action: Action, guard: Guard) -> str:
    b = guard.best
    if action.save and b is not None:
        return f"new best {b.metric} {b.value:.6g} at step {b.step}: saving a checkpoint"
    return ""




__all__ = ["Action", "Guard", "Notifier", "Policy"]
