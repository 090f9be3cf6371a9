"""``trainguard analyze`` as a user runs it: exit codes, one-line errors, --json, --format md, -o, import weight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import seedlogs
from tests.conftest import ROOT, realrun
from trainguard.cli import app
from trainguard.findings import Finding, Severity

runner = CliRunner()


def run(*args: str, **kw):
    return runner.invoke(app, ["analyze", *args], env={"COLUMNS": "100", "TRAINGUARD_DEBUG": ""}, **kw)


def one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert res.stdout == ""


# -- exit codes -------------------------------------------------------------------------


def test_healthy_real_run_exits_0_with_a_json_object() -> None:
    res = run(str(realrun("008")), "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert isinstance(doc, dict)
    assert doc["format"] == "hf_trainer_state"
    assert doc["best"]["step"] == 120 and doc["best"]["metric"] == "eval_loss"
    assert doc["metrics"]["eval_loss"]["points"] == 6
    assert not [f for f in doc["findings"] if f["severity"] in ("error", "critical")]


def test_error_findings_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exit code follows the worst finding: error -> 1, warning -> 0 (CI gate semantics)."""
    import trainguard.detectors as det

    sev = {"value": Severity.ERROR}
    monkeypatch.setattr(det, "run_all", lambda r: [Finding("plateau", sev["value"], "flat", 10, 20, {})])
    assert run(str(realrun("008")), "--json").exit_code == 1
    sev["value"] = Severity.WARNING
    res = run(str(realrun("008")), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "warning"


def test_overfitting_real_run_exits_1() -> None:
    res = run(str(realrun("022")), "--json")
    assert res.exit_code == 1, res.stderr
    doc = json.loads(res.stdout)
    assert doc["best"]["step"] == 200
    assert "overfitting" in {f["code"] for f in doc["findings"]}
    assert [p["name"] for p in doc["phases"]][-1] == "overfitting"


# -- bad input: one line on stderr naming the file, exit 2 ------------------------------------


def test_nonexistent_path(tmp_path: Path) -> None:
    p = tmp_path / "nope.log"
    one_line_error(run(str(p)), str(p), "no such file")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    one_line_error(run(str(p)), str(p), "empty")


def test_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "weights.bin"
    p.write_bytes(bytes(range(256)) * 64)
    one_line_error(run(str(p)), str(p), "binary")


def test_training_args_bin_is_never_unpickled(tmp_path: Path) -> None:
    marker = Path("/tmp/trainguard_unpickled_marker")
    marker.unlink(missing_ok=True)
    p = tmp_path / "training_args.bin"
    p.write_bytes(seedlogs.booby_trapped_pickle())
    one_line_error(run(str(p)), str(p))
    assert not marker.exists()


def test_truncated_trainer_state(tmp_path: Path) -> None:
    text = realrun("022").read_text()
    p = tmp_path / "trainer_state.json"
    p.write_text(text[: len(text) // 2])
    one_line_error(run(str(p)), str(p))


def test_missing_config_file(tmp_path: Path) -> None:
    res = run(str(realrun("008")), "--config", str(tmp_path / "training_args.json"))
    one_line_error(res, "training_args.json")


# -- formats --------------------------------------------------------------------------------


def test_several_runs_give_a_json_array() -> None:
    res = run(str(realrun("008")), str(realrun("010")), "--format", "json")
    docs = json.loads(res.stdout)
    assert isinstance(docs, list) and [d["run"][:3] for d in docs] == ["008", "010"]


def test_markdown_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    res = run(str(realrun("010")), "--format", "md", "-o", str(out), "--verbose")
    assert res.exit_code in (0, 1)
    assert res.stdout == ""
    assert f"wrote {out}" in res.stderr
    md = out.read_text()
    for s in ("## Executive summary", "## Timeline", "## Phase analysis", "## Recommendations", "## How the log was read"):
        assert s in md
    assert "| 200 **best**" in md  # alpaca-lora: best eval 0.6275 at step 200


def test_terminal_report_at_width_100() -> None:
    res = run(str(realrun("010")), "--verbose")
    lines = res.stdout.splitlines()
    assert lines[0].split()[0] in ("HEALTHY", "WARNING", "ERROR", "CRITICAL")
    assert all(len(line) <= 100 for line in lines)
    assert "best eval_loss 0.6275 at step 200" in res.stdout
    assert "Read as hf_trainer_state" in res.stdout


@pytest.mark.slow
def test_tiny_overfit_run_is_caught(tiny_runs) -> None:
    """Real training on the CPU (the session-shared overfit run): caught, exit 1, with the fixes.

    The healthy side is pinned on real run 008 above; a second tiny run would cost the suite
    minutes on 2 shared cores for no extra behaviour.
    """
    over = run(str(tiny_runs("overfit").output_dir / "trainer_state.json"), "--json")
    doc = json.loads(over.stdout)
    assert over.exit_code == 1
    assert 80 <= doc["best"]["step"] <= 200  # eval bottoms out near step 120 (STACK.md)
    assert {"early_stopping_patience", "load_best_model_at_end"} <= {r["key"] for r in doc["recommendations"]}
    flags = [p["flag"] for p in doc["phases"]]
    assert flags[0] == "green" and ("orange" in flags or "red" in flags)


# -- import weight ----------------------------------------------------------------------------


def test_analyze_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from trainguard.cli import app\n"
        f"r = CliRunner().invoke(app, ['analyze', {str(realrun('022'))!r}, '--format', 'md'])\n"
        "assert r.exit_code in (0, 1), r.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'matplotlib', 'accelerate', 'trl') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
