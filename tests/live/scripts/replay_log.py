"""Replays a recorded training log (genuine HF Trainer stdout) chunk by chunk, as the trainer wrote it.

    python replay_log.py LOG [--delay S] [--ignore-sigint] [--exit CODE] [--spawn-sleeper] [--spawn-daemon]

``--ignore-sigint`` makes it a process that only SIGTERM stops (it prints
``got SIGTERM`` and exits 143); ``--spawn-sleeper`` leaves a ``sleep`` child
running in its process group, the kind of leftover ``trainguard run`` must end; ``--spawn-daemon`` leaves
one that called ``setsid`` (out of the group) and prints ``DAEMON <pid>``.
It prints its pid first. Only the standard library: it starts in ~30 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--delay", type=float, default=0.002, help="seconds between redraws / lines")
    ap.add_argument("--ignore-sigint", action="store_true")
    ap.add_argument("--exit", type=int, default=0)
    ap.add_argument("--spawn-sleeper", action="store_true")
    ap.add_argument("--spawn-daemon", action="store_true")
    ap.add_argument("--hold", type=float, default=0.0, help="seconds to wait after the log, still running")
    a = ap.parse_args()
    if a.ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

        def on_term(*_: object) -> None:
            print("\ngot SIGTERM", flush=True)
            os._exit(143)

        signal.signal(signal.SIGTERM, on_term)
    out = sys.stdout.buffer
    out.write(f"PID {os.getpid()}\n".encode())
    out.flush()
    if a.spawn_sleeper:
        subprocess.Popen(["sleep", "120"])
    if a.spawn_daemon:
        d = subprocess.Popen(["sleep", "120"], start_new_session=True, stdout=subprocess.DEVNULL)
        out.write(f"DAEMON {d.pid}\n".encode())
        out.flush()
    with open(a.log, "rb") as f:
        data = f.read()
    # Split after every \r or \n, keeping them: each piece is one tqdm redraw or one printed line.
    for piece in re.split(rb"(?<=[\r\n])", data):
        out.write(piece)
        out.flush()
        time.sleep(a.delay)
    time.sleep(a.hold)
    sys.exit(a.exit)


if __name__ == "__main__":
    main()
