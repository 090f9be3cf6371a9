"""The live Policy: incremental state in, one Action out (continue, alert, save or stop) with its reason.

Decide, then act (the Lightning lesson): :class:`Tracker` keeps O(1) running
state (best eval, evals since best, a short window for the noise, a train-loss
EMA); :meth:`Policy.decide` is a pure function of that state which returns an
:class:`Action` whose ``reason`` is one sentence with the numbers. The Guard
and the framework callbacks only apply it.

The overfitting stop rule (chosen on ``bench/stopping.py``, see its table):

    stop when the eval has not improved for ``patience`` evals (2) AND the
    current eval is worse than the best by more than
    ``max(tolerance, noise_k × noise)`` (1% and 2× the noise),
    and at least ``min_evals`` (3) evals have been seen.

It is patience-k with a significance gate. The gate is what keeps it from
stopping in a flat, noisy plateau (where patience-3 stops and loses up to a
percent of eval loss, or stops a run that would still improve); the short
patience is what makes it stop sooner than patience-3 once the curve has
clearly turned. Eval loss is compared relative to the best (scale-free), so
the same defaults hold for a loss of 0.14 and of 2.4. ``noise`` is the robust
scale (MAD) of second differences of log-eval over the last ``noise_window``
evals: on a smooth curve it is ~0, on a jittery one it widens the gate. It
also sees curvature, which is what we want: early in training (fast descent,
high LR) the gate is wide, so an eval bump there does not stop a healthy run
(the two tiny "healthy" curves in the bench: noise_k=0 stopped them at step
100 with 5-8% regret; noise_k=2 does not, and stops the overfitting runs as
early). What was tuned, on the bench's 21 curves: patience 2 (1 stops noisy
plateaus, 3 is patience-3), tolerance 1% (0-5% gave the same overfit regret;
5% loses saved compute), noise_k 2 (0 stops healthy runs early). The sweep is
printed by ``bench/stopping.py --sweep``.

Divergence (the median of the last five train losses above the starting loss
and above ``1 + divergence_ratio`` times its best level, for
``divergence_patience`` logs in a row) and NaN/inf stop at once by
default: nothing is gained by training on.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import GuardError
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


_WINDOW = 8


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
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    train_at_best: float | None = None
    # train side
    trains: int = 0
    train_level: float | None = None  # median of the last five train losses: one spike does not move it
    train_best_level: float | None = None
    train_recent: deque[float] = field(default_factory=lambda: deque(maxlen=5))
    train_start: list[float] = field(default_factory=list)
    div_streak: int = 0
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

    def noise(self) -> float:
        """Robust relative noise of the eval: MAD of second differences of log-eval, scaled to one point's sd."""
        r = [v for v in self.recent if v > 0]
        if len(r) < 4:
            return 0.0
        lg = [math.log(v) for v in r]
        d2 = [lg[i + 1] - 2 * lg[i] + lg[i - 1] for i in range(1, len(lg) - 1)]
        # a second difference of iid noise has sd = sqrt(6)·sigma; 1.4826·MAD estimates its sd
        return 1.4826 * statistics.median(abs(x) for x in d2) / math.sqrt(6.0)

    def train_base(self) -> float | None:
        """The starting train loss: the highest of the first five (an untrained model's loss is its worst)."""
        return max(self.train_start) if self.train_start else None

    # -- updates -----------------------------------------------------------
    def on_train(self, step: int, loss: float, *, divergence_ratio: float) -> None:
        """Feed one train loss. Divergence = the level is above the starting loss AND ``1 + divergence_ratio``
        times the best level reached: a run that learned and then blew up, not one that never learned."""
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
        base, best = self.train_base(), self.train_best_level
        if (len(self.train_start) >= 5 and base is not None and best is not None and best > 0
                and self.train_level > base and self.train_level > best * (1 + divergence_ratio)):
            self.div_streak += 1
        else:
            self.div_streak = 0

    def on_eval(self, step: int, value: float, epoch: float | None = None) -> bool:
        """Feed one eval value; returns True when it is a new best."""
        if not math.isfinite(value):
            self.nan_metric, self.nan_step = "eval", step
            return False
        self.evals += 1
        self.last_eval, self.last_eval_step = value, step
        self.recent.append(value)
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
            if f.name == "recent":
                v = deque((float(x) for x in v), maxlen=_WINDOW)
            elif f.name == "train_recent":
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
    patience: int = 2
    tolerance: float = 0.01
    noise_k: float = 2.0
    divergence_ratio: float = 1.0
    divergence_patience: int = 3
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
        if self.patience < 1 or self.min_evals < 1:
            raise GuardError(f"Policy patience and min_evals must be >= 1 (got {self.patience}, {self.min_evals})")
        if not self.tolerance >= 0:
            raise GuardError(f"Policy tolerance must be >= 0, not {self.tolerance!r}")
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
               detector_findings: tuple[Finding, ...] = ()) -> Action:
        """The action for the point just fed to ``t`` (pure: reads ``t``, changes nothing)."""
        stops: list[Finding] = []
        alerts: list[Finding] = []
        if t.nan_step == step:
            stops.append(Finding("nan_loss", Severity.CRITICAL, f"{t.nan_metric} is not finite at step {step}.",
                                 start_step=step, end_step=step, evidence={"metric": t.nan_metric}))
        if t.div_streak >= self.divergence_patience and t.train_level is not None:
            base = t.train_base() or 0.0
            stops.append(Finding(
                "divergence", Severity.ERROR,
                f"train loss (median of the last 5: {t.train_level:.4g}) is above its start {base:.4g} and "
                f"{1 + self.divergence_ratio:g}x its best level {t.train_best_level:.4g} for {t.div_streak} logs at step {step}.",
                start_step=step, end_step=step,
                evidence={"train_level": t.train_level, "start": base, "best_level": t.train_best_level,
                          "logs_above": t.div_streak}))
        if is_eval and not new_best:
            f = self._overfitting(t, step)
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
        """The relative worsening that counts as significant now: max(tolerance, noise_k × noise)."""
        return max(self.tolerance, self.noise_k * t.noise()) if self.noise_k else self.tolerance

    def _overfitting(self, t: Tracker, step: int) -> Finding | None:
        if t.evals < self.min_evals or t.since_best < self.patience or t.best is None or t.last_eval is None:
            return None
        worse = t.worse_by()
        gate = self.gate(t)
        if worse <= gate:
            return None
        # Train loss rising too means the whole model got worse: divergence, not overfitting.
        rising_train = (t.train_at_best is not None and t.train_level is not None and t.train_at_best > 0
                        and t.train_level > t.train_at_best * 1.10)
        code = "divergence" if rising_train else "overfitting"
        what = "train loss is rising too" if rising_train else "while train loss keeps falling" if t.train_level is not None else ""
        msg = (f"{self.monitor} {t.last_eval:.4g} at step {step} is {100 * worse:.1f}% worse than the best "
               f"{t.best:.4g} (step {t.best_step}) after {t.since_best} evals without improvement "
               f"(gate {100 * gate:.1f}%){', ' + what if what else ''}.")
        return Finding(code, Severity.ERROR, msg, start_step=t.best_step, end_step=step,
                       evidence={"metric": self.monitor, "value": t.last_eval, "best": t.best, "best_step": t.best_step,
                                 "worse_pct": 100 * worse, "gate_pct": 100 * gate, "evals_since_best": t.since_best},
                       confidence=min(1.0, worse / (2 * gate)) if gate > 0 else 1.0)


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
