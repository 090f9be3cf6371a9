"""Attach the guard's callback to every Trainer a script creates, without touching the script.

Called by the import hook in ``live/bootstrap/sitecustomize.py`` once
``transformers.trainer`` or Lightning's trainer module has loaded in a child
of ``trainguard run``. It wraps ``Trainer.__init__`` once (TRL's trainers
subclass the HF ``Trainer`` and call its ``__init__``, so they are covered):

- HF: after the real ``__init__``, a :class:`TrainguardCallback` is added
  unless the user already added one (then that one is connected to ``run``
  instead: never two guards in one trainer). The callback knows its trainer,
  so at the end it loads the best model through the Trainer's own loader
  (which knows DeepSpeed, FSDP, PEFT adapters and sharded checkpoints).
- Lightning: a :class:`TrainguardLightningCallback` is appended to the
  ``callbacks`` argument before the real ``__init__`` sees it.

The policy comes from ``TRAINGUARD_POLICY`` (the ``--stop-on`` and
``--alert-only`` of ``run``). Every rank runs this (the environment is
inherited), so every rank has the callback and the decisions are reduced
across ranks as with a hand-added callback.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType
from typing import Any

from .control import policy_from_env

log = logging.getLogger("trainguard.live")

_PATCHED = "__trainguard_patched__"


def patch_hf(module: ModuleType) -> None:
    """Wrap ``module.Trainer.__init__`` so each new Trainer gets the guard's callback."""
    cls = getattr(module, "Trainer", None)
    if cls is None or getattr(cls.__init__, _PATCHED, False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        attach_hf(self)

    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__


def attach_hf(trainer: Any) -> Any:
    """Add (or connect) the guard's callback on an HF ``trainer``; returns the callback."""
    from .hf_callback import TrainguardCallback

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TrainguardCallback):
            cb.trainer = trainer
            return cb
    cb = TrainguardCallback(policy_from_env())
    cb.trainer = trainer
    trainer.add_callback(cb)
    return cb


def patch_lightning(module: ModuleType) -> None:
    """Wrap Lightning's ``Trainer.__init__`` so its ``callbacks`` include the guard's callback."""
    cls = getattr(module, "Trainer", None)
    if cls is None or getattr(cls.__init__, _PATCHED, False):
        return
    original = cls.__init__

    package = module.__name__.split(".")[0]  # lightning or pytorch_lightning: their Callback classes differ

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["callbacks"] = with_lightning_callback(kwargs.get("callbacks"), package=package)
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__


def with_lightning_callback(callbacks: Any, *, package: str = "lightning") -> list[Any]:
    """``callbacks`` (None, one callback, or a list) plus a TrainguardLightningCallback unless one is there.

    The callback subclasses ``lightning``'s Callback when that is installed; a
    ``pytorch_lightning`` Trainer in the same environment would refuse it, so
    then the job runs unguarded (the signal fallback still applies) and says so.
    """
    from .lightning_callback import TrainguardLightningCallback

    base = next((c.__module__.split(".")[0] for c in TrainguardLightningCallback.__mro__[1:]
                 if c.__name__ == "Callback"), package)
    if base != package:
        import sys

        print(f"trainguard: cannot attach to a {package} Trainer while the guard's callback is built on {base}; "
              "this trainer is guarded by signals only", file=sys.stderr)
        return [] if callbacks is None else callbacks if isinstance(callbacks, list) else list(
            callbacks if isinstance(callbacks, tuple) else [callbacks])

    if callbacks is None:
        cbs: list[Any] = []
    elif isinstance(callbacks, (list, tuple)):
        cbs = list(callbacks)
    else:
        cbs = [callbacks]
    if not any(isinstance(c, TrainguardLightningCallback) for c in cbs):
        cbs.append(TrainguardLightningCallback(policy_from_env()))
    return cbs


__all__ = ["attach_hf", "patch_hf", "patch_lightning", "with_lightning_callback"]
