"""Notifications through apprise: rate-limited, de-duplicated, off the training thread, secret-safe.

A :class:`Notifier` wraps a list of apprise URLs (``slack://…``, ``tgram://…``,
``json://host/path`` …). Three promises, each the reason for a piece below:

- **It never disturbs training.** ``send`` only puts the message on a small
  bounded queue; a daemon thread delivers it. A slow webhook therefore costs
  a step nothing, a full queue drops the message (counted), and a failing
  service logs exactly ONE warning for the life of the notifier, never raises.
- **It never leaks a URL.** Notification URLs carry tokens (the Slack path,
  the Telegram bot token, an e-mail password), so they are secrets: every
  place they are shown uses :func:`redact` (scheme only, ``slack://***``).
  apprise itself logs the target host and, at DEBUG, the whole URL; its
  logger is muted while a Notifier exists, and urllib3's connection-pool
  records that mention a URL fragment are dropped.
- **It does not spam.** The same key (by default the title and the first
  line of the body with numbers masked, so "overfitting at step 140" and
  "… step 160" count as one) is not re-sent within ``min_interval_s``, and at
  most ``burst`` info/warning messages go out per interval overall. Errors
  skip the burst cap; a ``stop`` skips both (sent once per key): it is the
  one message a person must not miss.

URLs come from, in order: ``--notify`` arguments, the ``TRAINGUARD_NOTIFY``
environment variable (comma or space separated), and a config file
(``TRAINGUARD_NOTIFY_FILE`` or ``~/.config/trainguard/notify.yaml``) holding
either a list of URLs or ``{urls: [...]}``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from .messages import _size, format_action, host

log = logging.getLogger(__name__)

LEVELS = ("info", "warning", "error", "stop")
ENV_URLS = "TRAINGUARD_NOTIFY"
ENV_FILE = "TRAINGUARD_NOTIFY_FILE"
DEFAULT_FILE = Path("~/.config/trainguard/notify.yaml")

_NUMBER = re.compile(r"[-+]?\d[\d.,eE+-]*")


def redact(url: str) -> str:
    """The URL with everything after the scheme hidden: ``slack://***``.

    Even the host is hidden: for ``json://`` or ``ntfy://`` webhooks the host
    and path together are the secret.
    """
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://***" if sep else "***"


def split_urls(text: str) -> list[str]:
    """URLs from a comma- or whitespace-separated string (the ``TRAINGUARD_NOTIFY`` format)."""
    return [u for u in re.split(r"[,\s]+", text.strip()) if u]


def load_urls(cli_urls: Iterable[str] = (), *, env: Mapping[str, str] | None = None,
              config_file: str | Path | None = None) -> list[str]:
    """Every notification URL the user configured, de-duplicated, in a stable order.

    ``config_file`` overrides ``TRAINGUARD_NOTIFY_FILE`` / the default path.
    A missing default file is fine; a missing file that was named explicitly,
    or one that is malformed, is a :class:`ConfigError` (naming the file, never
    its contents).
    """
    env = os.environ if env is None else env
    urls: list[str] = list(cli_urls)
    urls += split_urls(env.get(ENV_URLS, ""))
    explicit = config_file is not None or bool(env.get(ENV_FILE))
    path = Path(config_file or env.get(ENV_FILE) or DEFAULT_FILE).expanduser()
    if path.is_file():
        urls += _read_config(path)
    elif explicit:
        raise ConfigError("notification config file not found", key="notify", path=path)
    seen: set[str] = set()
    return [u for u in urls if not (u in seen or seen.add(u))]


def _read_config(path: Path) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        # The YAML error quotes the offending line, which may hold a URL: say only where.
        where = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" (line {where + 1})" if where is not None else ""
        raise ConfigError(f"unreadable notification config{at}", key="notify", path=path) from None
    if isinstance(data, Mapping):
        data = data.get("urls", data.get("notify"))
    if isinstance(data, str):
        return split_urls(data)
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(u, str) for u in data):
        raise ConfigError("expected a list of URLs or {urls: [...]}", key="urls", path=path)
    return [u.strip() for u in data if u.strip()]


class Backend(Protocol):
    """What delivers a message: apprise in production, a fake in tests."""

    def __call__(self, title: str, body: str, level: str) -> bool: ...


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    level: str
    key: str


class Notifier:
    """Sends alerts to apprise URLs from a background thread.

    Constructor arguments are stored as given. ``sent``, ``failed``,
    ``suppressed`` and ``dropped`` count what happened, for reports and tests.
    """

    def __init__(self, urls: Iterable[str], *, min_interval_s: float = 300.0, dedupe: bool = True,
                 burst: int = 5, queue_size: int = 32, timeout_s: float = 15.0,
                 backend: Backend | None = None, clock: Any = time.monotonic) -> None:
        self.urls = list(urls)
        self.min_interval_s = min_interval_s
        self.dedupe = dedupe
        self.burst = burst
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0
        self.suppressed = 0
        self.dropped = 0
        self._clock = clock
        self._backend = backend
        self._last_by_key: dict[str, float] = {}
        self._stops: set[str] = set()
        self._window: list[float] = []
        self._warned = False
        self._escalation: dict[str, tuple[int, float]] = {}  # alert key -> (severity rank, size) last sent
        self._lock = threading.Lock()
        self._queue: queue.Queue[Message | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._apprise: Any = None
        self._closed = False
        if self.urls:
            _install_log_guard(self.urls)

    # -- construction -------------------------------------------------------
    @classmethod
    def from_config(cls, cli_urls: Iterable[str] = (), *, env: Mapping[str, str] | None = None,
                    config_file: str | Path | None = None, **kwargs: Any) -> Notifier | None:
        """A Notifier over every configured URL (see :func:`load_urls`), or None when there is none."""
        urls = load_urls(cli_urls, env=env, config_file=config_file)
        return cls(urls, **kwargs) if urls else None

    @property
    def targets(self) -> list[str]:
        """The URLs as they may be shown: scheme only."""
        return [redact(u) for u in self.urls]

    def __repr__(self) -> str:
        return f"Notifier({self.targets}, min_interval_s={self.min_interval_s})"

    # -- sending ------------------------------------------------------------
    def send(self, title: str, body: str, level: str = "warning", *, key: str | None = None,
             important: bool = False) -> bool:
        """Queue one message; True when queued, False when rate-limited, de-duplicated or dropped.

        Returns at once: delivery happens on the notifier's thread. ``level``
        is one of info, warning, error, stop; a ``stop`` bypasses both limits
        and is sent once per key (a stopping run keeps logging for a while);
        ``important`` skips the burst cap (the run-finished summary).
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if not self.urls or self._closed:
            return False
        if key is None:
            key = _NUMBER.sub("#", title + "|" + body.partition("\n")[0])
        with self._lock:
            now = self._clock()
            if level == "stop":
                admitted = key not in self._stops  # every distinct stop goes out, once
                self._stops.add(key)
            else:
                admitted = self._admit(key, now, capped=level in ("info", "warning") and not important)
            if not admitted:
                self.suppressed += 1
                return False
            self._last_by_key[key] = now
            self._window.append(now)
        try:
            self._queue.put_nowait(Message(title, body, level, key))
        except queue.Full:
            self.dropped += 1
            return False
        self._ensure_thread()
        return True

    def _admit(self, key: str, now: float, *, capped: bool) -> bool:
        last = self._last_by_key.get(key)
        if self.dedupe and last is not None and now - last < self.min_interval_s:
            return False
        self._window = [t for t in self._window if now - t < self.min_interval_s]
        return not capped or len(self._window) < self.burst

    def notify_action(self, action: Any, *, run_name: str, step: int | None = None,
                      best: Any = None, run: Any = None, taken: str | None = None,
                      checkpoint: str | None = None) -> bool:
        """Send what a Guard ``Action`` says (a stop, or an alert), with the key numbers; see :func:`format_action`.

        ``taken`` is what the sink really did ("stopping the trainer: it saves
        and exits"), ``checkpoint`` the best checkpoint's path: both go on the
        first line, the one a phone shows. An alert whose finding keeps getting
        worse (its size grew by half since the last one sent, or its severity
        rose) is sent again at once, marked as worse, instead of being muted
        by the de-duplication window.
        """
        if not (getattr(action, "stop", False) or getattr(action, "alert", False)):
            return False
        title, body, level = format_action(action, run_name=run_name, step=step, best=best, run=run,
                                           taken=taken, checkpoint=checkpoint)
        codes = ",".join(sorted({getattr(f, "code", "?") for f in getattr(action, "findings", []) or []}))
        key = f"{run_name}:stop" if level == "stop" else f"{run_name}:{codes or title}"
        if level != "stop":
            size = _size(action)
            with self._lock:
                last = self._escalation.get(key)
                worse = last is not None and (size[0] > last[0] or (size[1] > 0 and size[1] >= 1.5 * last[1]))
                if last is None or worse:
                    self._escalation[key] = size
            if worse:
                title = title.replace(": alert", ": WORSE", 1)
                return self.send(title, body, "error", key=f"{key}:worse:{size}")
        return self.send(title, body, level, key=key)

    def notify_text(self, title: str, first_line: str, lines: Iterable[str] = (), level: str = "info",
                    *, key: str | None = None) -> bool:
        """Send a message whose first body line is ``first_line`` (run, host, what happened, checkpoint).

        It is not subject to the burst cap: it is the one summary of a run.
        """
        return self.send(title, "\n".join([first_line, *lines]), level, key=key, important=True)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was handled (sent or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop the thread."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._thread.join(timeout=1.0)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the delivery thread ---------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="trainguard-notify", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            msg = self._queue.get()
            try:
                if msg is None:
                    return
                self._deliver(msg)
            finally:
                self._queue.task_done()

    def _deliver(self, msg: Message) -> None:
        try:
            ok = (self._backend or self._apprise_send)(msg.title, msg.body, msg.level)
            problem = "" if ok else "the service did not accept it"
        except Exception as e:  # a notifier must never raise into training
            ok, problem = False, type(e).__name__
        if ok:
            self.sent += 1
            return
        self.failed += 1
        if not self._warned:
            self._warned = True
            log.warning("trainguard: notification to %s failed (%s); further failures are not reported",
                        ", ".join(self.targets), problem)

    def _apprise_send(self, title: str, body: str, level: str) -> bool:
        import apprise

        if self._apprise is None:
            ap = apprise.Apprise()
            for u in self.urls:
                if not ap.add(u):
                    # A URL apprise cannot parse: say which scheme, never the URL.
                    raise ValueError(f"unsupported notification URL {redact(u)}")
            self._apprise = ap
        kind = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING}.get(
            level, apprise.NotifyType.FAILURE)
        return bool(self._apprise.notify(body=body, title=title, notify_type=kind, timeout=self.timeout_s))


# -- keeping URLs out of logs ----------------------------------------------
class _SecretFilter(logging.Filter):
    """Drops every apprise record, and any other record that mentions a fragment of a URL.

    apprise logs the target host at WARNING and the full URL at DEBUG;
    urllib3 logs host, port and path at DEBUG. Our own one-line warning
    replaces them, redacted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fragments: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "apprise" or record.name.startswith("apprise."):
            return False
        if not self.fragments:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        return not any(f in text for f in self.fragments)


_FILTER = _SecretFilter()


def _fragments(url: str) -> set[str]:
    """Substrings of ``url`` that would give it away: the netloc, host:port, and path/query parts."""
    from urllib.parse import urlsplit

    out = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    rest = url.partition("://")[2]
    if rest:
        out.add(rest)
    for piece in (parts.netloc, parts.netloc.rpartition("@")[2], parts.path, parts.query):
        if piece and len(piece) >= 4 and piece.strip("/"):
            out.add(piece)
    out.update(seg for seg in parts.path.split("/") if len(seg) >= 8)  # tokens inside paths
    return out


def _install_log_guard(urls: Iterable[str]) -> None:
    for u in urls:
        _FILTER.fragments |= _fragments(u)
    for name in ("apprise", "urllib3.connectionpool", "urllib3.util.retry", "requests"):
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)


__all__ = ["LEVELS", "Message", "Notifier", "format_action", "host", "load_urls", "redact", "split_urls"]
