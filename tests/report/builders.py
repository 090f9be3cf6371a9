"""Runs and findings built from the seeds' own numbers, independent of readers and detectors.

The diagnosis and the reports are tested on these so that a change in a reader
or a detector cannot hide a regression here (the end-to-end CLI tests in
``tests/test_seeds.py`` cover the whole chain). Findings follow the evidence
keys of the detector contract.
"""

from __future__ import annotations

from tests import seedlogs
from trainguard.findings import Finding, Severity
from trainguard.run import Checkpoint, Run

ARGS = "training_args.json"
ADAPTER = "adapter_config.json"
DS = "ds_config.json"
# The canonical keys the builders copied by hand before (insertion order kept for rendered tables).
_HF_KEYS = (
    "learning_rate", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "per_device_train_batch_size",
    "gradient_accumulation_steps", "weight_decay", "eval_strategy", "eval_steps", "save_strategy", "save_steps",
    "load_best_model_at_end", "max_grad_norm", "bf16",
)


def seed003_run(*, with_config: bool = True) -> Run:
    """Seed 003 as a Run: 200 steps, train every step, eval every 10, checkpoints at 100 and 200, 8 GPUs."""
    train, ev = seedlogs.seed003_points()
    run = Run(name="train_v4_7471", format="hf_stdout", sources=["train_v4_7471.out"])
    h = run.history
    for i, tr in enumerate(train, start=1):
        h.add("train_loss", i, tr["loss"], tr["epoch"])
        h.add("grad_norm", i, tr["grad_norm"], tr["epoch"])
        h.add("learning_rate", i, tr["learning_rate"], tr["epoch"])
        h.add("epoch", i, tr["epoch"], tr["epoch"])
    for e in ev:
        h.add("eval_loss", int(e["epoch"] * 2), e["eval_loss"], e["epoch"])
    run.num_gpus = 8
    run.train_runtime = (seedlogs.SEED003_END - seedlogs.SEED003_START).total_seconds() - 300
    run.planned_steps = 200
    run.steps_per_epoch = 2
    run.finished = True
    for s in (100, 200):
        run.checkpoints[s] = Checkpoint(s, f"output/checkpoint-{s}")
    if with_config:
        c = run.config
        # the same TrainingArguments the seed-003 log folder carries (one source: tests/seedlogs.py)
        c.update({k: seedlogs.SEED003_ARGS[k] for k in _HF_KEYS}, ARGS)
        c.set("framework", "deepspeed", ARGS)
        lora = seedlogs.SEED003_ADAPTER
        c.update({"lora_r": lora["r"], "lora_alpha": lora["lora_alpha"], "lora_dropout": lora["lora_dropout"],
                  "model_name": lora["base_model_name_or_path"]}, ADAPTER)
        c.set("deepspeed_scheduler", "WarmupDecayLR", DS)
        c.set("world_size", 8, "launcher: dist_world_size=8")
        c.set("launch_command", "deepspeed Finetuning_V5.py 0.0002 8870 2 2 10 0.01 100", "log line 3")
    return run


def seed003_findings() -> list[Finding]:
    """What the detectors report on seed 003 (the contract's evidence keys), worst first."""
    return [
        Finding("overfitting", Severity.CRITICAL,
                "eval_loss was best at step 30 (epoch 15) with 0.1376; by step 200 it is 0.4918 (+257% worse).",
                30, 200, {"best_step": 30, "best_value": 0.1376, "best_epoch": 15.0, "onset_step": 40, "last_step": 200,
                          "last_value": 0.4918, "worse_pct": 257.4, "still_rising": False, "train_at_best": 0.128, "train_last": 1e-5}),
        Finding("memorization", Severity.ERROR, "train loss 0.00001 while eval rose 3.6x.", 80, 200,
                {"train_last": 1e-5, "train_min": 1e-5, "first_near_zero_step": 80}),
        Finding("wasted_compute", Severity.ERROR, "170 steps (85%) after the best point: 78.9 GPU-hours.", 30, 200,
                {"steps": 170, "fraction": 0.85, "hours": 9.86, "gpu_hours": 78.9, "gpus": 8}),
        Finding("best_checkpoint_not_saved", Severity.ERROR, "best step 30 was never saved; checkpoints at 100, 200.", 30, 30,
                {"best_step": 30, "saved_steps": [100, 200], "nearest_saved": 100}),
        Finding("grad_norm_collapse", Severity.WARNING, "grad norm fell 300x.", 140, 200,
                {"early_median": 0.09, "late_median": 0.0003, "ratio": 300.0}),
        Finding("lr_schedule_mismatch", Severity.WARNING, "LR decayed linearly although lr_scheduler_type=constant.", 10, 200,
                {"inferred_shape": "linear", "configured": "constant"}),
    ]


def seed000_run(*, with_config: bool = True) -> Run:
    """Seed 000: GPT-J LoRA, train loss 3.64 -> 0.005 in 225 of 5064 steps, no eval, killed mid-run."""
    run = Run(name="gptj", format="hf_stdout", sources=["colab.log"])
    for step in range(1, 401):
        v = 3.64 * (0.005 / 3.64) ** min(1.0, step / 225)
        run.history.add("train_loss", step, v, step / 5064)
        run.history.add("learning_rate", step, 2e-5, step / 5064)
    run.planned_steps = 5064 * 3
    if with_config:
        run.config.update({"learning_rate": 2e-5, "weight_decay": 0.0, "lora_r": 8, "num_train_epochs": 3}, "training_config.py")
    return run


def seed000_findings() -> list[Finding]:
    return [
        Finding("suspicious_fast_drop", Severity.ERROR,
                "train loss fell 3.64 -> 0.005 in 225 steps (4% of an epoch): check for leakage or duplicated data.",
                1, 225, {"from_value": 3.64, "to_value": 0.005, "steps": 225, "fraction_of_epoch": 0.044, "kind": "collapse"}),
        Finding("no_eval_data", Severity.WARNING, "no eval metric in the log.", None, None, {}),
    ]
