"""What a notification says: written for a phone's lock screen, where only the first line shows.

The first body line is the run, the host, the action actually taken and the
best checkpoint's path; then the reason, the best eval, and what the steps
since the best cost. :func:`_size` measures how bad an alert is, so one that
keeps getting worse can be escalated instead of muted.
"""

from __future__ import annotations

from typing import Any


def host() -> str:
    """This machine's short host name (which of the cluster's nodes sent the message)."""
    import socket

    return socket.gethostname().split(".")[0] or "localhost"


def format_action(action: Any, *, run_name: str, step: int | None = None, best: Any = None,
                  run: Any = None, taken: str | None = None, checkpoint: str | None = None) -> tuple[str, str, str]:
    """(title, body, level) for a Guard action, written for a phone's lock screen.

    The first body line is the one that matters: the run, the host, the
    action actually taken and the best checkpoint's path. Then the reason,
    the best eval, and what the steps since the best cost, in GPU-hours when
    the run knows its seconds per step (the number that makes a person act).
    ``best`` is anything with ``step`` and ``value`` (the Guard's ``best``).
    """
    stop = bool(getattr(action, "stop", False))
    findings = list(getattr(action, "findings", []) or [])
    kind = findings[0].code if findings else ("stop" if stop else "alert")
    level = "stop" if stop else ("error" if any(_sev(f) >= 2 for f in findings) else "warning")
    at = f" at step {step}" if step is not None else ""
    if taken is None:
        taken = f"stop decided{at}" if stop else f"alert{at}, training continues"
    title = f"trainguard: {run_name} on {host()}: {'STOP' if stop else 'alert'} ({kind.replace('_', ' ')}){at}"
    first = f"{run_name} on {host()}: {taken}"
    if checkpoint:
        first += f"; best checkpoint: {checkpoint}"
    lines = [first, str(getattr(action, "reason", "") or kind)]
    bstep, bval = getattr(best, "step", None), getattr(best, "value", None)
    if bstep is not None and bval is not None:
        lines.append(f"best {getattr(best, 'metric', 'eval_loss')}: {bval:.4g} at step {bstep}")
        gh = _wasted_gpu_hours(run, bstep, step)
        if gh is not None:
            lines.append(f"spent since the best: {gh:.2f} GPU-hours" if gh >= 0.01 else
                         "spent since the best: under 0.01 GPU-hours")
    for f in findings[1:5]:
        lines.append(f"- {getattr(f, 'code', '?')}: {getattr(f, 'message', '')}")
    if getattr(action, "save", False) and not stop:
        lines.append("a checkpoint is being saved now")
    return title, "\n".join(lines), level


def _size(action: Any) -> tuple[int, float]:
    """How bad an alert is: (worst severity rank, its size: a worsening in percent, else the confidence)."""
    rank, size = 0, 0.0
    for f in getattr(action, "findings", []) or []:
        rank = max(rank, _sev(f))
        ev = getattr(f, "evidence", None) or {}
        for k in ("worse_pct", "stalled_s", "ratio"):
            v = ev.get(k) if isinstance(ev, dict) else None
            if isinstance(v, (int, float)):
                size = max(size, float(v))
                break
        else:
            size = max(size, float(getattr(f, "confidence", 0.0) or 0.0))
    return rank, size


def _sev(finding: Any) -> int:
    s = getattr(finding, "severity", None)
    return int(getattr(s, "rank", 0))


def _wasted_gpu_hours(run: Any, best_step: int, step: int | None) -> float | None:
    if run is None or step is None or step <= best_step:
        return None
    try:
        sps = run.seconds_per_step()
    except Exception:
        return None
    if not sps:
        return None
    return (step - best_step) * sps * run.gpus / 3600.0


__all__ = ["format_action", "host"]
