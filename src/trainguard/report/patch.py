"""The config patch of a report: the recommendations as code the user pastes into what they actually wrote.

TrainingArguments / LoraConfig Python and a ds_config.json change for HF runs
(``recommendations.code_blocks``); for a run from ``trainguard train``, lines of
its own YAML config, since that user never wrote TrainingArguments.
"""

from __future__ import annotations

import json

from ..diagnosis import Diagnosis


def _fmt(x: object) -> str:
    from .html import _fmt as fmt

    return fmt(x)


def _from_trainguard_train(d: Diagnosis) -> bool:
    """A run ``trainguard train`` wrote: its output folder holds the resolved ``trainguard_config.yaml``."""
    return any(str(s).endswith("trainguard_config.yaml") for s in d.run.sources)


def _yaml_patch(d: Diagnosis) -> tuple[str, str, str]:
    """The changes as lines of the user's train YAML (its keys), not TrainingArguments Python they never wrote."""
    from ..train.config import TrainConfig

    fields = TrainConfig.model_fields
    lines = ["# trainguard train config: change these lines (or pass --set KEY=VALUE)"]
    other = []
    for r in d.recommendations:
        if r.key in fields:
            value = json.dumps(r.suggested) if isinstance(r.suggested, str) else _fmt(r.suggested)
            lines.append(f"{r.key}: {value}  # was {_fmt(r.current)}")
        elif r.key == "warmup_steps":
            lines.append(f"warmup_ratio: 0.05  # about {_fmt(r.suggested)} steps of this run; was {_fmt(r.current)}")
        else:
            other.append(r.key)
    if other:
        lines.append(f"# already handled by trainguard train (eval == save steps, best model kept): {', '.join(other)}")
    return ("trainguard train config", "yaml", "\n".join(lines))


def patch_blocks(d: Diagnosis) -> list[tuple[str, str, str]]:
    """``(title, language, code)`` snippets: the diagnosis engineer's, else a plain key = value list per framework.

    A run from ``trainguard train`` gets its own YAML keys instead.
    """
    if not d.recommendations:
        return []
    if _from_trainguard_train(d):
        return [_yaml_patch(d)]
    try:
        from ..recommendations import code_blocks
    except ImportError:
        code_blocks = None
    if code_blocks is not None:
        try:
            return list(code_blocks(d.recommendations))
        except Exception:  # a bug there must not lose the whole report
            pass
    by: dict[str, list[str]] = {}
    for r in d.recommendations:
        by.setdefault(r.framework, []).append(f"{r.key} = {r.suggested!r}  # was {r.current!r}")
    return [(fw, "text", "\n".join(lines)) for fw, lines in by.items()]



__all__ = ["patch_blocks"]
