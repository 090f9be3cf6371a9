"""The live guard: watch a run while it trains, and stop it at the right time.

``Guard`` (plain loops), ``Policy`` (what to do), and the framework adapters
``TrainguardCallback`` (HF Trainer / TRL) and ``TrainguardLightningCallback``.
Importing this package stays light: the adapters, which import transformers or
lightning, load only when their name is first used.
"""

from __future__ import annotations

from typing import Any

from .guard import Guard
from .policy import Action, Policy

_LAZY = {
    "TrainguardCallback": ".hf_callback",
    "TrainguardLightningCallback": ".lightning_callback",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(mod, __name__), name)


__all__ = ["Action", "Guard", "Policy", "TrainguardCallback", "TrainguardLightningCallback"]
