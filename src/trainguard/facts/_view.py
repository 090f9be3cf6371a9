"""Views of a Run that several detectors share: clean series, the eval metric to judge, epochs, saves.

Kept apart from :mod:`._smoothing` (pure numerics) because these read the Run
and its config: which eval metric counts, whether higher is better, how many
steps an epoch holds, at which steps checkpoints exist.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..run import EPOCH, EVAL_LOSS, LEARNING_RATE, TRAIN_LOSS, Run, Series

# Eval keys that describe the eval itself, not the model: never judged.
_META = re.compile(r"(runtime|per_second|samples|steps_per|gen_len|epoch|flos|num_tokens|_time$|memory)")
# Metrics where larger is better (bounded scores): their best is the maximum.
_HIGHER = re.compile(r"(acc|f1|rouge|bleu|exact|match|precision|recall|auc|score|reward|map|ndcg|mrr|pass|win|chrf|meteor|bertscore|spearman|pearson|corr)")


def xy(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` ordered by step, finite only, one point per step (the last logged wins).

    The series' own arrays when there is nothing to drop (the usual case: a
    clean log of a million points need not be copied twice); callers never
    write to them (:meth:`trainguard.facts.Facts.xy` hands them out read-only).
    """
    if not len(series):
        return np.empty(0, np.int64), np.empty(0)
    s = series.sorted()
    st, v = s.steps, s.values
    m = np.isfinite(v)
    if not m.all():
        st, v = st[m], v[m]
    if len(st) > 1:
        repeated = st[1:] == st[:-1]
        if repeated.any():
            keep = np.ones(len(st), bool)
            keep[:-1] = ~repeated
            st, v = st[keep], v[keep]
    return st, v


def run_xy(run: Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`xy` of the run's series ``name``, computed once per Run and shared (read-only arrays).

    Every detector reads the train loss, most the eval curve and the grad
    norm: on a log of a million points each recomputation is a sort check
    and a few copies. The Facts of the run (:func:`trainguard.facts.facts_of`)
    keep them, and drop them when the run grows.
    """
    from . import facts_of  # the facts package imports this module

    return facts_of(run).xy(name)


def train_xy(run: Run) -> tuple[np.ndarray, np.ndarray]:
    return run_xy(run, TRAIN_LOSS)


def higher_is_better(name: str) -> bool:
    """Direction of an eval metric from its name (loss, perplexity, error: lower; accuracy, F1, ROUGE: higher)."""
    n = name.lower()
    if any(t in n for t in ("loss", "perplexity", "ppl", "error", "wer", "cer", "mse", "mae", "rmse", "bpb", "bpc", "nll")):
        return False
    return bool(_HIGHER.search(n))


def judged_metrics(run: Run) -> list[str]:
    """Eval metrics worth judging: ``eval_loss`` first, then the other ``eval_*`` metrics that are not metadata."""
    names = []
    if len(run.history.get_series(EVAL_LOSS)):
        names.append(EVAL_LOSS)
    for n in run.history.eval_metrics():
        if not _META.search(n[5:]):
            names.append(n)
    return names


def eval_metric(run: Run) -> tuple[str, bool] | None:
    """The metric that decides the best point: ``(name, higher_is_better)``, or None when nothing was evaluated.

    ``metric_for_best_model`` from the config wins when it was logged, as the
    Trainer itself would pick it; else eval_loss; else the first other eval
    metric whose direction is known from its name.
    """
    mfb = run.config.get("metric_for_best_model")
    if isinstance(mfb, str) and mfb:
        name = mfb if mfb.startswith("eval_") else f"eval_{mfb}"
        if len(run_xy(run, name)[0]):
            gib = run.config.get("greater_is_better")
            return name, bool(gib) if isinstance(gib, bool) else higher_is_better(name)
    names = judged_metrics(run)
    if not names:
        return None
    for n in names:
        known = n == EVAL_LOSS or higher_is_better(n) or any(t in n for t in ("loss", "perplexity", "ppl", "error"))
        if known and len(run_xy(run, n)[0]):
            return n, higher_is_better(n)
    return None


def steps_per_epoch(run: Run) -> float | None:
    """Optimizer steps per epoch: what the reader recorded, else a fit of logged epochs against steps."""
    if run.steps_per_epoch and run.steps_per_epoch > 0:
        return float(run.steps_per_epoch)
    for name in (EPOCH, TRAIN_LOSS, EVAL_LOSS):
        s = run.history.get_series(name)
        if not len(s):
            continue
        ep = s.values if name == EPOCH else s.epochs
        m = np.isfinite(ep) & (ep > 0)
        if m.sum() >= 2:
            st, e = s.steps[m].astype(float), ep[m]
            de = float(e[-1] - e[0])
            if de > 0:
                return float(st[-1] - st[0]) / de
        if m.sum() == 1:
            i = int(np.nonzero(m)[0][0])
            if s.steps[i] > 0:
                return float(s.steps[i]) / float(ep[i])
    return None


def epoch_at(run: Run, step: int) -> float | None:
    """The epoch at ``step``: logged where available, else step / steps-per-epoch."""
    for name in (EVAL_LOSS, TRAIN_LOSS, EPOCH):
        s = run.history.get_series(name)
        if len(s):
            idx = np.nonzero(s.steps == step)[0]
            if len(idx):
                e = float(s.values[idx[-1]] if name == EPOCH else s.epochs[idx[-1]])
                if math.isfinite(e):
                    return e
    spe = steps_per_epoch(run)
    return round(step / spe, 4) if spe else None


def saved_steps(run: Run) -> tuple[list[int] | None, str]:
    """Steps at which a checkpoint exists, and how we know: ``(steps, how)``; ``(None, why)`` when unknown.

    Checkpoint folders found on disk win. Else ``save_steps`` is trusted only
    when ``save_strategy`` is ``steps`` (or unknown and the value did not come
    from a trainer_state.json, which records the *default* 500 even when the
    run saved per epoch: realrun 013 saved at 1944 with ``save_steps`` 500).
    ``save_strategy=epoch`` gives the epoch boundaries. The framework's own
    record of the best checkpoint (``best_model_checkpoint``) always counts:
    the Trainer never deletes it.
    """
    last = run.last_step
    best_rec = (run.best_recorded or {}).get("step")
    extra = [int(best_rec)] if isinstance(best_rec, (int, float)) else []
    if run.checkpoints:
        return sorted(set(run.checkpoints) | set(extra)), "checkpoint folders"
    strategy = str(run.config.get("save_strategy") or "").lower().split(".")[-1]
    if strategy == "no":
        return [], "save_strategy=no"
    ss = run.config.num("save_steps")
    src = run.config.source("save_steps") or ""
    trusted = strategy == "steps" or (not strategy and not run.format.startswith("hf_trainer_state") and "trainer_state" not in src)
    if ss and ss > 0 and last and trusted:
        if 0 < ss < 1:  # a fraction of the run, as TrainingArguments allows
            total = run.planned_steps or last
            ss = max(1.0, math.ceil(ss * total))
        steps = list(range(int(ss), int(last) + 1, int(ss)))
        if run.finished and last not in steps:
            steps.append(int(last))  # the Trainer saves at the final step too
        return sorted(set(steps) | set(extra)), f"save_steps={int(ss)}"
    if strategy == "epoch" and last:
        spe = steps_per_epoch(run)
        if spe:
            steps = [round(spe * k) for k in range(1, int(last / spe + 1e-9) + 1)]
            return sorted(set(steps) | set(extra)), "save_strategy=epoch"
    if extra:
        return None, "only the best checkpoint is known (best_model_checkpoint)"
    return None, "no checkpoint folders and no save settings found"


def warmup_end(run: Run) -> int | None:
    """The step where LR warm-up ends: first step at >= 95 % of the peak LR when the LR starts below half of it.

    Falls back to ``warmup_steps`` from the config; None when there is no sign of warm-up.
    """
    st, v = run_xy(run, LEARNING_RATE)
    if len(v) >= 3:
        peak = float(v.max())
        if peak > 0 and float(v[0]) < 0.5 * peak:
            return int(st[int(np.argmax(v >= 0.95 * peak))])
        if peak > 0:
            return None
    ws = run.config.num("warmup_steps")
    return int(ws) if ws else None


def fmt(x: float | None) -> str:
    """A number for a message: 4 significant digits, scientific when very small or large."""
    if x is None:
        return "?"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e5 or a < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}"


def pct(x: float) -> str:
    return f"{x:+.1f}%" if abs(x) < 1000 else f"{x:+.3g}%"


def clamp01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


__all__ = [
    "clamp01",
    "epoch_at",
    "eval_metric",
    "fmt",
    "higher_is_better",
    "judged_metrics",
    "pct",
    "run_xy",
    "saved_steps",
    "steps_per_epoch",
    "train_xy",
    "warmup_end",
    "xy",
]
