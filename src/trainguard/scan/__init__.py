"""``trainguard scan``: every run a team has, in folders and trackers, analyzed in parallel into a fleet index.

``discover`` finds the runs, ``fleet`` analyzes them (cache first, then in
worker processes), ``summary`` cuts each diagnosis to its index line and
totals, ``index`` writes the HTML page, ``cache`` keeps results between scans.
"""

from __future__ import annotations

from .fleet import ScanResult, scan

__all__ = ["ScanResult", "scan"]
