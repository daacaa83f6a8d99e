"""The fleet's chart: output throughput per GPU against the speed each user sees (the Pareto curve
NVIDIA's aiconfigurator draws), aggregated and disaggregated, one colour per GPU type."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from .charts import _empty, _style
from .figspec import FigureSpec
from .fleet import ParetoPoint

HARDWARE_COLOURS = ("#1C7ED6", "#F76707", "#0CA678", "#AE3EC9", "#E03131", "#5C940D")
MODE_DASH = {"aggregated": "dot", "disaggregated": "solid"}
X_TITLE, Y_TITLE = "speed each user sees [tok/s]", "output throughput per GPU [tok/s]"


def fleet_pareto_chart(points: Sequence[ParetoPoint], title: str = "Throughput per GPU against speed per user") -> go.Figure:
    """One line per (hardware, layout) through its operating points, batch growing from left (fast,
    few users) to right along the curve; disaggregated points charge each decode GPU its share of the
    prefill GPUs."""
    if not points:
        return _empty(title, "no layout fits this model on these GPUs", X_TITLE, Y_TITLE)
    fig = FigureSpec()
    hardware = sorted({p.hardware for p in points})
    for i, hw in enumerate(hardware):
        for mode, dash in MODE_DASH.items():
            pts = sorted((p for p in points if p.hardware == hw and p.mode == mode), key=lambda p: p.batch_per_gpu)
            if not pts:
                continue
            fig.add_scatter(
                x=[p.tokens_per_s_per_user for p in pts], y=[p.output_tokens_per_s_per_gpu for p in pts],
                mode="lines+markers", name=f"{hw}, {mode}",
                line=dict(color=HARDWARE_COLOURS[i % len(HARDWARE_COLOURS)], dash=dash),
                customdata=[p.batch_per_gpu for p in pts],
                hovertemplate="%{x:.1f} tok/s per user<br>%{y:,.0f} tok/s per GPU<br>%{customdata:.3g} sequences per GPU")
    fig.update_xaxes(title=X_TITLE, type="log")
    fig.update_yaxes(title=Y_TITLE, type="log")
    return _style(fig, title)


__all__ = ["fleet_pareto_chart"]
