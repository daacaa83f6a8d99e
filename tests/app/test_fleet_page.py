"""The Fleet page through AppTest: the SLA search's table and the Pareto chart."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from k2calc.scenario import Catalogs

ROOT = Path(__file__).resolve().parents[2]


def _fleet() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/fleet.py").run()
    assert not at.exception, at.exception
    return at


def test_fleet_page_lists_every_layout_per_gpu():
    at = _fleet()
    table = at.dataframe[0].value
    names = Catalogs().hardware_catalog()
    assert set(table["GPU"]) == {names[i].name for i in ("h200-sxm", "b200", "mi355x")}  # names, not ids
    assert set(table["layout"]) == {"aggregated", "aggregated-ep", "disaggregated"}
    assert table["meets"].all()
    assert (table["GPUs"] >= 8).all()
    assert len(at.get("plotly_chart")) == 1


def test_fleet_page_follows_the_form():
    at = _fleet()
    at.multiselect(key="fleet_hardware").set_value(["b200"])
    at.number_input(key="fleet_users").set_value(100)
    at.button[0].click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["GPU"]) == {Catalogs().hardware_catalog()["b200"].name}
    small = table["GPUs"].max()
    at.number_input(key="fleet_users").set_value(4000)
    at.button[0].click().run()
    assert at.dataframe[0].value["GPUs"].min() > small / 10
    assert at.dataframe[0].value["GPUs"].max() > small


def test_impossible_target_says_why():
    at = _fleet()
    at.number_input(key="fleet_speed").set_value(5000.0)
    at.button[0].click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert not table["meets"].any()
    assert table["why not / notes"].str.len().min() > 10


def test_fleet_page_runs_on_its_own():
    at = AppTest.from_file(str(ROOT / "pages" / "fleet.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.title


def test_fleet_page_with_speculative_decoding():
    at = _fleet()
    at.multiselect(key="fleet_hardware").set_value(["b200"])
    at.button[0].click().run()
    plain = at.dataframe[0].value
    at.selectbox(key="fleet_spec").set_value("eagle3")
    at.button[0].click().run()
    assert not at.exception
    spec = at.dataframe[0].value
    assert list(spec["tok/s per user"]) != list(plain["tok/s per user"])
