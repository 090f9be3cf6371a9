"""No eval data: without an eval metric, overfitting, the best checkpoint and the waste cannot be judged.

Warning when that blindness matters (the run spans more than one epoch, or
its train loss went near zero, where memorization cannot be ruled out); info
otherwise. Fewer than 3 eval points is reported too (info): one or two points
show no trend.
"""

from __future__ import annotations

from ..facts._smoothing import head_level, tail_level
from ..facts._view import fmt, judged_metrics, run_xy, steps_per_epoch, train_xy
from ..findings import Finding, Severity
from ..run import Run


def detect(run: Run, *, min_points: int = 3) -> list[Finding]:
    """A ``no_eval_data`` finding when no eval metric (or too few eval points) was logged."""
    names = judged_metrics(run)
    st, v = train_xy(run)
    last = run.last_step
    if not names:
        if not len(v) and last is None:
            return []
        spe = steps_per_epoch(run)
        epochs = (last / spe) if spe and last else None
        near_zero = len(v) >= 4 and tail_level(v, 0.05, 3) < 0.05 * max(head_level(v, 0.05, 3), 1e-12)
        strategy = run.config.get("eval_strategy")
        sev = Severity.WARNING if near_zero or (epochs is not None and epochs > 1) else Severity.INFO
        why = []
        if epochs is not None:
            why.append(f"{epochs:.3g} epochs")
        if near_zero:
            why.append(f"train loss down to {fmt(tail_level(v, 0.05, 3))}")
        cfg = f" (eval_strategy={strategy})" if strategy else ""
        msg = (
            f"No eval metric was logged{cfg}"
            + (f" over {', '.join(why)}" if why else "")
            + ": overfitting, the best checkpoint and the compute wasted after it cannot be judged; "
            "set eval_strategy='steps' with an eval_steps that divides save_steps."
        )
        ev = {
            "eval_points": 0,
            "unknown": ["overfitting", "best_checkpoint", "wasted_compute"],
            "epochs": epochs,
            "train_near_zero": bool(near_zero),
            "eval_strategy": strategy,
        }
        return [Finding("no_eval_data", sev, msg, int(st[0]) if len(st) else None, last, ev, 0.95)]
    counts = {n: len(run_xy(run, n)[0]) for n in names}
    most = max(counts.values())
    if most >= min_points:
        return []
    msg = (
        f"Only {most} eval point{'s' if most != 1 else ''} ({', '.join(names)}): too few to see a trend, so overfitting "
        "and the best checkpoint cannot be judged; evaluate more often (smaller eval_steps)."
    )
    ev = {"eval_points": most, "metrics": counts, "unknown": ["overfitting", "best_checkpoint"], "kind": "too_few"}
    return [Finding("no_eval_data", Severity.INFO, msg, None, last, ev, 0.9)]


__all__ = ["detect"]
