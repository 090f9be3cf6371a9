"""Readers turn whatever a framework wrote into a :class:`~trainguard.run.Run`.

Each format is one module exposing ``NAME``, ``sniff(head: bytes, path) -> float``
(0 = not mine, 1 = certainly mine) and ``read(path) -> Run``. Folder formats
(an HF output dir, a TensorBoard logdir) are handled by ``folder.py``, which
picks the files inside and hands them to the file readers. The registry below
is the one place a format is listed; the best sniff wins, and a tie between two
different readers is an error naming both.

Configs found beside the run (or given with ``--config``) are attached by
:func:`trainguard.configs.attach`, after the metrics are read.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import InputError, NoMetricsError
from ._io import head, looks_binary, spool_stdin
from ._protocol import RunList, Skipped

if TYPE_CHECKING:  # the Run model (numpy) loads with the reader that builds one, not with the registry
    from ..run import Run


def _always(data: bytes, path: Path | None) -> bool:
    return True


def _in_head(*needles: bytes, n: int = 65536) -> Callable[[bytes, Path | None], bool]:
    def claim(data: bytes, path: Path | None) -> bool:
        h = data[:n]
        return any(x in h for x in needles)

    return claim


def _json_doc(data: bytes, path: Path | None) -> bool:
    return data.lstrip()[:1] in (b"{", b"[")


def _delimited(data: bytes, path: Path | None) -> bool:
    first = data.split(b"\n", 1)[0]
    return b"," in first or b"\t" in first


_STEP_FIRST = re.compile(rb'(?:\xef\xbb\xbf)?\s*"?\s*(?:_?step|epoch)', re.IGNORECASE)


def _step_first(data: bytes, path: Path | None) -> bool:
    """A delimited header whose first column is a step or epoch (a W&B chart export): a launcher line
    stamped ``14:56:52,123`` is delimited too, and loading two table readers for it costs 10 ms."""
    return _delimited(data, path) and _STEP_FIRST.match(data) is not None


def _tfrecord(data: bytes, path: Path | None) -> bool:
    # a record's uint64 length has zero high bytes; a damaged file is still claimed by its name
    return b"\x00" in data[:8] or (path is not None and "tfevents." in path.name)


_Claim = Callable[[bytes, Path | None], bool]

# Module names under trainguard.readers, in priority order for equal sniffs, each with a claim:
# a test on the head's bytes that is true for every file the module's sniff can score above 0
# (a necessary condition, never a verdict). Only modules whose claim holds are imported and
# sniffed, so reading a trainer_state.json imports one reader, not sixteen (~0.1 s of module
# set-up and regex compiling). ``tests/readers/test_claims.py`` checks, on every fixture and
# real run, that the claims pick the same reader as sniffing with every module.
# Each entry is (claim, the highest score the module's sniff gives, or a function of the file's
# path giving it: see ``top``): sniffing goes from the
# highest possible score down and stops once the best so far beats every remaining one, so a
# sure reader never loads the weaker ones. Add a format by adding its module here.
_CLAIMS: dict[str, tuple[_Claim, float | Callable[[Path | None], float]]] = {
    "trainer_state": (lambda d, p: d.lstrip()[:1] == b"{" and b'"log_history"' in d, 0.95),
    "hf_stdout": (lambda d, p: b"{'" in d[: 1 << 20], 0.9),
    "tensorboard": (_tfrecord, 1.0),
    "wandb_run": (lambda d, p: d[:4] == b":W&B", 1.0),
    "wandb_export": (_step_first, 0.9),
    "lightning_csv": (_delimited, lambda p: 0.9 if p is not None and p.name.startswith("metrics.csv") else 0.85),
    "table": (_delimited, 0.7),
    "jsonl": (_json_doc, 0.8),
    "keras_json": (_json_doc, 0.8),
    "json_metrics": (_json_doc, 0.55),
    "keras_stdout": (_in_head(b"Epoch "), 0.85),
    "multiline": (_always, 0.75),
    "megatron": (_in_head(b"iteration"), 0.85),
    "coqui": (_in_head(b"GLOBAL_STEP"), 0.9),
    "text": (_always, 0.6),
}
_REGISTRY: tuple[str, ...] = tuple(_CLAIMS)
_BINARY = frozenset({"tensorboard", "wandb_run"})  # formats that are not text (``BINARY = True`` in the module)

# Free-text logs whose printed settings (argparse Namespace, key=value dumps, Megatron's arguments
# block, checkpoint saves) are read by ``log_config`` after the metrics; hf_stdout does it itself.
_PRINTS_SETTINGS = frozenset({"text", "pattern", "keras_stdout", "multiline", "megatron", "coqui"})

# Folder readers: modules exposing sniff_dir(path) -> float and read_dir(path) -> list[Run].
_DIR_REGISTRY: tuple[str, ...] = ("folder", "mlflow_store", "wandb_run")


def readers() -> list[ModuleType]:
    """Every file reader, imported (``--reader NAME``, folder listings, the conformance tests)."""
    return [importlib.import_module(f"{__name__}.{m}") for m in _REGISTRY]


def _claimants(data: bytes, path: Path | None, names: Sequence[str] = _REGISTRY) -> list[ModuleType]:
    """The readers whose claim holds for ``data``, imported, in priority order."""
    return [importlib.import_module(f"{__name__}.{m}") for m in names if _CLAIMS[m][0](data, path)]


def top(name: str, path: Path | None) -> float:
    """The highest score reader ``name``'s sniff can give a file at ``path`` (some depend on the file's name)."""
    t = _CLAIMS[name][1]
    return float(t(path)) if callable(t) else t


def _scores(path: Path, data: bytes) -> list[tuple[float, int, ModuleType]]:
    """(score, priority, module) of the claimants sniffed, highest possible score first, stopping when none left can match the best."""
    todo = sorted(((top(m, path), i, m) for i, m in enumerate(_REGISTRY) if _CLAIMS[m][0](data, path)), key=lambda t: (-t[0], t[1]))
    out: list[tuple[float, int, ModuleType]] = []
    best = 0.0
    for highest, i, name in todo:
        if best > highest:
            break  # no module left can reach or tie the best: the rest are never imported
        mod = importlib.import_module(f"{__name__}.{name}")
        score = float(mod.sniff(data, path))
        out.append((score, i, mod))
        best = max(best, score)
    return out


def dir_readers() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{m}") for m in _DIR_REGISTRY]


def pick_reader(path: Path, data: bytes) -> ModuleType:
    """The reader whose sniff is most confident for ``data``; InputError when none or a tie."""
    scored = sorted(_scores(path, data), key=lambda t: (-t[0], t[1]))
    if not scored or scored[0][0] <= 0:
        raise NoMetricsError(path, "unknown format: no metrics found; try --pattern REGEX with named groups")
    if len(scored) > 1 and scored[1][0] == scored[0][0] and scored[0][0] < 0.99:
        a, b = scored[0][2].NAME, scored[1][2].NAME
        raise InputError(path, f"ambiguous format: both {a} and {b} match equally; pass --reader NAME")
    return scored[0][2]


def read_file(path: Path, *, fmt: str | None = None, pattern: str | None = None) -> Run:
    """Read one file (``.gz`` transparently) into a Run."""
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        raise InputError(path, "is a folder; expected a file")
    data = head(path)
    if not data.strip():
        raise InputError(path, "empty file: nothing to analyze")
    if pattern is not None:
        mod = importlib.import_module(f"{__name__}.pattern")
        return mod.read(path, pattern=pattern)
    if fmt is not None:
        by_name = {m.NAME: m for m in readers()}
        if fmt not in by_name:
            raise InputError(path, f"unknown --reader {fmt!r}; known: {', '.join(sorted(by_name))}")
        return by_name[fmt].read(path)
    if looks_binary(data) and not _binary_ok(path, data):
        raise InputError(path, "binary data, not a text log (is it a pickle such as training_args.bin? it is never loaded)")
    return pick_reader(path, data).read(path)


def _binary_ok(path: Path, data: bytes) -> bool:
    """Binary formats we do read (TensorBoard event files) claim the file through their own sniff."""
    return any(m.sniff(data, path) > 0 for m in _claimants(data, path, sorted(_BINARY)))


def read_runs(path: str | Path, *, fmt: str | None = None, pattern: str | None = None) -> RunList:
    """Every run found at ``path``: a file (one run), ``-`` (stdin), or a folder (one or several runs).

    The result is a list of Runs whose ``skipped`` attribute names each file of
    a folder that was not read, with the reason (empty for a single file).
    """
    if str(path) == "-":
        p = spool_stdin()
        try:
            run = read_file(p, fmt=fmt, pattern=pattern)
        finally:
            p.unlink(missing_ok=True)
        run.name = "stdin"
        run.sources = ["-"]
        return RunList([run])
    p = Path(path)
    if p.is_dir():
        best: tuple[float, ModuleType] | None = None
        for m in dir_readers():
            c = float(m.sniff_dir(p))
            if c > 0 and (best is None or c > best[0]):
                best = (c, m)
        if best is None:
            raise NoMetricsError(p, "folder holds no log we recognise (trainer_state.json, checkpoint-*/, event files, metrics.csv, *.log)")
        found = best[1].read_dir(p)
        return found if isinstance(found, RunList) else RunList(list(found))
    if fmt is None and pattern is None and p.is_file():
        # a log holding several consecutive runs (HF stdout): every one of them
        data = head(p)
        if data.strip() and not looks_binary(data):
            mod = pick_reader(p, data)
            if hasattr(mod, "read_all"):
                return RunList(with_log_facts(mod.NAME, p, list(mod.read_all(p))))
    run = read_file(p, fmt=fmt, pattern=pattern)
    return RunList(with_log_facts(run.format if pattern is None else "pattern", p, [run]))


def with_log_facts(reader: str, path: Path, runs: list[Run]) -> list[Run]:
    """``runs`` with the settings and checkpoint saves their free-text log prints (first run; see ``log_config``)."""
    if runs and (reader in _PRINTS_SETTINGS or runs[0].format in _PRINTS_SETTINGS):
        from . import log_config

        try:
            text = head(path, 8 << 20).decode("utf-8", "replace")
        except InputError:
            return runs
        log_config.scan(text).apply(runs[0])
    return runs


def read_run(
    path: str | Path,
    *,
    config: Sequence[str | Path] = (),
    fmt: str | None = None,
    pattern: str | None = None,
) -> Run:
    """Read the one run at ``path`` and attach its configs; a folder with several runs is an InputError."""
    runs = read_runs(path, fmt=fmt, pattern=pattern)
    if len(runs) != 1:
        raise InputError(path, f"holds {len(runs)} runs; use read_runs() or analyze each")
    run = runs[0]
    from ..configs import attach

    attach(run, path, extra=config)
    return run


__all__ = ["RunList", "Skipped", "read_file", "read_run", "read_runs", "readers"]
