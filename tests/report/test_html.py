"""The HTML report of the seed-003 run: self-contained, escaped, and rendered by a real headless Chromium.

The run is the one ``tests/seedlogs.py`` builds from seed 003's own tables
(stdout with DeepSpeed launcher lines and tqdm noise, ds_config.json with a
WarmupDecayLR block, training_args.json, adapter_config.json), read and
diagnosed the way ``trainguard analyze`` does. A ``<script>`` is planted in
the run name, a metric name and a reader note: it must show as text and never run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.seedlogs import write_seed003

EVIL = "<script>document.title='PWNED';document.body.setAttribute('data-pwned','1')</script>"
EVIL_IMG = '<img src=x onerror="document.title=\'PWNED\'">'
SECTIONS = ("summary", "plots", "phases", "findings", "causes", "recommendations", "patch", "config", "log")


@pytest.fixture(scope="module")
def seed003(tmp_path_factory: pytest.TempPathFactory):
    from trainguard.diagnosis import diagnose
    from trainguard.readers import read_run

    folder = write_seed003(tmp_path_factory.mktemp("seed003"))
    run = read_run(folder)
    run.name = f"train_v4_7471 {EVIL}"
    run.notes.append(f"a reader note quoting the log: {EVIL_IMG}")
    run.history.add(f"eval_{EVIL}", 10, 1.0)
    run.history.add(f"eval_{EVIL}", 20, 2.0)
    return diagnose(run)


@pytest.fixture(scope="module")
def report(seed003, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainguard.report.html import write_html

    return write_html(seed003, tmp_path_factory.mktemp("html") / "report.html")


def test_report_is_self_contained_and_escapes_the_log(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    # One script only (ours, pinned by the CSP hash); the planted ones are text.
    assert text.count("<script") == 1
    assert "<script>document.title='PWNED'" not in text and "<img src=x" not in text
    assert "&lt;script&gt;document.title=&#x27;PWNED&#x27;" in text
    assert "script-src 'sha256-" in text and "default-src 'none'" in text
    # Opens offline: nothing is fetched.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "@import" not in text and "url(" not in text
    for sid in SECTIONS:
        assert f'id="{sid}"' in text
    assert text.count('src="data:image/png;base64,') >= 4  # loss, LR, grad norm, other eval metrics


def test_report_says_what_seed_003_says(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "0.1376" in text and "step 30, epoch 15" in text  # the best point
    assert "checkpoint NOT saved" in text
    assert "WarmupDecayLR" in text  # the DeepSpeed scheduler that overrode "constant"
    assert "early_stopping_patience" in text and "lora_dropout" in text  # the fixes
    assert "TrainingArguments(" in text  # the copy-paste patch


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _browser(chrome: str, profile: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from trainguard.report.html import RENDERED_MARKER

    chrome = _chromium()
    if chrome is None:
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run does it)")
    url = report.resolve().as_uri()
    dom = _browser(chrome, tmp_path / "p1", "--dump-dom", url=url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # Our script ran after every plot decoded and no error fired; the planted one never ran.
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert RENDERED_MARKER in title
    assert 'data-report-ok="yes"' in html and 'data-plots-broken="0"' in html
    assert int(re.search(r'data-plots="(\d+)"', html).group(1)) >= 4
    # The planted script shows as text in the title; had it run, the title would be just "PWNED".
    assert title.startswith("trainguard: train_v4_7471 &lt;script&gt;document.title=") and title != "PWNED"
    body_tag = html.split("<body", 1)[1].split(">", 1)[0]
    assert "data-pwned" not in body_tag and "data-js-errors" not in body_tag
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln or "Refused to" in ln]
    assert not console, console
    for sid in SECTIONS:
        assert f'id="{sid}"' in html

    shot = tmp_path / "report.png"
    res = _browser(chrome, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1200,3000", url=url)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 100_000  # plots, not a blank page
    keep = os.environ.get("TRAINGUARD_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "seed003_report.png")


def test_write_plots_names_files_after_the_hyperparameters(seed003, tmp_path: Path) -> None:
    from trainguard.report.plots import write_plots

    paths = write_plots(seed003, tmp_path)
    names = sorted(p.name for p in paths)
    # lr_seqlen_bs_evalbs_accum_wd_epochs, as the user named loss_plot_0.0002_8870_2_2_10_0.01_100.jpg; the
    # sequence length is in no config, only in the launch command, whose other numbers match the config.
    assert "loss_plot_0.0002_8870_2_2_10_0.01_100.png" in names, names
    assert {n.split("_plot_")[0] for n in names} == {"loss", "lr", "grad_norm", "eval_metrics"}
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_degrades_when_the_diagnosis_is_empty(tmp_path: Path) -> None:
    """A run with train loss only, no config, and a bare Diagnosis: still a report, saying what is missing."""
    from trainguard.diagnosis import Diagnosis
    from trainguard.report.html import render_html
    from trainguard.report.plots import write_plots
    from trainguard.run import Run

    run = Run(name="bare", format="custom")
    for s in range(1, 50):
        run.history.add("train_loss", s, 3.0 / s)
    text = render_html(Diagnosis(run, []))
    assert "No phases" in text and "No findings." in text and "No config found" in text
    assert text.count('src="data:image/png;base64,') == 1  # the loss plot only
    assert [p.name for p in write_plots(Diagnosis(run, []), tmp_path)] == ["loss_plot_bare.png"]
    empty = render_html(Diagnosis(Run(name="empty", format="custom"), []))
    assert "No metric with points to plot." in empty


def test_configured_schedules_follow_hf_and_deepspeed() -> None:
    import numpy as np

    from tests.seedlogs import seed003_lr
    from trainguard.report.schedule import deepspeed_curve, hf_curve
    from trainguard.run import RunConfig

    steps = np.arange(0, 201)
    cfg = RunConfig()
    cfg.update({"learning_rate": 1e-4, "lr_scheduler_type": "cosine", "warmup_steps": 20}, "test")
    c = hf_curve(cfg, steps, 200)
    assert c is not None
    assert c.values[10] == pytest.approx(0.5e-4) and c.values[20] == pytest.approx(1e-4)
    assert c.values[110] == pytest.approx(0.5e-4) and c.values[200] == pytest.approx(0.0, abs=1e-12)
    cfg = RunConfig()
    cfg.update({"learning_rate": 2e-4, "lr_scheduler_type": "constant", "warmup_steps": 50}, "test")
    assert np.allclose(hf_curve(cfg, steps, 200).values, 2e-4)  # HF's constant ignores warmup
    # Seed 003: DeepSpeed's WarmupDecayLR (log warmup over 10 steps, linear to 0 at 200) is what ran.
    cfg.set("deepspeed", {"scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": "auto",
                                                                            "warmup_num_steps": 10, "total_num_steps": 200}}}, "ds")
    ds = deepspeed_curve(cfg, steps, 200)
    assert ds is not None
    assert np.allclose(ds.values[1:], [seed003_lr(int(s)) for s in steps[1:]], rtol=1e-9, atol=1e-12)


def test_analyze_writes_html_and_plots(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trainguard.cli import app

    folder = write_seed003(tmp_path / "run")
    res = CliRunner().invoke(app, ["analyze", str(folder), "--html", str(tmp_path / "r.html"), "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 1, res.output  # seed 003 has error-level findings
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (tmp_path / "plots" / "loss_plot_0.0002_8870_2_2_10_0.01_100.png").is_file()
