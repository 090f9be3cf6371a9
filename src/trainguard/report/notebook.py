"""The notebook view of a Diagnosis: the HTML report's summary and loss plot, for ``_repr_html_``.

In Jupyter, ``trainguard.analyze(path)`` on the last line of a cell shows its
``_repr_html_``; without one a user sees a raw dataclass repr. This is the head
of the full report (verdict, key-number cards, the loss plot with the best
point), styled under one ``.tg-nb`` class so nothing leaks into the notebook's
own page. Everything from the log is escaped, as in the full report; the plot
is an inline PNG, so the cell stays self-contained when the notebook is shared.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..diagnosis import Diagnosis

_CSS = """
.tg-nb { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 980px; }
.tg-nb .verdict { font-size: 15px; margin: 6px 0 10px; }
.tg-nb .badge { display:inline-block; padding: 1px 7px; border-radius: 4px; font-size: 12px; font-weight: 600; color: #fff; }
.tg-nb .sev-info { background:#1f77b4; } .tg-nb .sev-warning { background:#d4a017; }
.tg-nb .sev-error { background:#d62728; } .tg-nb .sev-critical { background:#7b1113; }
.tg-nb .cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 10px; }
.tg-nb .card { border: 1px solid #ddd; border-radius: 8px; padding: 8px 12px; }
.tg-nb .card .k { color:#666; font-size: 11px; text-transform: uppercase; }
.tg-nb .card .v { font-size: 18px; font-weight: 600; } .tg-nb .card .d { font-size: 12px; color:#666; }
.tg-nb img { max-width: 100%; margin-top: 10px; }
"""


def notebook_html(diagnosis: Diagnosis) -> str:
    """HTML for a notebook cell: name, verdict, the key-number cards and the loss plot (matplotlib, lazily)."""
    from .html import _cards, _sev_status, e
    from .plots import loss_plot, to_png

    d = diagnosis
    parts = [f"<style>{_CSS}</style>", '<div class="tg-nb">',
             f"<div><b>{e(d.run.name or 'run')}</b> <span style=\"color:#666\">({e(d.run.format)})</span></div>",
             f'<div class="verdict">{_sev_status(d.status)} {e(d.verdict())}</div>', _cards(d)]
    plot = loss_plot(d)
    if plot is not None:
        png = base64.b64encode(to_png(plot.figure)).decode("ascii")
        parts.append(f'<img alt="{e(plot.caption or plot.title)}" src="data:image/png;base64,{png}">')
    parts.append("</div>")
    return "".join(parts)


def repr_html(self: Diagnosis) -> str:
    """``Diagnosis._repr_html_``: assign it on the class (``Diagnosis._repr_html_ = repr_html``)."""
    return notebook_html(self)


__all__ = ["notebook_html", "repr_html"]
