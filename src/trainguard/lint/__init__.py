"""``trainguard lint``: catch config mistakes before the GPUs are spent.

Inputs, alone or together (several files form ONE config, as at launch):
TrainingArguments JSON/YAML, a DeepSpeed ``ds_config.json``, a peft
``adapter_config.json``, Axolotl YAML, LLaMA-Factory YAML and trainguard's
own train YAML. Rules live in :mod:`.rules` (stable ids ``TG101``...), file
reading in :mod:`.loaders`.

    >>> results = lint_files(["training_args.json", "ds_config.json", "adapter_config.json"])
    >>> [r.rule for r in results]          # e.g. ['TG101', 'TG202', 'TG303', 'TG401', 'TG501']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ..run_config import RunConfig
from .loaders import LintConfig, from_run_config, load_files
from .rules import RULES, LintResult, Rule, find_rule, run_rules


def lint_files(paths: Sequence[str | Path], *, ignore: Iterable[str] = (), train_samples: int | None = None) -> list[LintResult]:
    """Lint the config made of ``paths``; raises InputError (one line, file and line) on malformed input."""
    return run_rules(load_files(list(paths), train_samples=train_samples), ignore=_norm(ignore))


def lint_config(run_config: RunConfig, *, ignore: Iterable[str] = ()) -> list[LintResult]:
    """Lint an in-memory RunConfig (canonical keys, see ``run.CONFIG_KEYS``); results carry no file or line."""
    return run_rules(from_run_config(run_config), ignore=_norm(ignore))


def _norm(ignore: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for item in ignore:
        for part in str(item).split(","):
            part = part.strip()
            if part:
                rule = find_rule(part)
                out.add(rule.id if rule else part)
    return frozenset(out)


__all__ = ["RULES", "LintConfig", "LintResult", "Rule", "find_rule", "lint_config", "lint_files", "load_files"]
