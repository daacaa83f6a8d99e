"""The Streamlit app through streamlit.testing.v1.AppTest: every page runs, widgets change figures."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_default_scenario_fits_and_shows_breakdown(app):
    assert "Fits" in app.success[0].value
    assert "Kimi K2 Thinking" in app.success[0].value
    labels = [m.label for m in app.metric]
    assert "KV capacity [tokens]" in labels and "Weights, one replica" in labels
    assert "Decode per user" in labels and "Limited by" in labels
    assert app.metric[0].value == "594.2 GB"
    assert len(app.dataframe) == 1


def test_fewer_gpus_turns_the_verdict_and_names_the_smallest(app):
    app.sidebar.number_input(key="count").set_value(4).run()
    assert not app.exception
    assert "Does not fit" in app.error[0].value
    assert "Smallest that fits: **8 x" in app.info[0].value


def test_context_changes_kv_figures(app):
    before = app.metric[1].value
    app.sidebar.number_input(key="context").set_value(262144).run()
    assert app.metric[1].value != before


def test_hybrid_toggle_places_experts_in_ram(app):
    app.sidebar.selectbox(key="hardware").set_value("rtx-4090")
    app.sidebar.number_input(key="count").set_value(2)
    app.sidebar.toggle(key="hybrid").set_value(True).run()
    assert not app.exception
    assert "Fits" in app.success[0].value
    assert any("System RAM" in str(v) for v in app.dataframe[0].value["device"])


def test_invalid_combination_shows_one_error_not_an_exception(app):
    app.sidebar.number_input(key="count").set_value(3).run()
    assert not app.exception
    assert "cannot split 64 attention heads" in app.error[0].value


def test_page_runs_on_its_own_with_defaults():
    at = AppTest.from_file(str(ROOT / "pages" / "calculator.py"), default_timeout=60).run()
    assert not at.exception
    assert "Fits" in at.success[0].value
