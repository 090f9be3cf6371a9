"""The reader contract, written down: what a format module must expose and what it must give back.

In the manner of httpx's ``BaseTransport`` (one small interface, many
implementations, a mock is just another one), a reader is any module with:

* ``NAME``: the name ``--reader`` selects it by;
* ``sniff(head, path) -> float``: 0 = not mine, 1 = certainly mine, from the
  first bytes only (never the whole file: the registry asks every reader);
* ``read(path) -> Run``: the (first) run in the file;
* optionally ``read_all(path) -> list[Run]``: every run when one file can hold
  several (a restarted counter, consecutive jobs);
* optionally ``BINARY = True`` for binary formats (TensorBoard).

Folder readers expose ``sniff_dir(path) -> float`` and ``read_dir(path) -> list[Run]``.

What every reader promises of the Runs it returns (``tests/readers/test_conformance.py``
checks it for every reader on every fixture):

* steps are integers that never decrease within a series (a restart is a new,
  marked Run, a resume is stitched and said in ``run.notes``);
* no NaN step (a NaN *value* is kept: it is evidence of divergence);
* metric names are canonical (``readers/_names.py``: lower case, ``train_loss``,
  ``eval_loss``, ``eval_<metric>`` ...);
* nothing is silently lost: a line that looked like a metric but did not parse
  is counted in ``run.skipped_lines``, an interpretation is said in ``run.notes``.

Bad input raises :class:`~trainguard.errors.InputError` naming the file; a
folder reports each file it did not read as a :class:`Skipped`, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # lint imports readers._io without numpy: the Run model is only named here
    from ..run import Run


@runtime_checkable
class Reader(Protocol):
    """A file format (see the module docstring for the promises)."""

    NAME: str

    def sniff(self, data: bytes, path: Path | None = None) -> float: ...

    def read(self, path: Path | str) -> Run: ...


@runtime_checkable
class DirReader(Protocol):
    """A folder layout (an HF output dir, a folder of runs)."""

    NAME: str

    def sniff_dir(self, path: Path) -> float: ...

    def read_dir(self, path: Path | str) -> list[Run]: ...


@dataclass(frozen=True)
class Skipped:
    """A file a folder read left out, and why (a value, not an exception: the other files are still read)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class RunList(list["Run"]):
    """The runs found at a path, plus ``skipped``: the files that were not read, each with its reason.

    A plain ``list`` to every caller that only wants the runs.
    """

    def __init__(self, runs: list[Run] | tuple[Run, ...] = (), skipped: list[Skipped] | None = None) -> None:
        super().__init__(runs)
        self.skipped: list[Skipped] = list(skipped or [])


__all__ = ["DirReader", "Reader", "RunList", "Skipped"]
