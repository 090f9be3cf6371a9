"""Prometheus: the live guard's gauges, scraped over HTTP during a guarded tiny training, and as a textfile.

The scrape test trains the tiny GPT-2 under ``TrainguardCallback`` with a
``PrometheusSink`` on a free 127.0.0.1 port; a second callback scrapes the
endpoint after each evaluation, over real HTTP, and the gauges must move: the
step grows, the best eval falls, the evals since the best count up once the
run overfits. The server is always shut down.
"""

from __future__ import annotations

import itertools
import math
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest


def _parse(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(trainguard_\w+)\{[^}]*\} (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return _parse(r.read().decode())


@pytest.mark.slow
def test_gauges_move_during_a_guarded_training(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    pytest.importorskip("transformers")
    import torch
    from transformers import TrainerCallback

    from tests.tiny_training import KINDS, build_trainer
    from trainguard.live.guard import Guard
    from trainguard.live.hf_callback import TrainguardCallback
    from trainguard.live.policy import Policy
    from trainguard.trackers.prometheus import PrometheusSink

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 134k-parameter model gains nothing from threads on a shared CPU
    guard = Guard(Policy(alert_only=True), run_name="tiny-overfit")
    sink = PrometheusSink(guard, port=0)
    scrapes: list[dict[str, float]] = []

    class Scraper(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            scrapes.append(scrape(sink.port))

    try:
        spec = {**KINDS["overfit"], "steps": 200}  # eval bottoms out near step 100: 5 evals after it
        trainer = build_trainer(tmp_path / "out", **spec, callbacks=[TrainguardCallback(guard=guard, report=False), Scraper()])
        trainer.train()
        final = scrape(sink.port)
    finally:
        sink.close()
        torch.set_num_threads(threads)
    assert len(scrapes) == spec["steps"] // spec["eval_steps"]
    steps = [s["trainguard_step"] for s in scrapes]
    assert steps == sorted(steps) and steps[-1] > steps[0]
    bests = [s["trainguard_best_eval"] for s in scrapes]
    assert bests[-1] < bests[0] and all(b2 <= b1 for b1, b2 in itertools.pairwise(bests))
    since = [s["trainguard_evals_since_best"] for s in scrapes]
    assert max(since) >= 2  # it overfits: evals pile up after the best one
    assert final["trainguard_best_step"] == guard.best.step
    gates = [s["trainguard_stop_gate_distance"] for s in scrapes if not math.isnan(s["trainguard_stop_gate_distance"])]
    assert gates and min(gates) < max(gates)
    assert final["trainguard_stalled"] == 0.0
    with pytest.raises(OSError):
        scrape(sink.port or 0)  # the server is gone after close()


def test_textfile_for_node_exporter(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    from trainguard.live.guard import Guard
    from trainguard.trackers.prometheus import PrometheusSink

    guard = Guard(run_name='quote"and\\backslash')
    path = tmp_path / "trainguard.prom"
    now = [0.0]
    sink = PrometheusSink(guard, textfile=path, interval_s=3600, stall_after_s=300.0, clock=lambda: now[0])
    stops = 0
    for i, (tr, ev) in enumerate([(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.0, 1.9), (0.8, 2.2), (0.6, 2.6), (0.5, 3.0)]):
        a = guard.log(10 * (i + 1), train_loss=tr, eval_loss=ev)
        sink.on_action(a, guard)
        stops += a.stop
        now[0] += 1.0
    sink.write()  # a scrape right after the last point: not stalled
    assert _parse(path.read_text(encoding="utf-8"))["trainguard_stalled"] == 0.0
    now[0] += 301.0  # no new point for longer than the stall timeout
    sink.close()
    text = path.read_text(encoding="utf-8")
    v = _parse(text)
    assert v["trainguard_best_eval"] == 1.7 and v["trainguard_best_step"] == 30
    assert v["trainguard_evals_since_best"] == 4
    assert v["trainguard_stop_gate_distance"] < 0  # far past the gate
    assert stops >= 1 and v["trainguard_stops_total"] == stops
    assert v["trainguard_stalled"] == 1.0 and v["trainguard_seconds_since_progress"] >= 301
    assert 'run="quote\\"and\\\\backslash"' in text  # label values escaped the exposition way
    with pytest.raises(Exception, match=r"\.prom"):
        PrometheusSink(guard, textfile=tmp_path / "x.txt")
