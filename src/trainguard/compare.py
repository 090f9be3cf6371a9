"""Several runs side by side: their settings, how each ended, and which setting separates good from bad.

Seed 003 did this by hand: "10x fewer epochs prevented memorization, 2x lower
LR provided gentler updates ... the good runs stopped before overfitting".
:func:`compare_runs` reads each run (its config beside it, or the values
encoded in its file name with ``name_pattern``), diagnoses it, sorts the runs
into good and bad, and names the settings whose values do not overlap
between the two groups: only those can explain the difference. A setting that
merely differs (one good run at 1e-4, one at 3e-4, bad at 2e-4) is shown but
not blamed.

Good vs bad: a run is bad when an outcome finding (overfitting,
memorization, divergence, NaN, eval explosion, no learning) is at error
level or worse, or its final eval ended 10% or more above its own best.
Hygiene findings (a lost checkpoint, wasted compute) do not count: they say
nothing about which settings trained the better model. When every run falls on one side, the runs are split by final eval
loss instead (lower half "better").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import median
from .diagnosis import Diagnosis
from .findings import Severity
from .report.naming import SHORT_KEYS, fmt_value, parse_name, short_params
from .run import EVAL_LOSS, TRAIN_LOSS, Run, RunConfig

# Findings about how training went (not about checkpoints or compute): these make a run "bad".
_OUTCOME_CODES = frozenset({"overfitting", "memorization", "nan_loss", "divergence", "eval_metric_explosion", "no_learning", "plateau"})
_OVERFIT_LEVERS = ("epochs", "steps", "samples", "lr", "dropout", "wd", "r", "alpha", "sched", "warmup")
_WORSE_AT_END = 1.10  # final eval 10% above its best: more than eval noise (~1%), clearly past the optimum

# How to speak of each setting in a sentence, and whether "fewer" or "lower" fits.
_NOUN = {
    "lr": ("LR", "lower", "higher"),
    "epochs": ("epochs", "fewer", "more"),
    "steps": ("steps", "fewer", "more"),
    "wd": ("weight decay", "lower", "higher"),
    "bs": ("per-device batch", "smaller", "larger"),
    "evalbs": ("eval batch", "smaller", "larger"),
    "accum": ("grad accumulation", "less", "more"),
    "seqlen": ("sequence length", "shorter", "longer"),
    "warmup": ("warmup steps", "fewer", "more"),
    "r": ("LoRA r", "lower", "higher"),
    "alpha": ("LoRA alpha", "lower", "higher"),
    "dropout": ("LoRA dropout", "lower", "higher"),
    "gpus": ("GPUs", "fewer", "more"),
    "samples": ("training examples", "fewer", "more"),
    "sched": ("LR schedule", "", ""),
}


@dataclass
class RunSummary:
    """One run's row of the comparison."""

    name: str
    path: str
    params: dict[str, Any]
    param_sources: dict[str, str]
    status: str
    verdict: str
    best_value: float | None = None
    best_step: int | None = None
    best_epoch: float | None = None
    final_eval: float | None = None
    final_step: int | None = None
    wall_seconds: float | None = None
    waste_fraction: float | None = None
    waste_gpu_hours: float | None = None
    group: str = "?"  # good | bad | better | worse
    problems: list[str] = field(default_factory=list)  # outcome finding codes at error level or worse

    @property
    def worse_at_end(self) -> float | None:
        """final eval / best eval (1.0: ended at its best)."""
        if self.best_value and self.final_eval is not None and self.best_value > 0:
            return self.final_eval / self.best_value
        return None


@dataclass(frozen=True)
class Difference:
    """A setting whose values separate the good runs from the bad ones."""

    key: str
    good: list[Any]
    bad: list[Any]
    phrase: str
    strength: float  # |log ratio|, for ordering


@dataclass
class Comparison:
    runs: list[RunSummary]
    differing: list[str] = field(default_factory=list)  # short names whose values are not all equal
    same: dict[str, Any] = field(default_factory=dict)  # short name -> value shared by every run that has it
    separating: list[Difference] = field(default_factory=list)
    suggestion: str = ""
    grouping: str = "verdict"  # verdict | final eval

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "trainguard.compare/1",
            "runs": [dict(asdict(r), worse_at_end=r.worse_at_end) for r in self.runs],
            "differing": self.differing,
            "same": self.same,
            "separating": [asdict(d) for d in self.separating],
            "suggestion": self.suggestion,
            "grouping": self.grouping,
        }


def run_params(run: Run, path: str | Path, name_pattern: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The run's settings under their short names, each with its source (config file, or the file name)."""
    params = short_params(run.config)
    sources = {k: run.config.source(SHORT_KEYS[k]) or "config" for k in params}
    if name_pattern:
        for k, v in _from_name(Path(path).name, name_pattern).items():
            if k not in params:
                params[k] = v
                sources[k] = "file name"
    return params, sources


def _from_name(name: str, pattern: str) -> dict[str, Any]:
    """Short-name values encoded in ``name``; the shared configs parser when present, else ours."""
    try:
        from .configs import parse_positional

        canon = parse_positional(name, pattern)
        inv = {v: k for k, v in SHORT_KEYS.items()}
        got = {inv[k]: v for k, v in canon.items() if k in inv}
        if got:
            return got
    except Exception:  # not there yet, or it refused this name: our parser decides
        pass
    try:
        return dict(parse_name(name, pattern))
    except ValueError as e:
        from .errors import ConfigError

        raise ConfigError(f"--name-pattern: {e}", key="name_pattern") from None


def summarize(d: Diagnosis, path: str | Path, name_pattern: str | None = None) -> RunSummary:
    """One row: settings, best and final eval, wall time, waste and verdict of a diagnosed run."""
    run = d.run
    params, sources = run_params(run, path, name_pattern)
    s = RunSummary(name=run.name, path=str(path), params=params, param_sources=sources, status=d.status, verdict=d.verdict())
    s.problems = sorted({f.code for f in d.findings if f.code in _OUTCOME_CODES and f.severity.rank >= Severity.ERROR.rank})
    ev = run.eval_loss.finite().sorted()
    if d.best is not None:
        s.best_value, s.best_step, s.best_epoch = float(d.best.value), int(d.best.step), d.best.epoch
    elif len(ev):
        i = int(np.argmin(ev.values))
        s.best_value, s.best_step, s.best_epoch = float(ev.values[i]), int(ev.steps[i]), ev.epoch_at(i)
    if len(ev):
        s.final_eval, s.final_step = float(ev.values[-1]), int(ev.steps[-1])
    if run.train_runtime:
        s.wall_seconds = float(run.train_runtime)
    else:
        sps, last = run.seconds_per_step(), run.last_step
        if sps and last:
            s.wall_seconds = sps * last
    if d.waste is not None:
        s.waste_fraction, s.waste_gpu_hours = d.waste.fraction, d.waste.gpu_hours
    elif s.best_step is not None and run.last_step:
        s.waste_fraction = max(0.0, (run.last_step - s.best_step) / run.last_step)
    return s


def _is_bad(s: RunSummary) -> bool:
    """Bad by outcome (the model got worse or broke), not by hygiene: a lost checkpoint is an error
    for ``analyze``, but it says nothing about which settings trained a better model."""
    w = s.worse_at_end
    return bool(s.problems) or (w is not None and w >= _WORSE_AT_END)


def group_runs(runs: list[RunSummary]) -> str:
    """Label each run good/bad (or better/worse when all fall on one side); returns how they were grouped."""
    for r in runs:
        r.group = "bad" if _is_bad(r) else "good"
    groups = {r.group for r in runs}
    if len(groups) == 2:
        return "verdict"
    scored = [r for r in runs if r.final_eval is not None]
    if len(scored) < 2:
        return "none"
    med = float(median([r.final_eval for r in scored]))
    ordered = sorted(scored, key=lambda r: r.final_eval)  # type: ignore[arg-type, return-value]
    for i, r in enumerate(ordered):
        r.group = "better" if (r.final_eval < med or (len(ordered) % 2 == 0 and i < len(ordered) // 2)) else "worse"  # type: ignore[operator]
    return "final eval"


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _ratio_text(r: float) -> str:
    """``10×``, ``2×``, ``94×`` (no false precision past 10), ``1.5×``."""
    return f"{r:.0f}×" if r >= 10 or (r >= 1.95 and abs(r - round(r)) < 0.05) else f"{r:.1f}×"


def _phrase(key: str, good: list[Any], bad: list[Any]) -> tuple[str, float]:
    noun, less, more = _NOUN.get(key, (key, "lower", "higher"))
    g = [x for x in (_as_float(v) for v in good) if x is not None]
    b = [x for x in (_as_float(v) for v in bad) if x is not None]
    if len(g) == len(good) and len(b) == len(bad) and g and b:
        gm, bm = float(median(g)), float(median(b))
        gs, bs = fmt_value(gm), fmt_value(bm)
        if gm > 0 and bm > 0:
            ratio = bm / gm if bm > gm else gm / bm
            word = less if gm < bm else more
            return f"{_ratio_text(ratio)} {word} {noun} ({gs} vs {bs})", abs(math.log(ratio))
        return f"{noun} {gs} instead of {bs}", 1.0
    gs = ", ".join(sorted({fmt_value(v) for v in good}))
    bs = ", ".join(sorted({fmt_value(v) for v in bad}))
    return f"{noun} {gs} instead of {bs}", 0.5


def separating(runs: list[RunSummary]) -> list[Difference]:
    """Settings whose good-run values and bad-run values do not overlap, strongest first."""
    good = [r for r in runs if r.group in ("good", "better")]
    bad = [r for r in runs if r.group in ("bad", "worse")]
    if not good or not bad:
        return []
    keys = sorted({k for r in runs for k in r.params})
    out: list[Difference] = []
    for k in keys:
        gv = [r.params[k] for r in good if k in r.params]
        bv = [r.params[k] for r in bad if k in r.params]
        if not gv or not bv:
            continue
        gf = [_as_float(v) for v in gv]
        bf = [_as_float(v) for v in bv]
        if all(x is not None for x in gf + bf):
            gnum = [x for x in gf if x is not None]
            bnum = [x for x in bf if x is not None]
            apart = max(gnum) < min(bnum) or min(gnum) > max(bnum)
        else:
            apart = not ({fmt_value(v) for v in gv} & {fmt_value(v) for v in bv})
        if apart:
            phrase, strength = _phrase(k, gv, bv)
            out.append(Difference(k, gv, bv, phrase, strength))
    out.sort(key=lambda d: -d.strength)
    return out


def suggest(c: Comparison) -> str:
    """One sentence in the seed's words: what differs, and what it did to the runs."""
    good = [r for r in c.runs if r.group in ("good", "better")]
    bad = [r for r in c.runs if r.group in ("bad", "worse")]
    if not good or not bad:
        return "All runs ended alike; nothing separates them." if len(c.runs) > 1 else ""
    g_word, b_word = ("good", "bad") if c.grouping == "verdict" else ("better", "worse")
    overfit = [r for r in bad if (r.worse_at_end or 0) >= _WORSE_AT_END]
    clean = all((r.worse_at_end or 1.0) < _WORSE_AT_END for r in good)
    # Name first the settings known to drive what happened (for overfitting: run length, LR and
    # regularisation), then the rest by how far apart they are: a 4x longer sequence length may
    # separate the runs too, but it is not what made one of them memorise.
    levers = _OVERFIT_LEVERS if overfit and clean else ()
    ranked = sorted(c.separating, key=lambda d: (d.key not in levers, -d.strength))
    if overfit and clean:
        r = max(overfit, key=lambda r: r.worse_at_end or 0)
        where = f"epoch {r.best_epoch:g}" if r.best_epoch is not None else f"step {r.best_step}"
        of = ""
        if r.best_epoch is not None and "epochs" in r.params:
            of = f" of {fmt_value(r.params['epochs'])}"
        outcome = (f"the {g_word} runs stopped before overfitting ({r.name} was best at {where}{of}, "
                   f"then ended ×{r.worse_at_end:.1f} worse)")
    elif any(r.status == "critical" for r in bad):
        outcome = f"the {b_word} runs diverged"
    else:
        gf = [r.final_eval for r in good if r.final_eval is not None]
        bf = [r.final_eval for r in bad if r.final_eval is not None]
        outcome = (f"the {g_word} runs ended lower (eval {min(gf):.4g} vs {min(bf):.4g})" if gf and bf
                   else f"the {g_word} runs ended healthier")
    return _cause_sentence(c, ranked, outcome)


def _cause_sentence(c: Comparison, ranked: list[Difference], outcome: str) -> str:
    """Claim a cause only when the runs differ in exactly one known setting.

    Runs that differ in several settings (LR and weight decay and dropout and
    early stopping ...) cannot say which one made the difference, however
    cleanly each separates the groups: the sentence then lists what differs and
    claims nothing. Unknown settings (no config for some run) count as
    differing, since they may.
    """
    if len(c.differing) == 1 and len(ranked) == 1 and ranked[0].key == c.differing[0]:
        what = ranked[0].phrase
        return f"{what[0].upper()}{what[1:]}, the only setting that differs: {outcome}."
    if not c.differing:
        return f"No setting is known to differ (configs missing?), so nothing here explains it; {outcome}."
    names = [_NOUN.get(k, (k,))[0] for k in c.differing]
    listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return (f"{len(names)} settings differ ({listed}), so this comparison cannot say which one caused it; "
            f"{outcome}. Change one setting at a time to find out.")


def compare_diagnoses(items: list[tuple[Diagnosis, str | Path]], name_pattern: str | None = None) -> Comparison:
    """The comparison of already-diagnosed runs (``(diagnosis, path)`` pairs)."""
    runs = [summarize(d, p, name_pattern) for d, p in items]
    c = Comparison(runs)
    c.grouping = group_runs(runs)
    keys = sorted({k for r in runs for k in r.params}, key=lambda k: list(SHORT_KEYS).index(k) if k in SHORT_KEYS else 99)
    for k in keys:
        vals = {fmt_value(r.params[k]) for r in runs if k in r.params}
        if len(vals) > 1 or sum(k in r.params for r in runs) < len(runs):
            c.differing.append(k)
        else:
            c.same[k] = next(r.params[k] for r in runs if k in r.params)
    c.separating = separating(runs)
    c.suggestion = suggest(c)
    return c


def read_for_compare(path: str | Path, config: list[str | Path] | None = None) -> Run:
    """Read a run, with its configs; when none was attached, the config files beside it are loaded here."""
    from ._validate import reading
    from .readers import read_run

    with reading(path):
        run = read_run(path, config=config or ())
    if not any(k in run.config for k in SHORT_KEYS.values()):
        _attach_beside(run, Path(path))
    return run


_BESIDE = ("training_args.json", "training_args.yaml", "adapter_config.json", "ds_config.json", "config.yaml")


def _attach_beside(run: Run, path: Path) -> None:
    folder = path if path.is_dir() else path.parent
    files = [folder / n for n in _BESIDE if (folder / n).is_file()]
    if not files:
        return
    from .lint.loaders import load_files

    try:
        lc = load_files(files)
    except Exception:  # a config we cannot read must not stop the comparison
        return
    merged = RunConfig()
    for k, s in lc.config.items():
        if k not in lc.defaults:
            merged.set(k, s.value, s.source)
    run.config.merge(merged)


def compare_runs(paths: list[str | Path], *, name_pattern: str | None = None) -> tuple[Comparison, list[Run]]:
    """Read, diagnose and compare the runs at ``paths``; returns the comparison and the runs (for plotting)."""
    from ._validate import require_points
    from .diagnosis import diagnose

    runs = [read_for_compare(p) for p in paths]
    for r, p in zip(runs, paths, strict=True):  # no usable point: refuse, never a verdict on a broken file
        require_points(r, p)
    names = [r.name for r in runs]
    for r, p in zip(runs, paths, strict=True):
        if names.count(r.name) > 1:  # two "trainer_state" runs: name them by folder
            r.name = Path(p).parent.name if Path(p).is_file() else Path(p).name
    c = compare_diagnoses([(diagnose(r), p) for r, p in zip(runs, paths, strict=True)], name_pattern)
    return c, runs


def overlay_plot(c: Comparison, runs: list[Run], path: str | Path) -> Path:
    """Eval (solid) and train (faint) loss of every run, best points starred: by epoch and by step.

    Both axes, because each hides something: runs of 1 and 60 epochs squash
    one another on an epoch axis, while a step axis hides that one run saw its
    data 60 times. Only the step panel is drawn when epochs are not logged.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .report.plots import mpl_text, thin

    use_epochs = all(r.eval_loss.has_epochs() or r.train_loss.has_epochs() for r in runs)
    axes_x = ["epoch", "step"] if use_epochs else ["step"]
    fig = Figure(figsize=(10, 4.6 * len(axes_x)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    # good runs in greens and blues, bad ones in reds and oranges, the rest in neutral hues
    palettes = {"good": ["#2ca02c", "#1f77b4", "#17becf", "#006d2c", "#08519c"],
                "bad": ["#d62728", "#ff7f0e", "#a50f15", "#e6550d", "#e377c2"],
                "?": ["#7f7f7f", "#9467bd", "#8c564b", "#bcbd22"]}
    seen: dict[str, int] = {}
    colors: list[str] = []
    for s in c.runs:
        kind = "good" if s.group in ("good", "better") else "bad" if s.group in ("bad", "worse") else "?"
        colors.append(palettes[kind][seen.get(kind, 0) % len(palettes[kind])])
        seen[kind] = seen.get(kind, 0) + 1
    for row, xname in enumerate(axes_x):
        ax = fig.add_subplot(len(axes_x), 1, row + 1)
        for i, (run, s) in enumerate(zip(runs, c.runs, strict=True)):
            color = colors[i]
            label = mpl_text(f"{s.name} ({s.group})")
            for metric, alpha, lw in ((TRAIN_LOSS, 0.3, 0.9), (EVAL_LOSS, 1.0, 1.8)):
                ser = run.history.get_series(metric).finite().sorted()
                if not len(ser) or (xname == "epoch" and not ser.has_epochs()):
                    continue
                x = ser.epochs if xname == "epoch" else ser.steps.astype(float)
                m = np.isfinite(x)
                xs, ys = thin(x[m], ser.values[m])
                ax.plot(xs, ys, color=color, alpha=alpha, linewidth=lw, label=f"{label} {'eval' if metric == EVAL_LOSS else 'train'}")
            bx = s.best_epoch if xname == "epoch" else s.best_step
            if s.best_value is not None and bx is not None:
                ax.plot([bx], [s.best_value], marker="*", markersize=14, color=color, markeredgecolor="black", linestyle="none")
        ax.set_xlabel(xname)
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=8, loc="best")
        if row == 0:
            ax.set_title("Runs compared: eval (solid), train (faint), best points starred", loc="left", fontsize=12)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


__all__ = ["Comparison", "Difference", "RunSummary", "compare_diagnoses", "compare_runs", "overlay_plot", "separating", "summarize"]
