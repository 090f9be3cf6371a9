"""The diagnosis as pictures: loss with the best point and the overfitting region, phases, LR, grad norm.

Matplotlib is imported inside the functions (``trainguard analyze`` without
``--html`` must not pay its ~0.5 s import), and only its object-oriented API
with the Agg canvas is used: no pyplot, so no global figure state, no GUI
backend picked from the environment, and nothing leaks between reports built
in one process (the live guard may write several).

Every figure is drawn from the Diagnosis and its Run; when a field is empty
the figure says so or is left out, never invents. Series with more points
than the canvas has pixels are thinned to a min/max envelope per bucket, so a
one-step spike in a million-point log still shows.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..diagnosis import Diagnosis
from ..run import EVAL_LOSS, GRAD_NORM, LEARNING_RATE, Series
from .naming import hparam_suffix, safe_stem
from .schedule import configured_curves, steps_per_epoch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FLAG_COLORS = {
    "green": "#2e7d32",
    "yellow": "#f9a825",
    "orange": "#ef6c00",
    "red": "#c62828",
    "black": "#212121",
}
TRAIN_COLOR = "#1f77b4"
EVAL_COLOR = "#d62728"
_MAX_POINTS = 4000  # ~4x the pixels of a 10-inch figure at 100 dpi: more is invisible
# Eval "metrics" that measure the machine, not the model: plotted nowhere.
_NOT_QUALITY = ("_runtime", "_per_second", "_samples", "_steps", "_num_tokens", "_tokens_seen", "_flos", "_epoch",
                "_mem", "_memory", "_time", "_seconds")  # bookkeeping the Trainer logs beside each eval, not quality


@dataclass(frozen=True)
class Plot:
    """One figure: ``key`` names its file (``loss_plot_...png``), ``caption`` says what to look at."""

    key: str
    title: str
    figure: Figure
    caption: str = ""


def mpl_text(s: str) -> str:
    """Text from a log made safe for matplotlib: a ``$`` would start mathtext and can raise on odd input."""
    return s.replace("$", r"\$")


def thin(steps: np.ndarray, values: np.ndarray, max_points: int = _MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ~``max_points`` points, keeping each bucket's min and max (spikes survive, unlike striding)."""
    n = len(steps)
    if n <= max_points:
        return steps, values
    buckets = max_points // 2
    edges = np.linspace(0, n, buckets + 1).astype(int)
    out_s: list[int] = []
    out_v: list[float] = []
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = values[a:b]
        i, j = int(np.nanargmin(seg)) if np.isfinite(seg).any() else 0, int(np.nanargmax(seg)) if np.isfinite(seg).any() else 0
        for k in sorted({i, j}):
            out_s.append(int(steps[a + k]))
            out_v.append(float(seg[k]))
    return np.asarray(out_s), np.asarray(out_v)


def _ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average (NaNs carried over), for a readable trend over noisy train loss."""
    alpha = 2.0 / (span + 1)
    out = np.empty_like(values)
    acc = math.nan
    for i, v in enumerate(values):
        if math.isfinite(v):
            acc = v if not math.isfinite(acc) else alpha * v + (1 - alpha) * acc
        out[i] = acc
    return out


def _new_figure(height: float, rows: int = 1, ratios: list[int] | None = None) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height), dpi=100, layout="constrained")
    if rows == 1:
        return fig, [fig.add_subplot(1, 1, 1)]
    gs = fig.add_gridspec(rows, 1, height_ratios=ratios or [1] * rows)
    first = fig.add_subplot(gs[0])
    axes = [first] + [fig.add_subplot(gs[i], sharex=first) for i in range(1, rows)]
    return fig, axes


def _style(ax: Axes) -> None:
    ax.grid(True, alpha=0.25, linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _epoch_axis(ax: Axes, spe: float | None) -> None:
    """A secondary x-axis in epochs on top, when steps per epoch is known."""
    if not spe or spe <= 0:
        return
    sec = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    sec.set_xlabel("epoch", fontsize=9)
    sec.tick_params(labelsize=8)


def _onset(d: Diagnosis) -> tuple[int, int] | None:
    """The overfitting region: the overfitting finding's span, else from the best eval to the end when eval rose after it."""
    for f in d.findings:
        if f.code == "overfitting" and f.start_step is not None:
            end = f.end_step if f.end_step is not None else d.run.last_step
            return (int(f.start_step), int(end or f.start_step))
    best = d.best
    ev = d.run.eval_loss.finite()
    if best is not None and best.metric == EVAL_LOSS and len(ev):
        after = ev.values[ev.steps > best.step]
        if len(after) and float(after.max()) > best.value * 1.05:
            return (int(best.step), int(ev.steps[-1]))
    return None


def best_point(d: Diagnosis) -> tuple[str, int, float, float | None] | None:
    """(metric, step, value, epoch) of the best point: the diagnosis's, else the eval-loss minimum."""
    if d.best is not None:
        return (d.best.metric, int(d.best.step), float(d.best.value), d.best.epoch)
    ev = d.run.eval_loss.finite()
    if not len(ev):
        return None
    i = int(np.argmin(ev.values))
    return (EVAL_LOSS, int(ev.steps[i]), float(ev.values[i]), ev.epoch_at(i))


def loss_plot(d: Diagnosis) -> Plot | None:
    """Train and eval loss, the best point, the overfitting region, checkpoints, and the phase strip below."""
    run = d.run
    train, ev = run.train_loss.finite().sorted(), run.eval_loss.finite().sorted()
    if not len(train) and not len(ev):
        return None
    fig, (ax, strip) = _new_figure(5.6, rows=2, ratios=[6, 1])
    if len(train):
        s, v = thin(train.steps, train.values)
        if len(train) > 200:
            ax.plot(s, v, color=TRAIN_COLOR, alpha=0.3, linewidth=0.7, label="train loss (raw)")
            sm = _ema(train.values, max(5, len(train) // 100))
            s2, v2 = thin(train.steps, sm)
            ax.plot(s2, v2, color=TRAIN_COLOR, linewidth=1.6, label="train loss (EMA)")
        else:
            ax.plot(s, v, color=TRAIN_COLOR, linewidth=1.4, label="train loss")
    if len(ev):
        s, v = thin(ev.steps, ev.values)
        ax.plot(s, v, color=EVAL_COLOR, linewidth=1.6, marker="o" if len(ev) <= 60 else None, markersize=3.5, label="eval loss")
    region = _onset(d)
    if region:
        ax.axvspan(region[0], region[1], color=EVAL_COLOR, alpha=0.08, label="overfitting")
    bp = best_point(d)
    if bp is not None:
        metric, step, value, epoch = bp
        ax.plot([step], [value], marker="*", markersize=16, color="#ffb300", markeredgecolor="black", zorder=5, linestyle="none", label=f"best {metric}")
        where = f"step {step}" + (f", epoch {epoch:g}" if epoch is not None else "")
        ax.annotate(f"best {value:.4g}\n{where}", (step, value), xytext=(12, 24), textcoords="offset points", fontsize=9,
                    arrowprops={"arrowstyle": "->", "color": "#555"}, bbox={"boxstyle": "round", "fc": "white", "ec": "#bbb"})
    ckpts = sorted(run.checkpoints)
    for i, c in enumerate(ckpts):
        ax.axvline(c, color="#607d8b", linestyle=":", linewidth=1.0, label="checkpoint saved" if i == 0 else None)
    ax.set_ylabel("loss")
    ax.set_title("Loss" + (" — best point and overfitting region" if region else ""), fontsize=12, loc="left")
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    _style(ax)
    _epoch_axis(ax, steps_per_epoch(run))
    _phase_strip(strip, d)
    strip.set_xlabel("step")
    caption = "Yellow star: the best point. Shaded: where eval got worse while train kept falling."
    return Plot("loss", "Loss", fig, caption)


def _phase_strip(ax: Axes, d: Diagnosis) -> None:
    """The phases as coloured bands labelled with their name and flag."""
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if not d.phases:
        ax.text(0.5, 0.5, "phases: not available", transform=ax.transAxes, ha="center", va="center", fontsize=8, color="#777")
        return
    span = max(max(p.end_step for p in d.phases) - min(p.start_step for p in d.phases), 1)
    for p in d.phases:
        color = FLAG_COLORS.get(p.flag, "#9e9e9e")
        width = max(p.end_step - p.start_step, 0.5)
        ax.broken_barh([(p.start_step, width)], (0, 1), facecolors=color, alpha=0.85, edgecolor="white")
        # Labels sized to the band: a label wider than its band would spill over its neighbours.
        frac = width / span
        text = f"{p.name}\n{p.flag}" if frac >= 0.12 else p.name if frac >= 0.04 else ""
        if text:
            ax.text(p.start_step + width / 2, 0.5, text, ha="center", va="center", fontsize=7 if frac >= 0.12 else 6,
                    color="black" if p.flag == "yellow" else "white", clip_on=True)
    ax.set_ylim(0, 1)
    ax.set_ylabel("phase", fontsize=8, rotation=0, labelpad=18)


def lr_plot(d: Diagnosis) -> Plot | None:
    """The LR actually followed, over the configured schedule(s) rebuilt from the config."""
    run = d.run
    lr = run.history.get_series(LEARNING_RATE).finite().sorted()
    end = max(int(lr.steps[-1]) if len(lr) else 0, run.last_step or 0)
    curves = configured_curves(run, np.linspace(0, end, 600).round().astype(np.int64) if end else None)
    if not len(lr) and not curves:
        return None
    fig, (ax,) = _new_figure(3.6)
    if len(lr):
        s, v = thin(lr.steps, lr.values)
        ax.plot(s, v, color="#6a1b9a", linewidth=2.2, label="logged (what ran)")
    for c, style in zip(curves, ("--", ":"), strict=False):
        ax.plot(c.steps, c.values, linestyle=style, linewidth=1.6, color="#00897b" if style == "--" else "#f57c00", label=c.label)
    ax.set_ylabel("learning rate")
    ax.set_xlabel("step")
    # every tick says its own value (2e-05, 0.0002): a shared "1e-3" multiplier is printed over the epoch axis
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: "0" if v == 0 else f"{v:.2g}"))
    _flat_axis_from_zero(ax, [v for v in ([lr.values] if len(lr) else []) + [c.values for c in curves]])
    title = "Learning rate: followed vs configured"
    if d.lr_schedule.matches is False:
        title += " (they differ)"
    ax.set_title(title, fontsize=12, loc="left")
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    _style(ax)
    _epoch_axis(ax, steps_per_epoch(run))
    parts = []
    inf, conf = d.lr_schedule.inferred or {}, d.lr_schedule.configured or {}
    if inf.get("shape"):
        parts.append(f"inferred shape: {inf['shape']}")
    if conf.get("type"):
        parts.append(f"configured: {conf['type']}")
    if d.lr_schedule.cause:
        parts.append(str(d.lr_schedule.cause))
    if not curves:
        parts.append("configured schedule unknown (no learning_rate / scheduler in the config)")
    return Plot("lr", "Learning rate", fig, "; ".join(parts))


def _flat_axis_from_zero(ax: Axes, series: list[np.ndarray]) -> None:
    """A constant LR gets a 0-based axis: autoscaling a flat line zooms into nothing and prints an offset label.

    Matplotlib scales a constant 1e-3 to 0.999e-3..1.001e-3 and writes a ``1e-3``
    offset text that collides with the epoch axis above; from 0 to 1.2x the
    value, the line sits where a reader expects it, with plain tick labels.
    """
    vals = np.concatenate([np.asarray(v, dtype=float) for v in series if len(v)]) if series else np.array([])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return
    lo, hi = float(vals.min()), float(vals.max())
    if hi > 0 and lo >= 0 and (hi - lo) <= 1e-6 * hi:
        ax.set_ylim(0, hi * 1.2)


def _log_ticks(ax: Axes, lo: float, hi: float) -> None:
    """Several labelled ticks on a log axis that spans less than a decade (matplotlib would label one, or none)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator

    if hi / lo < 10:
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(0, 0)))


def grad_norm_plot(d: Diagnosis) -> Plot | None:
    """Grad norm on a log scale (a collapse is a x1000 drop, invisible on a linear axis)."""
    g = d.run.history.get_series(GRAD_NORM).finite().sorted()
    if not len(g):
        return None
    pos = g.values > 0
    if not pos.any():
        return None
    fig, (ax,) = _new_figure(3.4)
    s, v = thin(g.steps[pos], g.values[pos])
    ax.plot(s, v, color="#455a64", linewidth=1.0, label="grad norm")
    for f in d.findings:
        if f.code in ("grad_norm_collapse", "grad_norm_explosion") and f.start_step is not None:
            color = "#1565c0" if f.code == "grad_norm_collapse" else "#c62828"
            ax.axvspan(f.start_step, f.end_step if f.end_step is not None else s[-1], color=color, alpha=0.10,
                       label=f.code.replace("_", " "))
    ax.set_yscale("log")
    _log_ticks(ax, float(v.min()), float(v.max()))
    ax.set_ylabel("grad norm (log)")
    ax.set_xlabel("step")
    ax.set_title("Gradient norm", fontsize=12, loc="left")
    ax.legend(fontsize=8, loc="best")
    _style(ax)
    _epoch_axis(ax, steps_per_epoch(d.run))
    dropped = int((~pos).sum())
    cap = f"{dropped} non-positive value(s) left off the log axis." if dropped else ""
    lo, hi = float(g.values[pos].min()), float(g.values[pos].max())
    if lo > 0 and hi / lo >= 100:
        cap = (cap + " " if cap else "") + f"Spans x{hi / lo:,.0f} (from {hi:.3g} to {lo:.3g})."
    return Plot("grad_norm", "Gradient norm", fig, cap)


def eval_metric_names(d: Diagnosis) -> list[str]:
    return [n for n in d.run.history.eval_metrics() if not n.endswith(_NOT_QUALITY)]


def eval_metrics_plot(d: Diagnosis) -> Plot | None:
    """Small multiples of every other eval metric (accuracy, perplexity ...), log-scaled when they span decades."""
    names = eval_metric_names(d)[:6]
    if not names:
        return None
    from matplotlib.figure import Figure

    cols = min(2, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(10, 2.8 * rows), dpi=100, layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        s: Series = d.run.history[name].finite().sorted()
        if not len(s):
            continue
        x, y = thin(s.steps, s.values)
        ax.plot(x, y, color="#00695c", marker="o" if len(s) <= 60 else None, markersize=3)
        if (y > 0).all() and float(y.max()) / max(float(y.min()), 1e-300) >= 1000:
            ax.set_yscale("log")
        ax.set_title(mpl_text(name), fontsize=10, loc="left")
        ax.set_xlabel("step", fontsize=8)
        _style(ax)
    return Plot("eval_metrics", "Other eval metrics", fig, "")


def build_plots(d: Diagnosis) -> list[Plot]:
    """Every figure that has data, in report order."""
    out: list[Plot] = []
    for fn in (loss_plot, lr_plot, grad_norm_plot, eval_metrics_plot):
        p = fn(d)
        if p is not None:
            out.append(p)
    return out


def to_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (Agg canvas; no pyplot state)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": "trainguard"})
    return buf.getvalue()


def plot_stem(d: Diagnosis) -> str:
    """The hyper-parameter suffix users put in their plot names, else the run name."""
    return hparam_suffix(d.run.config) or safe_stem(d.run.name)


def write_plots(diagnosis: Diagnosis, dir: str | Path) -> list[Path]:
    """Write each figure as ``<key>_plot_<lr_seqlen_bs_evalbs_accum_wd_epochs>.png`` in ``dir``; returns the paths."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = plot_stem(diagnosis)
    paths: list[Path] = []
    for p in build_plots(diagnosis):
        path = out / f"{p.key}_plot_{stem}.png"
        path.write_bytes(to_png(p.figure))
        paths.append(path)
    return paths


__all__ = ["FLAG_COLORS", "Plot", "best_point", "build_plots", "mpl_text", "plot_stem", "thin", "to_png", "write_plots"]
