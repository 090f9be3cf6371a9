"""``trainguard compare`` on two tiny real runs: one overfits (32 examples, constant LR), one is healthy.

The runs are trained on the CPU by the shared ``tiny_runs`` fixture; their
TrainingArguments are written beside them as a user's output dir has them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.tiny_training import KINDS

pytestmark = pytest.mark.slow


def _write_args(out: Path, kind: str) -> None:
    spec = KINDS[kind]
    args = {
        "output_dir": str(out), "learning_rate": spec["lr"], "lr_scheduler_type": spec["sched"],
        "warmup_steps": spec["warmup"], "max_steps": spec["steps"], "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16, "gradient_accumulation_steps": 1, "weight_decay": 0.0,
        "eval_strategy": "steps", "eval_steps": spec["eval_steps"], "save_strategy": "no",
        "train_samples": spec["n_train"],
    }
    (out / "training_args.json").write_text(json.dumps(args, indent=2))


@pytest.fixture(scope="module")
def two_runs(tiny_runs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Copies of the shared tiny runs' trainer_state.json, each with its training_args.json beside it.

    Copies, so that the session-cached output dirs other tests read stay as the Trainer left them.
    """
    paths = []
    for kind in ("healthy", "overfit"):
        out = tmp_path_factory.mktemp(f"compare_{kind}")
        shutil.copy(tiny_runs(kind).output_dir / "trainer_state.json", out / "trainer_state.json")
        _write_args(out, kind)
        paths.append(out / "trainer_state.json")
    return paths[0], paths[1]


def test_compare_picks_out_the_differing_settings(two_runs) -> None:
    from trainguard.compare import compare_runs

    good_path, bad_path = two_runs
    c, _ = compare_runs([good_path, bad_path])
    by_name = {r.path: r for r in c.runs}
    good, bad = by_name[str(good_path)], by_name[str(bad_path)]
    assert good.group == "good" and bad.group == "bad"
    # The overfit run ended well above its own best; the healthy one at (or near) its best.
    assert bad.worse_at_end is not None and bad.worse_at_end > 1.2
    assert good.worse_at_end is not None and good.worse_at_end < 1.05
    assert good.params["lr"] == pytest.approx(3e-3) and bad.params["lr"] == pytest.approx(1e-3)
    keys = {d.key for d in c.separating}
    # What really differs between the two tiny configs, and nothing that is shared.
    assert {"samples", "sched", "warmup", "steps", "lr"} <= keys
    assert "bs" not in keys and c.same.get("bs") == 8
    samples = next(d for d in c.separating if d.key == "samples")
    assert "94× more training examples (3000 vs 32)" in samples.phrase
    assert "stopped before overfitting" in c.suggestion
    assert "training examples" in c.suggestion


def test_compare_cli_table_json_and_plot(two_runs, tmp_path: Path) -> None:
    from trainguard.cli import app

    good_path, bad_path = two_runs
    plot = tmp_path / "overlay.png"
    res = CliRunner().invoke(app, ["compare", str(good_path), str(bad_path), "--plot", str(plot)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "Differ between good and bad runs" in res.output and "Suggests:" in res.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    res = CliRunner().invoke(app, ["compare", str(good_path), str(bad_path), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "trainguard.compare/1"
    assert [r["group"] for r in doc["runs"]] == ["good", "bad"]


def test_name_pattern_reads_settings_from_file_names(tmp_path: Path) -> None:
    """Seed 003's runs, named the user's way; the settings come from the names alone."""
    from trainguard.compare import compare_diagnoses
    from trainguard.diagnosis import Diagnosis
    from trainguard.run import Run

    def fake_run(name: str, evals: list[float]) -> Run:
        run = Run(name=name, format="test")
        for i, v in enumerate(evals, start=1):
            run.history.add("eval_loss", i * 10, v, epoch=float(i))
            run.history.add("train_loss", i * 10, v * 0.9 ** i, epoch=float(i))
        return run

    bad = fake_run("bad", [0.155, 0.145, 0.138, 0.139, 0.143, 0.154, 0.21, 0.26, 0.34, 0.49])
    good = fake_run("good", [0.08, 0.04, 0.02, 0.01, 0.008, 0.006, 0.005])
    c = compare_diagnoses(
        [(Diagnosis(bad, []), tmp_path / "train_0.0002_8870_2_2_10_0.01_100.out"),
         (Diagnosis(good, []), tmp_path / "train_0.0001_2092_1_1_4_0.01_10.out")],
        name_pattern="lr_seqlen_bs_evalbs_accum_wd_epochs",
    )
    assert c.runs[0].params == {"lr": 0.0002, "seqlen": 8870, "bs": 2, "evalbs": 2, "accum": 10, "wd": 0.01, "epochs": 100}
    assert c.runs[0].param_sources["lr"] == "file name"
    phrases = [d.phrase for d in c.separating]
    assert "10× fewer epochs (10 vs 100)" in phrases
    assert "2× lower LR (0.0001 vs 0.0002)" in phrases
    assert c.same == {"wd": 0.01}
    # Six settings differ: each separates the two runs, but none can be blamed on its own.
    assert c.suggestion.startswith("6 settings differ (LR, sequence length, per-device batch, eval batch, grad accumulation, epochs)")
    assert "cannot say which one caused it" in c.suggestion and "fewer epochs" not in c.suggestion
    assert "stopped before overfitting" in c.suggestion and "epoch 3 of 100" in c.suggestion


def test_a_cause_is_claimed_only_when_one_setting_differs(tmp_path: Path) -> None:
    from trainguard.compare import compare_diagnoses
    from trainguard.diagnosis import Diagnosis
    from trainguard.run import Run

    def fake_run(name: str, evals: list[float]) -> Run:
        run = Run(name=name, format="test")
        for i, v in enumerate(evals, start=1):
            run.history.add("eval_loss", i * 10, v, epoch=float(i))
        return run

    bad = fake_run("bad", [0.155, 0.145, 0.138, 0.139, 0.143, 0.154, 0.21, 0.26, 0.34, 0.49])
    good = fake_run("good", [0.08, 0.04, 0.02, 0.01, 0.008, 0.006, 0.005])
    c = compare_diagnoses(
        [(Diagnosis(bad, []), tmp_path / "train_0.0002_100.out"), (Diagnosis(good, []), tmp_path / "train_0.0002_10.out")],
        name_pattern="lr_epochs",
    )
    assert c.differing == ["epochs"]
    assert c.suggestion.startswith("10× fewer epochs (10 vs 100), the only setting that differs: the good runs stopped")
