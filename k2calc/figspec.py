"""A plotly figure written as plain dicts and validated once, at the end.

Plotly's object API (``go.Figure().add_scatter(...)``, ``update_layout(xaxis_title=...)``,
``make_subplots``) validates every property on every call and walks its property tree for each
``a_b_c`` key: building the calculator's four charts that way took about 100 ms of a 150 ms rerun
(``python benchmarks/app_load.py`` reports the server's CPU per rerun). :class:`FigureSpec` offers the
subset of that API the charts use, collects the same JSON structure plotly would, and :meth:`build`
hands it to ``go.Figure`` once: the same figure (``tests/test_figspec.py`` compares both ways,
property by property), validated the same way, in a fifth of the time.

Supported: ``add_scatter``, ``add_bar``, ``add_trace`` (with ``row``/``col``), ``update_layout``,
``update_xaxes``/``update_yaxes`` (all axes, or one row/column), ``add_annotation``, ``add_vrect``,
``add_vline``, ``add_hline`` (``row="all"`` as plotly: every subplot of that column with a trace), and
subplot grids through ``FigureSpec(rows=..., cols=..., <make_subplots keywords>)``.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Property names that contain an underscore themselves (plotly's "magic underscore" keys split on every
# other underscore). The complete list in plotly 6-7: `grep -rhoE "def [a-z]+_[a-z_]+\(self\)" plotly/graph_objs`.
_UNSPLIT = ("paper_bgcolor", "plot_bgcolor", "copy_ystyle", "copy_zstyle", "error_x", "error_y", "error_z")


def _path(key: str) -> list[str]:
    """'xaxis_title_text' -> ['xaxis', 'title', 'text'] (plotly's magic-underscore rule)."""
    for whole in _UNSPLIT:
        if key == whole or key.startswith(whole + "_"):
            rest = key[len(whole) + 1:]
            return [whole] + (rest.split("_") if rest else [])
    return key.split("_")


def _merge(into: dict, key: str, value: Any) -> None:
    """Set `value` at `key` (magic underscores allowed) in `into`, merging dicts into dicts. A string
    where a dict is merged (``title="..."`` then ``title_font=...``) becomes ``{"text": ...}``, as
    plotly reads a bare title."""
    *parents, last = _path(key)
    node = into
    for p in parents:
        child = node.get(p)
        if isinstance(child, str):
            child = {"text": child}
        elif not isinstance(child, dict):
            child = {}
        node[p] = child
        node = child
    if isinstance(value, dict):
        existing = node.get(last)
        if isinstance(existing, str):
            existing = {"text": existing}
        target = existing if isinstance(existing, dict) else {}
        for k, v in value.items():
            _merge(target, k, v)
        node[last] = target
    else:
        node[last] = value


def _props(kwargs: dict) -> dict:
    out: dict = {}
    for k, v in kwargs.items():
        _merge(out, k, v)
    return out


@lru_cache(maxsize=32)
def _grid(rows: int, cols: int, options: tuple) -> tuple[dict, tuple]:
    """(layout without template, grid of (xaxis key, yaxis key, x ref, y ref)) of make_subplots."""
    fig = make_subplots(rows=rows, cols=cols, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in options})
    layout = fig.to_dict()["layout"]
    layout.pop("template", None)
    grid = tuple(tuple((ref[0].layout_keys[0], ref[0].layout_keys[1], ref[0].trace_kwargs["xaxis"],
                        ref[0].trace_kwargs["yaxis"]) for ref in row) for row in fig._grid_ref)
    return layout, grid


class FigureSpec:
    """Collects a figure as plotly JSON; :meth:`build` returns the validated ``go.Figure``."""

    def __init__(self, rows: int | None = None, cols: int | None = None, **subplot_options):
        self.data: list[dict] = []
        if rows is None and cols is None and not subplot_options:
            self.layout: dict = {}
            self._cells = None
        else:
            options = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in subplot_options.items()))
            layout, self._cells = _grid(rows or 1, cols or 1, options)
            self.layout = copy.deepcopy(layout)

    # -- traces ---------------------------------------------------------------------------------
    def add_trace(self, trace_type: str, row: int | None = None, col: int | None = None, **props) -> FigureSpec:
        trace = {**_props(props), "type": trace_type}
        if row is not None and self._cells is not None:
            _, _, xref, yref = self._cells[row - 1][(col or 1) - 1]
            trace.update(xaxis=xref, yaxis=yref)
        self.data.append(trace)
        return self

    def add_scatter(self, row: int | None = None, col: int | None = None, **props) -> FigureSpec:
        return self.add_trace("scatter", row, col, **props)

    def add_bar(self, row: int | None = None, col: int | None = None, **props) -> FigureSpec:
        return self.add_trace("bar", row, col, **props)

    # -- layout ---------------------------------------------------------------------------------
    def update_layout(self, **props) -> FigureSpec:
        for k, v in props.items():
            _merge(self.layout, k, v)
        return self

    def _axes(self, letter: str, row, col) -> list[str]:
        if self._cells is None:
            return [f"{letter}axis"]
        index = 0 if letter == "x" else 1
        return [cell[index] for r, cells in enumerate(self._cells, 1) for c, cell in enumerate(cells, 1)
                if (row is None or row == r) and (col is None or col == c)]

    def update_xaxes(self, row: int | None = None, col: int | None = None, **props) -> FigureSpec:
        for key in self._axes("x", row, col):
            _merge(self.layout, key, _props(props))
        return self

    def update_yaxes(self, row: int | None = None, col: int | None = None, **props) -> FigureSpec:
        for key in self._axes("y", row, col):
            _merge(self.layout, key, _props(props))
        return self

    def add_annotation(self, **props) -> FigureSpec:
        self.layout.setdefault("annotations", []).append(_props(props))
        return self

    # -- shapes spanning a subplot ----------------------------------------------------------------
    def _refs(self, row, col) -> list[tuple[str, str]]:
        """(x ref, y ref) of the subplots a shape goes to (row="all": those of the column with a trace)."""
        if self._cells is None:
            return [("x", "y")]
        used = {(t.get("xaxis", "x"), t.get("yaxis", "y")) for t in self.data}
        out = []
        for r, cells in enumerate(self._cells, 1):
            for c, (_, _, xref, yref) in enumerate(cells, 1):
                if (row in (None, "all") or row == r) and (col in (None, "all") or col == c):
                    if row == "all" and (xref, yref) not in used:
                        continue
                    out.append((xref, yref))
        return out

    def _shape(self, row, col, along: str, **shape) -> FigureSpec:
        for xref, yref in self._refs(row, col):
            refs = {"xref": xref, "yref": f"{yref} domain"} if along == "x" else \
                {"xref": f"{xref} domain", "yref": yref}
            self.layout.setdefault("shapes", []).append({**_props(shape), **refs})
        return self

    def add_vrect(self, x0, x1, row=None, col=None, **props) -> FigureSpec:
        return self._shape(row, col, "x", type="rect", x0=x0, x1=x1, y0=0, y1=1, **props)

    def add_vline(self, x, row=None, col=None, **props) -> FigureSpec:
        return self._shape(row, col, "x", type="line", x0=x, x1=x, y0=0, y1=1, **props)

    def add_hline(self, y, row=None, col=None, **props) -> FigureSpec:
        return self._shape(row, col, "y", type="line", x0=0, x1=1, y0=y, y1=y, **props)

    # -- result ---------------------------------------------------------------------------------
    def build(self) -> go.Figure:
        """The figure, validated by plotly (an unknown property raises as with plotly's own API)."""
        return go.Figure({"data": self.data, "layout": self.layout})

