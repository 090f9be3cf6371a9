"""NaN/inf losses, and divergence: the loss well above its start or its best level, and not coming back.

Divergence is judged on the train loss (eval rising while train falls is
overfitting, another detector's job), on block medians so that single spikes
do not count, and on the *tail* of the run (its last 10 %) so that a loss
that blew up and recovered is an instability, not a divergence.

The levels and their thresholds are judged by :func:`trainguard.facts.train.judge_train`,
the same function the live guard stops on:

- error: the tail sits above the starting level by >= 30 % (the tiny run at
  LR 1.0: first log 98, then 140-260 for the rest of the run), or at twice its
  best level again; or the loss is at an absurd level for a token
  cross-entropy (> 20 nats: worse than guessing uniformly over any real
  vocabulary, ln(256k) = 12.5) when the run is known to be a language model;
- info: the tail gave back more than half of the progress made from the start
  to the best level, beyond noise, but stays under twice its best.
"""

from __future__ import annotations

import math

import numpy as np

from .._arrays import median
from ..facts import facts_of
from ..facts._view import clamp01, fmt, run_xy
from ..facts.train import ABOVE, ABSURD_CE, BLOWUP, DIVERGED, REGRESSED
from ..findings import Finding, Severity
from ..run import GRAD_NORM, Run


def detect(run: Run) -> list[Finding]:
    """``nan_loss`` (critical) for non-finite losses, and ``divergence`` for a train loss that blew up (facts.train)."""
    out = _nan(run)
    div = _divergence(run)
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


def _divergence(run: Run) -> Finding | None:
    t = facts_of(run).train_verdict
    if t is None:
        return None
    name = "train_loss"
    start, best, end, k, noise = t.start, t.best, t.end, t.tail_logs, t.noise
    ev: dict[str, object] = {
        "metric": name,
        "start_level": start,
        "best_level": best,
        "best_step": t.best_step,
        "end_level": end,
        "noise": noise,
    }
    grad = _grad_story(run)
    if t.kind == ABOVE and t.held:
        sev, kind = Severity.ERROR, "above_start"
        msg = (
            f"{name} diverged: its last {k} logs sit at ~{fmt(end)}, {end / start:.1f}x its starting level {fmt(start)}, "
            f"and do not recover (best {fmt(best)} at step {t.best_step}){grad}."
        )
    elif t.kind == DIVERGED and t.held:
        sev, kind = Severity.ERROR, "blew_up"
        msg = (
            f"{name} blew up: from its best {fmt(best)} (step {t.best_step}) to ~{fmt(end)} over its last {k} logs, "
            f"{end / max(best, 1e-12):.1f}x its best level{grad}."
        )
    elif end > ABSURD_CE and best > ABSURD_CE and end >= 0.7 * start:
        lm = _token_loss(run)
        sev, kind = (Severity.ERROR if lm else Severity.INFO), "absurd_level"
        msg = (
            f"{name} stays at ~{fmt(end)} (never below {fmt(best)})"
            + (", worse than guessing uniformly over any real vocabulary (ln 256k = 12.5): training diverged from the "
               "first steps (LR far too high?)." if lm else
               ": if this is a token cross-entropy, that is worse than guessing over any vocabulary; the loss type is "
               "not known from the log, so this is only a note.")
        )
    elif t.kind in (REGRESSED, DIVERGED, ABOVE):
        gain, lost = start - best, end - best
        if lost <= 3 * noise:
            return None
        frac = lost / gain if gain > 0 else float("inf")
        sev, kind = Severity.INFO, "regressed"
        msg = (
            f"{name} climbed back from its best {fmt(best)} (step {t.best_step}) to ~{fmt(end)} at the end "
            f"({(end / max(best, 1e-12) - 1):+.0%}, giving back {frac:.0%} of the progress since the start {fmt(start)}); "
            f"under {BLOWUP:g}x its best, so not a blow-up: lower the LR or look at the data order if it goes on."
        )
        ev["regress_fraction"] = round(frac, 3) if math.isfinite(frac) else None
    else:
        return None
    ev["kind"] = kind
    ev["ratio_to_start"] = end / start if start > 0 else None
    conf = clamp01(0.7 + 0.1 * min(3.0, (end - best) / max(noise, 1e-12) / 5))
    return Finding("divergence", sev, msg, t.best_step, t.last_step, ev, conf)


def _token_loss(run: Run) -> bool:
    """Whether the loss is known to be a token cross-entropy (a language model), so an absolute scale applies."""
    cfg = run.config
    if run.format.startswith(("hf_", "trl", "llamafactory")):
        return True  # the HF Trainer logs its model's cross-entropy for LM and classification heads
    if any(cfg.get(k) is not None for k in ("vocab_size", "model_name_or_path", "model_type", "base_model_name_or_path", "lora_r")):
        return True
    return any(("perplexity" in n or "ppl" in n) for n in run.history)


def _grad_story(run: Run) -> str:
    """", with grad norm 0.6 -> 12.4" when the grad norm grew along with the loss (independent evidence)."""
    _, g = run_xy(run, GRAD_NORM)
    if len(g) < 2:
        return ""
    a, b = float(median(g[: max(1, len(g) // 5)])), float(median(g[-max(1, len(g) // 5) :]))
    if a > 0 and b >= 3 * a:
        return f", with grad norm {fmt(a)} -> {fmt(b)}"
    return ""


__all__ = ["detect"]
