"""Framework metric names -> canonical names (``loss`` -> ``train_loss`` ...).

One table for every reader, so that ``val_loss`` means the same thing in a
Lightning CSV, a W&B export and a free-text log. Unknown names are kept,
lower-cased, under their own name.
"""

from __future__ import annotations

import re

from ..run import EPOCH, EVAL_LOSS, GRAD_NORM, LEARNING_RATE, TRAIN_LOSS

ALIASES: dict[str, str] = {
    # train loss
    "loss": TRAIN_LOSS,
    "train_loss": TRAIN_LOSS,
    "train/loss": TRAIN_LOSS,
    "training_loss": TRAIN_LOSS,
    "train loss": TRAIN_LOSS,
    "train_loss_step": TRAIN_LOSS,
    "trn_loss": TRAIN_LOSS,
    "total_loss": TRAIN_LOSS,
    "loss/train": TRAIN_LOSS,
    # eval loss
    "eval_loss": EVAL_LOSS,
    "eval/loss": EVAL_LOSS,
    "val_loss": EVAL_LOSS,
    "valid_loss": EVAL_LOSS,
    "validation_loss": EVAL_LOSS,
    "validation loss": EVAL_LOSS,
    "val loss": EVAL_LOSS,
    "val/loss": EVAL_LOSS,
    "loss/val": EVAL_LOSS,
    "loss/eval": EVAL_LOSS,
    "test_loss": EVAL_LOSS,
    "dev_loss": EVAL_LOSS,
    "val_loss_epoch": EVAL_LOSS,
    # learning rate
    "learning_rate": LEARNING_RATE,
    "lr": LEARNING_RATE,
    "train/learning_rate": LEARNING_RATE,
    "train/lr": LEARNING_RATE,
    "train_lr": LEARNING_RATE,
    "lr-adamw": LEARNING_RATE,
    "lr-adam": LEARNING_RATE,
    "learning rate": LEARNING_RATE,
    # grad norm
    "grad_norm": GRAD_NORM,
    "train/grad_norm": GRAD_NORM,
    "gradient_norm": GRAD_NORM,
    "grad-norm": GRAD_NORM,
    "norm": GRAD_NORM,
    "gnorm": GRAD_NORM,
    "total_norm": GRAD_NORM,
    # epoch
    "epoch": EPOCH,
    "train/epoch": EPOCH,
}

_PREFIXES = (("eval/", "eval_"), ("val/", "eval_"), ("val_", "eval_"), ("valid_", "eval_"), ("validation_", "eval_"), ("train/", "train_"))


def canonical(name: str) -> str:
    """The canonical metric name for a framework's ``name``."""
    key = name.strip().lower()
    hit = ALIASES.get(key)
    if hit:
        return hit
    for pre, repl in _PREFIXES:
        if key.startswith(pre) and len(key) > len(pre):
            rest = key[len(pre):]
            if rest == "loss":
                return EVAL_LOSS if repl == "eval_" else TRAIN_LOSS
            return repl + rest
    return re.sub(r"\s+", "_", key)
