"""The live parser's own thread: ``trainguard run`` copies the child's bytes first and parses them here.

Parsing (sniffing, the HF reader, the Guard's decisions) can be slower than a
chatty child writes. If the tee waited for it, the child would block on a
full pipe: a job writing 19 MB of metric lines took 9.8 s instead of a few.
So output chunks wait in a queue bounded in bytes; a chunk that finds it
full is skipped (counted) and parsing restarts at the next line: parsing is
dropped when behind, never output.
"""

from __future__ import annotations

import codecs
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .feed import LineFeed

QUEUE_BYTES = 1 << 20  # at most 1 MB of output waits for the parser; beyond that, parsing is skipped


class ParserThread(threading.Thread):
    """Parses output and applies callback events on its own thread, so the tee never waits for it.

    Every ``guard.log`` call happens here (one thread touches the Guard).
    Output chunks wait in a bounded queue; a chunk that finds it full is
    skipped (counted) and the parser restarts at the next line.
    """

    _END = object()

    def __init__(self, feed: LineFeed, on_event: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(name="trainguard-parse", daemon=True)
        self.feed = feed
        self.on_event = on_event
        self.parse_output = True
        self.skipped = 0
        self.error: BaseException | None = None
        self._q: queue.Queue[Any] = queue.Queue()
        self._waiting = 0  # bytes queued, bounded by QUEUE_BYTES
        self._count_lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque()
        self._gap = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def put_output(self, data: bytes) -> None:
        if not self.parse_output:
            return
        with self._count_lock:
            full = self._waiting + len(data) > QUEUE_BYTES
            if not full:
                self._waiting += len(data)
        if full:
            self.skipped += len(data)
            self._gap = True
            return
        self._q.put_nowait((self._gap, data))
        self._gap = False

    def put_events(self, events: list[dict[str, Any]]) -> None:
        self._events.extend(events)

    def finish(self) -> None:
        self._q.put(self._END)
        self.join()

    def run(self) -> None:
        try:
            while True:
                while self._events:
                    self.on_event(self._events.popleft())
                try:
                    item = self._q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is self._END:
                    break
                gap, data = item
                with self._count_lock:
                    self._waiting -= len(data)
                if gap:  # bytes were skipped: restart at a line boundary
                    self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
                    self.feed.restart_line()
                self.feed.feed(self._decoder.decode(data))
            while self._events:
                self.on_event(self._events.popleft())
            self.feed.feed(self._decoder.decode(b"", final=True))
            self.feed.close()
        except BaseException as e:  # reported by the supervisor; the tee goes on
            self.error = e


__all__ = ["QUEUE_BYTES", "ParserThread"]
