"""The best and last checkpoints of a guarded HF run: which folders to keep, and loading the best back.

The callback forces a save at every new best eval (so the best model always
exists on disk, whatever ``save_steps`` says). Left alone that makes one
folder per new best (10 folders in 72 steps on a noisy start), so
:class:`CheckpointKeeper` deletes the folders *the guard forced* once they
are neither the best nor the newest: the run ends with the best and the last
checkpoint. Folders the user's own ``save_strategy`` made are never touched
(their ``save_total_limit`` is the user's to set).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger("trainguard.live")


class CheckpointKeeper:
    """Remembers which checkpoint folders the guard forced, and prunes them to best + last."""

    def __init__(self) -> None:
        self.forced: set[int] = set()  # steps whose save the guard asked for (the Trainer would not have saved)
        self.saved: dict[int, Path] = {}  # every save seen, step -> folder
        self.deleted: list[Path] = []

    def force(self, step: int) -> None:
        self.forced.add(step)

    def on_save(self, step: int, folder: Path, *, best: Path | None, delete: bool) -> list[Path]:
        """Record the save of ``folder``; delete forced folders that are neither ``best`` nor this newest one."""
        self.saved[step] = folder
        if not delete:
            return []
        gone: list[Path] = []
        for s in sorted(self.forced):
            p = self.saved.get(s)
            if s == step or p is None or (best is not None and _same(p, best)):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p)
            self.forced.discard(s)
        self.deleted += gone
        return gone


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def load_weights(model: Any, folder: Path, trainer: Any = None) -> bool:
    """Load the weights saved in checkpoint ``folder`` into ``model``; True when they were loaded.

    With the ``trainer`` (known when ``trainguard run`` attached the callback)
    the Trainer's own ``_load_best_model`` does it: it knows DeepSpeed, FSDP,
    PEFT adapters and sharded checkpoints. Without it, the plain cases are
    handled here: a PEFT adapter, one ``model.safetensors``, or a sharded
    safetensors index. Pickled ``pytorch_model.bin`` files are loaded with
    ``weights_only=True`` only.
    """
    if trainer is not None and hasattr(trainer, "_load_best_model"):
        old = trainer.state.best_model_checkpoint
        trainer.state.best_model_checkpoint = str(folder)
        try:
            trainer._load_best_model()
            return True
        finally:
            if old is not None:
                trainer.state.best_model_checkpoint = old
    adapter = folder / "adapter_model.safetensors"
    if adapter.is_file() and hasattr(model, "peft_config"):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(adapter), device="cpu"))
        return True
    single = folder / "model.safetensors"
    if single.is_file():
        from safetensors.torch import load_file

        result = model.load_state_dict(load_file(str(single), device="cpu"), strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or ())
        missing = [k for k in result.missing_keys if k not in tied and not k.endswith("lm_head.weight")]
        if missing:
            log.warning("trainguard: the best checkpoint lacks %d weights (%s ...)", len(missing), missing[0])
        return True
    if (folder / "model.safetensors.index.json").is_file():
        from transformers.modeling_utils import load_sharded_checkpoint

        load_sharded_checkpoint(model, str(folder), strict=False)
        return True
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        import torch

        model.load_state_dict(torch.load(binary, map_location="cpu", weights_only=True), strict=False)
        return True
    return False


__all__ = ["CheckpointKeeper", "load_weights"]
