"""Tiny real training runs for the tests: a 2-layer GPT-2 and a local tokenizer, HF Trainer, CPU.

Losses are bit-for-bit reproducible for a seed, so tests assert behaviour and
values, never timings. Kinds (see STACK.md for the measured curves):

- ``overfit``: 32 examples, LR 1e-3 constant, eval every 20: eval bottoms out near step 120 then rises;
- ``healthy``: 400 distinct examples, cosine LR with warmup: eval keeps falling;
- ``diverge``: LR 1.0 constant: loss jumps and stays high;
- ``plateau``: LR 1e-7: loss flat.
"""

from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORDS = ["model", "train", "loss", "eval", "gradient", "batch", "token", "layer", "adapter", "rank", "alpha", "dropout", "weight", "decay", "schedule", "warmup", "cosine", "linear", "epoch", "step", "checkpoint", "memory", "speed", "data", "sample", "answer", "question"]


def make_texts(n: int, *, seed: int = 0, words: int = 24) -> list[str]:
    """``n`` pseudo Q&A texts from a fixed vocabulary, reproducible for a seed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = " ".join(rng.choice(WORDS) for _ in range(words // 3))
        a = " ".join(rng.choice(WORDS) for _ in range(words))
        out.append(f"Q{i}: what about {q}? A: {a}.")
    return out


@dataclass
class TinyRun:
    kind: str
    output_dir: Path
    stdout: str
    log_history: list[dict[str, Any]]


KINDS: dict[str, dict[str, Any]] = {
    "overfit": dict(n_train=32, lr=1e-3, sched="constant", steps=800, eval_steps=20, warmup=0),
    "healthy": dict(n_train=3000, lr=3e-3, sched="cosine", steps=300, eval_steps=20, warmup=20),
    "diverge": dict(n_train=64, lr=1.0, sched="constant", steps=200, eval_steps=20, warmup=0),
    "plateau": dict(n_train=64, lr=1e-7, sched="constant", steps=200, eval_steps=20, warmup=0),
}


def build_trainer(out: Path, *, n_train: int, lr: float, sched: str, steps: int, eval_steps: int, warmup: int,
                  callbacks: list[Any] | None = None, seed: int = 0, **args: Any) -> Any:
    """An HF Trainer over a tiny GPT-2; ``args`` go to TrainingArguments."""
    import torch
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from trainguard.train.tiny import make_model, make_tokenizer

    torch.manual_seed(seed)
    train_texts = make_texts(n_train, seed=seed)
    eval_texts = make_texts(32, seed=seed + 1000)
    tok = make_tokenizer(train_texts + eval_texts)
    model = make_model(tok, seed=seed)

    def enc(texts: list[str]) -> list[dict[str, Any]]:
        return [tok(t, truncation=True, max_length=64) for t in texts]

    ta = dict(
        output_dir=str(out), per_device_train_batch_size=8, per_device_eval_batch_size=16,
        learning_rate=lr, lr_scheduler_type=sched, warmup_steps=warmup, max_steps=steps,
        eval_strategy="steps", eval_steps=eval_steps, logging_steps=10, save_strategy="no",
        report_to=[], use_cpu=True, seed=seed, disable_tqdm=False, dataloader_num_workers=0,
    )
    ta.update(args)
    return Trainer(
        model=model, args=TrainingArguments(**ta), train_dataset=enc(train_texts), eval_dataset=enc(eval_texts),
        data_collator=DataCollatorForLanguageModeling(tok, mlm=False), processing_class=tok,
        callbacks=callbacks or [],
    )


def train_kind(kind: str, out: Path, **overrides: Any) -> TinyRun:
    """Train one kind of tiny run into ``out``; returns its stdout (dict lines, tqdm) and log_history."""
    spec = {**KINDS[kind], **overrides}
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        trainer = build_trainer(out, **spec)
        trainer.train()
        trainer.state.save_to_json(str(out / "trainer_state.json"))
    text = buf.getvalue()
    (out / "train.log").write_text(text)
    return TinyRun(kind, out, text, list(trainer.state.log_history))
