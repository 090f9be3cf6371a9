"""The one exception root of trainguard.

::

    TrainguardError            anything trainguard refuses to do, with a one-line message
    ├── InputError             a log, folder or stream we cannot read (names the file and what was wrong)
    │   └── NoMetricsError     the input was readable but held no metric we recognise
    ├── ConfigError            a config that is malformed, unknown or contradicts itself (names the key)
    └── GuardError             the live guard cannot run as asked (bad policy, missing framework)

Caller bugs (wrong types passed to the API) stay builtins. The CLI catches
``TrainguardError`` once, prints ``error: <message>`` on one stderr line and
exits 2; everything else is a bug and keeps its traceback under ``--debug``.
"""

from __future__ import annotations


class TrainguardError(Exception):
    """Root of every error trainguard raises on purpose."""


class InputError(TrainguardError):
    """A log, folder or stream that cannot be read.

    The message names the file first, so that one line is enough:
    ``runs/x.log: binary data (NUL bytes at offset 12); not a text log``.
    """

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class NoMetricsError(InputError):
    """The input was read, but no metric line or record was recognised."""


class ConfigError(TrainguardError):
    """A config value that is malformed or contradicts another one.

    ``key`` is the offending key (dotted for nested ones), so tools and people
    can find it without reading the message.
    """

    def __init__(self, message: str, *, key: str | None = None, path: object | None = None) -> None:
        self.key = key
        self.path = None if path is None else str(path)
        prefix = f"{self.path}: " if self.path else ""
        super().__init__(prefix + message)


class GuardError(TrainguardError):
    """The live guard cannot run as asked."""


def by_interrupt(e: BaseException) -> bool:
    """True when ``e`` was raised because of a Ctrl-C: a KeyboardInterrupt in its cause or context chain.

    Why: Python and click wrap an interrupt that lands in the wrong place. A
    Ctrl-C while a dataclass is being created surfaces as ``RuntimeError:
    Error calling __set_name__``; one while typer parses the arguments as
    click's ``Abort`` and exit status 1, which trainguard's exit codes reserve
    for error-level findings. The CLI reports all of them as an interruption.
    """
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 32:
        if isinstance(cur, KeyboardInterrupt):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


__all__ = ["ConfigError", "GuardError", "InputError", "NoMetricsError", "TrainguardError", "by_interrupt"]
