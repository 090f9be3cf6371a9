"""The facts layer: what a run means, computed once per Run and shared by every judgement.

``readers -> Run -> facts -> detectors -> findings -> diagnosis -> reporters``

A :class:`Facts` holds, lazily and cached:

- the eval metric that decides the best point, its direction, and its curve
  cleaned of the quirks of real logs (:mod:`.curves`);
- the best point and whether its checkpoint exists;
- the eval noise, from :mod:`.noise` (the one noise estimator);
- the train loss paired with each eval (median of the last five train losses
  logged at or before it: what the live guard sees at that eval too);
- the overfitting verdict (:mod:`.overfit`), the train-loss divergence
  verdict (:mod:`.train`), the LR schedule followed
  (:mod:`.schedule`) and the compute spent after the best point (:mod:`.waste`).

Detectors, the phases, the causes and the diagnosis read these instead of
recomputing them, so they can never disagree on one curve, and the diagnosis
never re-runs a detector. :func:`facts_of` caches the Facts on the Run and
recomputes them when the Run has grown (the live guard appends points).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..run import TRAIN_LOSS, Run
from ._view import epoch_at, saved_steps, xy
from .curves import EvalCurve, eval_curve, train_at
from .overfit import OverfitVerdict, judge_overfitting
from .train import TrainVerdict, assess_train
from .values import Best, LRSchedule, Waste


class Facts:
    """What one Run means. Every attribute is computed on first use and cached."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._xy: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def xy(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of the series ``name``: step order, finite, one point per step (see :func:`._view.xy`).

        Computed once per series and shared by every reader, so the arrays are
        read-only: a detector that wants to change one copies it.
        """
        got = self._xy.get(name)
        if got is None:
            st, v = xy(self.run.history.get_series(name))
            st.flags.writeable = False
            v.flags.writeable = False
            got = self._xy[name] = (st, v)
        return got

    @cached_property
    def eval(self) -> EvalCurve | None:
        """The judged eval curve (None when nothing was evaluated)."""
        return eval_curve(self.run)

    @cached_property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """Train loss ``(steps, values)``: step order, finite, one point per step."""
        return self.xy(TRAIN_LOSS)

    @cached_property
    def train_at_eval(self) -> np.ndarray | None:
        """The train level paired with each eval point (NaN where no train loss was logged before it)."""
        ev = self.eval
        st, tv = self.train
        if ev is None or not len(tv):
            return None
        return train_at(st, tv, ev.steps)

    @cached_property
    def train_verdict(self) -> TrainVerdict | None:
        """The train-loss divergence verdict (None with fewer than 3 train points)."""
        st, tv = self.train
        return assess_train(st, tv)

    @cached_property
    def last_step(self) -> int | None:
        return self.run.last_step

    @cached_property
    def overfit(self) -> OverfitVerdict | None:
        """The overfitting verdict on the judged eval curve (None without evals)."""
        ev = self.eval
        if ev is None or not len(ev):
            return None
        t = self.train_verdict
        return judge_overfitting(ev.steps, ev.values, higher=ev.higher, run_last_step=self.last_step,
                                 train_at_eval=self.train_at_eval, train_learned=None if t is None else t.learned)

    @cached_property
    def best(self) -> Best | None:
        """The best eval point with its epoch and save status; the train-loss minimum when there is no eval."""
        ev = self.eval
        run = self.run
        if ev is not None and len(ev):
            i = int(np.argmax(ev.values) if ev.higher else np.argmin(ev.values))
            name, step, value = ev.metric, int(ev.steps[i]), float(ev.values[i])
        else:
            st, v = self.train
            if not len(v):
                return None
            i = int(np.argmin(v))
            name, step, value = "train_loss", int(st[i]), float(v[i])
        saved, _ = saved_steps(run)
        rec = run.best_recorded or {}
        path = None
        if rec.get("step") == step:
            is_saved: bool | None = True
            path = rec.get("checkpoint")
        elif saved is None:
            is_saved = None
        else:
            is_saved = step in saved
        if step in run.checkpoints:
            path = run.checkpoints[step].path
        return Best(metric=name, step=step, value=value, epoch=epoch_at(run, step), checkpoint_saved=is_saved,
                    checkpoint_path=path)

    @cached_property
    def schedule(self) -> LRSchedule:
        from .schedule import infer_schedule

        return infer_schedule(self.run)

    @cached_property
    def waste(self) -> Waste | None:
        from .waste import compute_waste

        return compute_waste(self.run, self.best)


def _key(run: Run) -> tuple:
    """What a Facts depends on: every series' size and last step, the checkpoints and the config (which grow, never shrink).

    Each series' last logged step stands in for ``run.last_step``, which is a
    scan of every step of every series: this key is taken on every
    :func:`facts_of` call, tens of times a diagnosis, and the scans cost 9 ms
    on a log of a million points.
    """
    series = tuple((k, len(s), int(s.steps[-1]) if len(s) else None) for k, s in run.history.items())
    return (series, len(run.checkpoints), len(run.config), run.best_recorded is not None)


def facts_of(run: Run) -> Facts:
    """The Facts of ``run``, cached on it; recomputed when the run has grown or its config changed."""
    key = _key(run)
    cached = run.__dict__.get("_facts")
    if cached is not None and cached[0] == key:
        return cached[1]
    f = Facts(run)
    run.__dict__["_facts"] = (key, f)
    return f


__all__ = ["Best", "EvalCurve", "Facts", "LRSchedule", "OverfitVerdict", "TrainVerdict", "Waste", "facts_of"]
