"""The registry's claims only narrow which readers are sniffed: the reader picked is the one sniffing every module picks.

A claim that wrongly refused a file would send it to a weaker reader (or to
"unknown format") silently; this runs both pickers over every log the tests
and the real-run corpus hold, and checks the start-up saving the claims exist
for: reading a trainer_state.json imports one reader module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainguard.errors import TrainguardError
from trainguard.readers import _REGISTRY, pick_reader, readers, top
from trainguard.readers._io import head

ROOT = Path(__file__).resolve().parents[2]
REALRUNS = ROOT.parent / "shared" / "realruns" / "runs"


def _files() -> list[Path]:
    found = [p for p in (ROOT / "tests" / "data").rglob("*") if p.is_file()]
    if REALRUNS.is_dir():
        found += [p for p in REALRUNS.rglob("*") if p.is_file()]
    return sorted(found)


def _pick_by_sniffing_all(path: Path, data: bytes) -> str | None:
    scored = sorted(((float(m.sniff(data, path)), i, m.NAME) for i, m in enumerate(readers())), key=lambda t: (-t[0], t[1]))
    for m in readers():  # the registry's highest score per module is what lets sniffing stop early
        name = m.__name__.rsplit(".", 1)[-1]
        assert float(m.sniff(data, path)) <= top(name, path), f"{path}: {name} sniffs above its declared highest score"
    if not scored or scored[0][0] <= 0:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0] and scored[0][0] < 0.99:
        return "ambiguous"
    return scored[0][2]


def test_claims_pick_the_reader_that_sniffing_everything_picks() -> None:
    files = _files()
    assert len(files) >= 20
    checked = 0
    for path in files:
        try:
            data = head(path)
        except TrainguardError:
            continue
        if not data.strip():
            continue
        want = _pick_by_sniffing_all(path, data)
        try:
            got: str | None = pick_reader(path, data).NAME
        except TrainguardError as e:
            got = "ambiguous" if "ambiguous" in str(e) else None
        assert got == want, f"{path}: claims pick {got}, sniffing every reader picks {want}"
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("trainer_state", b'{"log_history": [{"loss": 1.0, "step": 1}]}'),
        ("hf_stdout", b"{'loss': 1.2, 'learning_rate': 1e-05, 'epoch': 0.1}\n{'loss': 1.1, 'learning_rate': 1e-05, 'epoch': 0.2}\n"),
        ("table", b"step,loss\n1,2.0\n2,1.5\n3,1.2\n"),
        ("text", b"step 10 | loss: 2.5 | lr 1e-3\nstep 20 | loss: 2.4 | lr 1e-3\nstep 30 | loss: 2.3 | lr 1e-3\n"),
    ],
)
def test_claims_keep_each_format(name: str, data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(data)
    assert pick_reader(path, data).__name__.rsplit(".", 1)[-1] == name


def test_reading_trainer_state_imports_one_reader(tmp_path: Path) -> None:
    state = tmp_path / "trainer_state.json"
    state.write_text('{"log_history": [{"loss": 2.0, "step": 10}, {"loss": 1.5, "step": 20}], "global_step": 20}')
    code = (
        "import sys; from trainguard.readers import read_runs; read_runs(sys.argv[1]); "
        f"print(','.join(m for m in {list(_REGISTRY)!r} if 'trainguard.readers.' + m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(state)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "trainer_state"


def test_reading_an_hf_log_stamped_with_commas_imports_one_reader(tmp_path: Path) -> None:
    """A DeepSpeed launcher line (``[2025-12-06 14:56:52,123] ...``) has a comma, so the log looks delimited:
    the table readers that could tie with hf_stdout are ruled out by its header and its file name, unloaded."""
    log = tmp_path / "train.log"
    log.write_text("[2025-12-06 14:56:52,123] [INFO] [launch.py:164:main] dist_world_size=8\n"
                   + "".join(f"{{'loss': {2 - i / 10}, 'learning_rate': 1e-05, 'epoch': {i / 10}}}\n" for i in range(1, 9)))
    code = (
        "import sys; from trainguard.readers import read_runs; read_runs(sys.argv[1]); "
        f"print(','.join(m for m in {list(_REGISTRY)!r} if 'trainguard.readers.' + m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "hf_stdout"
