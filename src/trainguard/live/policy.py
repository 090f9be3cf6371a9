"""The live Policy: the guard's facts in, one Action out (continue, alert, save or stop) with its reason.

Decide, then act (the Lightning lesson): :class:`Tracker` keeps O(1) running
state (best eval, evals since best, the train-loss levels), and
:meth:`Policy.decide` is a pure function of that state and of the one
overfitting verdict (:func:`trainguard.facts.overfit.judge_overfitting`, the
same judgement ``analyze`` and the phases use). It returns an
:class:`Action` whose ``reason`` is one sentence with the numbers. The Guard
and the framework callbacks only apply it.

The overfitting stop (chosen on ``bench/stopping.py``, see its table):

- the verdict is **error**: eval's level (median of the last three evals, so
  one unlucky eval can neither trigger nor block it) is 10 % above its best,
  or half the run's improvement is undone, held over at least three evals,
  beyond 2x the eval noise, with the best before the last fifth of the run so
  far (which acts as a patience that grows with the run);
- or the verdict is **warning** (3 %) and independent evidence says waiting
  cannot help: the train loss has fallen by half since the best (the model is
  memorizing) or is rising too (it got worse as a whole);
- and, when the planned length is known (``max_steps``, epochs, a tqdm total;
  :meth:`Guard.set_plan`), at least ``min_progress`` (10 %) of it has run, so
  a bump during the early descent never stops a job.

The rise must also have lasted at least ``hold`` (1x) as many steps as the
run took to reach its best (no stop before twice the best step): the longer a
run kept improving, the longer a wobble after its best can be (a noisy LSTM
eval curve rose 11 % for three evals after step 6,000 and then improved by a
quarter; a Keras CNN's eval jumped 4x after epoch 6 and ended 20x lower), and
train loss must not be rising too (then it is an instability, judged on the
train loss). On the replayed real runs a hold of 0.5 or 0.75 kept a
checkpoint 20x worse than the best on that CNN; 1.0 loses nothing anywhere
and saves as much median compute on the overfitting runs.

Divergence is the facts layer's train verdict
(:func:`trainguard.facts.train.assess_train`: the train loss 1.3x its start,
or twice its best level again, and staying there), the one ``analyze`` gives;
it and NaN/inf stop at once by default: nothing is gained by training on.
A blow-up must also outlast its own measure: the train verdict still says so
after as many more logs as its end level is a median of (the tail, 10 % of
the logs, at least five), so a tail that is all one bad stretch never stops a
run (a Keras CNN whose loss rose from 0.29 to 0.71 over six epochs and then
fell to 0.03). Independent evidence can hold a divergence stop: while the latest eval is
still the best one, the model is learning whatever the train loss does (a
speech fine-tune whose per-step loss rose from 0.27 to 0.97 in its first 150
steps while eval fell at every eval).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import GuardError
from ..facts.overfit import ERROR_RISE, IMPROVING, OVERFITTING, OverfitVerdict
from ..facts.train import ABOVE, TrainVerdict
from ..findings import Finding, Severity

KINDS = ("continue", "alert", "save", "stop")


@dataclass(frozen=True)
class Action:
    """What the guard says after one logged point.

    ``stop`` and ``save`` are what callbacks apply (``save`` is True on a new
    best eval, so the best checkpoint always exists on disk); ``alert`` asks
    for a notification. ``kind`` is the strongest of them: stop > save > alert
    > continue. ``reason`` is one sentence with the numbers.
    """

    step: int
    stop: bool = False
    save: bool = False
    alert: bool = False
    reason: str = ""
    findings: tuple[Finding, ...] = ()

    @property
    def kind(self) -> str:
        if self.stop:
            return "stop"
        if self.save:
            return "save"
        if self.alert:
            return "alert"
        return "continue"

    def __bool__(self) -> bool:
        """True when anything needs doing (not a plain continue)."""
        return self.stop or self.save or self.alert


@dataclass
class Tracker:
    """Running state of one monitored eval metric and the train loss; O(1) per point.

    Every field is a plain value (deques become lists in :meth:`state_dict`),
    so a resumed run restores exactly where it stopped.
    """

    mode: str = "min"
    # eval side
    evals: int = 0
    best: float | None = None
    best_step: int | None = None
    best_epoch: float | None = None
    since_best: int = 0
    last_eval: float | None = None
    last_eval_step: int | None = None
    train_at_best: float | None = None
    # train side
    trains: int = 0
    train_level: float | None = None  # median of the last five train losses: one spike does not move it
    train_best_level: float | None = None
    train_recent: deque[float] = field(default_factory=lambda: deque(maxlen=5))
    train_start: list[float] = field(default_factory=list)
    blowup_at: int | None = None  # train logs seen when the train verdict first said "blew up" (None: it does not)
    # non-finite values: (metric, step) of the latest one
    nan_metric: str | None = None
    nan_step: int | None = None

    def sign(self) -> float:
        return 1.0 if self.mode == "min" else -1.0

    def worse_by(self, value: float | None = None) -> float:
        """How much worse than the best the (last) eval is, relative to |best| (0 when better or unknown)."""
        v = self.last_eval if value is None else value
        if v is None or self.best is None or self.best == 0:
            return 0.0
        return max(0.0, self.sign() * (v - self.best) / abs(self.best))

    def train_base(self) -> float | None:
        """The starting train loss: the highest of the first five (an untrained model's loss is its worst)."""
        return max(self.train_start) if self.train_start else None

    # -- updates -----------------------------------------------------------
    def on_train(self, step: int, loss: float) -> None:
        """Feed one train loss (kept for the train level shown in messages; divergence is the facts' verdict)."""
        if not math.isfinite(loss):
            self.nan_metric, self.nan_step = "train_loss", step
            return
        self.trains += 1
        if len(self.train_start) < 5:
            self.train_start.append(loss)
        self.train_recent.append(loss)
        self.train_level = statistics.median(self.train_recent)
        if len(self.train_recent) == self.train_recent.maxlen and (
                self.train_best_level is None or self.train_level < self.train_best_level):
            self.train_best_level = self.train_level

    def on_eval(self, step: int, value: float, epoch: float | None = None) -> bool:
        """Feed one eval value; returns True when it is a new best."""
        if not math.isfinite(value):
            self.nan_metric, self.nan_step = "eval", step
            return False
        self.evals += 1
        self.last_eval, self.last_eval_step = value, step
        if self.best is None or self.sign() * (value - self.best) < 0:
            self.best, self.best_step, self.best_epoch = value, step, epoch
            self.since_best = 0
            self.train_at_best = self.train_level
            return True
        self.since_best += 1
        return False

    # -- persistence -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, (deque, list)) else v
        return out

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Tracker:
        """Restore; keys missing from an older dict take their defaults, unknown keys are ignored."""
        t = cls()
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.name == "train_recent":
                v = deque((float(x) for x in v), maxlen=5)
            elif f.name == "train_start":
                v = [float(x) for x in v]
            setattr(t, f.name, v)
        return t


@dataclass(frozen=True)
class Policy:
    """What the guard does about what it sees. Every threshold is keyword-configurable.

    ``stop_on``: codes that stop training (others alert). ``alert_only``:
    never stop, alert instead (:meth:`alert_only` builds one). ``monitor`` /
    ``mode``: the eval metric and its direction (``eval_accuracy``, "max").
    ``detector_alerts``: warning-or-worse findings of the periodic full
    detector pass become alerts; ``stop_on_detectors`` lets their error-level
    findings stop too (off by default, so the stop decision is exactly the
    benchmarked incremental rule).
    """

    stop_on: frozenset[str] = frozenset({"overfitting", "divergence", "nan_loss"})
    alert_only_: bool = False
    monitor: str = "eval_loss"
    mode: str = "min"
    min_evals: int = 3
    min_progress: float = 0.1
    hold: float = 1.0
    evidence_drop: float = 0.5
    save_best: bool = True
    detector_alerts: bool = True
    alert_severity: Severity = Severity.WARNING
    stop_on_detectors: bool = False

    def __init__(self, stop_on: Any = None, alert_only: bool = False, **kw: Any) -> None:
        names = {f.name for f in fields(Policy)} - {"stop_on", "alert_only_"}
        bad = sorted(set(kw) - names)
        if bad:
            raise GuardError(f"unknown Policy option(s) {', '.join(bad)}; known: {', '.join(sorted(names))}")
        codes = frozenset({"overfitting", "divergence", "nan_loss"} if stop_on is None else _codes(stop_on))
        object.__setattr__(self, "stop_on", codes)
        object.__setattr__(self, "alert_only_", bool(alert_only))
        for f in fields(Policy):
            if f.name in kw:
                object.__setattr__(self, f.name, kw[f.name])
            elif f.name not in ("stop_on", "alert_only_"):
                object.__setattr__(self, f.name, f.default)
        if self.mode not in ("min", "max"):
            raise GuardError(f"Policy mode must be 'min' or 'max', not {self.mode!r}")
        if self.min_evals < 1 or not self.hold >= 0:
            raise GuardError(f"Policy min_evals must be >= 1 and hold >= 0 (got {self.min_evals}, {self.hold!r})")
        if not 0 <= self.min_progress < 1 or not 0 < self.evidence_drop < 1:
            raise GuardError(f"Policy min_progress must be in [0, 1) and evidence_drop in (0, 1) (got "
                             f"{self.min_progress!r}, {self.evidence_drop!r})")
        if not isinstance(self.alert_severity, Severity):
            object.__setattr__(self, "alert_severity", Severity(self.alert_severity))

    @classmethod
    def alert_only(cls, **kw: Any) -> Policy:
        """A policy that never stops training: every stop becomes an alert."""
        return cls(alert_only=True, **kw)

    @property
    def is_alert_only(self) -> bool:
        return self.alert_only_

    def new_tracker(self) -> Tracker:
        return Tracker(mode=self.mode)

    # -- the decision --------------------------------------------------------
    def decide(self, t: Tracker, step: int, *, new_best: bool, is_eval: bool,
               detector_findings: tuple[Finding, ...] = (), verdict: OverfitVerdict | None = None,
               train_verdict: TrainVerdict | None = None, planned_steps: int | None = None) -> Action:
        """The action for the point just fed to ``t`` (pure: reads its arguments, changes nothing).

        ``verdict`` is the overfitting verdict on the eval curve so far (the
        Guard computes it at each eval); ``train_verdict`` the train-loss
        divergence verdict when it was just re-assessed; ``planned_steps`` the
        planned length of the run, when known.
        """
        stops: list[Finding] = []
        alerts: list[Finding] = []
        if t.nan_step == step:
            stops.append(Finding("nan_loss", Severity.CRITICAL, f"{t.nan_metric} is not finite at step {step}.",
                                 start_step=step, end_step=step, evidence={"metric": t.nan_metric}))
        eval_improving = verdict is not None and verdict.state == IMPROVING
        held = (train_verdict is not None and train_verdict.blew_up and t.blowup_at is not None
                and t.trains - t.blowup_at >= train_verdict.tail_logs)
        if train_verdict is not None and held and not eval_improving:
            tv = train_verdict
            what = f"{tv.end / tv.start:.1f}x its start {tv.start:.4g}" if tv.kind == ABOVE else \
                f"{tv.end / max(tv.best, 1e-12):.1f}x its best level {tv.best:.4g} (step {tv.best_step})"
            stops.append(Finding(
                "divergence", Severity.ERROR,
                f"train loss has blown up: its last {tv.tail_logs} logs sit at ~{tv.end:.4g}, {what}, at step {step}.",
                start_step=tv.best_step, end_step=step,
                evidence={"start": tv.start, "best_level": tv.best, "end_level": tv.end, "kind": tv.kind}))
        if is_eval and not new_best and verdict is not None:
            f = self._overfitting(t, step, verdict, planned_steps)
            if f is not None:
                stops.append(f)
        for f in detector_findings:
            if self.stop_on_detectors and f.severity >= Severity.ERROR and f.code in self.stop_on:
                stops.append(f)
            elif self.detector_alerts and f.severity >= self.alert_severity:
                alerts.append(f)
        stop_now = [f for f in stops if f.code in self.stop_on]
        alerts = [f for f in stops if f.code not in self.stop_on] + alerts
        save = bool(new_best and self.save_best)
        if stop_now and not self.alert_only_:
            return Action(step, stop=True, save=False, alert=True, reason=_stop_reason(stop_now[0], t),
                          findings=tuple(stop_now + alerts))
        if stop_now:  # alert-only: the same finding, reported instead of acted on
            alerts = stop_now + alerts
        if alerts:
            reason = f"alert ({alerts[0].code}): {alerts[0].message}"
        elif save:
            reason = f"new best {self.monitor} {t.best:.6g} at step {step}: saving a checkpoint"
        else:
            reason = ""
        return Action(step, stop=False, save=save, alert=bool(alerts), reason=reason, findings=tuple(alerts))

    def gate(self, t: Tracker) -> float:
        """The relative worsening of eval's level that stops on its own (the verdict's error floor, 10 %).

        The same for every tracker: the sinks show ``gate(t) - t.worse_by()`` as the distance to a stop.
        """
        del t
        return ERROR_RISE

    def _overfitting(self, t: Tracker, step: int, v: OverfitVerdict, planned: int | None) -> Finding | None:
        """An error-level Finding when the one verdict says stop now (see the module docstring), else None."""
        if t.evals < self.min_evals or v.state != OVERFITTING or v.severity is None:
            return None
        if planned and step < self.min_progress * planned:
            return None  # too early in a run of known length: the descent may still be settling
        if v.train_rising:
            return None  # train got worse too: an instability or a divergence, which the train verdict judges
        if step - v.best_step < self.hold * v.best_step:
            return None  # the rise has not yet lasted as long as the run took to reach its best
        memorizing = (v.train_at_best is not None and v.train_last is not None and v.train_at_best > 0
                      and v.train_last <= (1 - self.evidence_drop) * v.train_at_best)
        if v.severity < Severity.ERROR and not memorizing:
            return None
        code = "overfitting"
        why = ""
        if v.severity < Severity.ERROR:
            why = (f"; train loss fell {v.train_at_best:.4g} -> {v.train_last:.4g} since the best (memorizing), "
                   "so waiting cannot help")
        elif v.train_at_best is not None and v.train_last is not None:
            why = f", while train loss went {v.train_at_best:.4g} -> {v.train_last:.4g}"
        msg = (f"{self.monitor} is {100 * v.rise:+.1f}% above its best {v.best_value:.4g} (step {v.best_step}) over the "
               f"{v.evals_after} evals since (last {v.last_value:.4g} at step {step}; {v.z:.1f}x the eval noise "
               f"±{100 * v.noise:.1f}%){why}.")
        return Finding(code, Severity.ERROR, msg, start_step=v.best_step, end_step=step,
                       evidence={"metric": self.monitor, "value": v.last_value, "best": v.best_value,
                                 "best_step": v.best_step, "worse_pct": 100 * v.rise, "gate_pct": 100 * ERROR_RISE,
                                 "evals_since_best": v.evals_after, "noise_pct": 100 * v.noise,
                                 "memorizing": memorizing, "train_rising": v.train_rising},
                       confidence=min(1.0, 0.6 + 0.1 * min(v.z, 4.0)))


def _codes(v: Any) -> set[str]:
    from ..findings import CODES

    items = v.split(",") if isinstance(v, str) else list(v)
    out = {str(c).strip() for c in items if str(c).strip()}
    bad = sorted(out - set(CODES))
    if bad:
        raise GuardError(f"unknown finding code(s) in stop_on: {', '.join(bad)}; known: {', '.join(CODES)}")
    return out


def _stop_reason(f: Finding, t: Tracker) -> str:
    keep = f" Best checkpoint: step {t.best_step} ({t.best:.6g})." if t.best_step is not None and t.best is not None else ""
    return f"stop ({f.code}): {f.message}{keep}"


__all__ = ["KINDS", "Action", "Policy", "Tracker"]
