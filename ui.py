"""Streamlit glue shared by app.py and the pages (the k2calc core never imports streamlit)."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from k2calc.errors import K2CalcError
from k2calc.estimate import Estimate, estimate
from k2calc.scenario import Catalogs, Scenario


def leave_legacy_pages_mode() -> None:
    """Rerun through app.py when Streamlit runs a script in its legacy ``pages/`` directory mode.

    The server starts in that mode because the design keeps page files in ``pages/``: the first run
    after start (or a page opened by its own address) then runs without the entry point, and sidebar
    widgets get other ids than in later runs. ``st.navigation`` switches the mode off for the process;
    switching it off here and rerunning makes every run the user sees a normal st.navigation run
    (which finds the page by its address).
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


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
        return estimate(scenario, catalogs)
    except K2CalcError as exc:
        st.error(str(exc))
        st.stop()
