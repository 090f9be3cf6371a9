"""The notebook view (Diagnosis._repr_html_'s body) and the public exports a notebook user reaches for."""

from __future__ import annotations

import base64

import trainguard
from tests.report.builders import seed003_findings, seed003_run
from tests.test_diagnosis import build
from trainguard.report.notebook import notebook_html


def test_notebook_html_is_the_summary_and_the_loss_plot_escaped() -> None:
    run = seed003_run()
    run.name = "run <script>alert(1)</script>"
    d = build(run, seed003_findings())
    html = notebook_html(d)
    assert html.count("<img") == 1 and "data:image/png;base64," in html  # the loss plot only, inline
    png = base64.b64decode(html.split("data:image/png;base64,")[1].split('"')[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script>" not in html and "&lt;script&gt;alert(1)" in html
    assert d.verdict().split(":")[0] in html and 'class="cards"' in html
    assert "<section" not in html  # not the whole report: findings, causes ... stay in render_html


def test_public_exports() -> None:
    for name in ("read_run", "read_runs", "analyze", "render_html", "Guard", "Run", "InputError"):
        assert name in trainguard.__all__ and callable(getattr(trainguard, name))
