"""The Markdown report, in the spirit of the hand-written seed diagnoses.

Sections: executive summary; configuration with the source of each value;
timeline at the eval points (subsampled for long runs, keeping the first, the
best and the last); phase analysis with flags; the LR "configured vs reality";
root causes; checkpoints; computational cost; recommendations with copy-paste
code blocks; unknowns; how the log was read.

Every table cell that carries text from a log or a config goes through
:func:`cell`, which escapes pipes, newlines and HTML, so a metric named
``a|b`` or a value ``<script>`` cannot break the table or the page it is
rendered into.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .._arrays import unique
from .._sanitize import clean
from ..diagnosis import Diagnosis
from ..recommendations import code_blocks
from ..run import CONFIG_KEYS, EVAL_LOSS, GRAD_NORM, LEARNING_RATE, TRAIN_LOSS, Series
from . import _text as t

MAX_TIMELINE_ROWS = 24

_PHASE_MEANING = {
    "warmup": "The LR ramps up to its peak; losses are not yet comparable.",
    "learning": "Train and eval improve together: the model is learning patterns that generalise.",
    "plateau": "No improvement beyond the noise: more steps at this LR buy little.",
    "stalled": "The loss is not going down at all: the run is not learning (see the no-learning finding).",
    "turning": "Eval has stopped improving while train keeps falling: the best point is behind. Prepare to stop.",
    "overfitting": "Eval rises while train falls: the model fits the training set at the expense of new data. Stop now.",
    "memorization": "Train loss is near zero while eval is far above its best: the model is storing the training set.",
    "dead": "Train loss is zero and gradients (or the LR) have vanished: steps change nothing. Kill the job.",
    "unstable": "Spikes, divergence or exploding gradients: the optimisation itself is in trouble.",
}


def cell(x: Any) -> str:
    """A table cell: numbers formatted, text escaped (pipes, newlines, HTML, control characters)."""
    s = x if isinstance(x, str) else t.num(x)
    s = _esc(s.replace("\r", " ").replace("\n", " "))
    return s.replace("|", "\\|")


def _head(out: list[str], *cols: str) -> None:
    """A Markdown table header and its separator row; names are escaped (timeline columns are metric names from the log)."""
    out.append("| " + " | ".join(cell(c) for c in cols) + " |")
    out.append("|" + "---|" * len(cols))


_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def _esc(s: str) -> str:
    """Running text from a log, safe in Markdown: no HTML tag, no entity, no control character.

    Only ``<`` (which opens a tag) and an ``&`` that would start an entity are
    escaped: a ``->`` in a message stays ``->`` (escaping ``>`` showed ``-&gt;``
    wherever the renderer does not decode entities, as in code spans).
    Control characters become visible ``\\x1b`` text, so a report viewed with
    ``cat`` cannot drive the terminal.
    """
    return clean(_ENTITY.sub("&amp;", s)).replace("<", "&lt;")


def render_markdown(d: Diagnosis, *, verbose: bool = False) -> str:
    """The full report as Markdown text; ``verbose`` adds how the log was read (reader, points, notes)."""
    out: list[str] = []
    run = d.run
    out.append(f"# Training analysis: {_esc(run.name or 'run')}\n")
    meta = [f"**Status:** {d.status}", f"**Log format:** {_esc(run.format)}"]
    if run.sources:
        meta.append("**Sources:** " + ", ".join(f"`{_esc(s)}`" for s in run.sources[:6]))
    if run.num_gpus:
        meta.append(f"**GPUs:** {run.num_gpus}")
    if run.train_runtime:
        meta.append(f"**Runtime:** {run.train_runtime / 3600:.1f} h")
    out.append("  \n".join(meta) + "\n")
    _summary(d, out)
    _config(d, out)
    _findings(d, out)
    _timeline(d, out)
    _phases(d, out)
    _lr(d, out)
    _causes(d, out)
    _checkpoints(d, out)
    _cost(d, out)
    _recommendations(d, out)
    if d.unknowns:
        out.append("## What could not be checked\n")
        out.extend(f"- {_esc(u)}" for u in d.unknowns)
        out.append("")
    if verbose:
        _read(d, out)
    elif d.run.skipped_lines:
        out.append(f"{d.run.skipped_lines} log entries were not usable (no numeric step or value) and were dropped.\n")
    return clean("\n".join(out).rstrip() + "\n")  # a net under the per-field escaping: no raw control character


def _summary(d: Diagnosis, out: list[str]) -> None:
    out.append("## Executive summary\n")
    out.append(f"**Verdict:** {_esc(d.verdict())}\n")
    bullets = [b for b in (t.best_line(d), t.waste_line(d)) if b]
    for f in d.findings[:4]:
        bullets.append(f"{f.severity.value}: {f.message}")
    if d.causes:
        bullets.append("main causes: " + "; ".join(c.title for c in d.causes[:3]))
    if d.recommendations:
        keys = ", ".join(f"`{r.key}`" for r in d.recommendations[:5])
        bullets.append(f"change first: {keys} (see Recommendations)")
    out.extend(f"- {_esc(b) if '`' not in b else b}" for b in bullets)
    out.append("")


def _config(d: Diagnosis, out: list[str]) -> None:
    cfg = d.run.config
    out.append("## Configuration\n")
    if not len(cfg):
        out.append("No configuration was found. Pass `--config training_args.json` (and `adapter_config.json`, "
                   "`ds_config.json`) to tie the findings to hyper-parameters.\n")
        return
    order = {k: i for i, k in enumerate(CONFIG_KEYS)}
    rows = sorted(cfg.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    _head(out, "Key", "Value", "Source")
    long_values: list[tuple[str, Any]] = []
    for k, s in rows:
        if isinstance(s.value, (dict, list)) and len(str(s.value)) > 60:
            long_values.append((k, s))
            out.append(f"| {cell(k)} | (below) | {cell(s.source)} |")
        else:
            out.append(f"| {cell(k)} | {cell(s.value)} | {cell(s.source)} |")
    out.append("")
    import json

    for k, s in long_values:
        out.append(f"`{_esc(k)}` ({_esc(s.source)}):\n")
        out.append("```json\n" + json.dumps(s.value, indent=2, default=str) + "\n```\n")
    if cfg.conflicts:
        out.append("Conflicting values (the first source wins):\n")
        for k, a, b in cfg.conflicts[:10]:
            out.append(f"- `{_esc(k)}`: {_esc(t.num(a.value))} ({_esc(a.source)}) vs {_esc(t.num(b.value))} ({_esc(b.source)})")
        out.append("")


def _findings(d: Diagnosis, out: list[str]) -> None:
    out.append("## Findings\n")
    if not d.findings:
        out.append("No problems found.\n")
        return
    _head(out, "Severity", "Code", "Steps", "What", "Key numbers")
    for f in d.findings:
        out.append(
            f"| {f.severity.value} | `{f.code}` | {cell(t.steps(f.start_step, f.end_step))} | {cell(f.message)} | "
            f"{cell(t.evidence_line(f.code, f.evidence))} |"
        )
    out.append("")


def _at(s: Series, step: int) -> float | None:
    """The value at ``step``, else the last one logged at or before it (train logs trail evals)."""
    if not len(s):
        return None
    v = s.value_at(step)
    if v is not None:
        return v
    i = int(np.searchsorted(s.steps, step, side="right")) - 1
    return float(s.values[i]) if i >= 0 else None


def timeline_steps(d: Diagnosis, limit: int = MAX_TIMELINE_ROWS) -> list[int]:
    """The steps the timeline shows: eval points (else train points), at most ``limit``, keeping first, best and last."""
    h = d.run.history
    base = h.get_series(EVAL_LOSS)
    if len(base) < 2:
        base = h.get_series(TRAIN_LOSS)
    if not len(base):
        return []
    steps = unique(base.steps)
    if len(steps) <= limit:
        return [int(s) for s in steps]
    idx = set(np.linspace(0, len(steps) - 1, limit - 1).round().astype(int).tolist())
    keep = {int(steps[i]) for i in idx}
    if d.best is not None:
        keep.add(int(d.best.step))
    return sorted(keep)


def _timeline(d: Diagnosis, out: list[str]) -> None:
    h = d.run.history
    steps = timeline_steps(d)
    if not steps:
        return
    tr, ev, lr, gn = (h.get_series(n).sorted() for n in (TRAIN_LOSS, EVAL_LOSS, LEARNING_RATE, GRAD_NORM))
    extra = [n for n in h.eval_metrics()][:2]
    cols = [("Train loss", tr)] + ([("Eval loss", ev)] if len(ev) else []) + [(n, h.get_series(n).sorted()) for n in extra]
    cols += [(n, s) for n, s in (("LR", lr), ("Grad norm", gn)) if len(s)]
    epochs = next((s for s in (ev, tr) if s.has_epochs()), None)
    phase_at = {}
    for p in d.phases:
        for s in steps:
            if p.start_step < s <= p.end_step or (s == p.start_step and s not in phase_at):
                phase_at[s] = p
    best = d.best.step if d.best is not None else None
    out.append("## Timeline\n")
    total = len(unique((ev if len(ev) >= 2 else tr).steps))
    if total > len(steps):
        out.append(f"{len(steps)} of {total} points shown (evenly spaced, plus the best).\n")
    head = ["Step"] + (["Epoch"] if epochs is not None else []) + [c for c, _ in cols] + ["Phase"]
    _head(out, *head)
    for s in steps:
        row = [str(s) + (" **best**" if s == best else "")]
        if epochs is not None:
            i = epochs.nearest(s)
            row.append(t.num(epochs.epoch_at(i) if i is not None else None, 3))
        for _, ser in cols:
            row.append(cell(_at(ser, s)))
        p = phase_at.get(s)
        row.append(f"{t.FLAG_EMOJI.get(p.flag, '')} {p.name}" if p else "")
        out.append("| " + " | ".join(row) + " |")
    out.append("")


def _phases(d: Diagnosis, out: list[str]) -> None:
    if not d.phases:
        return
    out.append("## Phase analysis\n")
    for i, p in enumerate(d.phases, 1):
        out.append(f"### Phase {i}: {p.name} (steps {p.start_step}–{p.end_step}) {t.FLAG_EMOJI.get(p.flag, '')} {p.flag}\n")
        if p.summary:
            out.append(f"{_esc(p.summary)}.\n")
        out.append(_PHASE_MEANING.get(p.name, "") + "\n")
    out.append("Flags: 🟩 healthy · 🟨 eval stopped improving · 🟧 eval rising · 🟥 eval doubled or train near zero · ⬛ train zero, gradients gone.\n")


def _lr(d: Diagnosis, out: list[str]) -> None:
    lr = d.lr_schedule
    h = d.run.history
    s = h.get_series(LEARNING_RATE).sorted()
    if lr.inferred is None and lr.configured is None and not len(s):
        return
    out.append("## Learning rate: configured vs reality\n")
    out.append(f"- **Configured:** {_esc(t.schedule_desc(lr.configured))}")
    out.append(f"- **Followed (from the log):** {_esc(t.schedule_desc(lr.inferred))}")
    if lr.matches is not None:
        out.append(f"- **Match:** {'yes' if lr.matches else '**no**'}")
    if lr.cause:
        out.append(f"- **Cause:** {_esc(lr.cause)}")
    out.append("")
    if len(s) >= 3:
        peak = float(np.max(s.values))
        ctype = (lr.configured or {}).get("type")
        expected = peak if ctype in ("constant", "constant_with_warmup") else None
        idx = sorted(set(np.linspace(0, len(s) - 1, min(6, len(s))).round().astype(int).tolist()))
        _head(out, "Step", "Logged LR", "% of peak", *(["Expected (constant)"] if expected else []))
        for i in idx:
            v = float(s.values[i])
            row = f"| {int(s.steps[i])} | {t.num(v)} | {v / peak:.0%} |" if peak > 0 else f"| {int(s.steps[i])} | {t.num(v)} | — |"
            if expected:
                row += f" {t.num(expected)} |"
            out.append(row)
        out.append("")


def _causes(d: Diagnosis, out: list[str]) -> None:
    out.append("## Root causes\n")
    if not d.causes:
        out.append("No cause could be tied to a config value" + (" (see What could not be checked)." if d.unknowns else ".") + "\n")
        return
    for i, c in enumerate(d.causes, 1):
        out.append(f"### {i}. {_esc(c.title)} ({c.confidence})\n")
        out.append(_esc(c.explanation) + "\n")
        if c.config_values:
            vals = []
            for k, v in c.config_values.items():
                if isinstance(v, dict) and "value" in v:
                    vals.append(f"`{_esc(k)}={_esc(t.num(v['value']))}` ({_esc(str(v.get('source')))})")
                else:
                    vals.append(f"`{_esc(k)}={_esc(t.num(v))}`")
            out.append("Config: " + ", ".join(vals) + "\n")
        if c.finding_codes:
            out.append("Evidence: " + ", ".join(f"`{x}`" for x in c.finding_codes) + "\n")


def _checkpoints(d: Diagnosis, out: list[str]) -> None:
    run = d.run
    best = d.best
    if not run.checkpoints and best is None:
        return
    out.append("## Checkpoints\n")
    ev = run.history.get_series(EVAL_LOSS).sorted()
    if run.checkpoints:
        _head(out, "Checkpoint", "Step", "Eval loss there", "Weights")
        for step in sorted(run.checkpoints):
            ck = run.checkpoints[step]
            out.append(f"| {cell(ck.path)} | {step} | {cell(_at(ev, step))} | {'yes' if ck.has_weights else 'no'} |")
        out.append("")
    else:
        out.append("No checkpoint folders were found beside the log.\n")
    if best is not None:
        if best.checkpoint_saved is False:
            out.append(f"**Missing: the best checkpoint.** The best {best.metric} ({t.num(best.value)}) was at step {best.step}, "
                       "and no checkpoint holds it: the model's best state was never preserved.\n")
        elif best.checkpoint_saved:
            out.append(f"The best point (step {best.step}) is saved" + (f" in `{_esc(best.checkpoint_path)}`" if best.checkpoint_path else "") + ".\n")
    if d.waste is not None and d.waste.deletable_checkpoints:
        out.append("Can be deleted (after the best, worse than it): " + ", ".join(f"`{_esc(x)}`" for x in d.waste.deletable_checkpoints) + "\n")


def _cost(d: Diagnosis, out: list[str]) -> None:
    run, w = d.run, d.waste
    if w is None and not run.train_runtime:
        return
    out.append("## Computational cost\n")
    gpus = run.num_gpus or run.config.world_size
    if run.train_runtime:
        total_h = run.train_runtime / 3600
        out.append(f"- **Total training time:** {t.hours(total_h)}" + (f" on {t.gpus(gpus)} = {t.gpu_hours(total_h * gpus)}" if gpus else ""))
    if w is not None and w.steps:
        out.append(f"- **After the best point:** {w.steps} steps, {t.pct(w.fraction)} of the run")
        if w.hours is not None:
            out.append(f"- **Wasted time:** {t.hours(w.hours)}")
        if w.gpu_hours is not None:
            out.append(f"- **Wasted compute:** {t.gpu_hours(w.gpu_hours)}" + (" (GPU count assumed 1)" if w.gpus_assumed else f" ({t.gpus(w.gpus)})"))
        out.append(f"- **Useful share:** {t.pct(1 - w.fraction)} of the run")
    out.append("")


def _recommendations(d: Diagnosis, out: list[str]) -> None:
    out.append("## Recommendations\n")
    if not d.recommendations:
        out.append("Nothing to change.\n")
        return
    _head(out, "Where", "Key", "Current", "Suggested", "Why")
    for r in d.recommendations:
        out.append(f"| {cell(r.framework)} | `{cell(r.key)}` | {cell(r.current)} | {cell(r.suggested)} | {cell(r.reason)} |")
    out.append("")
    for title, lang, code in code_blocks(d.recommendations):
        out.append(f"**{title}**\n")
        out.append(f"```{lang}\n{code}\n```\n")


def _read(d: Diagnosis, out: list[str]) -> None:
    out.append("## How the log was read\n")
    m = d.metrics_summary()
    if m:
        _head(out, "Metric", "Points", "Steps", "First", "Last")
        for name, v in m.items():
            out.append(f"| {cell(name)} | {v['points']} | {v['first_step']}–{v['last_step']} | {cell(v['first'])} | {cell(v['last'])} |")
        out.append("")
    if d.run.skipped_lines:
        out.append(f"{d.run.skipped_lines} lines looked like metrics but did not parse and were skipped.\n")
    for n in d.run.notes:
        out.append(f"- {_esc(n)}")
    if d.run.notes:
        out.append("")


__all__ = ["cell", "render_markdown", "timeline_steps"]
