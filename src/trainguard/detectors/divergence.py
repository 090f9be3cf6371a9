"""NaN/inf losses, and divergence: the loss well above its start or its best level, and not coming back.

Divergence is judged on the train loss (eval rising while train falls is
overfitting, another detector's job), on block medians so that single spikes
do not count, and on the *tail* of the run (its last 10 %) so that a loss
that blew up and recovered is an instability, not a divergence.

- error: the tail sits above the starting level by >= 30 % (the tiny run at
  LR 1.0: first log 98, then 140-260 for the rest of the run), or the loss is
  at an absurd level for a cross-entropy (> 20 nats: worse than guessing
  uniformly over any real vocabulary, ln(256k) = 12.5) and not falling;
- warning: the tail gave back more than half of the progress made from the
  start to the best level, beyond noise.
"""

from __future__ import annotations

import math

import numpy as np

from ..findings import Finding, Severity
from ..run import Run
from ._smoothing import block_reduce, diff_noise, head_level, rolling_median, tail_level
from ._view import clamp01, fmt, xy

_ABSURD_CE = 20.0  # nats/token; ln(vocab) for the largest vocabularies is ~12.5


def detect(
    run: Run,
    *,
    above_start: float = 1.3,
    regress_fraction: float = 0.5,
) -> list[Finding]:
    """``nan_loss`` (critical) for non-finite losses, and ``divergence`` for a loss that blew up and stayed up."""
    out = _nan(run)
    div = _divergence(run, above_start, regress_fraction)
    if div is not None:
        out.append(div)
    return out


def _loss_names(run: Run) -> list[str]:
    names = [n for n in ("train_loss", "eval_loss") if n in run.history]
    names += [n for n in run.history if n not in names and n.endswith("loss") and len(run.history[n])]
    return names


def _nan(run: Run) -> list[Finding]:
    out = []
    for name in _loss_names(run):
        s = run.history[name].sorted()
        bad = ~np.isfinite(s.values)
        if not bad.any():
            continue
        idx = np.nonzero(bad)[0]
        first = int(s.steps[idx[0]])
        kinds = sorted({"nan" if math.isnan(x) else ("inf" if x > 0 else "-inf") for x in s.values[idx[:1000]]})
        after = s.values[idx[0] + 1 :]
        recovered = bool(len(after)) and bool(np.isfinite(after[-min(3, len(after)) :]).all())
        prev = s.values[: idx[0]]
        prev = prev[np.isfinite(prev)]
        last_ok = float(prev[-1]) if len(prev) else None
        msg = (
            f"{name} became {'/'.join(kinds)} at step {first} ({len(idx)} of {len(s)} points"
            f"{'; later points are finite again' if recovered else ''}); the last finite value was {fmt(last_ok)}."
        )
        ev = {
            "metric": name,
            "first_step": first,
            "count": len(idx),
            "points": len(s),
            "kinds": kinds,
            "last_finite_value": last_ok,
            "recovered": recovered,
        }
        out.append(Finding("nan_loss", Severity.CRITICAL, msg, first, int(s.steps[idx[-1]]), ev, 1.0))
    return out


def _divergence(run: Run, above_start: float, regress_fraction: float) -> Finding | None:
    name = "train_loss" if len(run.history.get_series("train_loss")) else None
    if name is None:
        return None
    st, v = xy(run.history[name])
    if len(v) < 6:
        return None
    st, v = block_reduce(st, v, 2048)
    sm = rolling_median(v, 5)
    start = max(head_level(v, 0.05, 2), float(v[0]))
    end = tail_level(v, 0.1, 3)
    best_i = int(np.argmin(sm))
    best = float(sm[best_i])
    noise = diff_noise(v)
    k = max(3, len(v) // 10)
    tail = v[-k:]
    ev: dict[str, object] = {
        "metric": name,
        "start_level": start,
        "best_level": best,
        "best_step": int(st[best_i]),
        "end_level": end,
        "noise": noise,
    }
    if start > 0 and end >= above_start * start and float(np.mean(tail > start)) >= 0.8:
        sev, kind = Severity.ERROR, "above_start"
        msg = (
            f"{name} diverged: its last {k} logs sit at ~{fmt(end)}, {end / start:.1f}x its starting level {fmt(start)}, "
            f"and do not recover (best {fmt(best)} at step {int(st[best_i])})."
        )
    elif end > _ABSURD_CE and best > _ABSURD_CE and end >= 0.7 * start:
        sev, kind = Severity.ERROR, "absurd_level"
        msg = (
            f"{name} stays at ~{fmt(end)} (never below {fmt(best)}), worse than guessing uniformly over any real vocabulary "
            f"(ln 256k = 12.5): training diverged from the first steps (LR far too high?)."
        )
    else:
        gain = start - best
        lost = end - best
        if gain <= 0 or lost <= max(3 * noise, 0.02 * max(abs(best), 1e-12)):
            return None
        frac = lost / gain
        if frac < regress_fraction or float(np.mean(tail > best + 0.5 * lost)) < 0.8:
            return None
        sev, kind = Severity.WARNING, "regressed"
        msg = (
            f"{name} climbed back from its best {fmt(best)} (step {int(st[best_i])}) to ~{fmt(end)} at the end, "
            f"giving back {frac:.0%} of the progress made since the start ({fmt(start)})."
        )
        ev["regress_fraction"] = round(frac, 3)
    ev["kind"] = kind
    ev["ratio_to_start"] = end / start if start > 0 else None
    conf = clamp01(0.7 + 0.1 * min(3.0, (end - best) / max(noise, 1e-12) / 5))
    return Finding("divergence", sev, msg, int(st[best_i]), int(st[-1]), ev, conf)


__all__ = ["detect"]
