"""The fleet index: one self-contained HTML page over every scanned run, linking each run's own report.

Same rules as the run report (``report/html.py``): nothing fetched, every
log-derived string escaped, and a Content-Security-Policy that allows only
the one inline script whose SHA-256 is in the header. That script sorts the
table by a clicked column (numbers as numbers, blanks last) and, on load,
marks the page rendered when the chart decoded and no script error fired;
the browser test reads that marker.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .summary import totals_sentence

RENDERED_MARKER = "· rendered"
INDEX = "index.html"
_CHART_RUNS = 40

_SCRIPT = """
(function () {
  var errors = 0;
  window.addEventListener('error', function () { errors += 1; document.body.setAttribute('data-js-errors', String(errors)); });
  var table = document.getElementById('runs');
  function key(td, num) {
    var v = td.getAttribute('data-v');
    if (v === null) { v = td.textContent; }
    if (!num) { return v.toLowerCase(); }
    var x = parseFloat(v);
    return isNaN(x) ? null : x;
  }
  if (table) {
    var heads = table.querySelectorAll('th');
    heads.forEach(function (th, col) {
      th.addEventListener('click', function () {
        var num = th.getAttribute('data-num') === '1';
        var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
        heads.forEach(function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], num), y = key(b.cells[col], num);
          if (x === y) { return 0; }
          if (x === null) { return 1; }
          if (y === null) { return -1; }
          return (x < y ? -1 : 1) * (dir === 'asc' ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
        document.body.setAttribute('data-sorted', String(col) + ':' + dir);
      });
    });
  }
  window.addEventListener('load', function () {
    var imgs = document.querySelectorAll('img.chart'), bad = 0;
    for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) { bad += 1; } }
    document.body.setAttribute('data-charts-broken', String(bad));
    if (bad === 0 && errors === 0) {
      document.body.setAttribute('data-index-ok', 'yes');
      document.title = document.title + ' MARKER';
    }
  });
})();
""".replace("MARKER", RENDERED_MARKER)

_CSS = """
body { margin:0; background:#f6f8fa; color:#1d2329;
  font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1400px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 30px 0 8px; }
#totals { font-size: 17px; background:#fff; border-left: 6px solid #6a1b9a; padding: 12px 16px; border-radius: 8px; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #e3e7eb; font-size: 13px; }
th, td { text-align: left; padding: 6px 9px; border-bottom: 1px solid #e3e7eb; vertical-align: top; }
th { background: #eef1f4; cursor: pointer; user-select: none; white-space: nowrap; }
th[data-dir=asc]::after { content: " ▲"; } th[data-dir=desc]::after { content: " ▼"; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; text-align: right; }
td.src { color: #5f6b76; word-break: break-all; max-width: 360px; }
a { color: #6a1b9a; }
.v-overfit { color: #ef6c00; font-weight: 600; } .v-diverged { color: #c62828; font-weight: 600; }
.v-healthy { color: #2e7d32; } .v-not-learning, .v-unstable, .v-issues { color: #8d6e00; font-weight: 600; }
figure { margin: 0; background:#fff; border: 1px solid #e3e7eb; border-radius: 8px; padding: 10px; }
figure img { display:block; max-width: 100%; height: auto; }
.muted { color: #5f6b76; }
"""


def e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def write_index(result: Any, out_dir: Path, *, roots: list[str]) -> Path:
    """Write ``out_dir/index.html`` for a :class:`~trainguard.scan.fleet.ScanResult`; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    p = out_dir / INDEX
    full = [str(Path(r).resolve()) if Path(r).exists() else r for r in roots]
    p.write_text(render_index(result.runs, result.skipped, result.totals(), roots=full), encoding="utf-8")
    return p


def render_index(runs: list[dict[str, Any]], skipped: list[dict[str, str]], tot: dict[str, Any], *,
                 roots: list[str]) -> str:
    from .. import __version__

    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    chart = _chart(runs)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    skipped_html = ""
    if skipped:
        rows = "".join(f"<tr><td class=\"src\">{e(s['source'])}</td><td>{e(s['reason'])}</td></tr>" for s in skipped)
        skipped_html = (f'<section id="skipped"><h2>Skipped ({len(skipped)})</h2>'
                        f"<table><thead><tr><th>source</th><th>why</th></tr></thead><tbody>{rows}</tbody></table></section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>trainguard scan: {tot['runs']} runs</title><style>{_CSS}</style></head>"
        f'<body data-runs="{tot["runs"]}"><main>'
        f"<h1>trainguard scan</h1><div class=\"muted\">{e(', '.join(roots))}</div>"
        f'<p id="totals">{e(totals_sentence(tot))}.</p>'
        f'<section id="chart"><h2>Waste per run</h2>{chart}</section>'
        f'<section id="table"><h2>Runs</h2><p class="muted">Click a column to sort.</p>{_table(runs, roots)}</section>'
        f"{skipped_html}"
        f"<footer class=\"muted\"><p>Generated by trainguard {e(__version__)} on {e(now)}. Self-contained: opens offline.</p></footer>"
        f"</main><script>{_SCRIPT}</script></body></html>\n"
    )


_COLUMNS = (("run", False), ("verdict", False), ("status", False), ("best step", True), ("best value", True),
            ("steps after best", True), ("% after best", True), ("hours after best", True),
            ("GPU-hours after best", True), ("best saved", False), ("top finding", False), ("source", False))


def _table(runs: list[dict[str, Any]], roots: list[str]) -> str:
    head = "".join(f'<th data-num="{int(num)}">{e(name)}</th>' for name, num in _COLUMNS)
    rows = []
    for r in runs:
        best = r.get("best") or {}
        w = r.get("waste") or {}
        top = r.get("top_finding") or {}
        name = e(r.get("run"))
        link = f'<a href="{e(r["report"])}">{name}</a>' if r.get("report") else name
        frac = w.get("fraction")
        saved = best.get("checkpoint_saved")
        src = str(r.get("source") or "")
        for root in roots:
            if src.startswith(root.rstrip("/") + "/"):
                src = src[len(root.rstrip("/")) + 1:]
                break
        cells = [
            f"<td>{link}</td>",
            f'<td class="v-{e(str(r.get("verdict")).replace(" ", "-"))}">{e(r.get("verdict"))}</td>',
            f"<td>{e(r.get('status'))}</td>",
            _num(best.get("step"), "{:,.0f}"),
            _num(best.get("value"), "{:.4g}"),
            _num(w.get("steps"), "{:,.0f}"),
            _num(None if frac is None else 100 * float(frac), "{:.0f}%"),
            _num(w.get("hours"), "{:,.2f}"),
            _num(w.get("gpu_hours"), "{:,.2f}"),
            f"<td>{'' if saved is None else ('yes' if saved else 'no')}</td>",
            f"<td title=\"{e(top.get('message'))}\">{e(top.get('code'))}</td>",
            f'<td class="src" title="{e(r.get("source"))}">{e(src)}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _num(x: Any, fmt: str) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
        return '<td class="num"></td>'
    return f'<td class="num" data-v="{x!r}">{e(fmt.format(x))}</td>'


def _chart(runs: list[dict[str, Any]]) -> str:
    """A horizontal bar per run that spent anything after its best point.

    GPU-hours when every such run has timing; otherwise the share of the run
    after its best point (comparable across runs of any length), each bar
    labelled with its GPU-hours where they are known, so no run drops out
    of the chart for lack of timestamps.
    """
    wasted = [r for r in runs if r.get("waste") and (r["waste"].get("steps") or 0) > 0]
    if not wasted:
        return '<p class="muted">No run spent anything after its best point.</p>'
    gpu = [r["waste"].get("gpu_hours") for r in wasted]
    if all(isinstance(g, (int, float)) for g in gpu):
        rows = [(str(r.get("run")), float(g), "") for r, g in zip(wasted, gpu, strict=True)]
        label = "GPU-hours after the best point"
    else:
        rows = [(str(r.get("run")), 100 * float(r["waste"].get("fraction") or 0),
                 "" if g is None else f"{g:,.2f} GPU-h") for r, g in zip(wasted, gpu, strict=True)]
        label = "% of the run after its best point (labels: GPU-hours, where the log has timing)"
    rows.sort(key=lambda t: -t[1])
    more = len(rows) - _CHART_RUNS
    rows = rows[:_CHART_RUNS]
    png = _bar_png(rows, label)
    cap = f"{label}; the {_CHART_RUNS} largest of {len(rows) + more}" if more > 0 else label
    return (f'<figure><img class="chart" alt="{e(label)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            f"<figcaption class=\"muted\">{e(cap)}</figcaption></figure>")


def _bar_png(rows: list[tuple[str, float, str]], label: str) -> bytes:
    from matplotlib.figure import Figure

    from ..report.plots import mpl_text, to_png

    fig = Figure(figsize=(10, 0.8 + 0.28 * len(rows)))
    ax = fig.add_subplot(1, 1, 1)
    names = [mpl_text(n if len(n) <= 48 else n[:45] + "...") for n, _, _ in rows][::-1]
    values = [v for _, v, _ in rows][::-1]
    ax.barh(range(len(rows)), values, color="#ef6c00")
    for i, (v, note) in enumerate(zip(values, [t for _, _, t in rows][::-1], strict=True)):
        if note:
            ax.text(v, i, " " + mpl_text(note), va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.set_xlabel(label)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return to_png(fig, dpi=90)


__all__ = ["INDEX", "RENDERED_MARKER", "render_index", "write_index"]
