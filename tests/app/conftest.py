"""Fixtures of the app tests (AppTest and the browser): only these import streamlit, so the core tests
in tests/ run without it (tests/test_packaging.py checks that)."""

import os

import pytest
import streamlit.runtime.pages_manager as pages_manager
import streamlit.testing.v1.app_test as app_test

# A session's first run sends its charts last, after a pause for the browser (ui.FIRST_CHART_DELAY_S);
# AppTest has no browser to wait for.
os.environ.setdefault("K2CALC_FIRST_CHART_DELAY_S", "0")


class _NavigationPagesManager(pages_manager.PagesManager):
    """The server decides once per process that an app calling st.navigation does not use the legacy
    ``pages/`` directory mode (``st.navigation`` sets ``uses_pages_directory = False`` for good);
    AppTest resets that flag on every run, which makes reruns execute ``pages/*.py`` without the
    entry point. Keep the server's behaviour in tests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pages_manager.PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _server_like_navigation(monkeypatch):
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
