"""The HTML report's layout on the runs that broke it: a constant LR and a short run with bookkeeping eval metrics.

Figures are checked on the matplotlib objects after a draw (tick labels,
offset text, their pixel boxes), then the whole page is rendered by headless
Chromium where it is installed: the plots decode and the page lays out.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trainguard.diagnosis import diagnose
from trainguard.run import Run

BOOKKEEPING = ("eval_num_tokens", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second")


def short_constant_lr_run() -> Run:
    """12 steps at a constant LR of 1e-3, grad norm between 0.4 and 0.9, and the Trainer's per-eval bookkeeping."""
    run = Run(name="short", format="hf_trainer_state")
    run.steps_per_epoch = 4.0
    for s in range(1, 13):
        run.history.add("train_loss", s, 2.0 - 0.05 * s, epoch=s / 4)
        run.history.add("learning_rate", s, 1e-3, epoch=s / 4)
        run.history.add("grad_norm", s, 0.4 + 0.04 * s, epoch=s / 4)
        if s % 3 == 0:
            run.history.add("eval_loss", s, 2.1 - 0.04 * s, epoch=s / 4)
            for i, name in enumerate(BOOKKEEPING):
                run.history.add(name, s, 100.0 * s + i, epoch=s / 4)
    run.config.set("learning_rate", 1e-3, "training_args.json")
    run.config.set("lr_scheduler_type", "constant", "training_args.json")
    return run


@pytest.fixture(scope="module")
def diag():
    return diagnose(short_constant_lr_run())


def _texts(fig) -> list:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    out = []
    for t in fig.findobj(Text):
        if not (t.get_visible() and t.get_text().strip()):
            continue
        bb = t.get_window_extent(r)
        if bb.width > 0 and bb.height > 0 and fig.bbox.contains(*bb.get_points().mean(axis=0)):
            out.append((t.get_text(), bb))
    return out


def test_constant_lr_has_no_offset_label_and_no_overlapping_text(diag) -> None:
    from trainguard.report.plots import lr_plot

    p = lr_plot(diag)
    assert p is not None
    ax = p.figure.axes[0]
    texts = _texts(p.figure)
    assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e-3" floating over the epoch axis
    lo, hi = ax.get_ylim()
    assert lo == 0 and hi == pytest.approx(1.2e-3)  # the flat line sits at 1e-3 on a 0-based axis
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert len(labels) >= 3 and len(set(labels)) == len(labels)  # distinct readable values, not 0.001 five times
    for (a, ba), (b, bb) in itertools.combinations(texts, 2):
        assert not ba.overlaps(bb), (a, b)


def test_log_grad_norm_axis_has_several_labels(diag) -> None:
    from trainguard.report.plots import grad_norm_plot

    p = grad_norm_plot(diag)
    assert p is not None
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    ax = p.figure.axes[0]
    FigureCanvasAgg(p.figure).draw()
    lo, hi = ax.get_ylim()
    shown = [t for t in ax.yaxis.get_ticklabels(which="both") if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert len(shown) >= 2, [t.get_text() for t in shown]
    boxes = [t.get_window_extent() for t in shown]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)


def test_bookkeeping_metrics_get_no_panel(diag) -> None:
    from trainguard.report.plots import build_plots, eval_metric_names

    assert not set(BOOKKEEPING) & set(eval_metric_names(diag))
    assert [p.key for p in build_plots(diag)] == ["loss", "lr", "grad_norm"]


def test_stat_cards_share_one_row(diag) -> None:
    from trainguard.report.html import _cards

    html = _cards(diag)
    n = html.count('class="card"')
    assert n >= 3 and f"repeat({min(n, 6)}, minmax(0, 1fr))" in html


def test_trainguard_train_runs_get_a_yaml_patch() -> None:
    from trainguard.diagnosis import Recommendation
    from trainguard.report.patch import patch_blocks

    d = diagnose(short_constant_lr_run())
    d.run.sources.append("out/trainguard_config.yaml")
    d.recommendations[:] = [Recommendation("learning_rate", 1e-3, 5e-4, "halve it", "TrainingArguments"),
                            Recommendation("warmup_steps", 0, 1, "warm up", "TrainingArguments"),
                            Recommendation("metric_for_best_model", None, "eval_loss", "best", "TrainingArguments")]
    [(title, lang, code)] = patch_blocks(d)
    assert title == "trainguard train config"
    assert lang == "yaml" and "TrainingArguments(" not in code
    assert "learning_rate: 0.0005  # was 0.001" in code and "warmup_ratio: 0.05" in code
    assert "metric_for_best_model" in code.splitlines()[-1] and code.splitlines()[-1].startswith("#")


def test_page_renders_in_headless_chromium(diag, tmp_path: Path) -> None:
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if chrome is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    from trainguard.report.html import RENDERED_MARKER, write_html

    page = write_html(diag, tmp_path / "short.html")
    cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'p'}",
           "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert RENDERED_MARKER in re.search(r"<title>(.*?)</title>", dom.stdout, re.S).group(1)
    assert 'data-plots-broken="0"' in dom.stdout and re.search(r'data-plots="3"', dom.stdout)  # no bookkeeping panel
    shot = tmp_path / "short.png"
    res = subprocess.run([*cmd[:-2], f"--screenshot={shot}", "--window-size=1200,2400", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
