"""Logs built from the user's own hand-written diagnoses in ``../shared/seeds/``.

Each ``write_seedNNN(dir)`` writes what that run's job would have left behind
(stdout with tqdm noise and launcher lines, the configs beside it, checkpoint
folders) and returns the path a user would hand to ``trainguard analyze``.
The numbers are the seeds' own tables; between the points a seed gives, values
are interpolated in log space with a fixed-seed jitter, so the curves look like
real logs without inventing a different story.

- seed 003: 70B 4-bit LoRA on 8 GPUs under DeepSpeed, 100 epochs = 200 steps,
  eval every 10, saves every 100, ``lr_scheduler_type=constant`` but a
  ``WarmupDecayLR`` block in ds_config.json; best eval 0.1376 at epoch 15.
- seeds 000/001: GPT-J-6B LoRA on Colab; train loss 3.64 -> 0.005 within 225 of
  5064 steps (4% of epoch 1); no eval; killed mid-run (no train_runtime line).
- seed 002: a custom GPT-2 LoRA loop printing ``Step N: train X, val Y``; plateau
  and an instability jump at step 2000.
- seed 004: pico decoder; eval perplexity explodes 2.55e19 -> 4.98e30 after 8,800 steps.
"""

from __future__ import annotations

import json
import math
import pickle
import random
from datetime import datetime, timedelta
from pathlib import Path

# ---------------------------------------------------------------- seed 003
# (epoch, train_loss, eval_loss or None, learning_rate, grad_norm): the seed's epoch table.
SEED003_TABLE: list[tuple[float, float, float | None, float, float]] = [
    (0.83, 0.1660, None, 0.0, 0.5529),
    (1.0, 0.1671, None, 0.00006021, 0.4522),
    (5.0, 0.1695, 0.1551, 0.00020, 0.0772),
    (10.0, 0.1130, 0.1447, 0.00019053, 0.0870),
    (15.0, 0.1282, 0.1376, 0.00018, 0.0854),
    (20.0, 0.1224, 0.1387, 0.00016947, 0.1120),
    (25.0, 0.1202, 0.1429, 0.00015895, 0.2237),
    (30.0, 0.0781, 0.1544, 0.00014842, 0.2991),
    (35.0, 0.0288, 0.2098, 0.00013789, 0.2316),
    (40.0, 0.0081, 0.2641, 0.00012737, 0.1516),
    (45.0, 0.0044, 0.3354, 0.00011684, 0.1861),
    (50.0, 0.0035, 0.3899, 0.00010632, 0.1043),
    (55.0, 0.0007, 0.4417, 0.00009579, 0.0281),
    (60.0, 0.0001, 0.4581, 0.00008526, 0.0273),
    (65.0, 0.0001, 0.4376, 0.00007474, 0.0466),
    (70.0, 0.0001, 0.4563, 0.00006421, 0.0204),
    (75.0, 0.00004, 0.4700, 0.00005368, 0.0009),
    (80.0, 0.00003, 0.4825, 0.00004316, 0.0006),
    (85.0, 0.00002, 0.4875, 0.00003263, 0.0012),
    (90.0, 0.00002, 0.4911, 0.00002211, 0.0003),
    (95.0, 0.00001, 0.4902, 0.00001158, 0.0002),
    (100.0, 0.00001, 0.4918, 0.00000105, 0.0003),
]
SEED003_STEPS = 200  # 100 epochs, 2 optimizer steps per epoch ("Step 30 (Epoch 15)")
SEED003_START = datetime(2025, 12, 6, 14, 56, 52)
SEED003_END = datetime(2025, 12, 7, 2, 37, 37)



# The run's DeepSpeed config: its WarmupDecayLR scheduler block overrides lr_scheduler_type=constant.
SEED003_DS = {
    "train_micro_batch_size_per_gpu": "auto",
    "gradient_accumulation_steps": "auto",
    "bf16": {"enabled": "auto"},
    "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
    "scheduler": {
        "type": "WarmupDecayLR",
        "params": {"warmup_min_lr": 0, "warmup_max_lr": 2e-4, "warmup_num_steps": 10, "total_num_steps": 200},
    },
    "gradient_clipping": "auto",
}

def _interp_log(xs: list[float], ys: list[float], x: float) -> float:
    """Piecewise-linear interpolation of log(y) (y > 0)."""
    if x <= xs[0]:
        return ys[0]
    for i in range(1, len(xs)):
        if x <= xs[i]:
            t = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
            a, b = math.log(max(ys[i - 1], 1e-12)), math.log(max(ys[i], 1e-12))
            return math.exp(a + t * (b - a))
    return ys[-1]


def seed003_lr(step: int) -> float:
    """DeepSpeed WarmupDecayLR as the seed's LR column shows it: log warmup over 10 steps to 2e-4, then linear to 0 at 200."""
    peak, warm, total = 2e-4, 10, SEED003_STEPS
    if step < warm:
        return peak * math.log(step + 1) / math.log(warm)
    return peak * max(0.0, (total - step) / (total - warm))


def seed003_points() -> tuple[list[dict], list[dict]]:
    """(train logs, eval logs) as HF would log them: train every step, eval every 10 steps."""
    rng = random.Random(3)
    tab_epochs = [r[0] for r in SEED003_TABLE]
    tab_train = [r[1] for r in SEED003_TABLE]
    tab_gn = [r[4] for r in SEED003_TABLE]
    evals = {int(r[0] * 2): r[2] for r in SEED003_TABLE if r[2] is not None}
    train, ev = [], []
    for step in range(1, SEED003_STEPS + 1):
        epoch = step / 2
        loss = _interp_log(tab_epochs, tab_train, epoch) * math.exp(rng.gauss(0, 0.08))
        gn = _interp_log(tab_epochs, tab_gn, epoch) * math.exp(rng.gauss(0, 0.15))
        train.append({"loss": round(loss, 4), "grad_norm": round(gn, 6), "learning_rate": seed003_lr(step), "epoch": epoch})
        if step in evals:
            ev.append({"eval_loss": evals[step], "eval_runtime": 41.2, "eval_samples_per_second": 1.94, "eval_steps_per_second": 0.121, "epoch": epoch})
    return train, ev


def _tqdm(n: int, total: int, elapsed: float) -> str:
    pct = int(100 * n / total)
    rate = elapsed / max(n, 1)
    left = rate * (total - n)

    def hms(s: float) -> str:
        s = int(s)
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"

    bar = "#" * (pct // 10) + ("" if pct == 100 else " " * (10 - pct // 10))
    return f"{pct:3d}%|{bar[:10]:10s}| {n}/{total} [{hms(elapsed)}<{hms(left)}, {rate:.2f}s/it]"


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}"


# The run's TrainingArguments and LoraConfig, as the seed reports them (also used by tests/report/builders.py).
SEED003_ARGS: dict = {
    "output_dir": "./output",
    "learning_rate": 0.0002,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "num_train_epochs": 100,
    "per_device_train_batch_size": 2,
    "per_device_eval_batch_size": 2,
    "gradient_accumulation_steps": 10,
    "weight_decay": 0.01,
    "eval_strategy": "steps",
    "eval_steps": 10,
    "save_strategy": "steps",
    "save_steps": 100,
    "logging_steps": 1,
    "optim": "adamw_8bit",
    "bf16": True,
    "gradient_checkpointing": True,
    "max_grad_norm": 1.0,
    "deepspeed": "ds_config.json",
    "load_best_model_at_end": False,
    "report_to": [],
}

SEED003_ADAPTER: dict = {
    "peft_type": "LORA",
    "task_type": "CAUSAL_LM",
    "base_model_name_or_path": "marcelbinz/Llama-3.1-Centaur-70B-adapter",
    "r": 8,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "bias": "none",
}


def write_seed003(folder: Path, *, with_configs: bool = True, with_checkpoints: bool = True) -> Path:
    """The seed-003 output folder: ``train_v4_7471.out``, ds_config.json, training_args.json,
    adapter_config.json, checkpoint-100/ and checkpoint-200/ (adapter weights, a pickle
    training_args.bin that must never be loaded, no trainer_state.json). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = SEED003_START
    lines: list[str] = []
    launch = [
        "[INFO] [real_accelerator.py:254:get_accelerator] Setting ds_accelerator to cuda (auto detect)",
        "[WARNING] [runner.py:215:fetch_hostfile] Unable to find hostfile, will proceed with training with local resources only.",
        "[INFO] [runner.py:607:main] cmd = /opt/conda/bin/python -u -m deepspeed.launcher.launch "
        "--world_info=eyJsb2NhbGhvc3QiOiBbMCwgMSwgMiwgMywgNCwgNSwgNiwgN119 --master_addr=127.0.0.1 "
        "--master_port=29500 --enable_each_rank_log=None Finetuning_V5.py 0.0002 8870 2 2 10 0.01 100",
        "[INFO] [launch.py:146:main] WORLD INFO DICT: {'localhost': [0, 1, 2, 3, 4, 5, 6, 7]}",
        "[INFO] [launch.py:152:main] nnodes=1, num_local_procs=8, node_rank=0",
        "[INFO] [launch.py:163:main] global_rank_mapping=defaultdict(<class 'list'>, {'localhost': [0, 1, 2, 3, 4, 5, 6, 7]})",
        "[INFO] [launch.py:164:main] dist_world_size=8",
        "[INFO] [launch.py:168:main] Setting CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7",
    ]
    for i, msg in enumerate(launch):
        lines.append(f"[{_ts(t0 + timedelta(seconds=i))}] {msg}")
    for r in range(8):
        lines.append(f"[{_ts(t0 + timedelta(seconds=20 + r))}] [INFO] [comm.py:652:init_distributed] cdb=None")
    lines.append("Loading checkpoint shards: 100%|##########| 30/30 [02:11<00:00,  4.38s/it]")
    lines.append("trainable params: 103,546,880 || all params: 70,657,253,376 || trainable%: 0.1465")
    total_s = (SEED003_END - SEED003_START).total_seconds() - 300
    per_step = total_s / SEED003_STEPS
    train, ev = seed003_points()
    ev_iter = iter(ev)
    next_ev = next(ev_iter, None)
    buf = f"  0%|          | 0/{SEED003_STEPS} [00:00<?, ?it/s]"
    for step, tr in enumerate(train, start=1):
        el = step * per_step
        # tqdm refreshes (several per step, \r-separated, as a real terminal capture has)
        buf += "".join("\r" + _tqdm(step, SEED003_STEPS, el - per_step * (1 - k / 3)) for k in range(1, 4))
        lines.append(buf + "\r" + " " * 48 + str(tr))
        buf = _tqdm(step, SEED003_STEPS, el)
        if next_ev is not None and step == int(next_ev["epoch"] * 2):
            lines.append(buf)
            lines.append(f"\n  0%|          | 0/21 [00:00<?, ?it/s]\x1b[A\r 10%|9         | 2/21 [00:02<00:19,  1.02s/it]\x1b[A\r100%|##########| 21/21 [00:41<00:00,  1.96s/it]\x1b[A{next_ev}")
            lines.append(f"\r                                               \x1b[A{buf}")
            next_ev = next(ev_iter, None)
        if step % 100 == 0:
            lines.append(f"Saving model checkpoint to ./output/checkpoint-{step}")
            lines.append(f"[{_ts(t0 + timedelta(seconds=300 + el))}] [INFO] [logging.py:107:log_dist] [Rank 0] [Torch] Checkpoint global_step{step} is about to be saved!")
    summary = {"train_runtime": round(total_s, 4), "train_samples_per_second": 0.761, "train_steps_per_second": 0.005, "train_loss": 0.0731, "epoch": 100.0}
    lines.append(buf + "\r" + " " * 48 + str(summary))
    lines.append(f"100%|##########| {SEED003_STEPS}/{SEED003_STEPS} [{_tqdm(SEED003_STEPS, SEED003_STEPS, total_s).split('[')[1]}")
    lines.append(f"[{_ts(SEED003_END)}] [INFO] [launch.py:351:main] Process 1234 exits successfully.")
    (folder / "train_v4_7471.out").write_text("\n".join(lines) + "\n")

    if with_configs:
        (folder / "ds_config.json").write_text(json.dumps(SEED003_DS, indent=2))
        args = SEED003_ARGS
        (folder / "training_args.json").write_text(json.dumps(args, indent=2))
        adapter = SEED003_ADAPTER
        (folder / "adapter_config.json").write_text(json.dumps(adapter, indent=2))
    if with_checkpoints:
        for step in (100, 200):
            ck = folder / f"checkpoint-{step}"
            ck.mkdir(exist_ok=True)
            (ck / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
            (ck / "training_args.bin").write_bytes(booby_trapped_pickle())
    return folder


class _Trap:
    """Unpickling this runs ``os.system``: proof that a reader never unpickles a run folder."""

    def __reduce__(self):  # pragma: no cover - only ever pickled
        import os

        return (os.system, ("echo UNPICKLED > /tmp/trainguard_unpickled_marker",))


def booby_trapped_pickle() -> bytes:
    return pickle.dumps(_Trap())


# ---------------------------------------------------------------- seeds 000/001
def write_seed000(folder: Path) -> Path:
    """GPT-J-6B LoRA on Colab (transformers 5.x string values): loss 3.64 -> 0.005 in 225 of 5064 steps; no eval; killed."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    total = 5064 * 3
    lines = [
        "trainable params: 3,670,016 || all params: 6,054,552,576 || trainable%: 0.0606",
        f"  0%|          | 0/{total} [00:00<?, ?it/s]",
    ]
    step = 0
    buf = ""
    for k in range(1, 17):  # logging_steps=25 -> up to step 400, then the session died
        step = 25 * k
        if step <= 225:
            # 3.64 at the first log, collapsing to ~0.005 by step 225
            t = (step - 25) / 200
            loss = math.exp(math.log(3.64) + t * (math.log(0.005) - math.log(3.64)))
        else:
            loss = 0.005 * math.exp(rng.gauss(-0.3, 0.2))
        lr = 2e-5 * (1 - step / total)
        gn = max(0.02, 2.5 * loss / 3.64 * math.exp(rng.gauss(0, 0.1)))
        epoch = step / 5064
        for j in range(step - 24, step + 1, 3):
            buf += f"\r  {int(100 * j / total)}%|          | {j}/{total} [{j * 3 // 60:02d}:{j * 3 % 60:02d}<12:34:56,  2.95s/it]"
        rec = {"loss": f"{loss:.4g}", "grad_norm": f"{gn:.4g}", "learning_rate": f"{lr:.4g}", "epoch": f"{epoch:.4g}"}
        lines.append(buf + "\r" + str(rec))
        # tqdm redraws the bar at the same step right after a log line, as real captures show
        buf = f"  {int(100 * step / total)}%|          | {step}/{total} [{step * 3 // 60:02d}:{step * 3 % 60:02d}<12:34:56,  2.95s/it]"
    lines.append(buf + f"\r  2%|2         | 410/{total} [20:10<12:25:00,  2.95s/it]")
    (folder / "colab_train.log").write_text("\n".join(lines))  # no final newline: the session died
    args = {
        "learning_rate": 2e-5,
        "weight_decay": 0.0,
        "num_train_epochs": 3,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "eval_strategy": "epoch",
        "logging_steps": 25,
        "lr_scheduler_type": "linear",
        "save_strategy": "epoch",
    }
    (folder / "training_args.json").write_text(json.dumps(args, indent=2))
    adapter = {"peft_type": "LORA", "base_model_name_or_path": "EleutherAI/gpt-j-6b", "r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    (folder / "adapter_config.json").write_text(json.dumps(adapter, indent=2))
    return folder


# ---------------------------------------------------------------- seed 002
def write_seed002(folder: Path) -> Path:
    """A custom GPT-2 LoRA loop (resumed at step 1000), constant LR 1e-5; ``Step N: train X, val Y`` every 500."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2)
    evals = {1500: (6.67, 6.71), 2000: (6.75, 6.93), 2500: (6.52, 6.72)}
    lines = [
        "Resuming from checkpoint checkpoints/step_1000.pt (step 1000)",
        "Config: model=gpt2 use_lora=True lora_rank=8 lora_alpha=16.0 batch_size=16 block_size=128 learning_rate=1e-05 max_grad_norm=1.0 training_steps=5000",
    ]
    for step in range(1010, 2501, 10):
        base = 6.70 - 0.05 * (step - 1000) / 2000
        if 1900 <= step <= 2100:
            base += 0.08  # the instability jump around step 2000
        loss = base + rng.gauss(0, 0.04)
        lines.append(f"step {step} | loss {loss:.4f} | lr 1.00e-05")
        if step in evals:
            tr, va = evals[step]
            lines.append(f"Step {step}: train {tr:.2f}, val {va:.2f}")
    (folder / "resume_training_log_gpt2_training_data_final_merged_11222025_150119.log").write_text("\n".join(lines) + "\n")
    return folder / "resume_training_log_gpt2_training_data_final_merged_11222025_150119.log"


# ---------------------------------------------------------------- seed 004
def write_seed004(folder: Path) -> Path:
    """pico-decoder-tiny (previous run): W&B-style JSONL; train loss falls, eval perplexity explodes 2.55e19 -> 4.98e30 after 8,800 steps."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(4)
    rows = []
    for step in range(100, 10001, 100):
        warm = min(1.0, step / 2500)
        lr = 3e-4 * warm
        loss = 10.98 * math.exp(-step / 2500) + 3.1 + rng.gauss(0, 0.05)
        row = {"_step": step, "train/loss": round(loss, 4), "train/learning_rate": lr}
        if step % 1000 == 0:
            if step < 8800:
                ppl = 2.55e19 * math.exp(0.0002 * (step - 1000) + rng.gauss(0, 0.05))
            else:
                ppl = 2.55e19 * math.exp(0.0002 * 7800 + (step - 8800) * (math.log(4.98e30 / 2.55e19) - 0.0002 * 7800) / 1200)
            row["eval/paloma_perplexity"] = float(f"{ppl:.3e}")
        rows.append(row)
    path = folder / "pico-decoder-tiny-dolma29k-v1.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path
