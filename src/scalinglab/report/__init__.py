"""Figures, the self-contained HTML report and the local dashboard.

``build_report`` and ``save_figures`` are importable from here; they are loaded on first use so
that importing the CLI (which imports ``scalinglab.report.commands``) does not pull in matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report", "save_figures"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from scalinglab.report import html

        return getattr(html, name)
    raise AttributeError(f"module 'scalinglab.report' has no attribute {name!r}")
