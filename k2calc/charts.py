"""Plotly figure builders: pure functions from estimates and sweep tables to ``go.Figure`` (no streamlit).

Conventions, so every page and the report read the same way:

* colours are fixed per memory component (:data:`COMPONENT_COLOURS`), per model
  (:data:`MODEL_COLOURS`, :func:`model_colour`) and per hardware class (:data:`CLASS_COLOURS`);
* every numeric axis has its unit in brackets, e.g. ``decode speed per user [tok/s]``; bytes on a
  device in GiB, weights in GB (k2calc.units);
* backgrounds are transparent and grid lines semi-transparent grey, so a figure reads on Streamlit's
  light and dark themes (which restyle fonts) and on the white page of the HTML report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from .figspec import FigureSpec
from .memory import MemoryEstimate
from .units import GiB, format_usd

if TYPE_CHECKING:  # pragma: no cover
    from .estimate import Estimate
    from .validate import Row

COMPONENT_COLOURS = {
    "weights": "#4C78A8",
    "KV cache": "#F58518",
    "activations": "#E45756",
    "runtime": "#72B7B2",
    "free": "#C7CDD6",
}

# One strong colour per catalog model; the three the buyers compare most are far apart on the wheel.
MODEL_COLOURS = {
    "kimi-k2-thinking": "#7048E8",   # violet
    "kimi-k2-instruct": "#F76707",   # orange
    "minimax-m2": "#0CA678",         # green
    "deepseek-v3": "#1C7ED6",        # blue
    "glm-4.6": "#D6336C",            # pink
    "qwen3-235b-a22b": "#C92A2A",    # red
    "gpt-oss-120b": "#F59F00",       # amber
    "gpt-oss-20b": "#94D82D",        # lime
    "llama-3.1-70b": "#1098AD",      # cyan
    "llama-3.1-8b": "#74C0FC",       # light blue
}
# For imported models: colours not used above, picked by a stable hash of the id.
_EXTRA_COLOURS = ("#845EF7", "#FF922B", "#20C997", "#339AF0", "#F06595", "#FCC419", "#66D9E8", "#A9E34B")

CLASS_COLOURS = {
    "GPU server": "#1C7ED6",
    "unified memory": "#0CA678",
    "hybrid CPU+GPU": "#F76707",
    "CPU only": "#AE3EC9",
}

SPEED_COLOURS = {"per user": "#1C7ED6", "total": "#F76707"}
KIND_COLOURS = {"decode": "#1C7ED6", "prefill/ttft": "#F76707"}
OPTION_COLOURS = {"buy": "#1C7ED6", "rent": "#F76707", "API": "#0CA678"}
GRID = "rgba(128, 128, 128, 0.25)"
NEUTRAL = "#8C8C8C"  # reference lines and markers: visible on white and on dark backgrounds


def model_colour(model_id: str) -> str:
    """The colour of a model on every chart (catalog models fixed; others by a stable hash)."""
    if model_id in MODEL_COLOURS:
        return MODEL_COLOURS[model_id]
    return _EXTRA_COLOURS[sum(map(ord, model_id)) % len(_EXTRA_COLOURS)]


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _style(fig: FigureSpec, title: str | None = None, **layout) -> go.Figure:
    """Theme-neutral look: transparent backgrounds, grey grid, legend below the plot; the built figure
    (k2calc.figspec: charts collect plain dicts and plotly validates them once)."""
    settings = dict(
        title=title, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left"),
        margin=dict(t=60, b=10, l=10, r=10), hoverlabel=dict(namelength=-1))
    fig.update_layout(**{**settings, **layout})
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID)
    return fig.build()


def _empty(title: str, message: str, x_title: str, y_title: str) -> go.Figure:
    """A figure that says why there is nothing to draw (axes still titled with units)."""
    fig = FigureSpec()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(title=x_title, showticklabels=False)
    fig.update_yaxes(title=y_title, showticklabels=False)
    return _style(fig, title)


def log_ticks(values: Sequence[float]) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a log axis over `values`: 1, 2, 5, 10, 20, 50 ... (1, 10, 100 ...
    past four decades), whole numbers with thousands separators (decimals only below 1), from one step
    below the smallest value to one step above the largest, so every plotted point lies between ticks.

    >>> log_ticks([3, 70])
    ([2, 5, 10, 20, 50, 100], ['2', '5', '10', '20', '50', '100'])
    >>> log_ticks([0.3, 1500])[1]
    ['0.1', '1', '10', '100', '1,000', '10,000']
    """
    positive = [float(v) for v in values if _finite(v) and float(v) > 0]
    if not positive:
        return [], []
    lo, hi = min(positive), max(positive)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mantissas = (1, 2, 5) if last - first <= 4 else (1,)
    steps = [m * 10.0 ** k for k in range(first, last + 1) for m in mantissas]
    below = [t for t in steps if t <= lo * (1 + 1e-9)]
    above = [t for t in steps if t >= hi * (1 - 1e-9)]
    ticks = [t for t in steps if (below[-1] if below else steps[0]) <= t <= (above[0] if above else steps[-1])]
    ticks = [int(round(t)) if t >= 1 else round(t, 12) for t in ticks]
    return ticks, [f"{t:,}" if t >= 1 else f"{t:g}" for t in ticks]


def _log_axis(values: Sequence[float]) -> dict:
    """update_xaxes / update_yaxes settings for a log axis with :func:`log_ticks`."""
    vals, text = log_ticks(values)
    return dict(type="log", tickvals=vals, ticktext=text) if vals else dict(type="log")


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------------


def memory_per_device(mem: MemoryEstimate, title: str = "Memory per device") -> go.Figure:
    """Stacked bar per device [GiB]: weights, KV cache, activations, runtime and free, against usable
    and total capacity (markers). A device that is over its usable memory gets a red cross at what it
    needs. GPUs and a host's system RAM more than ten times larger get a panel each (their own axis), so
    a 24 GiB GPU is not a flat line beside 2 TiB of RAM."""
    panels = memory_panels(mem.devices)
    fig = FigureSpec(rows=1, cols=2, column_widths=(0.7, 0.3), horizontal_spacing=0.12) if len(panels) > 1 \
        else FigureSpec()
    for col, devices in enumerate(panels, start=1):
        _memory_bars(fig, devices, dict(row=1, col=col) if len(panels) > 1 else {}, legend=col == 1)
        fig.update_yaxes(title="memory per device [GiB]" if col == 1 else "system RAM [GiB]",
                         **(dict(row=1, col=col) if len(panels) > 1 else {}))
    fig.update_layout(barmode="stack", xaxis_title=None)
    fig.update_xaxes(type="category")
    return _style(fig, title, legend_traceorder="normal")


def memory_panels(devices: list) -> list[list]:
    """[devices] or [GPUs and systems, system RAM] when the RAM is over ten times the largest device."""
    ram = [d for d in devices if d.kind == "ram"]
    rest = [d for d in devices if d.kind != "ram"]
    if ram and rest and max(d.capacity_bytes for d in ram) > 10 * max(d.capacity_bytes for d in rest):
        return [rest, ram]
    return [list(devices)]


def _memory_bars(fig: FigureSpec, devices: list, cell: dict, legend: bool) -> None:
    """One panel's stacked bars and capacity markers (the legend drawn once, from the first panel)."""
    names = _device_labels([d.name for d in devices])
    parts = {
        "weights": [d.weights_bytes for d in devices],
        "KV cache": [d.kv_bytes for d in devices],
        "activations": [d.activation_bytes for d in devices],
        "runtime": [d.overhead_bytes for d in devices],
        "free": [max(0, d.free_bytes) for d in devices],
    }
    for label, values in parts.items():
        fig.add_bar(name=label, x=names, y=[v / GiB for v in values], marker_color=COMPONENT_COLOURS[label],
                    legendgroup=label, showlegend=legend,
                    hovertemplate="%{x}<br>" + label + ": %{y:,.1f} GiB<extra></extra>", **cell)
    if any(d.free_bytes < 0 for d in devices):
        fig.add_scatter(name="over capacity", x=names, y=[(d.usable_bytes - d.free_bytes) / GiB for d in devices],
                        mode="markers", marker=dict(symbol="x", size=12, color="#D62728"), legendgroup="over",
                        hovertemplate="%{x}<br>needs %{y:,.1f} GiB<extra></extra>", **cell)
    fig.add_scatter(name="usable by the engine", x=names, y=[d.usable_bytes / GiB for d in devices],
                    mode="markers", marker=dict(symbol="line-ew-open", size=40, color=NEUTRAL, line=dict(width=3)),
                    legendgroup="usable", showlegend=legend,
                    hovertemplate="%{x}<br>usable by the engine: %{y:,.1f} GiB<extra></extra>", **cell)
    fig.add_scatter(name="installed", x=names, y=[d.capacity_bytes / GiB for d in devices], mode="markers",
                    marker=dict(symbol="line-ew-open", size=40, color=NEUTRAL, line=dict(width=1)),
                    legendgroup="installed", showlegend=legend,
                    hovertemplate="%{x}<br>installed: %{y:,.1f} GiB<extra></extra>", **cell)


def _device_labels(names: list[str]) -> list[str]:
    """'GPU 0 (NVIDIA H200 SXM 141GB)' -> 'GPU 0' when every GPU/system has the same device in brackets
    (the hover and the title name it); other labels (system RAM) stay whole."""
    matches = [re.fullmatch(r"((?:GPU|System) \d+) \((.+)\)", n) for n in names]
    if len({m.group(2) for m in matches if m}) != 1:
        return names
    return [m.group(1) if m else n for m, n in zip(matches, names)]


# ------------------------------------------------------------------------------------------------
# Speed and concurrency
# ------------------------------------------------------------------------------------------------

_PER_USER_METRICS = {"decode_tokens_per_s_per_user"}
_TOTAL_METRICS = {"decode_tokens_per_s_total", "output_tokens_per_s_total"}


def _shade_unfit(fig: FigureSpec, curve: pd.DataFrame, x: list) -> None:
    """Grey where the KV cache of that many sequences no longer fits (both panels)."""
    if not ("fits" in curve and len(curve) and not curve["fits"].all()):
        return
    fits = curve["fits"].astype(bool)
    first_unfit = curve.loc[~fits, "concurrency"].min()
    last_fit = curve.loc[fits & (curve["concurrency"] < first_unfit), "concurrency"].max()
    # half-way (on the log axis) between the last count that fits and the first that does not
    x0 = math.sqrt(first_unfit * last_fit) if pd.notna(last_fit) else first_unfit
    fig.add_vrect(x0=x0, x1=max(x), fillcolor=NEUTRAL, opacity=0.15, line_width=0, row="all", col=1)
    fig.add_annotation(x=math.log10(max(x)), y=1, xref="x", yref="paper", text="KV cache does not fit",
                       showarrow=False, xanchor="right", yanchor="bottom")


def _published_markers(fig: FigureSpec, points: pd.DataFrame | None) -> None:
    """Published measurements as markers: filled diamond on the same hardware, open circle for the same
    engine family and platform; per-user metrics in the top panel, totals below."""
    if points is None or not len(points):
        return
    records = points.to_dict("records")  # a few dozen rows: plain Python filters them faster than pandas
    for same, symbol, words in ((True, "diamond", "same hardware"), (False, "circle-open", "same engine/platform")):
        for key, metrics, row in (("per user", _PER_USER_METRICS, 1), ("total", _TOTAL_METRICS, 2)):
            sel = [r for r in records if bool(r["same_hardware"]) == same and r["metric"] in metrics]
            if not sel:
                continue
            fig.add_scatter(
                x=[r["concurrency"] for r in sel], y=[r["measured"] for r in sel], mode="markers", row=row, col=1,
                name=f"published, {words} ({key})",
                marker=dict(symbol=symbol, size=11, color=SPEED_COLOURS[key],
                            line=dict(width=2, color=SPEED_COLOURS[key])),
                customdata=[(r["id"], r["scenario"], r["metric"], r["predicted"], r["source"]) for r in sel],
                hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{customdata[2]}: %{y:,.1f} tok/s "
                               "measured, %{customdata[3]:,.1f} predicted for that run<br>%{customdata[4]}"
                               "<extra></extra>"))


def speed_vs_concurrency(curve: pd.DataFrame, points: pd.DataFrame | None = None,
                         title: str = "Decode speed against concurrent users",
                         baseline: pd.DataFrame | None = None, concurrency: int | None = None) -> go.Figure:
    """Two panels over concurrent users (log axis): decode speed one user sees (top) and all users
    together (bottom) [tok/s; log axis when a panel spans more than a factor 20], each with its
    uncertainty band (shaded), its roofline (dashed:
    the same work at 100% of the hardware) and published measurements of the same model as markers
    (filled diamond: same hardware; open circle: same engine family and platform). Where the KV cache
    of that many sequences no longer fits, the area is shaded grey. ``baseline``: a pinned scenario's
    curve (same columns), drawn as a faint dotted trace in each panel ("baseline ...")."""
    fig = FigureSpec(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.07)
    x = list(curve["concurrency"])
    # every point gets a tick: the curve's user counts and published runs beyond them
    ticks = sorted(set(x) | ({int(c) for c in points["concurrency"] if _finite(c) and not min(x) <= c <= max(x)}
                             if points is not None and len(points) and x else set()))
    if baseline is not None and len(baseline):
        ticks = sorted(set(ticks) | set(baseline["concurrency"]))
        for key, row, col in (("per user", 1, "per_user_tok_s"), ("total", 2, "total_tok_s")):
            fig.add_scatter(x=list(baseline["concurrency"]), y=list(baseline[col]), mode="lines",
                            name=f"baseline {key}", legendgroup="baseline", row=row, col=1,
                            line=dict(color=_rgba(SPEED_COLOURS[key], 0.45), width=2, dash="dot"),
                            hovertemplate="baseline, %{x} users: %{y:,.1f} tok/s " + key + "<extra></extra>")
    panels = (("per user", 1, "per_user_tok_s", "per_user_low_tok_s", "per_user_high_tok_s", "roofline_per_user_tok_s"),
              ("total", 2, "total_tok_s", "total_low_tok_s", "total_high_tok_s", "roofline_total_tok_s"))
    for key, row, col, low, high, roof in panels:
        colour = SPEED_COLOURS[key]
        fig.add_scatter(x=x, y=list(curve[high]), mode="lines", line=dict(width=0), showlegend=False,
                        hoverinfo="skip", legendgroup=key, row=row, col=1)
        fig.add_scatter(x=x, y=list(curve[low]), mode="lines", line=dict(width=0), fill="tonexty",
                        fillcolor=_rgba(colour, 0.2), name=f"{key}: uncertainty band", legendgroup=key,
                        customdata=list(zip(curve[low], curve[high])), row=row, col=1,
                        hovertemplate=f"{key} band: %{{customdata[0]:,.1f}}-%{{customdata[1]:,.1f}} tok/s"
                                      "<extra></extra>")
        fig.add_scatter(x=x, y=list(curve[col]), mode="lines+markers", name=f"decode {key}",
                        line=dict(color=colour, width=3), legendgroup=key, row=row, col=1,
                        hovertemplate="%{x} users: %{y:,.1f} tok/s " + key + "<extra></extra>")
        fig.add_scatter(x=x, y=list(curve[roof]), mode="lines", name=f"{key}: roofline",
                        line=dict(color=colour, width=1.5, dash="dash"), legendgroup=key, row=row, col=1,
                        hovertemplate="roofline " + key + ": %{y:,.1f} tok/s<extra></extra>")
    _shade_unfit(fig, curve, x)
    _published_markers(fig, points)
    if concurrency:
        fig.add_vline(x=concurrency, line=dict(color=NEUTRAL, dash="dot"), row="all", col=1)
        fig.add_annotation(x=math.log10(concurrency), xref="x", y=1, yref="paper", text=f"your {concurrency:,} user(s)",
                           showarrow=False, xanchor="left", yanchor="bottom")
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{v:,}" for v in ticks])
    fig.update_xaxes(title="concurrent users [count]", row=2, col=1)
    for (key, row, col, low, high, roof) in panels:
        values = [v for c in (col, low, high, roof) for v in curve[c] if _finite(v) and v > 0]
        if points is not None and len(points):  # the published points of this panel lie between the ticks too
            metrics = _PER_USER_METRICS if row == 1 else _TOTAL_METRICS
            values += [v for v in points.loc[points["metric"].isin(metrics), "measured"] if _finite(v) and v > 0]
        log = bool(values) and max(values) / min(values) > 20
        axis = _log_axis(values) if log else dict(type="linear", rangemode="tozero")
        fig.update_yaxes(**axis, title=f"{'per user' if row == 1 else 'all users'} [tok/s]", row=row, col=1)
    return _style(fig, title, height=620)


def concurrency_vs_context(curve: pd.DataFrame, title: str = "Concurrent sequences that fit against context",
                           context: int | None = None, concurrency: int | None = None) -> go.Figure:
    """Largest number of sequences that fit [count] against their length [tokens], both on log axes
    (linear y when some context fits no sequence). Optional reference lines at the scenario's context
    and concurrency."""
    x, y = list(curve["context_tokens"]), list(curve["max_concurrency"])
    fig = FigureSpec()
    cap = list(curve["kv_capacity_tokens"]) if "kv_capacity_tokens" in curve else [None] * len(x)
    fig.add_scatter(x=x, y=y, mode="lines+markers", name="max concurrent sequences",
                    line=dict(color=CLASS_COLOURS["GPU server"], width=3), customdata=cap,
                    hovertemplate="%{x:,} tokens: %{y:,} sequences<br>KV capacity of one replica: "
                                  "%{customdata:,} tokens<extra></extra>")
    log_y = bool(y) and min(y) > 0
    if concurrency:
        fig.add_hline(y=concurrency, line=dict(color=NEUTRAL, dash="dash"))
        fig.add_annotation(x=1, xref="paper", y=math.log10(concurrency) if log_y else concurrency, yref="y",
                           text=f"your {concurrency:,} user(s)", showarrow=False, xanchor="right", yanchor="bottom")
    if context:
        fig.add_vline(x=context, line=dict(color=NEUTRAL, dash="dot"))
        fig.add_annotation(x=math.log10(context), xref="x", y=1, yref="paper", text=f"your context: {context:,}",
                           showarrow=False, xanchor="left", yanchor="bottom")
    fig.update_xaxes(**_log_axis(x), title="context per sequence [tokens]")
    fig.update_yaxes(**(_log_axis(y) if log_y else dict(type="linear")), title="max concurrent sequences [count]")
    return _style(fig, title)


# ------------------------------------------------------------------------------------------------
# Money
# ------------------------------------------------------------------------------------------------


def cost_breakdown(e: "Estimate", title: str = "Cost breakdown") -> go.Figure:
    """Top: the annual cost of owning [USD/year] stacked by part (capital amortised over the years,
    energy, hosting, maintenance), next to renting the same GPUs and the API for the same tokens.
    Bottom: the purchase (capex) by item [USD]."""
    c = e.cost
    if c is None:
        return _empty(title, "no cost for this scenario", "cost [USD/year]", "")
    fig = FigureSpec(rows=2, cols=1, vertical_spacing=0.25, row_heights=[0.6, 0.4])
    own = "buy: own the hardware"
    parts = {"capital (amortised)": c.annual_capital_usd, "energy": c.annual_energy_usd,
             "hosting": c.annual_hosting_usd, "maintenance": c.annual_maintenance_usd}
    palette = ("#1C7ED6", "#F59F00", "#E64980", "#AE3EC9")
    for (label, value), colour in zip(parts.items(), palette):
        fig.add_bar(y=[own], x=[value], name=label, orientation="h", marker_color=colour, legendgroup="annual",
                    hovertemplate=label + ": $%{x:,.0f} per year<extra></extra>", row=1, col=1)
    tokens_m = c.output_tokens_per_year / 1e6
    if c.cloud_usd_per_million_output_tokens is not None and _finite(c.cloud_usd_per_million_output_tokens):
        fig.add_bar(y=["rent the same GPUs"], x=[c.cloud_usd_per_million_output_tokens * tokens_m],
                    name="cloud rental", orientation="h", marker_color=OPTION_COLOURS["rent"],
                    hovertemplate="renting for the same tokens: $%{x:,.0f} per year<extra></extra>", row=1, col=1)
    if c.api_usd_per_million_output_tokens is not None:
        fig.add_bar(y=[f"API ({c.api_provider})"], x=[c.api_usd_per_million_output_tokens * tokens_m],
                    name="API bill", orientation="h", marker_color=OPTION_COLOURS["API"],
                    hovertemplate="API for the same tokens: $%{x:,.0f} per year<extra></extra>", row=1, col=1)
    capex_palette = ("#4C78A8", "#72B7B2", "#E45756", "#F58518", "#54A24B", "#B279A2", "#9D755D")
    for i, (item, value) in enumerate(c.capex_breakdown_usd.items()):
        fig.add_bar(y=["capex"], x=[value], name=item, orientation="h", legendgroup="capex",
                    marker_color=capex_palette[i % len(capex_palette)],
                    hovertemplate=item + ": $%{x:,.0f}<extra></extra>", row=2, col=1)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title=f"cost of {c.output_tokens_per_year / 1e9:,.2f} billion output tokens a year "
                           "[USD/year]", row=1, col=1)
    fig.update_xaxes(title="purchase [USD]", row=2, col=1)
    return _style(fig, title, height=480, legend_traceorder="normal")


def cumulative_cost_chart(df: pd.DataFrame, title: str = "Cumulative cost: buy vs rent vs API") -> go.Figure:
    """Money spent by each month [USD] for buying (capex + running costs), renting the GPUs and the
    API, with the break-even month marked where buying becomes cheaper than the API (and than renting)."""
    if "buy_usd" not in df:
        return _empty(title, "no cost for this scenario", "months since purchase [months]", "cumulative cost [USD]")
    fig = FigureSpec()
    labels = {"buy_usd": ("buy", "buy (capex + running costs)"), "rent_usd": ("rent", "rent the GPUs by the hour"),
              "api_usd": ("API", "API for the same tokens")}
    for col, (key, name) in labels.items():
        if col in df:
            fig.add_scatter(x=list(df["month"]), y=list(df[col]), mode="lines", name=name,
                            line=dict(color=OPTION_COLOURS[key], width=3),
                            hovertemplate="month %{x}: $%{y:,.0f} " + key + "<extra></extra>")
    notes = []
    for col, key in (("api_usd", "API"), ("rent_usd", "renting")):
        if col not in df:
            continue
        month = _crossing(list(df["month"]), list(df["buy_usd"]), list(df[col]))
        if month is None:
            notes.append(f"buying does not catch up with {key} within {int(df['month'].max())} months")
            continue
        buy0, buy1, last = df["buy_usd"].iloc[0], df["buy_usd"].iloc[-1], max(1, df["month"].iloc[-1])
        value = buy0 + (buy1 - buy0) * month / last  # the buy line is straight
        fig.add_vline(x=month, line=dict(color=OPTION_COLOURS["API" if key == "API" else "rent"], dash="dot"))
        fig.add_annotation(x=month, y=value, text=f"break-even vs {key}: {month:,.1f} months", showarrow=True,
                           arrowhead=2, ax=40, ay=-40)
    if notes:
        fig.add_annotation(text="; ".join(notes), showarrow=False, xref="paper", yref="paper", x=0, y=1.06,
                           xanchor="left")
    fig.update_xaxes(title="months since purchase [months]", rangemode="tozero")
    fig.update_yaxes(title="cumulative cost [USD]", rangemode="tozero")
    return _style(fig, title)


def _crossing(months: Sequence[float], buy: Sequence[float], other: Sequence[float]) -> float | None:
    """First month where the buy line meets or drops below the other line (linear between points)."""
    for i in range(1, len(months)):
        d0, d1 = buy[i - 1] - other[i - 1], buy[i] - other[i]
        if d0 > 0 >= d1:
            return months[i - 1] + (months[i] - months[i - 1]) * d0 / (d0 - d1)
    return None


def tornado_chart(df: pd.DataFrame, title: str = "What moves the cost most") -> go.Figure:
    """Horizontal bars from the scenario's $ per 1M output tokens [USD] to its value with each
    assumption at its low and at its high setting; the largest swing on top."""
    if not len(df):
        return _empty(title, "no sensitivity rows", "$ per 1M output tokens [USD]", "")
    rows = df.iloc[::-1]  # plotly draws the first category at the bottom
    base = next((b for b in df["base_usd_per_mtok"] if _finite(b)), None)
    names = list(rows["assumption"])
    fig = FigureSpec()
    for side, col, label_col, colour in (("low setting", "usd_per_mtok_low", "low_label", "#0CA678"),
                                         ("high setting", "usd_per_mtok_high", "high_label", "#F76707")):
        values = [v if _finite(v) else None for v in rows[col]]
        ref = base if base is not None else 0.0
        fig_x = [None if v is None else v - ref for v in values]
        fig.add_bar(y=names, x=fig_x, base=ref, orientation="h", name=side, marker_color=colour,
                    text=list(rows[label_col]), textposition="auto",
                    customdata=list(zip(rows[label_col], [v if v is not None else float("nan") for v in values])),
                    hovertemplate="%{y} at %{customdata[0]}: $%{customdata[1]:,.2f} per 1M output tokens"
                                  "<extra></extra>")
    if base is not None:
        fig.add_vline(x=base, line=dict(color=NEUTRAL, width=2))
        fig.add_annotation(x=base, xref="x", y=1, yref="y domain", text=f"your scenario: {format_usd(base, 2)}",
                           showarrow=False, xanchor="center", yanchor="bottom")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="$ per 1M output tokens [USD]")
    fig.update_yaxes(title=None, type="category")
    return _style(fig, title)


# ------------------------------------------------------------------------------------------------
# Comparisons
# ------------------------------------------------------------------------------------------------


def compare_models_chart(df: pd.DataFrame, title: str = "Models side by side") -> go.Figure:
    """Three panels, one bar per model in its colour: weights [GB], decode speed per user [tok/s] and
    own cost per 1M output tokens [USD] (API price as a marker). A model that does not fit the chosen
    count is hatched, its speed and cost taken at the devices it needs."""
    panels = (("weights_gb", "weights [GB]", "%{y:,.1f} GB"),
              ("per_user_tok_s", "decode per user [tok/s]", "%{y:,.1f} tok/s"),
              ("usd_per_mtok_output", "$ per 1M output tokens [USD]", "$%{y:,.2f}"))
    fig = FigureSpec(rows=1, cols=3, subplot_titles=[p[1] for p in panels], horizontal_spacing=0.08)
    for _, r in df.iterrows():
        colour = model_colour(str(r["model_id"]))
        fits = bool(r["fits"])
        needed = r.get("devices_needed")
        quant = r["quant"] if isinstance(r["quant"], str) else "?"
        note = "fits" if fits else (f"needs {needed} devices" if pd.notna(needed) else "does not fit any count")
        for i, (col, _, fmt) in enumerate(panels, start=1):
            value = r[col]
            if not _finite(value):
                value = None
            text = "" if fits else (f"at {needed}x" if col != "weights_gb" and pd.notna(needed) else "does not fit")
            fig.add_bar(x=[r["model"]], y=[value], name=str(r["model"]), legendgroup=str(r["model_id"]),
                        showlegend=False, marker=dict(color=colour, pattern_shape="" if fits else "/"),
                        text=[text], textposition="outside",
                        hovertemplate=f"<b>{r['model']}</b> ({quant})<br>{fmt}<br>{note}<extra></extra>",
                        row=1, col=i)
    if "api_usd_per_mtok_output" in df and df["api_usd_per_mtok_output"].notna().any():
        api = df[df["api_usd_per_mtok_output"].notna()]
        fig.add_scatter(x=list(api["model"]), y=list(api["api_usd_per_mtok_output"]), mode="markers",
                        name="API price, same workload", marker=dict(symbol="line-ew-open", size=36, color=NEUTRAL,
                                                                      line=dict(width=3)),
                        hovertemplate="API: $%{y:,.2f} per 1M output tokens<extra></extra>", row=1, col=3)
    for i, (_, axis_title, _) in enumerate(panels, start=1):
        fig.update_yaxes(title=axis_title, rangemode="tozero", row=1, col=i)
        fig.update_xaxes(type="category", row=1, col=i)
    if len(df) and not df["fits"].astype(bool).all():
        title += ("<br><sup>hatched: does not fit the chosen count; its speed and cost are for the devices "
                  "it needs</sup>")
    return _style(fig, title, barmode="group", height=440, margin=dict(t=100, b=10, l=10, r=10))


# Point labels alternate above and below along the speed axis, so neighbours (8x B100 beside 8x H200) do
# not print over each other.
_LABEL_POSITIONS = ("top center", "bottom center")


def hardware_scatter(df: pd.DataFrame, title: str = "Cost against speed, per configuration") -> go.Figure:
    """Own cost per 1M output tokens [USD] (log) against decode speed per user [tok/s] for every
    configuration that fits, coloured by hardware class, with the Pareto front joined (no other
    option is both cheaper per token and faster per user)."""
    ok = df[df["fits"].astype(bool) & df["usd_per_mtok_output"].map(_finite) & df["per_user_tok_s"].map(_finite)]
    fig = FigureSpec()
    for klass, colour in CLASS_COLOURS.items():
        sel = ok[ok["klass"] == klass].sort_values("per_user_tok_s")
        if not len(sel):
            continue
        custom = list(zip(sel["label"], sel["capex_usd"].map(lambda v: v if _finite(v) else float("nan")),
                          sel["power_w"].map(lambda v: v if _finite(v) else float("nan")), sel["total_tok_s"]))
        fig.add_scatter(x=list(sel["per_user_tok_s"]), y=list(sel["usd_per_mtok_output"]), mode="markers+text",
                        name=klass, marker=dict(color=colour, size=13, line=dict(width=1, color="white")),
                        text=list(sel["label"]), textfont=dict(size=10), cliponaxis=False,
                        textposition=[_LABEL_POSITIONS[i % len(_LABEL_POSITIONS)] for i in range(len(sel))],
                        customdata=custom,
                        hovertemplate=("<b>%{customdata[0]}</b><br>%{x:,.1f} tok/s per user, "
                                       "%{customdata[3]:,.0f} total"
                                       "<br>$%{y:,.2f} per 1M output tokens<br>capex $%{customdata[1]:,.0f}, "
                                       "%{customdata[2]:,.0f} W<extra></extra>"))
    front = ok[ok["pareto"].astype(bool)].sort_values("per_user_tok_s")
    if len(front):
        fig.add_scatter(x=list(front["per_user_tok_s"]), y=list(front["usd_per_mtok_output"]), mode="lines",
                        name="Pareto front", line=dict(color=NEUTRAL, dash="dash", width=2), hoverinfo="skip")
    missing = len(df) - len(ok)
    if missing:
        fig.add_annotation(text=f"not shown: {missing} configuration(s) that do not fit or have no price",
                           showarrow=False, xref="paper", yref="paper", x=0, y=1.06, xanchor="left")
    fig.update_xaxes(**_log_axis(list(ok["per_user_tok_s"])), title="decode speed per user [tok/s]")
    fig.update_yaxes(**_log_axis(list(ok["usd_per_mtok_output"])), title="own cost per 1M output tokens [USD]")
    return _style(fig, title)


# ------------------------------------------------------------------------------------------------
# Accuracy
# ------------------------------------------------------------------------------------------------


def measured_vs_predicted(rows: Sequence["Row"] | None = None,
                          title: str = "Measured against predicted, every published run") -> go.Figure:
    """Log-log scatter of each published measurement against the model's prediction for its scenario
    (speeds in tok/s, times to first token in s), coloured by kind (decode, prefill/TTFT), with y = x
    and the 1.5x band. Hover: measurement id, scenario, metric, ratio."""
    from .report_content import scenario_words as describe
    from .validate import rows as all_rows

    rows = list(all_rows() if rows is None else rows)
    fig = FigureSpec()
    for kind, colour in KIND_COLOURS.items():
        sel = [r for r in rows if r.kind == kind]
        if not sel:
            continue
        fig.add_scatter(
            x=[r.predicted for r in sel], y=[r.measurement.value for r in sel], mode="markers", name=kind,
            marker=dict(color=colour, size=9, opacity=0.85, line=dict(width=1, color="white")),
            customdata=[(r.measurement.id, describe(r.scenario), r.measurement.metric, r.measurement.unit,
                         r.ratio, r.klass) for r in sel],
            hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{customdata[2]} [%{customdata[3]}]: "
                           "measured %{y:,.3g}, predicted %{x:,.3g}<br>ratio %{customdata[4]:.2f} "
                           "(%{customdata[5]})<extra></extra>"))
    values = [v for r in rows for v in (r.predicted, r.measurement.value) if v and v > 0]
    lo = hi = None
    if values:
        lo, hi = min(values) / 2, max(values) * 2
        for factor, name, dash in ((1.0, "y = x", "solid"), (1.5, "1.5x band", "dash"), (1 / 1.5, None, "dash")):
            fig.add_scatter(x=[lo, hi], y=[lo * factor, hi * factor], mode="lines", name=name or "1.5x band",
                            showlegend=name is not None, legendgroup=name or "1.5x band", hoverinfo="skip",
                            line=dict(color=NEUTRAL, dash=dash, width=1.5 if factor == 1 else 1))
    span = [math.log10(lo), math.log10(hi)] if lo else None
    axis = _log_axis([lo, hi]) if lo else dict(type="log")
    fig.update_xaxes(**axis, title="predicted [tok/s; TTFT in s]", range=span)
    fig.update_yaxes(**axis, title="measured [tok/s; TTFT in s]", range=span)
    return _style(fig, title)


__all__ = ["COMPONENT_COLOURS", "MODEL_COLOURS", "CLASS_COLOURS", "model_colour", "memory_per_device",
           "speed_vs_concurrency", "concurrency_vs_context", "cost_breakdown", "cumulative_cost_chart",
           "tornado_chart", "compare_models_chart", "hardware_scatter", "measured_vs_predicted"]
