"""The incremental scan cache: one JSON file per target, kept outside the scanned tree.

A target's entry holds its fingerprint (sizes and mtimes of its files, or an
MLflow run's status, end time and latest metrics) and the summaries its
analysis produced. A second scan re-analyzes only targets whose fingerprint
changed. JSON, never pickle: a cache file is data, and a cache shared on a
team disk must not be able to run code.

Where: ``--cache DIR``, else ``$TRAINGUARD_CACHE_DIR``, else
``$XDG_CACHE_HOME/trainguard/scan`` (``~/.cache/trainguard/scan``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

VERSION = 1


def default_dir() -> Path:
    env = os.environ.get("TRAINGUARD_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trainguard" / "scan"


class ScanCache:
    """Get and put per-target results; any unreadable entry is a miss, any write failure is ignored."""

    def __init__(self, directory: Path | None, *, salt: str = "") -> None:
        self.dir = directory
        self.salt = salt  # what else changes the result (trainguard version, --html)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path | None:
        if self.dir is None:
            return None
        return self.dir / (hashlib.sha256(key.encode()).hexdigest()[:40] + ".json")

    def get(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        p = self._path(key)
        entry = None
        if p is not None and p.is_file():
            with contextlib.suppress(OSError, ValueError):
                entry = json.loads(p.read_text(encoding="utf-8"))
        ok = (isinstance(entry, dict) and entry.get("version") == VERSION and entry.get("key") == key
              and entry.get("fingerprint") == fingerprint and entry.get("salt") == self.salt
              and all(Path(f).is_file() for f in entry.get("files", [])))
        if ok:
            self.hits += 1
            return entry["result"]
        self.misses += 1
        return None

    def put(self, key: str, fingerprint: str, result: dict[str, Any], files: list[str] | None = None) -> None:
        p = self._path(key)
        if p is None:
            return
        entry = {"version": VERSION, "key": key, "fingerprint": fingerprint, "salt": self.salt,
                 "files": files or [], "result": result}
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f)
            os.replace(tmp, p)  # atomic: a concurrent scan never reads half an entry
        except OSError:
            return


__all__ = ["ScanCache", "default_dir"]
