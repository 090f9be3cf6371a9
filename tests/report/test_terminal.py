"""The terminal report, rendered at a fixed width into a StringIO (deterministic)."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from tests.report.builders import seed003_findings, seed003_run
from tests.test_diagnosis import build
from trainguard.diagnosis import Diagnosis
from trainguard.findings import Finding, Severity
from trainguard.report.terminal import render
from trainguard.run import Run


def text(d: Diagnosis, width: int = 100, *, verbose: bool = False) -> str:
    buf = StringIO()
    Console(file=buf, width=width, color_system=None).print(render(d, verbose=verbose))
    return buf.getvalue()


def test_verdict_comes_first_and_sections_follow() -> None:
    out = text(build(seed003_run(), seed003_findings()), verbose=True)
    lines = out.splitlines()
    assert lines[0].startswith(" CRITICAL  train_v4_7471: eval_loss was best at step 30")
    order = ["Findings", "Key numbers", "Phases", "Causes", "Recommendations", "Read as hf_stdout"]
    pos = [out.index(s) for s in order]
    assert pos == sorted(pos)
    assert all(len(line) <= 100 for line in lines)


def test_how_the_log_was_read_only_when_verbose() -> None:
    out = text(build(seed003_run(), seed003_findings()))
    assert "Read as" not in out and "points, steps" not in out
    assert "Recommendations" in out


def test_escape_sequences_from_the_log_are_printed_inert() -> None:
    from trainguard._sanitize import Sanitized

    run = seed003_run()
    run.name = "\x1b]0;owned\x1b[31mred\x1b]8;;http://evil/\x1b\\link\u202e"
    buf = StringIO()
    Console(file=buf, width=100, color_system="truecolor", force_terminal=True).print(Sanitized(render(build(run, seed003_findings()))))
    out = buf.getvalue()
    assert "\x1b]" not in out and "\u202e" not in out  # no OSC (title, hyperlink), no bidi override
    assert "\\x1b]0;owned" in out and "\\x1b[31mred" in out  # shown as text a person can read
    assert "\x1b[" in out  # rich's own colours survive


def test_key_numbers_best_waste_lr() -> None:
    out = text(build(seed003_run(), seed003_findings()))
    assert "best eval_loss 0.1376 at step 30 (epoch 15); checkpoint NOT saved" in out
    assert "170 steps (85% of the run) after the best point" in out
    assert "GPU-hours (8 GPUs)" in out
    assert "worse=257%" in out  # the finding's key numbers line
    flat = " ".join(out.split())  # the LR line wraps at 100 columns
    assert "configured constant [training_args.json]" in flat


def test_phase_table_and_recommendations() -> None:
    out = text(build(seed003_run(), seed003_findings()))
    for flag, name in (("green", "learning"), ("yellow", "turning"), ("orange", "overfitting"), ("red", "memorization"), ("black", "dead")):
        assert any(flag in line and name in line for line in out.splitlines()), (flag, name)
    assert "early_stopping_patience = 3" in out
    assert "lora_dropout = 0.1" in out
    assert "save_steps = 10" in out


def test_same_input_same_output() -> None:
    assert text(build(seed003_run(), seed003_findings())) == text(build(seed003_run(), seed003_findings()))


def test_markup_in_log_data_is_printed_literally() -> None:
    run = Run(name="[bold]x[/bold]", format="custom")
    for i in range(1, 6):
        run.history.add("train_loss", i, 1.0 / i)
    f = Finding("plateau", Severity.WARNING, "loss [red]flat[/red] between steps", 1, 5, {"window_start": 1, "window_end": 5})
    out = text(build(run, [f]))
    assert "[bold]x[/bold]" in out and "[red]flat[/red]" in out


def test_healthy_run_says_so() -> None:
    run = Run(name="ok", format="hf_trainer_state")
    for i in range(1, 21):
        run.history.add("train_loss", i * 10, 2.0 / i)
        run.history.add("eval_loss", i * 10, 2.1 / i)
    out = text(build(run, []))
    assert out.splitlines()[0].startswith(" HEALTHY  ok: No problems found.")
    assert "Recommendations" not in out
