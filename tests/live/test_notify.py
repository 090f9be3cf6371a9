"""Notifications: reach a real (local) webhook through apprise, never leak the URL, never break training."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from trainguard.errors import ConfigError
from trainguard.live.feed import LineFeed
from trainguard.live.guard import Guard
from trainguard.live.notify import Notifier, format_action, host, load_urls, redact

LOG = Path(__file__).parent / "data" / "hf_overfit_stdout.log"  # genuine HF Trainer stdout (overfits)


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", 0))
        type(self).received.append(json.loads(self.rfile.read(n)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A JSON webhook on 127.0.0.1 (ephemeral port); yields its apprise URL and the received payloads."""
    received: list[dict] = []
    handler = type("Hook", (_Hook,), {"received": received})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"json://127.0.0.1:{srv.server_address[1]}/hooks/tg-secret-token", received
    finally:
        srv.shutdown()
        srv.server_close()


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replay(guard: Guard, notifier: Notifier | None = None) -> list:
    """Feed the real overfit log to ``guard`` in 4 KB chunks, notifying on actions like the CLI does."""
    def on_action(a: object) -> None:
        if notifier is not None:
            notifier.notify_action(a, run_name=guard.run.name, step=a.step, best=guard.best, run=guard.run)

    feed = LineFeed(guard, on_action=on_action)
    data = LOG.read_text(encoding="utf-8")
    acts = []
    for i in range(0, len(data), 4096):
        acts += feed.feed(data[i:i + 4096])
    return acts + feed.close()


def test_a_stop_reaches_a_local_webhook_with_the_numbers(webhook: tuple[str, list[dict]]) -> None:
    url, received = webhook
    n = Notifier([url])
    guard = Guard(run_name="tiny-overfit")
    acts = _replay(guard, n)
    assert any(a.stop for a in acts)
    assert n.flush(timeout=20)
    n.close()
    stops = [m for m in received if "STOP" in m["title"]]
    assert len(stops) == 1, received  # one stop message, not one per later eval
    msg = stops[0]
    assert "tiny-overfit" in msg["title"] and "overfitting" in msg["title"]
    assert "best eval_loss: 2.842 at step 100" in msg["message"]
    stop = next(a for a in acts if a.stop)
    assert f"step {stop.step}" in msg["message"]  # where it stopped (the policy decides when)
    assert msg["type"] == "failure"


def test_the_guard_own_notifier_path_works_too(webhook: tuple[str, list[dict]]) -> None:
    """``Guard(notifier=...)`` calls ``send(title, body, level)``: the same Notifier serves it."""
    url, received = webhook
    with Notifier([url]) as n:
        _replay(Guard(notifier=n, run_name="via-guard"))
        assert n.flush(timeout=20)
    assert any("via-guard" in m["title"] and "2.842" in m["message"] for m in received)


def test_server_down_training_finishes_one_warning_and_the_url_never_shows(
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    url = f"json://127.0.0.1:{_closed_port()}/hooks/tg-secret-token"
    caplog.set_level(logging.DEBUG)  # even at DEBUG (where apprise and urllib3 print URLs) nothing leaks
    n = Notifier([url], min_interval_s=0)  # no rate limit: every alert is a delivery attempt
    guard = Guard(notifier=n, run_name="down")
    acts = _replay(guard, n)
    assert guard.run.last_step == 800 and any(a.stop for a in acts)  # training (the feed) went to the end
    assert n.flush(timeout=30)
    n.close()
    assert n.failed >= 2 and n.sent == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "notification" in r.getMessage()]
    assert len(warnings) == 1
    assert "json://***" in warnings[0].getMessage()
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for text in (out, err, logged, repr(n)):
        assert "tg-secret-token" not in text and url not in text
        assert url.split("://")[1].split("/")[0] not in text  # not even host:port


class _Fake:
    """A backend that records messages; ``gate`` lets a test hold delivery."""

    def __init__(self, ok: bool = True) -> None:
        self.got: list[tuple[str, str, str]] = []
        self.ok = ok
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, title: str, body: str, level: str) -> bool:
        self.gate.wait(10)
        self.got.append((title, body, level))
        return self.ok


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_dedupe_and_rate_limit() -> None:
    fake, clock = _Fake(), _Clock()
    n = Notifier(["json://127.0.0.1:1/x"], min_interval_s=300, burst=3, backend=fake, clock=clock)
    assert n.send("run a: overfitting at step 140", "eval 2.90 worse", "warning")
    assert not n.send("run a: overfitting at step 160", "eval 2.97 worse", "warning")  # same finding: deduped
    assert n.send("run a: plateau at step 160", "flat", "warning")
    assert n.send("run a: spike at step 170", "x", "warning")
    assert not n.send("run a: slowdown at step 180", "y", "warning")  # 3 per interval: rate-limited
    assert n.send("run a: divergence at step 190", "loss up", "error")  # errors skip the burst cap
    assert n.send("run a: STOP at step 160", "stopping", "stop")  # a stop always goes out...
    assert not n.send("run a: STOP at step 180", "stopping", "stop")  # ...once
    clock.t += 301
    assert n.send("run a: overfitting at step 400", "eval worse", "warning")  # the interval passed
    assert n.flush(5)
    n.close()
    assert len(fake.got) == 6 and n.suppressed == 3
    assert [lvl for _, _, lvl in fake.got].count("stop") == 1


def test_dedupe_off_still_rate_limits() -> None:
    fake, clock = _Fake(), _Clock()
    n = Notifier(["json://127.0.0.1:1/x"], dedupe=False, burst=2, backend=fake, clock=clock)
    assert n.send("same", "same", "info") and n.send("same", "same", "info")
    assert not n.send("same", "same", "info")
    n.close()


def test_send_never_blocks_on_a_slow_service_and_a_full_queue_drops() -> None:
    fake = _Fake()
    fake.gate.clear()  # the service hangs
    n = Notifier(["json://127.0.0.1:1/x"], min_interval_s=0, queue_size=2, backend=fake)
    results = [n.send(f"stop {w}", w, "stop") for w in ("a", "b", "c", "d", "e")]  # returns at once although nothing is delivered
    assert results[:2] == [True, True] and n.dropped >= 2
    fake.gate.set()
    assert n.flush(5)
    n.close()
    assert 2 <= len(fake.got) <= 3


def test_a_raising_backend_logs_one_warning_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    def boom(title: str, body: str, level: str) -> bool:
        raise RuntimeError("service exploded")

    n = Notifier(["slack://T000/B000/XXXXXXXXXXXX"], min_interval_s=0, backend=boom)
    for w in ("a", "b", "c"):
        n.send(f"stop {w}", w, "stop")
    assert n.flush(5)
    n.close()
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(msgs) == 1 and "slack://***" in msgs[0] and "XXXXXXXXXXXX" not in msgs[0]
    assert n.failed == 3


def test_urls_from_flags_env_and_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "notify.yaml"
    cfg.write_text("urls:\n  - tgram://bottoken/chat\n  - json://127.0.0.1:9/x\n")
    env = {"TRAINGUARD_NOTIFY": "slack://a/b/c, ntfy://127.0.0.1/topic json://127.0.0.1:9/x",
           "TRAINGUARD_NOTIFY_FILE": str(cfg)}
    urls = load_urls(["mailto://u:p@127.0.0.1"], env=env)
    assert urls == ["mailto://u:p@127.0.0.1", "slack://a/b/c", "ntfy://127.0.0.1/topic", "json://127.0.0.1:9/x",
                    "tgram://bottoken/chat"]
    cfg.write_text("- slack://only/one/url\n")
    assert load_urls(env={"TRAINGUARD_NOTIFY_FILE": str(cfg)}) == ["slack://only/one/url"]
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/trainguard/notify.yaml there
    assert Notifier.from_config(env={}) is None  # nothing configured: no notifier, no apprise import
    (tmp_path / ".config" / "trainguard").mkdir(parents=True)
    (tmp_path / ".config" / "trainguard" / "notify.yaml").write_text("[discord://id/token]\n")
    n = Notifier.from_config(env={})
    assert n is not None and n.targets == ["discord://***"]


def test_config_errors_name_the_file_not_the_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_urls(env={"TRAINGUARD_NOTIFY_FILE": str(tmp_path / "missing.yaml")})
    bad = tmp_path / "bad.yaml"
    bad.write_text("urls: [slack://sekrit/token\n  - : :\n")
    with pytest.raises(ConfigError) as e:
        load_urls(config_file=bad, env={})
    assert str(bad) in str(e.value) and "sekrit" not in str(e.value)
    bad.write_text("urls: 42\n")
    with pytest.raises(ConfigError, match="list of URLs"):
        load_urls(config_file=bad, env={})


def test_redact_shows_the_scheme_only() -> None:
    assert redact("slack://T000/B000/XXXX") == "slack://***"
    assert redact("json://127.0.0.1:8080/hook") == "json://***"
    assert redact("garbage") == "***"


def test_format_action_carries_the_key_numbers() -> None:
    guard = Guard(run_name="r1")
    acts = _replay(guard)
    stop = next(a for a in acts if a.stop)
    # give the run a pace so the message can price the waste
    for i, s in enumerate(range(0, 200, 10)):
        guard.run.history.add("step_time", s, 0.5, wall_time=1000.0 + 5.0 * i)
    title, body, level = format_action(stop, run_name="r1", step=stop.step, best=guard.best, run=guard.run,
                                       taken="stopping the trainer", checkpoint="out/checkpoint-100")
    assert level == "stop" and title.startswith(f"trainguard: r1 on {host()}: STOP (overfitting)")
    assert f"at step {stop.step}" in title and "best eval_loss: 2.842 at step 100" in body
    # a phone shows the first line: run, host, the action taken, where the best model is
    assert body.splitlines()[0] == f"r1 on {host()}: stopping the trainer; best checkpoint: out/checkpoint-100"
    assert "GPU-hours" in body


def test_an_alert_that_keeps_getting_worse_is_sent_again_at_once() -> None:
    from trainguard.findings import Finding, Severity
    from trainguard.live.policy import Action

    fake, clock = _Fake(), _Clock()
    n = Notifier(["json://127.0.0.1:1/x"], min_interval_s=300, backend=fake, clock=clock)

    def alert(pct: float) -> Action:
        f = Finding("overfitting", Severity.WARNING, f"eval {pct}% worse", evidence={"worse_pct": pct})
        return Action(100, alert=True, reason=f"alert: eval {pct}% worse", findings=(f,))

    assert n.notify_action(alert(2.0), run_name="r", step=100)
    assert not n.notify_action(alert(2.2), run_name="r", step=120)  # about the same: muted by the window
    assert n.notify_action(alert(4.0), run_name="r", step=140)  # twice as bad: escalates
    assert n.flush(5)
    n.close()
    assert [lvl for _, _, lvl in fake.got] == ["warning", "error"] and "WORSE" in fake.got[1][0]
