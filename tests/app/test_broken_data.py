"""A broken data file is one message on every page, naming the file, line and column (issue 12), never an
exception box: the core raises k2calc.errors.CatalogError and app.py shows it once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from k2calc import hardware

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
PAGES = ["calculator", "compare_models", "compare_hardware", "plan", "finetune", "report", "catalog", "method"]


@pytest.fixture
def broken_hardware(tmp_path, monkeypatch):
    """The hardware loader reading a copy of data/hardware.csv that the test breaks (caches cleared)."""
    path = tmp_path / "hardware.csv"
    shutil.copy(DATA / "hardware.csv", path)
    hardware._load_default.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setattr(hardware, "DEFAULT_PATH", path)
    yield path
    monkeypatch.undo()
    hardware._load_default.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()


def _break(path: Path, how: str) -> str:
    """Break line 3 of the copy; returns the message's start (file, line, column)."""
    lines = path.read_bytes().split(b"\n")
    header = lines[0].decode().split(",")
    cells = lines[2].split(b",")
    if how == "utf8":
        cells[1] = cells[1] + b" caf\xe9"
        column = "name"
    else:
        cells[header.index("memory_bandwidth_gb_per_s")] = b"fast"
        column = "memory_bandwidth_gb_per_s"
    lines[2] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))
    return f"hardware.csv line 3, column '{column}'"


@pytest.mark.parametrize("how", ["utf8", "cell"])
def test_a_broken_hardware_csv_is_one_message_on_every_page(broken_hardware, how):
    where = _break(broken_hardware, how)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and where in at.error[0].value, [e.value for e in at.error]
    for page in PAGES[1:]:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert len(at.error) == 1 and where in at.error[0].value, (page, [e.value for e in at.error])
