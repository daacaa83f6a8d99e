"""Plotly figure builders: pure functions from estimates to ``go.Figure`` (no streamlit here).

Colours are fixed per memory component so every page and report reads the same way.
"""

from __future__ import annotations

import plotly.graph_objects as go

from .memory import MemoryEstimate
from .units import GiB

COMPONENT_COLOURS = {
    "weights": "#4C78A8",
    "KV cache": "#F58518",
    "activations": "#E45756",
    "runtime": "#72B7B2",
    "free": "#C7CDD6",
}


def memory_per_device(mem: MemoryEstimate, title: str = "Memory per device") -> go.Figure:
    """Stacked bar per device [GiB]: weights, KV cache, activations, runtime and free, against usable
    and total capacity (markers). A negative free share is drawn as 'over by' in red."""
    names = [d.name for d in mem.devices]
    parts = {
        "weights": [d.weights_bytes for d in mem.devices],
        "KV cache": [d.kv_bytes for d in mem.devices],
        "activations": [d.activation_bytes for d in mem.devices],
        "runtime": [d.overhead_bytes for d in mem.devices],
        "free": [max(0, d.free_bytes) for d in mem.devices],
    }
    fig = go.Figure()
    for label, values in parts.items():
        fig.add_bar(name=label, x=names, y=[v / GiB for v in values], marker_color=COMPONENT_COLOURS[label],
                    hovertemplate="%{x}<br>" + label + ": %{y:,.1f} GiB<extra></extra>")
    over = [min(0, d.free_bytes) / GiB for d in mem.devices]
    if any(over):
        fig.add_scatter(name="over capacity", x=names, y=[(d.usable_bytes - d.free_bytes) / GiB for d in mem.devices],
                        mode="markers", marker=dict(symbol="x", size=12, color="#D62728"),
                        hovertemplate="%{x}<br>needs %{y:,.1f} GiB<extra></extra>")
    fig.add_scatter(name="usable", x=names, y=[d.usable_bytes / GiB for d in mem.devices], mode="markers",
                    marker=dict(symbol="line-ew-open", size=40, color="#333", line=dict(width=3)),
                    hovertemplate="%{x}<br>usable by the engine: %{y:,.1f} GiB<extra></extra>")
    fig.add_scatter(name="capacity", x=names, y=[d.capacity_bytes / GiB for d in mem.devices], mode="markers",
                    marker=dict(symbol="line-ew-open", size=40, color="#888", line=dict(width=1, dash="dot")),
                    hovertemplate="%{x}<br>capacity: %{y:,.1f} GiB<extra></extra>")
    fig.update_layout(barmode="stack", title=title, yaxis_title="memory per device [GiB]",
                      xaxis_title=None, legend_orientation="h", legend_y=-0.2, margin=dict(t=50, b=10))
    return fig
