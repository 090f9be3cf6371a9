"""What a log prints about its run becomes RunConfig values sourced to their line, and known checkpoints.

The seed-003 job log alone (settings printed, ``ds_config.json`` beside it,
no training_args.json, no checkpoint folders) must give the seed's own
diagnosis: the LR cause names ``constant`` against DeepSpeed's
``WarmupDecayLR``, ``lora_dropout=0`` is a cause, the best eval is step 30 and
its checkpoint was never saved (saves at 100 and 200). The variant whose tqdm
bar is not redrawn after dict lines must give the same exact steps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.seedlogs_printed import write_seed003_job_log
from trainguard.diagnosis import diagnose
from trainguard.readers import read_run, read_runs
from trainguard.readers.log_config import literal, scan


@pytest.mark.parametrize("redraw_after", [True, False], ids=["bar-redrawn", "bar-not-redrawn"])
def test_seed003_job_log_alone_gives_the_seed_diagnosis(tmp_path: Path, redraw_after: bool) -> None:
    log = write_seed003_job_log(tmp_path, redraw_after=redraw_after)
    run = read_run(log)
    assert run.train_loss.steps.tolist() == list(range(1, 201))  # exact, whichever bar the scanner saw
    assert run.eval_loss.steps.tolist() == list(range(10, 201, 10))
    assert sorted(run.checkpoints) == [100, 200]
    assert run.config.get("lr_scheduler_type") == "constant"
    assert run.config.source("lr_scheduler_type").startswith("printed in the log, line ")
    assert run.config.get("lora_dropout") == 0 and run.config.get("lora_r") == 8
    assert run.config.get("deepspeed_scheduler") == "WarmupDecayLR"
    assert run.config.get("max_steps") == 200 and run.config.get("num_train_epochs") == 100
    assert run.planned_steps == 200

    d = diagnose(run).to_dict()
    assert (d["best"]["step"], d["best"]["value"], d["best"]["checkpoint_saved"]) == (30, 0.1376, False)
    lr = next(f for f in d["findings"] if f["code"] == "lr_schedule_mismatch")
    assert "constant" in lr["message"] and "WarmupDecayLR" in lr["message"]
    lora = [c for c in d["causes"] if "lora_dropout" in c["config_keys"]]
    assert lora and lora[0]["config_values"]["lora_dropout"]["value"] == 0
    assert lora[0]["config_values"]["lora_dropout"]["source"].startswith("printed in the log")
    saved = [c for c in d["causes"] if "best_checkpoint_not_saved" in c["finding_codes"]]
    assert saved and "100, 200" in saved[0]["explanation"]


def test_printed_deepspeed_block_alone_names_the_scheduler(tmp_path: Path) -> None:
    """Without ds_config.json beside the log, DeepSpeed's printed config block is the source."""
    log = write_seed003_job_log(tmp_path)
    (tmp_path / "ds_config.json").unlink()
    run = read_run(log)
    assert run.config.get("deepspeed_scheduler") == "WarmupDecayLR"
    assert run.config.source("deepspeed_scheduler").startswith("printed in the log, line ")
    assert run.config.get("deepspeed_scheduler_params")["total_num_steps"] == 200
    assert run.config.get("framework") == "deepspeed"


def test_scan_reads_one_line_reprs_banner_and_saves() -> None:
    text = "\n".join([
        "Namespace(lr=0.0003, epochs=5, batch_size=16, seed=7, output='out')",
        "LoraConfig(peft_type=<PeftType.LORA: 'LORA'>, task_type='CAUSAL_LM', r=16, target_modules={'v_proj', 'q_proj'}, lora_alpha=32, lora_dropout=0.05)",
        "***** Running training *****",
        "  Num examples = 12,000",
        "  Total optimization steps = 1,125",
        "Saving model checkpoint to runs/x/checkpoint-500",
    ])
    f = scan(text)
    got = {k: (v, line) for k, v, line in f.values}
    assert got["learning_rate"] == (0.0003, 1) and got["num_train_epochs"] == (5, 1)
    assert got["per_device_train_batch_size"] == (16, 1)
    assert got["lora_r"] == (16, 2) and got["lora_dropout"] == (0.05, 2)
    assert got["lora_target_modules"] == (["q_proj", "v_proj"], 2)
    assert got["train_samples"] == (12000, 4) and got["max_steps"] == (1125, 5)
    assert f.checkpoints == {500: "runs/x/checkpoint-500"}


def test_literal_never_evaluates_code() -> None:
    assert literal("__import__('os').system('echo hi')") == "__import__('os').system('echo hi')"
    assert literal("SchedulerType.CONSTANT") == "constant"
    assert literal("<PeftType.LORA: 'LORA'>") == "lora"
    assert literal("{'a': 1}") == {"a": 1}


def _hf_log(tmp_path: Path, *, evaluate_after: bool) -> Path:
    """A 4.x-style stdout of train() (eval per epoch, 3 epochs of 10 steps) and optionally evaluate()."""
    lines = []
    for ep in (1, 2, 3):
        for k in (5, 10):
            step = (ep - 1) * 10 + k
            lines.append(f"{{'loss': {2.0 - step / 30:.4f}, 'learning_rate': 1e-05, 'epoch': {step / 10:.1f}}}")
        lines.append(f"{{'eval_loss': {1.5 + (ep - 2) ** 2 / 10:.4f}, 'eval_runtime': 1.0, 'epoch': {float(ep)}}}")
    lines.append("{'train_runtime': 30.0, 'train_samples_per_second': 8.0, 'train_steps_per_second': 1.0, 'train_loss': 1.5, 'epoch': 3.0}")
    if evaluate_after:
        lines.append("{'eval_loss': 1.6, 'eval_runtime': 1.0, 'epoch': 3.0}")
    p = tmp_path / "job.log"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_train_then_evaluate_is_one_run(tmp_path: Path) -> None:
    """``trainer.train(); trainer.evaluate()``: the final standalone eval belongs to the run, at its last step."""
    runs = read_runs(_hf_log(tmp_path, evaluate_after=True))
    assert len(runs) == 1
    (run,) = runs
    assert run.eval_loss.steps.tolist() == [10, 20, 30, 30]
    assert run.eval_loss.values.tolist()[-1] == 1.6


def test_two_trainings_in_one_log_stay_two_runs(tmp_path: Path) -> None:
    p = _hf_log(tmp_path, evaluate_after=True)
    p.write_text(p.read_text() * 2)
    assert len(read_runs(p)) == 2


def test_custom_loop_log_prints_its_argparse_namespace(tmp_path: Path) -> None:
    """A free-text log (read by the text reader) still gives the settings its script printed."""
    p = tmp_path / "train.log"
    p.write_text("Namespace(lr=0.001, epochs=3, batch_size=32, weight_decay=0.0, data='x.csv')\n"
                 + "".join(f"Epoch {e}/3 - Train Loss: {1 / e:.4f}, Val Loss: {1.2 / e:.4f}\n" for e in (1, 2, 3)))
    (run,) = read_runs(p)
    assert len(run.eval_loss) == 3
    assert run.config.get("learning_rate") == 0.001 and run.config.source("learning_rate") == "printed in the log, line 1"
    assert run.config.get("weight_decay") == 0.0 and run.config.get("per_device_train_batch_size") == 32


def test_megatron_arguments_block_becomes_config() -> None:
    from tests.readers.test_new_formats import DATA

    (run,) = read_runs(DATA / "megatron" / "pretrain_gpt.log")
    assert run.config.get("lr_scheduler_type") == "cosine" and run.config.get("warmup_steps") == 100
    assert run.config.get("max_steps") == 500 and run.config.source("max_steps").startswith("printed in the log, line ")


def test_banner_behind_a_logging_prefix() -> None:
    """LLaMA-Factory and transformers' logging put ``[INFO|trainer.py:2134] ... >>`` before the banner lines."""
    f = scan("[INFO|trainer.py:2134] 2024-05-01 10:00:00,123 >> ***** Running training *****\n"
             "[INFO|trainer.py:2136] 2024-05-01 10:00:00,123 >>   Num Epochs = 3\n"
             "[INFO|trainer.py:2140] 2024-05-01 10:00:00,123 >>   Total optimization steps = 375\n")
    assert [(k, v) for k, v, _ in f.values] == [("num_train_epochs", 3), ("max_steps", 375)]


def test_two_jobs_in_one_log_each_get_their_own_printed_settings(tmp_path: Path) -> None:
    p = _hf_log(tmp_path, evaluate_after=False)
    body = p.read_text()
    p.write_text("TrainingArguments(\nlearning_rate=0.0001,\nsave_steps=10,\n)\n" + body
                 + "Saving model checkpoint to out/checkpoint-20\n"
                 + "TrainingArguments(\nlearning_rate=0.0003,\nsave_steps=500,\n)\n" + body)
    first, second = read_runs(p)
    assert (first.config.get("learning_rate"), second.config.get("learning_rate")) == (0.0001, 0.0003)
    assert second.config.source("learning_rate") == "printed in the log, line 17"
    assert sorted(first.checkpoints) == [20] and not second.checkpoints
