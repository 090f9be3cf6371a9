"""Fixtures of the live tests: a local JSON webhook that records what apprise's ``json://`` sends."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def json_hook() -> Iterator[tuple[str, list[dict]]]:
    """A JSON webhook on 127.0.0.1 (ephemeral port), always shut down; yields its apprise URL and the payloads."""
    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", 0))
            received.append(json.loads(self.rfile.read(n)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"json://127.0.0.1:{srv.server_address[1]}/hooks/tg", received
    finally:
        srv.shutdown()
        srv.server_close()
