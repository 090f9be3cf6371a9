"""Prometheus gauges of a live guard, for a team's existing Alertmanager: an HTTP endpoint or a node_exporter textfile.

The values are read from the Guard when Prometheus scrapes (a custom
collector), not pushed on every logged point: the training loop pays nothing,
and a scrape always sees the current state. Exposed, each labelled with the run:

==================================  ==============================================================
``trainguard_step``                 last logged optimizer step
``trainguard_best_eval``            best monitored eval value so far (label ``metric``)
``trainguard_best_step``            step of that best eval
``trainguard_evals_since_best``     evals logged since the best one
``trainguard_stop_gate_distance``   relative worsening still allowed before the stop gate
                                    (gate minus worsening, e.g. 0.03 = 3 % left; <= 0: crossed)
``trainguard_last_step_seconds``    seconds per optimizer step, latest measurement
``trainguard_seconds_since_progress`` seconds since the last new logged point
``trainguard_stalled``              1 while a stall alarm is up (``run``/``watch``: their stall
                                    detector, ``--stall-after``/``--stall-floor``; else no point
                                    for ``stall_after_s`` seconds)
``trainguard_stops_total``          stop decisions (counter)
``trainguard_alerts_total``         alert decisions (counter)
==================================  ==============================================================

The HTTP server binds 127.0.0.1 unless told otherwise: training hosts rarely
need it open to the world. Needs the ``trainguard[prometheus]`` extra.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import GuardError

log = logging.getLogger("trainguard.trackers")


class GuardCollector:
    """A prometheus_client collector that reads a Guard at scrape time."""

    def __init__(self, guard: Any, *, stall_after_s: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 stall: Any = None) -> None:
        self.guard = guard
        self.stall = stall  # run/watch's StallDetector: its alarm is the one stall judgement when present
        self.stall_after_s = stall_after_s
        self.clock = clock
        self.stops = 0
        self.alerts = 0
        self._points = -1
        self._progress_at = clock()
        self._lock = threading.Lock()

    def count(self, action: Any) -> None:
        with self._lock:
            if getattr(action, "stop", False):
                self.stops += 1
            elif getattr(action, "alert", False):
                self.alerts += 1

    def values(self) -> dict[str, float]:
        """The current values by metric name (NaN when not known yet)."""
        g = self.guard
        now = self.clock()
        with self._lock:
            if g.points != self._points:
                self._points, self._progress_at = g.points, now
            since = now - self._progress_at
            stops = max(self.stops, 1 if getattr(g, "stopped", None) is not None else 0)
            alerts = self.alerts
        t, p = g.tracker, g.policy
        nan = math.nan
        out = {
            "step": _f(g.run.history.last_step()),
            "best_eval": _f(t.best),
            "best_step": _f(t.best_step),
            "evals_since_best": float(t.since_best) if t.best is not None else nan,
            "stop_gate_distance": nan,
            "last_step_seconds": _last(g.run, "step_time"),
            "seconds_since_progress": since,
            "stalled": self._stalled(g, since),
            "stops_total": float(stops),
            "alerts_total": float(alerts),
        }
        if t.best is not None and t.last_eval is not None:
            with contextlib.suppress(Exception):  # a policy without a gate: leave it unknown
                out["stop_gate_distance"] = float(p.gate(t) - t.worse_by())
        return out

    def _stalled(self, g: Any, since: float) -> float:
        if self.stall is not None:
            return 1.0 if getattr(self.stall, "fired", 0) > 0 else 0.0
        return 1.0 if (g.points > 0 and since > self.stall_after_s) else 0.0

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        v = self.values()
        run = str(self.guard.run.name)
        metric = str(getattr(self.guard.policy, "monitor", "eval_loss"))
        docs = {
            "step": "Last logged optimizer step.",
            "best_eval": "Best monitored eval value so far.",
            "best_step": "Step of the best eval.",
            "evals_since_best": "Evals logged since the best one.",
            "stop_gate_distance": "Relative worsening still allowed before the stop gate (<= 0: crossed).",
            "last_step_seconds": "Seconds per optimizer step, latest measurement.",
            "seconds_since_progress": "Seconds since the last new logged point.",
            "stalled": "1 when no new point arrived for the stall timeout.",
        }
        for name, doc in docs.items():
            labels = ["run", "metric"] if name == "best_eval" else ["run"]
            g = GaugeMetricFamily(f"trainguard_{name}", doc, labels=labels)
            g.add_metric([run, metric] if name == "best_eval" else [run], v[name])
            yield g
        for name, doc in (("stops", "Stop decisions of the guard."), ("alerts", "Alerts raised by the guard.")):
            c = CounterMetricFamily(f"trainguard_{name}", doc, labels=["run"])
            c.add_metric([run], v[f"{name}_total"])
            yield c


class PrometheusSink:
    """Serve a Guard's gauges on ``port`` (0: any free port; see :attr:`port`) and/or write them to ``textfile``.

    ``textfile`` is rewritten atomically every ``interval_s`` seconds and at
    :meth:`close`, for node_exporter's textfile collector (its name must end
    in ``.prom``). Call :meth:`on_action` with each decision so the counters
    count; :meth:`close` stops the server and the writer.
    """

    def __init__(self, guard: Any, *, port: int | None = None, addr: str = "127.0.0.1", textfile: str | Path | None = None,
                 interval_s: float = 5.0, stall_after_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, stall: Any = None) -> None:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError:
            raise GuardError("--metrics-port/--metrics-textfile need prometheus_client: pip install 'trainguard[prometheus]'") from None
        if textfile is not None and not str(textfile).endswith(".prom"):
            raise GuardError(f"the metrics textfile must end in .prom for node_exporter, not {textfile}")
        self.collector = GuardCollector(guard, stall_after_s=stall_after_s, clock=clock, stall=stall)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self.collector)
        self.textfile = None if textfile is None else Path(textfile)
        self.interval_s = interval_s
        self._server: Any = None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        if port is not None:
            from prometheus_client import start_http_server

            try:
                self._server, _ = start_http_server(port, addr=addr, registry=self.registry)
            except OSError as e:
                raise GuardError(f"cannot serve metrics on {addr}:{port} ({e.strerror or e})") from None
        if self.textfile is not None:
            self.write()
            self._writer = threading.Thread(target=self._loop, name="trainguard-textfile", daemon=True)
            self._writer.start()

    @property
    def port(self) -> int | None:
        """The port actually bound (useful with ``port=0``)."""
        return None if self._server is None else int(self._server.server_port)

    def on_action(self, action: Any, guard: Any = None) -> None:
        self.collector.count(action)
        if action.stop and self.textfile is not None:
            self.write()

    def write(self) -> None:
        """Write the textfile now (atomic rename, so node_exporter never reads half a file)."""
        if self.textfile is None:
            return
        from prometheus_client import write_to_textfile

        try:
            write_to_textfile(str(self.textfile), self.registry)
        except OSError as e:
            log.warning("trainguard: cannot write %s (%s)", self.textfile, e.strerror)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write()

    def close(self) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
        self.write()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def _last(run: Any, name: str) -> float:
    s = run.history.get(name)
    if s is None or not len(s):
        return math.nan
    try:
        return float(s.values[-1])
    except (IndexError, ValueError):
        return math.nan


def sink_from_flags(guard: Any, port: int | None, textfile: str | Path | None, *,
                    stall: Any = None) -> PrometheusSink | None:
    """The sink ``--metrics-port``/``--metrics-textfile`` ask for (``trainguard run`` and ``watch``), or None."""
    if port is None and textfile is None:
        return None
    return PrometheusSink(guard, port=port, textfile=textfile, stall=stall)


def chain(on_action: Callable[[Any], None] | None, sink: Any, guard: Any) -> Callable[[Any], None] | None:
    """``on_action`` followed by ``sink.on_action(action, guard)``; ``on_action`` itself when there is no sink."""
    if sink is None:
        return on_action

    def both(action: Any) -> None:
        if on_action is not None:
            on_action(action)
        sink.on_action(action, guard)

    return both


__all__ = ["GuardCollector", "PrometheusSink", "chain", "sink_from_flags"]
