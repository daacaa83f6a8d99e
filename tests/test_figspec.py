"""FigureSpec builds the figure plotly's own API builds: the same calls on both, compared property by
property (to_dict), for every method the charts use."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from k2calc.figspec import FigureSpec


def _pruned(x):
    """Without empty objects: plotly keeps `title=None` as `title: {}`, FigureSpec drops it (both draw
    no title)."""
    if isinstance(x, dict):
        return {k: _pruned(v) for k, v in x.items() if v != {}}
    if isinstance(x, list):
        return [_pruned(v) for v in x]
    return x


def _same(spec: FigureSpec, fig: go.Figure) -> None:
    assert _pruned(spec.build().to_dict()) == _pruned(fig.to_dict())


def _calls(fig) -> None:
    """A sequence of calls the charts make, applied to either kind of figure."""
    fig.add_scatter(x=[1, 10, 100], y=[3, 2, 1], mode="lines+markers", name="a", line=dict(color="#123456", width=3),
                    row=2, col=1, hovertemplate="%{x}<extra></extra>")
    fig.add_scatter(x=[1, 10], y=[5, 4], mode="lines", line_width=0, fill="tonexty", row=1, col=1,
                    customdata=[(1, 2), (3, 4)], legendgroup="g")
    fig.add_bar(x=[1], y=["a"], orientation="h", marker_color="#abcdef", row=1, col=1)
    fig.add_vrect(x0=2, x1=100, fillcolor="#888888", opacity=0.15, line_width=0, row="all", col=1)
    fig.add_vline(x=10, line=dict(color="#888888", dash="dot"), row="all", col=1)
    fig.add_annotation(x=1, xref="x", y=1, yref="paper", text="t", showarrow=False, xanchor="left")
    fig.update_xaxes(type="log", tickvals=[1, 10, 100], ticktext=["1", "10", "100"])
    fig.update_xaxes(title="users [count]", row=2, col=1)
    fig.update_yaxes(type="linear", rangemode="tozero", dtick=None, title="per user [tok/s]", row=1, col=1)
    fig.update_layout(title="T", paper_bgcolor="rgba(0,0,0,0)", legend=dict(orientation="h", y=0),
                      margin=dict(t=60, b=10), height=620, barmode="stack")
    fig.update_xaxes(gridcolor="#ccc", zerolinecolor="#ccc")
    fig.update_layout(legend_traceorder="normal", title_font_size=14)


@pytest.mark.parametrize("grid", [dict(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.07),
                                  dict(rows=2, cols=1, vertical_spacing=0.25, row_heights=[0.6, 0.4])])
def test_subplots_match_plotly(grid):
    spec, fig = FigureSpec(**grid), make_subplots(**grid)
    _calls(spec)
    _calls(fig)
    _same(spec, fig)


def test_single_plot_matches_plotly():
    def calls(f):
        f.add_scatter(x=[1, 2], y=[1, 2], name="s", marker=dict(symbol="x", size=12), error_y=dict(array=[1, 1]))
        f.add_hline(y=3, line=dict(color="#888888", dash="dash"))
        f.add_vline(x=2, line=dict(color="#888888"))
        f.update_layout(yaxis_title="y [GiB]", xaxis_title=None, xaxis_type="category")
        f.update_xaxes(type="log", title="x [tokens]")
        f.update_yaxes(title=None, type="category")
    spec, fig = FigureSpec(), go.Figure()
    calls(spec)
    calls(fig)
    _same(spec, fig)


def test_subplot_titles_and_columns_match_plotly():
    grid = dict(rows=1, cols=3, subplot_titles=["a", "b", "c"], horizontal_spacing=0.08)
    spec, fig = FigureSpec(**grid), make_subplots(**grid)
    for f in (spec, fig):
        for i in (1, 2, 3):
            f.add_bar(x=["m"], y=[i], row=1, col=i)
            f.update_yaxes(title="y", rangemode="tozero", row=1, col=i)
            f.update_xaxes(type="category", row=1, col=i)
    _same(spec, fig)


def test_an_unknown_property_is_refused_as_plotly_refuses_it():
    spec = FigureSpec().add_scatter(x=[1], y=[1], colour="red")
    with pytest.raises(ValueError):
        spec.build()
