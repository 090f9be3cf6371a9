"""The Markdown report: the seed documents' sections, tables that survive log data, runnable snippets."""

from __future__ import annotations

import ast
import json
import re

from tests.conftest import realrun
from tests.report.builders import seed000_findings, seed000_run, seed003_findings, seed003_run
from tests.test_diagnosis import build
from trainguard.diagnosis import diagnose
from trainguard.findings import Finding, Severity
from trainguard.readers import read_run
from trainguard.report.json import render_json
from trainguard.report.markdown import cell, render_markdown, timeline_steps
from trainguard.run import Run

SECTIONS = [
    "## Executive summary",
    "## Configuration",
    "## Findings",
    "## Timeline",
    "## Phase analysis",
    "## Learning rate: configured vs reality",
    "## Root causes",
    "## Checkpoints",
    "## Computational cost",
    "## Recommendations",
    "## How the log was read",
]


def md003(verbose: bool = True) -> str:
    return render_markdown(build(seed003_run(), seed003_findings()), verbose=verbose)


def code_blocks(md: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)\n```", md, flags=re.S)


def test_seed003_sections_in_order() -> None:
    md = md003()
    pos = [md.index(s) for s in SECTIONS]
    assert pos == sorted(pos)
    assert md.startswith("# Training analysis: train_v4_7471")


def test_configuration_table_names_sources() -> None:
    md = md003()
    assert "| lora_dropout | 0 | adapter_config.json |" in md
    assert "| lr_scheduler_type | constant | training_args.json |" in md
    assert "| deepspeed_scheduler | WarmupDecayLR | ds_config.json |" in md


def test_timeline_marks_best_and_phases() -> None:
    md = md003()
    row = next(line for line in md.splitlines() if line.startswith("| 30 **best**"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "15" and cells[3] == "0.1376"  # epoch, eval loss
    assert "⬛ dead" in md and "🟥 memorization" in md
    assert "### Phase 1: warmup" in md


def test_lr_cost_checkpoints() -> None:
    md = md003()
    assert "Expected (constant)" in md
    assert "**Missing: the best checkpoint.**" in md
    assert "output/checkpoint-100" in md
    assert "- **Wasted compute:**" in md and "GPU-hours (8 GPUs)" in md


def test_how_the_log_was_read_only_when_verbose() -> None:
    assert "## How the log was read" not in md003(verbose=False)


def test_gpu_hours_and_plurals_read_as_words() -> None:
    from trainguard.report._text import gpu_hours, gpus, hours, plural

    assert gpu_hours(0.0004) == "<0.01 GPU-hours" and gpu_hours(2.5) == "2.50 GPU-hours" and gpu_hours(1234.0) == "1,234 GPU-hours"
    assert gpus(1) == "1 GPU" and gpus(8) == "8 GPUs" and plural(1, "step") == "1 step" and plural(3, "step") == "3 steps"
    assert hours(0.001) == "<1 min" and hours(0.5) == "30 min" and hours(3.44) == "3.4 h"


def test_snippets_are_valid_code() -> None:
    md = md003()
    py = code_blocks(md, "python")
    assert any("TrainingArguments(" in b and "EarlyStoppingCallback(early_stopping_patience=3)" in b for b in py)
    assert any("lora_dropout=0.1" in b for b in py)
    for b in py:
        ast.parse(b)  # copy-paste must at least parse
    ds = code_blocks(md, "jsonc")
    assert len(ds) == 1
    body = "\n".join(line for line in ds[0].splitlines() if not line.startswith("//"))
    assert json.loads(body)["scheduler"]["params"]["total_num_steps"] == "auto"


def test_leakage_report_puts_the_data_check_first() -> None:
    md = render_markdown(build(seed000_run(), seed000_findings()))
    causes = md[md.index("## Root causes"):]
    assert causes.index("Data leakage") < causes.index("\n## ")
    assert "eval examples also in train" in md  # the dedup snippet


def test_pipes_and_html_from_logs_are_escaped() -> None:
    assert cell("a|b\nc") == "a\\|b c"
    assert cell("<script>") == "&lt;script>"  # no tag can open; a "->" in a message stays "->"
    assert cell("a -> b &amp; c") == "a -> b &amp;amp; c"
    assert cell("\x1b]0;pwned\x07 \x1b[31mred") == "\\x1b]0;pwned\\x07 \\x1b[31mred"
    run = Run(name="r", format="custom")
    for i in range(1, 8):
        run.history.add("train_loss", i, 1.0 / i)
        run.history.add("eval_a|b", i, 1.0 / i)
    run.config.set("model_name", "evil|<b>name</b>", "cmd|line")
    f = Finding("plateau", Severity.WARNING, "flat | <i>really</i>", 1, 7, {})
    md = render_markdown(build(run, [f]))
    assert "<b>" not in md and "<i>" not in md
    for line in md.splitlines():
        if line.startswith("| model_name"):
            assert line.count(" | ") == 2  # three cells, pipes inside escaped


def test_long_runs_are_subsampled_keeping_best() -> None:
    run = Run(name="long", format="custom")
    for i in range(1, 501):
        run.history.add("train_loss", i, 5.0 / i)
        run.history.add("eval_loss", i, abs(i - 137) / 100 + 1)
    d = build(run, [])
    steps = timeline_steps(d)
    assert len(steps) <= 25 and 137 in steps and steps[0] == 1 and steps[-1] == 500
    assert "of 500 points shown" in render_markdown(d)


def test_real_runs_render() -> None:
    for prefix in ("008", "022"):
        d = diagnose(read_run(realrun(prefix)))
        md = render_markdown(d)
        assert "## Executive summary" in md
        json.loads(render_json(d))
