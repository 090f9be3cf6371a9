"""Seed 003's job log as a script that prints its settings writes it, with only ``ds_config.json`` beside it.

``seedlogs.write_seed003`` leaves training_args.json and adapter_config.json
beside the log; here the log itself is the only witness of the settings, as in
the seed: it prints ``TrainingArguments(...)`` (transformers 4.x form, one
``key=value,`` per line), ``LoraConfig(...)`` on one line, DeepSpeed's engine
config block, HF's ``***** Running training *****`` banner and a
``Saving model checkpoint`` line at steps 100 and 200 (no checkpoint folders).

``redraw_after=False`` writes the variant where tqdm redraws the bar before
each dict line but not after it, so the counter read after a dict is the next
step's refresh: the reader must still recover the exact steps.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.seedlogs import (
    SEED003_ADAPTER,
    SEED003_ARGS,
    SEED003_DS,
    SEED003_END,
    SEED003_START,
    SEED003_STEPS,
    _tqdm,
    _ts,
    seed003_points,
)


def _printed_args() -> list[str]:
    out = ["TrainingArguments("]
    for k, v in sorted({**SEED003_ARGS, "_n_gpu": 1, "seed": 42}.items()):
        out.append(f"{k}={v},")
    out.append(")")
    return out


def _printed_lora() -> str:
    a = SEED003_ADAPTER
    return (f"LoraConfig(peft_type=<PeftType.LORA: 'LORA'>, auto_mapping=None, base_model_name_or_path=None, revision=None, "
            f"task_type='CAUSAL_LM', inference_mode=False, r={a['r']}, target_modules={set(a['target_modules'])!r}, "
            f"lora_alpha={a['lora_alpha']}, lora_dropout=0, fan_in_fan_out=False, bias='none', modules_to_save=None)")


def _printed_deepspeed(t0_s: str) -> list[str]:
    p = f"[{t0_s}] [INFO] [config.py:1000:print]"
    rows = [
        ("bfloat16_enabled", "True"),
        ("gradient_accumulation_steps", "10"),
        ("gradient_clipping", "1.0"),
        ("optimizer_name", "None"),
        ("optimizer_params", "None"),
        ("scheduler_name", "WarmupDecayLR"),
        ("scheduler_params", str(SEED003_DS["scheduler"]["params"])),  # type: ignore[index]
        ("train_micro_batch_size_per_gpu", "2"),
        ("zero_optimization_stage", "2"),
    ]
    out = [f"[{t0_s}] [INFO] [config.py:996:print] DeepSpeedEngine configuration:"]
    for k, v in rows:
        out.append(f"{p}   {k} {'.' * max(2, 30 - len(k))} {v}")
    return out


def write_seed003_job_log(folder: Path, *, redraw_after: bool = True) -> Path:
    """Write ``train_v4_7471.out`` and ``ds_config.json`` into ``folder``; returns the log's path."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = SEED003_START
    lines = [f"[{_ts(t0)}] [INFO] [launch.py:164:main] dist_world_size=8",
             f"[{_ts(t0)}] [INFO] [launch.py:168:main] Setting CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7"]
    lines += _printed_args()
    lines.append(_printed_lora())
    lines.append("trainable params: 103,546,880 || all params: 70,657,253,376 || trainable%: 0.1465")
    lines += _printed_deepspeed(_ts(t0 + timedelta(seconds=40)))
    lines += [
        "***** Running training *****",
        "  Num examples = 1,000",
        "  Num Epochs = 100",
        "  Instantaneous batch size per device = 2",
        "  Total train batch size (w. parallel, distributed & accumulation) = 160",
        "  Gradient Accumulation steps = 10",
        "  Total optimization steps = 200",
        "  Number of trainable parameters = 103,546,880",
    ]
    total_s = (SEED003_END - SEED003_START).total_seconds() - 300
    per_step = total_s / SEED003_STEPS
    train, ev = seed003_points()
    evals = {int(e["epoch"] * 2): e for e in ev}
    out = "\n".join(lines) + "\n" + f"  0%|          | 0/{SEED003_STEPS} [00:00<?, ?it/s]"
    for step, tr in enumerate(train, start=1):
        el = step * per_step
        out += "".join("\r" + _tqdm(step, SEED003_STEPS, el - per_step * (1 - k / 3)) for k in range(1, 4))
        out += "\r" + " " * 48 + str(tr) + "\n"
        bar = _tqdm(step, SEED003_STEPS, el)
        if redraw_after:
            out += bar
        if step in evals:
            if redraw_after:
                out += "\n"
            out += (f"  0%|          | 0/21 [00:00<?, ?it/s]\x1b[A\r 10%|9         | 2/21 [00:02<00:19,  1.02s/it]\x1b[A"
                    f"\r100%|##########| 21/21 [00:41<00:00,  1.96s/it]\x1b[A{evals[step]}\n")
            if redraw_after:
                out += "\r" + " " * 47 + "\x1b[A" + bar
        if step % 100 == 0:
            if redraw_after:
                out += "\n"
            out += f"Saving model checkpoint to ./output/checkpoint-{step}\n"
    summary = {"train_runtime": round(total_s, 4), "train_samples_per_second": 0.761, "train_steps_per_second": 0.005,
               "train_loss": 0.0731, "epoch": 100.0}
    out += "\r" + " " * 48 + str(summary) + "\n"
    out += f"[{_ts(SEED003_END)}] [INFO] [launch.py:351:main] Process 1234 exits successfully.\n"
    log = folder / "train_v4_7471.out"
    log.write_text(out)
    (folder / "ds_config.json").write_text(json.dumps(SEED003_DS, indent=2))
    return log
