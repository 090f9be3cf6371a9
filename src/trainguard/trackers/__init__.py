"""Trackers a team already runs, as sources and sinks: MLflow, W&B, Prometheus.

Each module imports its client library lazily (``import mlflow`` alone costs
about a second), so ``trainguard analyze`` never pays for them.

Live sinks share one small interface: ``on_action(action, guard)`` after each
decision that is not a plain continue, and ``close()`` at the end. A sink
that fails logs one warning and is otherwise ignored: a tracker outage must
never break training.
"""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    """Where the live guard reports: ``on_action`` for alerts, saves and stops; ``close`` at the end."""

    def on_action(self, action: Any, guard: Any) -> None: ...

    def close(self) -> None: ...


__all__ = ["Sink"]
