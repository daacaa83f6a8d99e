"""Streamlit glue shared by app.py and the pages (the k2calc core never imports streamlit)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from k2calc.charts import (
    concurrency_vs_context,
    cost_breakdown,
    memory_per_device,
    speed_vs_concurrency,
)
from k2calc.errors import K2CalcError
from k2calc.estimate import Estimate, estimate, reprice
from k2calc.links import catalogs_param, physics_query, to_query
from k2calc.scenario import Catalogs, Scenario
from k2calc.sweeps import context_curve, published_points, speed_curve
from k2calc.whatif import nearest_step


def leave_legacy_pages_mode() -> None:
    """Rerun through app.py when Streamlit runs a script in its legacy ``pages/`` directory mode.

    The server starts in that mode because the design keeps page files in ``pages/``: the first run
    after start (or a page opened by its own address) then runs without the entry point, and sidebar
    widgets get other ids than in later runs. ``st.navigation`` switches the mode off for the process;
    switching it off here and rerunning makes every run the user sees a normal st.navigation run
    (which finds the page by its address). A session whose first run began in that mode while another
    session switched it off (people arriving together just after a start) is still in it: the pages
    registered for its run include app.py itself. It reruns once too, or its widgets would lose their
    values on its next run (`python benchmarks/app_load.py` opens sessions that way).
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.session_state["_left_legacy_mode"] = True  # a session only starts once
        st.rerun()
    ss = st.session_state
    if "_left_legacy_mode" not in ss:  # a session's first run: the only one that can be in that mode
        ss["_left_legacy_mode"] = _run_registers_entry_point()
        if ss["_left_legacy_mode"]:
            st.rerun()


def _run_registers_entry_point() -> bool:
    """True when this run's pages are app.py among pages/*.py, as Streamlit's legacy mode registers
    them (st.navigation's pages never include app.py; a new session's registry holds app.py alone)."""
    ctx = get_script_run_ctx()
    if ctx is None or ctx.pages_manager is None:
        return False
    main = Path(ctx.pages_manager.main_script_path).resolve()
    pages = list((ctx.pages_manager.get_pages() or {}).values())
    return len(pages) > 1 and any(Path(page.get("script_path") or "").resolve() == main for page in pages)


def page_setup() -> tuple[Scenario, Catalogs]:
    """What every page starts with: leave Streamlit's legacy mode, then the scenario and catalogs."""
    leave_legacy_pages_mode()
    return session_scenario(), session_catalogs()


def session_scenario() -> Scenario:
    """The sidebar's scenario, or the defaults when a page runs on its own."""
    return st.session_state.get("scenario") or Scenario()


def session_catalogs() -> Catalogs:
    """The catalogs plus this session's imported models and custom devices."""
    return Catalogs(models=st.session_state.get("custom_models", {}),
                    hardware=st.session_state.get("custom_hardware", {}))


def estimate_or_stop(scenario: Scenario, catalogs: Catalogs) -> Estimate:
    """The scenario's estimate; on a user error, show its one line and stop the page."""
    try:
        return cached_estimate(scenario, catalogs)
    except K2CalcError as exc:
        st.error(str(exc))
        st.stop()


# ------------------------------------------------------------------------------------------------
# Charts after the first paint
# ------------------------------------------------------------------------------------------------

# Seconds a session's first run waits, after everything else is on its way to the browser, before it
# sends its plotly charts. The browser fetches and evaluates plotly's 4.7 MB script when the first chart
# arrives and draws nothing new meanwhile: with the chart in the first batch, the key figures appeared
# 3.1-3.4 s after opening the page; without it, 1.6-2.0 s, about 0.5 s after the last message
# (Chromium on this 2-core machine, `python benchmarks/app_browser.py`). Later runs send charts at once
# (plotly is loaded). The environment variable K2CALC_FIRST_CHART_DELAY_S overrides it (the tests set 0).
FIRST_CHART_DELAY_S = 0.7
_PENDING = "_pending_charts"


def first_chart_delay_s() -> tuple[float, str | None]:
    """(pause [s], a message when K2CALC_FIRST_CHART_DELAY_S is set but is not 0-10 seconds)."""
    raw = os.environ.get("K2CALC_FIRST_CHART_DELAY_S")
    if raw is None:
        return FIRST_CHART_DELAY_S, None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if 0 <= value <= 10:
        return value, None
    return FIRST_CHART_DELAY_S, (f"K2CALC_FIRST_CHART_DELAY_S={raw[:20]!r} is not a pause of 0-10 seconds; "
                                 f"using {FIRST_CHART_DELAY_S} s")


def plotly_chart(fig: go.Figure, key: str) -> None:
    """``st.plotly_chart(fig, key=key, width="stretch")``; in a session's first run with a chart, a
    placeholder now and the chart at the end of the run (:func:`draw_pending_charts`), so the browser
    shows the key figures before it loads plotly."""
    ss = st.session_state
    if ss.get("_plotly_sent") or _PENDING not in ss:  # a page run on its own (no app.py) draws at once
        st.plotly_chart(fig, key=key, width="stretch")
        return
    slot = st.empty()
    slot.caption("Drawing the chart...")
    ss[_PENDING].append((slot, fig, key))


def start_pending_charts() -> None:
    """Before a page runs: charts of this run may wait for the end of it (see :func:`plotly_chart`)."""
    st.session_state[_PENDING] = []


def draw_pending_charts() -> None:
    """After the page ran: draw the charts it left for the end of the first run."""
    pending = st.session_state.pop(_PENDING, None)
    if not pending:
        return
    delay, problem = first_chart_delay_s()
    if problem:
        st.warning(problem, icon=":material/warning:")
    time.sleep(delay)
    for slot, fig, key in pending:
        slot.plotly_chart(fig, key=key, width="stretch")
    st.session_state["_plotly_sent"] = True


# ------------------------------------------------------------------------------------------------
# What-if: sliders beside number boxes, a pinned baseline, estimates cached per scenario
# ------------------------------------------------------------------------------------------------

def slider_key(field: str) -> str:
    """The select_slider's key for a Scenario field (the number box's key is the field itself)."""
    return f"{field}_slider"


def _slider_moved(field: str) -> None:
    """A slider was dragged: the exact value (the number box, the scenario, the URL) follows it."""
    st.session_state[field] = st.session_state[slider_key(field)]


def slider_pair(container, field: str, label: str, steps: Sequence, *, number: dict | None = None,
                fmt: Callable[[Any], str] | None = None, default: Any = None, help: str | None = None) -> None:
    """A number box holding the exact value (key = `field`) with a slider under it on `steps`.

    Dragging the slider sets the exact value to the step; typing a value moves the slider to the nearest
    step and keeps what was typed (nothing entered is silently changed). ``default`` is what the slider
    shows while the field is empty (a cost assumption left at its dated default). With fewer than two
    steps there is nothing to drag and only the number box is drawn.
    """
    ss = st.session_state
    container.number_input(label, key=field, help=help, **(number or {}))
    if len(steps) < 2:
        return
    value = ss.get(field)
    ss[slider_key(field)] = nearest_step(steps, default if value is None else value)
    container.select_slider(f"{label}, slider", options=list(steps), key=slider_key(field),
                            format_func=fmt or (lambda v: f"{v:,}"), label_visibility="collapsed",
                            on_change=_slider_moved, args=(field,))


def session_baseline() -> Scenario | None:
    """The pinned baseline scenario, or None."""
    return st.session_state.get("baseline")


def _cache_key(scenario: Scenario, catalogs: Catalogs) -> tuple:
    """What makes two scenarios' physics identical: the link without its cost fields, and the session's
    custom models and devices."""
    return tuple(sorted(physics_query(scenario).items())), catalogs_param(catalogs)


@st.cache_data(max_entries=128, show_spinner=False)
def _physics_estimate(key: tuple, _scenario: Scenario, _catalogs: Catalogs) -> Estimate:
    return estimate(_scenario, _catalogs)


def cached_estimate(scenario: Scenario, catalogs: Catalogs) -> Estimate:
    """estimate(scenario), with the physics cached per scenario (keyed on its link without the cost
    fields): moving a cost slider only re-prices (k2calc.estimate.reprice). Raises K2CalcError."""
    return reprice(_physics_estimate(_cache_key(scenario, catalogs), scenario, catalogs), scenario, catalogs)


@st.cache_data(max_entries=128, show_spinner=False)
def _speed_data(key: tuple, _e: Estimate) -> tuple[pd.DataFrame, pd.DataFrame]:
    return speed_curve(_e), published_points(_e)


def cached_speed_data(e: Estimate, catalogs: Catalogs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(speed curve against users, published points nearby) of a fitting estimate, cached per physics."""
    return _speed_data(_cache_key(e.scenario, catalogs), e)


@st.cache_resource(max_entries=256, show_spinner=False)
def _figure(kind: str, key: tuple, _build: Callable[[], go.Figure]) -> go.Figure:
    # One cache for every figure drawn from one scenario: sessions on the same scenario (the defaults, a
    # shared link) draw it once. cache_resource, not cache_data: a plotly figure pickles slower than it
    # builds, and it is only read (st.plotly_chart copies it), never changed.
    return _build()


def cached_speed_figure(e: Estimate, catalogs: Catalogs, baseline: Estimate | None = None) -> go.Figure:
    """The speed-against-users chart of a fitting estimate, with the baseline's curve as a faint trace."""
    curve, points = cached_speed_data(e, catalogs)
    base_curve = cached_speed_data(baseline, catalogs)[0] if baseline is not None and baseline.fits else None
    base_key = _cache_key(baseline.scenario, catalogs) if base_curve is not None else None
    return _figure("speed", (_cache_key(e.scenario, catalogs), base_key),
                   lambda: speed_vs_concurrency(curve, points, baseline=base_curve, concurrency=e.scenario.concurrency))


def cached_memory_figure(e: Estimate, catalogs: Catalogs) -> go.Figure:
    """Memory per device, cached per physics."""
    return _figure("memory", _cache_key(e.scenario, catalogs), lambda: memory_per_device(e.memory))


def cached_context_figure(e: Estimate, catalogs: Catalogs) -> go.Figure:
    """Sequences that fit against context, cached per physics."""
    return _figure("context", _cache_key(e.scenario, catalogs), lambda: concurrency_vs_context(context_curve(e)))


def cached_cost_figure(e: Estimate, catalogs: Catalogs) -> go.Figure:
    """The cost breakdown, cached per scenario including its cost fields."""
    return _figure("cost", (tuple(sorted(to_query(e.scenario).items())), catalogs_param(catalogs)),
                   lambda: cost_breakdown(e))


def speed_columns() -> dict:
    """Column settings the comparison tables share: fits, speeds, first token and why not [units in labels]."""
    return {
        "fits": st.column_config.CheckboxColumn("fits", width="small"),
        "per_user_tok_s": st.column_config.NumberColumn("tok/s per user", format="%.1f", width="small"),
        "total_tok_s": st.column_config.NumberColumn("tok/s total", format="%.0f", width="small"),
        "ttft_s": st.column_config.NumberColumn("first token [s]", format="%.2f", width="small"),
        "reason": st.column_config.TextColumn("why not", width="medium"),
    }
