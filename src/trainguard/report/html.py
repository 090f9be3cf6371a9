"""The HTML report: one self-contained file (plots inline as PNG data URIs) that opens offline.

Nothing is fetched: no CSS, JS, font or image URL, so the file can be mailed,
attached to a ticket or opened on an air-gapped cluster. Everything that
comes from a log or a config (run name, metric names, messages, values) goes
through :func:`html.escape`; on top of that a Content-Security-Policy allows
only the one inline script whose SHA-256 is in the header, so even a missed
escape could not run a ``<script>`` smuggled into a log line.

The inline script does two small things: copy buttons on the config patch,
and a marker (``document.title`` gets `` · rendered`` and ``<body
data-report-ok>``) set on ``load`` only when every plot decoded and no script
error fired. The browser test reads that marker.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..diagnosis import Diagnosis
from ..run import EVAL_LOSS
from . import _text as t
from .patch import patch_blocks
from .plots import FLAG_COLORS, best_point, build_plots, to_png

RENDERED_MARKER = "· rendered"

_SCRIPT = """
(function () {
  var errors = 0;
  window.addEventListener('error', function () { errors += 1; document.body.setAttribute('data-js-errors', String(errors)); });
  document.querySelectorAll('button.copy').forEach(function (b) {
    b.addEventListener('click', function () {
      var code = document.getElementById(b.getAttribute('data-target'));
      if (!code) { return; }
      var text = code.textContent;
      var done = function () { b.textContent = 'copied'; setTimeout(function () { b.textContent = 'copy'; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, function () {}); }
      else { var r = document.createRange(); r.selectNodeContents(code); var s = window.getSelection(); s.removeAllRanges(); s.addRange(r); }
    });
  });
  window.addEventListener('load', function () {
    var imgs = document.querySelectorAll('img.plot'), bad = 0;
    for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) { bad += 1; } }
    document.body.setAttribute('data-plots', String(imgs.length));
    document.body.setAttribute('data-plots-broken', String(bad));
    if (bad === 0 && errors === 0) {
      document.body.setAttribute('data-report-ok', 'yes');
      document.title = document.title + ' MARKER';
    }
  });
})();
""".replace("MARKER", RENDERED_MARKER)

_CSS = """
:root { --fg:#1d2329; --muted:#5f6b76; --line:#e3e7eb; --bg:#f6f8fa; --card:#fff; --accent:#6a1b9a; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 18px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
.sub { color: var(--muted); font-size: 13px; word-break: break-all; }
.verdict { margin: 16px 0 8px; padding: 14px 18px; border-radius: 8px; background: var(--card);
  border-left: 6px solid #888; font-size: 16px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.status-healthy { border-left-color: #2e7d32; } .status-warning { border-left-color: #f9a825; }
.status-error { border-left-color: #ef6c00; } .status-critical { border-left-color: #c62828; }
.badge { display:inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  color:#fff; background:#78909c; text-transform: uppercase; letter-spacing: .03em; white-space: nowrap; }
.sev-info { background:#546e7a; } .sev-warning { background:#f9a825; color:#222; }
.sev-error { background:#ef6c00; } .sev-critical { background:#c62828; }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(230px, 1fr)); gap: 12px; margin-top: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; margin: 2px 0; }
.card .d { font-size: 13px; color: var(--muted); }
figure { margin: 0 0 18px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
figure img { display:block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; padding: 6px 4px 0; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f4; font-weight: 600; font-size: 13px; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.msg { word-break: break-word; }
td.val { max-width: 260px; overflow-wrap: anywhere; }  /* a suggested value may be a sentence: never let it push the table off-screen */
table { table-layout: auto; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
.patch { position: relative; margin-bottom: 14px; }
.patch h3 { font-size: 14px; margin: 0 0 6px; }
pre { background: #0f1720; color: #e6edf3; padding: 14px 16px; border-radius: 8px; overflow-x: auto; margin: 0; }
button.copy { position: absolute; right: 8px; top: 30px; font-size: 12px; padding: 3px 10px; border-radius: 5px;
  border: 1px solid #44505c; background: #24303c; color: #e6edf3; cursor: pointer; }
.flag { display:inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
.cause { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin-bottom: 10px; }
.cause h3 { font-size: 15px; margin: 0 0 4px; }
.muted { color: var(--muted); }
ul.plain { margin: 6px 0; padding-left: 20px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
nav { margin: 10px 0 0; font-size: 13px; } nav a { color: var(--accent); margin-right: 12px; text-decoration: none; }
"""


def e(x: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape(_fmt(x), quote=True)


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return str(x)
        return f"{x:.6g}"
    if isinstance(x, (list, tuple)):
        return ", ".join(_fmt(v) for v in x)
    if isinstance(x, dict):  # nested blocks (a DeepSpeed scheduler) read best as the JSON the user edits
        return json.dumps(x, default=str, separators=(", ", ": "))
    return str(x)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(x: Any, cls: str = "") -> str:
    return f'<td class="{cls}">{e(x)}</td>' if cls else f"<td>{e(x)}</td>"


def _sev(sev: str) -> str:
    return f'<span class="badge sev-{e(sev)}">{e(sev)}</span>'


def _steps(a: int | None, b: int | None) -> str:
    if a is None and b is None:
        return "—"
    if b is None or a == b:
        return f"{a}"
    return f"{a}–{b}"


def _cards(d: Diagnosis) -> str:
    run = d.run
    cards: list[str] = []
    bp = best_point(d)
    if bp is not None:
        metric, step, value, epoch = bp
        where = f"step {step}" + (f", epoch {epoch:g}" if epoch is not None else "")
        saved = ""
        if d.best is not None and d.best.checkpoint_saved is not None:
            saved = "checkpoint saved" if d.best.checkpoint_saved else "checkpoint NOT saved"
        cards.append(_card(f"best {metric}", f"{value:.4g}", f"{where}{'; ' + saved if saved else ''}"))
    ev = run.eval_loss.finite()
    if len(ev):
        last = float(ev.values[-1])
        rel = ""
        if bp is not None and bp[0] == EVAL_LOSS and bp[2] > 0:
            rel = f"×{last / bp[2]:.2f} the best"
        cards.append(_card("final eval_loss", f"{last:.4g}", f"step {int(ev.steps[-1])}; {rel}" if rel else f"step {int(ev.steps[-1])}"))
    w = d.waste
    if w is not None and (w.steps or w.fraction):
        hrs = t.hours(w.hours) if w.hours is not None else "time unknown"
        gpu = ""
        if w.gpu_hours is not None:
            gpu = f", {t.gpu_hours(w.gpu_hours)}" + (" (1 GPU assumed)" if w.gpus_assumed else f" on {t.gpus(w.gpus)}" if w.gpus else "")
        cards.append(_card("wasted after the best", f"{w.fraction:.0%}", f"{t.plural(w.steps, 'step')}, {hrs}{gpu}"))
    lr = d.lr_schedule
    conf, inf = (lr.configured or {}), (lr.inferred or {})
    if conf or inf:
        v = f"{inf.get('shape', 'unknown')} vs {conf.get('type', 'unknown')}"
        cards.append(_card("LR: followed vs configured", v, "they differ" if lr.matches is False else "match" if lr.matches else ""))
    steps = run.last_step
    if steps is not None:
        rt = t.hours(run.train_runtime / 3600) if run.train_runtime else "runtime unknown"
        cards.append(_card("steps", str(steps), f"{rt}; {t.gpus(run.gpus)}" + ("" if run.num_gpus or run.config.world_size else " assumed")))
    if not cards:
        return ""
    # as many columns as cards (up to 6): a fifth card never wraps onto a row of its own
    cols = min(len(cards), 6)
    return f'<div class="cards" style="grid-template-columns: repeat({cols}, minmax(0, 1fr))">' + "".join(cards) + "</div>"


def _card(k: str, v: str, detail: str) -> str:
    return f'<div class="card"><div class="k">{e(k)}</div><div class="v">{e(v)}</div><div class="d">{e(detail)}</div></div>'


def _plots_section(d: Diagnosis) -> str:
    plots = build_plots(d)
    if not plots:
        return '<p class="muted">No metric with points to plot.</p>'
    out: list[str] = []
    for p in plots:
        data = base64.b64encode(to_png(p.figure)).decode("ascii")
        cap = f"<figcaption>{e(p.caption)}</figcaption>" if p.caption else ""
        out.append(f'<figure id="plot-{e(p.key)}"><img class="plot" alt="{e(p.title)}" src="data:image/png;base64,{data}">{cap}</figure>')
    return "".join(out)


def _phases(d: Diagnosis) -> str:
    if not d.phases:
        return '<p class="muted">No phases: the diagnosis did not split this run.</p>'
    rows = []
    for p in d.phases:
        color = FLAG_COLORS.get(p.flag, "#9e9e9e")
        flag = f'<td><span class="flag" style="background:{color}"></span>{e(p.flag)}</td>'
        rows.append([_td(p.name), _td(_steps(p.start_step, p.end_step), "num"), flag, _td(p.summary, "msg")])
    return _table(["phase", "steps", "flag", "what happened"], rows)


def _findings(d: Diagnosis) -> str:
    if not d.findings:
        return '<p class="muted">No findings.</p>'
    order = sorted(d.findings, key=lambda f: (-f.severity.rank, f.start_step or 0))
    rows = [[f"<td>{_sev(f.severity.value)}</td>", _td(f.code), _td(_steps(f.start_step, f.end_step), "num"), _td(f.message, "msg"),
             _td(f"{f.confidence:.0%}", "num")] for f in order]
    return _table(["severity", "code", "steps", "message", "confidence"], rows)


def _causes(d: Diagnosis) -> str:
    out = []
    for c in d.causes:
        vals = "; ".join(f"{k} = {_sourced(v)}" for k, v in c.config_values.items())
        out.append(
            f'<div class="cause"><h3>{e(c.title)} <span class="badge">{e(c.confidence)}</span></h3>'
            f"<div>{e(c.explanation)}</div>"
            + (f'<div class="muted"><code>{e(vals)}</code></div>' if vals else "")
            + "</div>"
        )
    if d.unknowns:
        out.append("<p><strong>Unknown</strong> (not claimed):</p><ul class='plain'>" + "".join(f"<li>{e(u)}</li>" for u in d.unknowns) + "</ul>")
    return "".join(out) or '<p class="muted">No cause identified.</p>'


def _sourced(v: Any) -> str:
    """A config value as ``100 (training_args.json)`` when it carries its source, else the value."""
    if isinstance(v, dict) and "value" in v and set(v) <= {"value", "source"}:
        return _fmt(v["value"]) + (f" ({v['source']})" if v.get("source") else "")
    return _fmt(v)


def _recommendations(d: Diagnosis) -> str:
    if not d.recommendations:
        return '<p class="muted">No config change recommended.</p>'
    rows = [[_td(r.framework), f"<td><code>{e(r.key)}</code></td>", _td(r.current, "val"), _td(r.suggested, "val"), _td(r.reason, "msg")]
            for r in d.recommendations]
    return _table(["where", "key", "now", "change to", "why"], rows)


def _patch(d: Diagnosis) -> str:
    blocks = patch_blocks(d)
    if not blocks:
        return '<p class="muted">Nothing to change.</p>'
    out = []
    for i, (title, lang, code) in enumerate(blocks):
        out.append(
            f'<div class="patch"><h3>{e(title)} <span class="muted">({e(lang)})</span></h3>'
            f'<button class="copy" type="button" data-target="patch-{i}">copy</button>'
            f'<pre><code id="patch-{i}">{e(code)}</code></pre></div>'
        )
    return "".join(out)


def _config(d: Diagnosis) -> str:
    items = sorted(d.run.config.items())
    if not items:
        return '<p class="muted">No config found beside the run; pass <code>--config</code> to tie findings to hyper-parameters.</p>'
    rows = []
    for k, s in items:
        v = s.value
        if isinstance(v, (dict, list)):
            text = json.dumps(v, default=str, separators=(", ", ": "))
            v = text if len(text) <= 400 else text[:397] + "…"
        rows.append([f"<td><code>{e(k)}</code></td>", _td(v, "msg"), _td(s.source, "muted")])
    conflicts = ""
    if d.run.config.conflicts:
        lis = "".join(f"<li><code>{e(k)}</code>: {e(a.value)} ({e(a.source)}) vs {e(b.value)} ({e(b.source)})</li>" for k, a, b in d.run.config.conflicts)
        conflicts = f"<p><strong>Conflicting values</strong> (the first was kept):</p><ul class='plain'>{lis}</ul>"
    return _table(["key", "value", "source"], rows) + conflicts


def _how_read(d: Diagnosis) -> str:
    run = d.run
    rows = [[f"<td><code>{e(name)}</code></td>", _td(m.get("points"), "num"), _td(_steps(m.get("first_step"), m.get("last_step")), "num"),
             _td(m.get("first"), "num"), _td(m.get("last"), "num")] for name, m in d.metrics_summary().items()]
    notes = "".join(f"<li>{e(n)}</li>" for n in run.notes)
    if run.skipped_lines:
        notes += f"<li>{e(run.skipped_lines)} line(s) looked like metrics but did not parse.</li>"
    return (_table(["metric", "points", "steps", "first", "last"], rows) if rows else "") + (f"<ul class='plain'>{notes}</ul>" if notes else "")


def render_html(diagnosis: Diagnosis, *, title: str | None = None) -> str:
    """The whole report as one HTML string (self-contained; see the module docstring)."""
    from .. import __version__

    d = diagnosis
    run = d.run
    name = title or run.name
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    sections = [
        ("plots", "Plots", _plots_section(d)),
        ("phases", "Phases", _phases(d)),
        ("findings", "Findings", _findings(d)),
        ("causes", "Causes", _causes(d)),
        ("recommendations", "Recommendations", _recommendations(d)),
        ("patch", "Config patch", _patch(d)),
        ("config", "Config", _config(d)),
        ("log", "How the log was read", _how_read(d)),
    ]
    nav = "".join(f'<a href="#{sid}">{head}</a>' for sid, head, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{head}</h2>{content}</section>' for sid, head, content in sections)
    sources = ", ".join(run.sources) or "—"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>trainguard: {e(name)}</title><style>{_CSS}</style></head>"
        f'<body data-status="{e(d.status)}"><main>'
        f'<header id="summary"><h1>{e(name)}</h1>'
        f'<div class="sub">format {e(run.format)} · sources {e(sources)}</div>'
        f'<div class="verdict status-{e(d.status)}">{_sev_status(d.status)} {e(d.verdict())}</div>'
        f"{_cards(d)}<nav>{nav}</nav></header>"
        f"{body}"
        f"<footer>Generated by trainguard {e(__version__)} on {e(now)}. Self-contained: opens offline.</footer>"
        f"</main><script>{_SCRIPT}</script></body></html>\n"
    )


def _sev_status(status: str) -> str:
    cls = {"healthy": "info", "warning": "warning", "error": "error", "critical": "critical"}.get(status, "info")
    return f'<span class="badge sev-{cls}">{e(status)}</span>'


def write_html(diagnosis: Diagnosis, path: str | Path) -> Path:
    """Write the report to ``path`` (parents created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(diagnosis), encoding="utf-8")
    return p


__all__ = ["RENDERED_MARKER", "patch_blocks", "render_html", "write_html", "write_outputs"]


def write_outputs(diagnoses: list[Diagnosis], *, html_path: str | Path | None = None, plots_dir: str | Path | None = None) -> list[Path]:
    """``analyze --html FILE --plots DIR`` for one or several runs; returns every file written.

    With several runs, the second and later reports are ``FILE`` with the run
    name added before the suffix (``report-<run>.html``) so none overwrites another.
    """
    from .naming import safe_stem
    from .plots import write_plots

    written: list[Path] = []
    for i, d in enumerate(diagnoses):
        if html_path is not None:
            p = Path(html_path)
            if i > 0:
                p = p.with_name(f"{p.stem}-{safe_stem(d.run.name)}{p.suffix or '.html'}")
            written.append(write_html(d, p))
        if plots_dir is not None:
            written.extend(write_plots(d, plots_dir))
    return written
