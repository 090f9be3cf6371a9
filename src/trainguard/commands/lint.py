"""``trainguard lint CONFIG...``: check a training config before launch.

Exit codes (a CI gate, like ``ruff`` or ``trainproof``):

- 0: no result at or above ``--fail-on`` (default ``error``); warnings are printed but pass;
- 1: at least one result at or above ``--fail-on``;
- 2: bad input or usage: a missing or malformed file (one ``error: FILE: line L, column C: ...``
  line), an unknown rule in ``--ignore``/``--explain``, or no file given.

``--fail-on warning`` makes warnings fail too; ``--fail-on never`` always exits 0 on
readable input. Results go to stdout (``--json`` for machines), the summary to stderr.
"""

from __future__ import annotations

import enum
import json
import sys

import typer

from ._common import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, err_console, guarded


class FailOn(str, enum.Enum):
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"
    never = "never"


def register(app: typer.Typer) -> None:
    @app.command()
    def lint(
        paths: list[str] = typer.Argument(None, help="Config files forming ONE config: training_args.json/yaml, ds_config.json, "
                                          "adapter_config.json, Axolotl or LLaMA-Factory YAML, trainguard train YAML.", show_default=False),
        as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
        explain: str | None = typer.Option(None, "--explain", help="Explain a rule (TG303 or its name) and exit."),
        ignore: list[str] = typer.Option([], "--ignore", help="Rule id or name to skip (repeatable, or comma-separated)."),
        fail_on: FailOn = typer.Option(FailOn.error, "--fail-on", help="Lowest severity that makes the exit code 1."),
        train_samples: int | None = typer.Option(None, "--train-samples", help="Training examples (sharpens the dropout and eval-sparsity rules)."),
        list_rules: bool = typer.Option(False, "--list-rules", help="List every rule and exit."),
    ) -> None:
        """Check training configs before launch: DeepSpeed overrides, lost best checkpoints, no eval, LR, LoRA, early stopping."""
        raise typer.Exit(_lint(paths or [], as_json, explain, ignore, fail_on, train_samples, list_rules))


@guarded
def _lint(paths: list[str], as_json: bool, explain: str | None, ignore: list[str], fail_on: FailOn,
          train_samples: int | None, list_rules: bool) -> int:
    from ..lint import RULES, find_rule, lint_files

    if list_rules:
        return _print_rules(RULES, as_json)
    if explain is not None:
        rule = find_rule(explain)
        if rule is None:
            _bad(f"unknown rule {explain!r}; see trainguard lint --list-rules")
            return EXIT_BAD_INPUT
        return _explain(rule, as_json)
    for item in ignore:
        for part in item.split(","):
            if part.strip() and find_rule(part) is None:
                _bad(f"--ignore: unknown rule {part.strip()!r}; see trainguard lint --list-rules")
                return EXIT_BAD_INPUT
    if not paths:
        _bad("no config file given (trainguard lint training_args.json [ds_config.json adapter_config.json ...])")
        return EXIT_BAD_INPUT
    results = lint_files(paths, ignore=ignore, train_samples=train_samples)
    failing = [r for r in results if fail_on is not FailOn.never and r.severity.rank >= _rank(fail_on.value)]
    code = EXIT_FINDINGS if failing else EXIT_OK
    if as_json:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.severity.value] = counts.get(r.severity.value, 0) + 1
        doc = {"schema": "trainguard.lint/1", "files": list(paths), "results": [r.to_dict() for r in results],
               "counts": counts, "fail_on": fail_on.value, "exit_code": code}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _print_results(results)
    _summary(results, len(paths), fail_on, code)
    return code


def _rank(sev: str) -> int:
    from ..findings import Severity

    return Severity(sev).rank


def _bad(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


_STYLE = {"critical": "bold white on red", "error": "bold red", "warning": "yellow", "info": "cyan"}


def _print_results(results: list) -> None:
    from rich.console import Console
    from rich.text import Text

    out = Console(highlight=False, soft_wrap=True)  # one line per message: greppable in CI logs
    for r in results:
        head = Text()
        head.append(f"{r.location}: ", style="bold")
        head.append(f"{r.rule} ", style="bold magenta")
        head.append(r.severity.value, style=_STYLE.get(r.severity.value, ""))
        head.append(f" [{r.name}] ", style="dim")
        head.append(r.key, style="bold")
        out.print(head)
        out.print(Text("  " + r.message))
        out.print(Text("  fix: ", style="green").append(r.fix, style=""))


def _summary(results: list, n_files: int, fail_on: FailOn, code: int) -> None:
    by: dict[str, int] = {}
    for r in results:
        by[r.severity.value] = by.get(r.severity.value, 0) + 1
    parts = [f"{by[s]} {s}{'s' if by[s] != 1 else ''}" for s in ("critical", "error", "warning", "info") if by.get(s)]
    what = ", ".join(parts) if parts else "no problems"
    tail = f"exit {code}" + (f" (results at or above {fail_on.value})" if code == EXIT_FINDINGS else "")
    err_console.print(f"{what} in {n_files} file{'s' if n_files != 1 else ''}; {tail}", highlight=False, markup=False)


def _explain(rule, as_json: bool) -> int:
    if as_json:
        sys.stdout.write(json.dumps({"id": rule.id, "name": rule.name, "severity": rule.severity.value,
                                     "summary": rule.summary, "help": rule.help}, indent=2) + "\n")
        return EXIT_OK
    from rich.console import Console

    out = Console(highlight=False)
    out.print(f"[bold magenta]{rule.id}[/] [bold]{rule.name}[/] (default severity: {rule.severity.value})")
    out.print(rule.summary, markup=False)
    out.print()
    out.print(rule.help, markup=False)
    return EXIT_OK


def _print_rules(rules, as_json: bool) -> int:
    if as_json:
        sys.stdout.write(json.dumps([{"id": r.id, "name": r.name, "severity": r.severity.value, "summary": r.summary} for r in rules], indent=2) + "\n")
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=True, header_style="bold")
    for col in ("id", "name", "severity", "what it catches"):
        t.add_column(col)
    for r in rules:
        t.add_row(r.id, r.name, r.severity.value, r.summary)
    Console().print(t)
    return EXIT_OK
