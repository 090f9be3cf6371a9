"""Every real public log in ../shared/realruns is read with no flags into the right canonical metrics.

Per file: the reader chosen, the number of train and eval loss points, and the
first and last (step, value) of each, checked by eye against the file
(SOURCES.tsv describes each). The HF Trainer stdout files (015, 019) belong to
the hf_stdout reader; their entries are skipped with a reason until it lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trainguard.errors import NoMetricsError
from trainguard.readers import read_runs

Pin = tuple[int, float, int, float] | None
# prefix: (format, train points, eval points, train (first step, first, last step, last), eval (...))
EXPECTED: dict[str, tuple[str, int, int, Pin, Pin]] = {
    "001": ("hf_trainer_state", 50, 0, (10, 0.0, 500, 0.0), None),
    "002": ("hf_trainer_state", 50, 1, (10, 2.6308, 500, 1.2445), (500, 1.688902497291565, 500, 1.688902497291565)),
    "003": ("hf_trainer_state", 50, 0, (10, 4.904, 500, 2.272), None),
    "004": ("hf_trainer_state", 50, 5, (10, 3.4474, 500, 2.8225), (100, 2.8353183269500732, 500, 2.7725062370300293)),
    "005": ("llamafactory_jsonl", 37, 0, (10, 122.1416, 370, 0.0), None),
    "006": ("llamafactory_jsonl", 9, 0, (1, 3.3418, 9, 2.3993), None),
    "007": ("hf_trainer_state", 300, 0, (10, 4.2601, 3000, 0.0028), None),
    "008": ("hf_trainer_state", 24, 6, (5, 1.2847743034362793, 120, 0.02474079728126526), (20, 0.10790343582630157, 120, 0.049445949494838715)),
    "009": ("hf_trainer_state", 75, 19, (50, 14.7537890625, 3750, 0.4385948944091797), (200, 0.9973475337028503, 3765, 0.7326762080192566)),
    "010": ("hf_trainer_state", 30, 6, (10, 3.2427, 300, 0.5431), (50, 1.177504301071167, 300, 0.628665030002594)),
    "011": ("hf_trainer_state", 20, 0, (50, 0.6691, 1000, 0.1138), None),
    "012": ("hf_trainer_state", 38, 0, (1, 1.2862, 1850, 1.1671), None),
    "013": ("hf_trainer_state", 194, 18, (10, 5.4531, 1940, 0.6624), (108, 1.1745526790618896, 1944, 0.8712695240974426)),
    "014": ("text", 26, 0, (0, 10.9677, 250, 0.0052), None),
    "016": ("lightning_csv", 50, 0, (49, 2.369102716445923, 2499, 2.243922710418701), None),
    "017": ("table", 457, 0, (10, 8.460716, 4570, 0.128361), None),
    "018": ("text", 11, 11, (0, 4.2849, 4999, 1.0797), (0, 4.2824, 4999, 1.4879)),
    "020": ("llamafactory_jsonl", 33, 0, (10, 1.0495, 330, 0.1345), None),
    "021": ("hf_trainer_state", 10, 10, (500, 1.1409, 5000, 0.2645), (549, 0.6597685217857361, 5490, 0.4916660189628601)),
    "022": ("hf_trainer_state", 50, 10, (10, 3.9324, 500, 0.6986), (50, 1.061448335647583, 500, 1.1666744947433472)),
    "023": ("hf_trainer_state", 16, 0, (30, 2.1667, 480, 1.6026), None),
    "024": ("hf_trainer_state", 25, 25, (10, 1.8883, 250, 0.7651), (10, 1.9887977838516235, 250, 1.0167593955993652)),
    "025": ("lightning_csv", 28, 0, (49, 2.347229480743408, 1399, 2.7272350788116455), None),
}
HF_STDOUT = {"015", "019"}


def _files(realruns: Path) -> list[Path]:
    return sorted(p for p in realruns.iterdir() if p.is_file())


def _check(series, n: int, pin: Pin) -> None:  # type: ignore[no-untyped-def]
    assert len(series) == n
    if pin is None:
        return
    s0, v0, s1, v1 = pin
    assert (int(series.steps[0]), float(series.values[0])) == (s0, pytest.approx(v0))
    assert (int(series.steps[-1]), float(series.values[-1])) == (s1, pytest.approx(v1))


@pytest.mark.parametrize("prefix", sorted(EXPECTED))
def test_real_run_reads_with_no_flags(realruns: Path, prefix: str) -> None:
    hits = [p for p in _files(realruns) if p.name.startswith(prefix)]
    if not hits:
        pytest.skip(f"no real run {prefix}")
    fmt, n_train, n_eval, train_pin, eval_pin = EXPECTED[prefix]
    [run] = read_runs(hits[0])
    assert run.format == fmt
    _check(run.train_loss, n_train, train_pin)
    _check(run.eval_loss, n_eval, eval_pin)


def test_karpathy_train_estimates_and_val(realruns: Path) -> None:
    """018 prints only eval-time lines: its train loss is the estimate, kept as train_loss (no per-iter lines)."""
    hits = [p for p in _files(realruns) if p.name.startswith("018")]
    if not hits:
        pytest.skip("no real run 018")
    [run] = read_runs(hits[0])
    tl = run.history.get("train_loss") or run.history.get("eval_train_loss")
    assert tl is not None and len(tl) == 11
    assert float(tl.values[0]) == pytest.approx(4.2849) and float(tl.values[-1]) == pytest.approx(1.0797)
    assert float(run.eval_loss.values.min()) == pytest.approx(1.4799)
    assert int(run.eval_loss.steps[run.eval_loss.values.argmin()]) == 4500


def test_buildnanogpt_extra_metrics(realruns: Path) -> None:
    hits = [p for p in _files(realruns) if p.name.startswith("014")]
    if not hits:
        pytest.skip("no real run 014")
    [run] = read_runs(hits[0])
    h = run.history
    assert h["grad_norm"].values[[0, -1]].tolist() == [6.74, 0.08]
    assert h["learning_rate"].values[[0, -1]].tolist() == pytest.approx([1e-5, 7.22e-4])
    assert h["step_time"].values[0] == pytest.approx(25.21331)  # dt: 25213.31ms, in seconds
    assert h["throughput"].values[-1] == pytest.approx(6923.59)


@pytest.mark.parametrize("prefix", sorted(HF_STDOUT))
def test_hf_stdout_real_runs(realruns: Path, prefix: str) -> None:
    hits = [p for p in _files(realruns) if p.name.startswith(prefix)]
    if not hits:
        pytest.skip(f"no real run {prefix}")
    try:
        runs = read_runs(hits[0])
    except NoMetricsError:
        pytest.skip("HF Trainer stdout reader (hf_stdout, another engineer's) not registered yet")
    if prefix == "015":
        [run] = runs
        assert len(run.train_loss) == 282 and len(run.eval_loss) == 30
        assert float(run.train_loss.values[0]) == pytest.approx(4.1437)
        assert float(run.train_loss.values[-1]) == pytest.approx(0.6449)
        assert float(run.eval_loss.values[0]) == pytest.approx(2.0092475414276123)
        assert float(run.eval_loss.values[-1]) == pytest.approx(2.132561683654785)
        assert float(run.eval_loss.values.min()) == pytest.approx(1.7825473546981812)
    else:  # consecutive Trainer runs in one file: read_runs gives the first, the LM run (13 train logs, 3 evals)
        first = runs[0]
        assert len(first.train_loss) == 13 and len(first.eval_loss) == 3
        assert float(first.train_loss.values[0]) == pytest.approx(1.6282)
        assert float(first.train_loss.values[-1]) == pytest.approx(0.0014)
        assert float(first.eval_loss.values[0]) == pytest.approx(0.0012160619953647256)


def test_071_buffered_bar_counters_do_not_shift_steps(realruns: Path) -> None:
    """071's bar is flushed late: the counters read after dict lines are later refreshes (586, 1171), off the
    10-step logging grid. Steps then come from the epochs, so every eval lands on its 200-step interval."""
    hits = [p for p in _files(realruns) if p.name.startswith("071")]
    if not hits:
        pytest.skip("no real run 071")
    (run,) = read_runs(hits[0])
    assert run.eval_loss.steps.tolist() == list(range(200, 1601, 200))
    assert bool((run.train_loss.steps % 10 == 0).all())
