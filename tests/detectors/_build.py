"""Helpers for the detector tests: Runs built from seed tables and real logs, and finding lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainguard.detectors import run_all
from trainguard.errors import NoMetricsError
from trainguard.findings import Finding, Severity
from trainguard.readers import read_runs
from trainguard.readers.trainer_state import load_state
from trainguard.run import Checkpoint, Run


def seed003_run() -> Run:
    """Seed 003 as a trainer_state would hold it, with the job's configs: 200 steps, eval every 10, saves at 100 and 200."""
    from tests import seedlogs

    train, ev = seedlogs.seed003_points()
    log = []
    for i, t in enumerate(train, start=1):
        log.append({**t, "step": i})
        if i % 10 == 0:
            e = next(x for x in ev if abs(x["epoch"] - i / 2) < 1e-9)
            log.append({**e, "step": i})
    runtime = (seedlogs.SEED003_END - seedlogs.SEED003_START).total_seconds()
    log.append({"train_runtime": runtime, "train_loss": 0.05, "epoch": 100.0, "step": 200})
    state = {"log_history": log, "max_steps": 200, "num_train_epochs": 100, "logging_steps": 1, "eval_steps": 10, "save_steps": 100}
    run = Run(name="train_v4_7471", format="hf_stdout")
    load_state(run, state, source="train_v4_7471.out")
    c = run.config
    c.set("framework", "hf", "command line")
    c.set("learning_rate", 2e-4, "Finetuning_V5.py argv")
    c.set("lr_scheduler_type", "constant", "training_args.json")
    c.set("warmup_steps", 0, "training_args.json")
    c.set("save_strategy", "steps", "training_args.json")
    c.set("save_steps", 100, "training_args.json", override=True)
    c.set("eval_steps", 10, "training_args.json")
    c.set("lora_dropout", 0.0, "adapter_config.json")
    c.set("world_size", 8, "CUDA_VISIBLE_DEVICES")
    c.set("deepspeed_scheduler", "WarmupDecayLR", "ds_config.json")
    c.set(
        "deepspeed",
        {"scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 2e-4, "warmup_num_steps": 10, "total_num_steps": 200}}},
        "ds_config.json",
    )
    run.num_gpus = 8
    run.checkpoints = {s: Checkpoint(s, f"output/checkpoint-{s}") for s in (100, 200)}
    return run


def read_real(prefix: str) -> Run:
    """The real run ``prefix`` read by the project's readers; skips while its format has no reader yet."""
    from tests.conftest import realrun

    path: Path = realrun(prefix)
    try:
        runs = read_runs(path)
    except NoMetricsError as e:
        pytest.skip(f"no reader for {path.name} yet: {e}")
    return runs[0]


def by_code(findings: list[Finding]) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in findings:
        if f.code not in out or f.severity > out[f.code].severity:
            out[f.code] = f
    return out


def findings(run: Run) -> dict[str, Finding]:
    return by_code(run_all(run))


def loud(run: Run) -> dict[str, Finding]:
    """Findings at warning level or worse."""
    return {c: f for c, f in findings(run).items() if f.severity >= Severity.WARNING}
