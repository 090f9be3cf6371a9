"""Lint reports misspelt keys with the nearest real one, knows a trainguard run's length from its data, and speaks plain words."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from trainguard.cli import app
from trainguard.lint import RULES, lint_files

ROOT = Path(__file__).resolve().parents[2]
JARGON = re.compile(r"\bseeds? ?\d{3}|\bV[12]\b|\bseed V\d", re.IGNORECASE)


def _cli(*args: str):
    return CliRunner().invoke(app, ["lint", *args], terminal_width=200)


def test_misspelt_keys_name_the_nearest_key(tmp_path: Path) -> None:
    tg = tmp_path / "train.yaml"
    tg.write_text(f"model: gpt2\ndata: {ROOT / 'src/trainguard/data/demo_qa.md'}\nlora_rank: 8\nlerning_rate: 0.0001\nfoo: 1\n")
    hits = {r.key: r for r in lint_files([tg]) if r.rule == "TG001"}
    assert set(hits) == {"lora_rank", "lerning_rate", "foo"}  # train refuses all three: so does lint
    assert "did you mean `lora_r`?" in hits["lora_rank"].message and hits["lora_rank"].line == 3
    assert "did you mean `learning_rate`?" in hits["lerning_rate"].message
    assert hits["foo"].severity.value == "error" and "not a key" in hits["foo"].message
    hf = tmp_path / "training_args.json"
    # TrainingArguments files carry the script's own keys too: only a near-miss of a real key is reported
    hf.write_text(json.dumps({"output_dir": "o", "lerning_rate": 1e-4, "logging_first_step": True, "my_dataset": "x"}))
    hits = {r.key: r for r in lint_files([hf]) if r.rule == "TG001"}
    assert set(hits) == {"lerning_rate"} and hits["lerning_rate"].severity.value == "warning"
    res = _cli(str(hf))
    assert "unknown key 'lerning_rate' for TrainingArguments: did you mean `learning_rate`?" in res.stdout


def test_eval_steps_longer_than_a_trainguard_run_is_flagged(tmp_path: Path) -> None:
    data = ROOT / "src/trainguard/data/demo_qa.md"
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model: gpt2\ndata: {data}\nnum_train_epochs: 3\nper_device_train_batch_size: 8\n"
                   "gradient_accumulation_steps: 2\neval_steps: 500\n")
    hits = [r for r in lint_files([cfg]) if r.rule == "TG302"]
    assert len(hits) == 1 and hits[0].severity.value == "error"
    assert re.search(r"eval_steps=500 is more than the run's ~\d+ steps: evaluation never runs", hits[0].message)


def test_examples_lint_clean() -> None:
    for cfg in sorted((ROOT / "examples").glob("*.yaml")):
        res = _cli(str(cfg))
        assert res.exit_code == 0, (cfg.name, res.stdout)


def test_no_internal_shorthand_in_rules_explain_demo_or_readme() -> None:
    """Users never saw our design notes: no "seed 003", "seeds 000/001", "V1"/"V2" in anything they read."""
    texts = {f"{r.id} summary": r.summary for r in RULES} | {f"{r.id} help": r.help for r in RULES}
    for r in RULES:
        texts[f"--explain {r.id}"] = _cli("--explain", r.id).stdout
    from trainguard.train import demo

    texts["demo module text"] = " ".join(str(v) for k, v in vars(demo).items() if isinstance(v, str) and not k.startswith("__"))
    texts["demo labels"] = " ".join(demo.LABELS)
    texts["README.md"] = (ROOT / "README.md").read_text()
    for where, text in texts.items():
        m = JARGON.search(text)
        assert m is None, f"{where}: {text[max(0, m.start() - 60):m.end() + 60]!r}"
