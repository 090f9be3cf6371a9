"""Compute spent after the best point (steps, hours, GPU-hours), whether the best checkpoint exists, what can go.

Seed 003: best eval at step 30 of 200, so 85 % of an ~11.7 h run on 8 GPUs
(~79 GPU-hours) came after it, and checkpoints exist only at 100 and 200.

Severity follows the overfitting verdict, because "after the best point" is
only waste when the best is real: steps after a best that is within the eval
noise (the tiny healthy run) are info; after a clear, persistent degradation
they are an error once they exceed half the run.
"""

from __future__ import annotations

import numpy as np

from ..facts import Best, facts_of
from ..facts._view import fmt, run_xy, saved_steps
from ..facts.overfit import LATE_TURN, NOT_LEARNING, STOPPED, TOO_FEW
from ..findings import Finding, Severity
from ..run import Run

# What eval did after the best, when that was not overfitting (the verdict's state says which)
_AFTER_BEST = {
    STOPPED: " (eval only wandered within its noise since)",
    LATE_TURN: " (eval turned up only in the last fifth of the run)",
    TOO_FEW: " (too few evals since to judge)",
    NOT_LEARNING: " (eval rose, but the train loss never improved: see divergence, not overfitting)",
}


def detect(run: Run, *, min_fraction: float = 0.05) -> list[Finding]:
    """``wasted_compute`` and ``best_checkpoint_not_saved`` findings."""
    f = facts_of(run)
    best = f.best
    if best is None:
        return []
    out: list[Finding] = []
    verdict = f.overfit
    over_sev = verdict.severity if verdict is not None and verdict.is_overfitting else None
    w = f.waste
    if w is not None and w.fraction >= min_fraction and w.steps > 0:
        if over_sev is Severity.ERROR and w.fraction >= 0.5:
            sev = Severity.ERROR
        elif over_sev in (Severity.ERROR, Severity.WARNING) and w.fraction >= 0.2:
            sev = Severity.WARNING
        else:
            sev = Severity.INFO
        cost = ""
        if w.hours is not None:
            cost = f", ~{w.hours:.3g} h"
            if w.gpu_hours is not None:
                cost += f" = {w.gpu_hours:.3g} GPU-hours on {w.gpus} GPU{'s' if (w.gpus or 1) > 1 else ''}"
                if w.gpus_assumed:
                    cost += " (GPU count unknown, 1 assumed)"
        note = "" if over_sev in (Severity.ERROR, Severity.WARNING) else _AFTER_BEST.get(
            verdict.state if verdict is not None else "", "")
        msg = (
            f"{w.steps} of {run.last_step} steps ({w.fraction:.0%}{cost}) ran after the best {best.metric} "
            f"{fmt(best.value)} at step {best.step}{note}."
        )
        if w.deletable_checkpoints:
            msg = msg[:-1] + f"; {len(w.deletable_checkpoints)} checkpoint(s) other than the best and the last can be deleted."
        ev = {
            "best_step": best.step,
            "best_value": best.value,
            "last_step": run.last_step,
            "steps": w.steps,
            "fraction": round(w.fraction, 4),
            "hours": w.hours,
            "gpu_hours": w.gpu_hours,
            "gpus": w.gpus,
            "gpus_assumed": w.gpus_assumed,
            "seconds_per_step": run.seconds_per_step(),
            "deletable_checkpoints": w.deletable_checkpoints,
        }
        out.append(Finding("wasted_compute", sev, msg, best.step, run.last_step, ev, 0.9 if over_sev else 0.5))
    nb = _not_saved(run, best, verdict.noise * abs(verdict.best_value) if verdict else 0.0, bool(verdict and f.eval and f.eval.higher))
    if nb is not None:
        out.append(nb)
    return out


def _not_saved(run: Run, best: Best, sigma: float, higher: bool) -> Finding | None:
    if best.checkpoint_saved is not False:
        return None
    saved, how = saved_steps(run)
    if saved is None:
        return None
    if best.step == run.last_step and run.finished is not False:
        return None  # the final state is the best one; the Trainer saves at the end when it saves at all
    st, v = run_xy(run, best.metric)
    nearest = None
    nearest_value = None
    if saved:
        arr = np.asarray(saved)
        nearest = int(arr[np.argmin(np.abs(arr - best.step))])
        # value of the closest eval at or before that checkpoint
        if len(st):
            j = int(np.searchsorted(st, nearest, side="right")) - 1
            if j >= 0:
                nearest_value = float(v[j])
    worse = None
    if nearest_value is not None and best.value != 0:
        worse = (nearest_value - best.value) / abs(best.value) * 100 * (-1 if higher else 1)
    if not saved:
        sev = Severity.ERROR
        where = "no checkpoint was saved at all"
    else:
        clearly = worse is not None and worse >= 2.0 and nearest_value is not None and abs(nearest_value - best.value) > 2 * sigma
        sev = Severity.ERROR if clearly else (Severity.WARNING if worse is None or worse > 0.1 else Severity.INFO)
        shown = ", ".join(str(s) for s in saved[:8]) + (" ..." if len(saved) > 8 else "")
        where = f"checkpoints exist only at steps {shown} ({how})"
        if nearest_value is not None:
            where += f"; the nearest, step {nearest}, has {best.metric} {fmt(nearest_value)}"
            if worse is not None:
                where += f" ({worse:+.1f}%)"
    msg = (
        f"The best {best.metric} {fmt(best.value)} at step {best.step} was never saved: {where}; "
        "align save_steps with eval_steps and set load_best_model_at_end=True."
    )
    ev = {
        "best_step": best.step,
        "best_value": best.value,
        "saved_steps": saved[:200],
        "how": how,
        "nearest_saved": nearest,
        "nearest_saved_value": nearest_value,
        "nearest_worse_pct": worse,
        "save_steps": run.config.num("save_steps"),
        "eval_steps": run.config.num("eval_steps"),
    }
    return Finding("best_checkpoint_not_saved", sev, msg, best.step, nearest, ev, 0.9 if how == "checkpoint folders" else 0.7)


__all__ = ["detect"]
