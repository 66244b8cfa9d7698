"""Figures of designs: interval width against spend, per design, from simulated studies.

Drawn in the report's style (:func:`scalinglab.report.figures.new_figure`: no pyplot, an Agg
canvas of its own, shared labels); one panel per figure at the target.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from scalinglab.design.simulate import SimulationResult
from scalinglab.report.figures import LABELS, fmt, new_figure

_PANELS = (("loss", "L(target)"), ("N_opt", "N_opt(target)"), ("D_opt", "D_opt(target)"))
#: intervals holding the truth less often than this are drawn hollow (they are not to be trusted)
COVERAGE_FLOOR = 0.9


def width_vs_spend(result: SimulationResult) -> Figure:
    """Mean relative 95% interval width of L, N_opt and D_opt at the target against the FLOPs
    each design actually used, one line per design; hollow markers where coverage < 90%."""
    fig, axes = new_figure(13.5, 4.4, ncols=len(_PANELS))
    cmap = mpl.colormaps["tab10"]
    for ax, (key, title) in zip(axes, _PANELS, strict=True):
        for i, design in enumerate(result.designs):
            rows = [result.metrics(design, b) for b in result.budgets]
            spend = np.array([r["spend"] for r in rows], float)
            width = np.array([r[key]["ci_width"] for r in rows], float)
            cover = np.array([r[key]["coverage"] for r in rows], float)
            colour = cmap(i % 10)
            ax.plot(spend, width, "-", color=colour, linewidth=1.6, label=design)
            for s, w, c in zip(spend, width, cover, strict=True):
                ok = np.isfinite(c) and c >= COVERAGE_FLOOR
                ax.plot([s], [w], "o", markersize=6, color=colour,
                        markerfacecolor=colour if ok else "none")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"spend: {LABELS['C']}")
        ax.set_ylabel("mean 95% interval width / truth")
        ax.set_title(f"{title}, C = {fmt(result.target)}", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=max(1, len(labels)),
               frameon=False, fontsize=8)
    fig.suptitle(f"{result.truth.label}: {result.repeats} simulated studies per point, noise "
                 f"{result.noise.sigma:g} (hollow: coverage below {COVERAGE_FLOOR:.0%})",
                 fontsize=10)
    return fig
