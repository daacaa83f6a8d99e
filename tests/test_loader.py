"""The one CSV loader (k2calc.loader): every table of data/ loads through it, and every way a file can be
broken (a bad cell, a duplicate key, a missing or unknown column, a ragged row, a byte that is not UTF-8,
a binary file) gives one line naming the file, the line and the column, never a traceback."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from k2calc import cost
from k2calc.errors import CatalogError
from k2calc.finetune.data import Efficiency, PublishedRun, efficiencies, published_runs
from k2calc.hardware import Hardware, load_hardware, parse_hardware_csv
from k2calc.loader import columns_of, load_csv, parse_csv, required_columns_of
from k2calc.measurements import Measurement, load_measurements
from k2calc.performance.bands import CorrectionRow, load_corrections
from k2calc.performance.calibration import DeviceBandwidth, KernelEfficiency, Platform


class Row(BaseModel):
    name: str
    value: float = Field(gt=0)
    note: str | None = None


@pytest.mark.parametrize("content, message", [
    (b"name,value\nmfu,0.35\nbad,x\n", "t.csv line 3, column 'value': Input should be a valid number"),
    (b"name,value,colour\nmfu,0.35,red\n", "t.csv line 1 (header): unknown column(s) 'colour'"),
    (b"name,note\nmfu,x\n", "t.csv line 1 (header): missing column(s) 'value'"),
    (b"name,value\nmfu,0.35,9\n", "t.csv line 2, column '#3 (beyond the header)': expected 2 cells, got 3"),
    (b"name,value\nmfu\n", "t.csv line 2, column 'value': expected 2 cells, got 1"),
    (b"name,value\nmfu,0.35\ncaf\xe9,1\n", "t.csv line 3, column 'name': byte 0xe9 is not UTF-8"),
])
def test_errors_name_file_line_and_column(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(CatalogError) as info:
        load_csv(path, Row)
    assert str(info.value).startswith(message), str(info.value)


def test_empty_cells_take_the_default_and_rows_keep_file_order(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('name,value,note\nb,2,\na,1,"x, y"\n')
    assert load_csv(path, Row) == (Row(name="b", value=2), Row(name="a", value=1, note="x, y"))


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(CatalogError, match="nothing.csv: cannot read"):
        load_csv(tmp_path / "nothing.csv", Row)


def test_the_finetune_tables_load_with_a_source_on_every_row():
    rows = efficiencies()
    assert {"cpu_sft_efficiency", "gpu_mfu", "cpu_stream_bandwidth_efficiency", "swap_read_bytes_per_s"} <= set(rows)
    assert all(r.source for r in rows.values())
    runs = published_runs()
    assert [r.model for r in runs] == ["kimi-k2-instruct", "deepseek-v3", "deepseek-v2-lite"]
    assert all(r.source and r.measured_tokens_per_s > 0 for r in runs)


# ------------------------------------------------------------------------------------------------ every table of data/

DATA = Path(__file__).resolve().parent.parent / "data"


# file, row model, unique key, a column to break and a value that breaks it, words of the message
FILES = [
    ("hardware.csv", Hardware, "id", "memory_bandwidth_gb_per_s", "fast", "valid number"),
    ("measurements.csv", Measurement, "id", "concurrency", "0", "greater than or equal to 1"),
    ("cost_assumptions.csv", cost.Assumption, "key", "value", "cheap", "valid number"),
    ("api_prices.csv", cost.ApiPrice, ("model_id", "provider"), "output_usd_per_mtok", "-1", "greater than or equal to 0"),
    ("class_corrections.csv", CorrectionRow, ("class", "kind"), "band_factor", "0.5", "greater than or equal to 1"),
    ("platforms.csv", Platform, "platform", "bandwidth_fraction", "1.5", "less than or equal to 1"),
    ("kernel_efficiency.csv", KernelEfficiency, ("phase", "kernel", "platform"), "efficiency", "0", "greater than 0"),
    ("bandwidth.csv", DeviceBandwidth, "hardware_id", "achievable_gb_per_s", "-1", "greater than 0"),
    ("finetune_efficiencies.csv", Efficiency, "name", "value", "none", "valid number"),
    ("finetune_runs.csv", PublishedRun, "id", "rank", "0", "greater than or equal to 1"),
]
IDS = [f[0] for f in FILES]


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict[str, str]], columns=None) -> Path:
    columns = list(columns or rows[0])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


@pytest.mark.parametrize("name, model, key, column, value, words", FILES, ids=IDS)
def test_every_data_file_loads_with_the_one_loader(name, model, key, column, value, words):
    rows = load_csv(DATA / name, model, key=key)
    assert len(rows) == len(_rows(name)) > 0
    assert rows.lines[0] == 2 and rows.source == name
    assert tuple(next(csv.reader((DATA / name).open(encoding="utf-8")))) == columns_of(model)


@pytest.mark.parametrize("name, model, key, column, value, words", FILES, ids=IDS)
def test_a_broken_cell_names_file_line_and_column(tmp_path, name, model, key, column, value, words):
    rows = _rows(name)[:3]
    rows[1][column] = value  # the second data row: CSV line 3
    with pytest.raises(CatalogError) as info:
        load_csv(_write(tmp_path / name, rows), model, key=key)
    message = _one_line(info)
    assert message.startswith(f"{name} line 3, column '{column}': "), message
    assert words in message and repr(value) in message, message


@pytest.mark.parametrize("name, model, key, column, value, words", FILES, ids=IDS)
def test_a_duplicate_key_names_both_lines(tmp_path, name, model, key, column, value, words):
    rows = _rows(name)[:2]
    rows.append(dict(rows[0]))
    with pytest.raises(CatalogError) as info:
        load_csv(_write(tmp_path / name, rows), model, key=key)
    first = key if isinstance(key, str) else key[0]
    assert _one_line(info).startswith(f"{name} line 4, column '{first}': duplicate "), info.value
    assert "(first on line 2)" in str(info.value)


@pytest.mark.parametrize("name, model, key, column, value, words", FILES, ids=IDS)
def test_missing_and_extra_columns_name_the_header_line(tmp_path, name, model, key, column, value, words):
    rows = _rows(name)[:2]
    required = required_columns_of(model)[-1]
    columns = [c for c in rows[0] if c != required]
    with pytest.raises(CatalogError) as info:
        load_csv(_write(tmp_path / name, rows, columns), model, key=key)
    assert _one_line(info) == f"{name} line 1 (header): missing column(s) '{required}'"
    with pytest.raises(CatalogError) as info:
        load_csv(_write(tmp_path / name, rows, [*rows[0], "surprise"]), model, key=key)
    assert _one_line(info) == f"{name} line 1 (header): unknown column(s) 'surprise'"


@pytest.mark.parametrize("name, model, key, column, value, words", FILES, ids=IDS)
def test_a_latin1_byte_names_line_and_column(tmp_path, name, model, key, column, value, words):
    rows = _rows(name)[:3]
    rows[1][column] = "\N{MICRO SIGN}"  # Latin-1 0xb5, not UTF-8
    path = _write(tmp_path / name, rows)
    path.write_bytes(path.read_bytes().replace("\N{MICRO SIGN}".encode(), b"\xb5"))
    with pytest.raises(CatalogError) as info:
        load_csv(path, model, key=key)
    message = _one_line(info)
    assert message.startswith(f"{name} line 3, column '{column}': byte 0xb5 is not UTF-8"), message


def test_a_binary_file_is_one_line(tmp_path):
    png = tmp_path / "hardware.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CatalogError) as info:
        load_hardware(png)
    assert _one_line(info).startswith("hardware.csv line 1, column "), info.value
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"key,value\nalpha,1\x00\n")
    with pytest.raises(CatalogError) as info:
        load_csv(nul, cost.Assumption, key="key")
    assert _one_line(info) == "nul.csv line 2, column 'value': NUL byte (is this a binary file?)"


def test_ragged_rows_unterminated_quotes_empty_files_and_missing_files(tmp_path):
    text = "key,value,unit,date,status,source\npue,1.3,ratio,2024-07,assumption\n"
    with pytest.raises(CatalogError) as info:
        parse_csv(text, cost.Assumption, key="key", source="a.csv")
    assert _one_line(info) == "a.csv line 2, column 'source': expected 6 cells, got 5"
    with pytest.raises(CatalogError) as info:
        parse_csv(text.replace("assumption\n", "assumption,src,extra\n"), cost.Assumption, source="a.csv")
    assert _one_line(info) == "a.csv line 2, column '#7 (beyond the header)': expected 6 cells, got 7"
    with pytest.raises(CatalogError) as info:
        parse_csv("", cost.Assumption, source="a.csv")
    assert _one_line(info).startswith("a.csv: empty file, expected header key,value,unit,date,status,source")
    with pytest.raises(CatalogError) as info:
        load_measurements(tmp_path / "absent.csv")
    assert _one_line(info).startswith("absent.csv: cannot read (")


def test_byte_order_mark_blank_lines_and_multiline_cells_keep_line_numbers():
    text = "\ufeffkey,value,unit,date,status,source\n\npue,1.3,ratio,2024-07,assumption,\"two\nlines\"\n" \
           "utilisation,x,share,2026,assumption,src\n"
    with pytest.raises(CatalogError) as info:
        parse_csv(text.encode(), cost.Assumption, key="key", source="a.csv")
    assert _one_line(info).startswith("a.csv line 5, column 'value': ")
    rows = parse_csv(text.replace(",x,", ",0.5,"), cost.Assumption, key="key", source="a.csv")
    assert rows.lines == (3, 5) and rows[0].source == "two\nlines"


def test_an_empty_required_cell_says_so(tmp_path):
    rows = _rows("measurements.csv")[:2]
    rows[1]["source"] = ""
    with pytest.raises(CatalogError) as info:
        load_measurements(_write(tmp_path / "m.csv", rows))
    assert _one_line(info) == "m.csv line 3, column 'source': Field required (cell is empty)"


def test_load_csv_reads_the_class_corrections_as_performance_does():
    """performance.bands.load_corrections is one load_csv call."""
    rows = load_csv(DATA / "class_corrections.csv", CorrectionRow, key=("class", "kind"))
    expected = {(r.klass, r.kind): (r.correction, r.band_factor, r.sources, r.rows) for r in rows}
    actual = {k: (c.correction, c.band_factor, c.sources, c.rows) for k, c in load_corrections().items()}
    assert expected == actual


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """k2calc.cost reading a copy of data/ (caches cleared on both sides)."""
    for name in ("cost_assumptions.csv", "api_prices.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    caches = (cost._assumption_rows, cost.assumption_sources, cost.default_assumptions, cost.load_api_prices)
    for c in caches:
        c.cache_clear()
    monkeypatch.setattr(cost, "DATA", tmp_path)
    yield tmp_path
    monkeypatch.undo()
    for c in caches:
        c.cache_clear()


def test_an_out_of_range_assumption_names_its_line_and_column(data_copy):
    path = data_copy / "cost_assumptions.csv"
    rows = _rows("cost_assumptions.csv")
    line = next(i for i, r in enumerate(rows, start=2) if r["key"] == "pue")
    rows[line - 2]["value"] = "0.5"  # a PUE below 1 is impossible
    _write(path, rows)
    with pytest.raises(CatalogError) as info:
        cost.default_assumptions()
    assert _one_line(info).startswith(f"cost_assumptions.csv line {line}, column 'value': pue: Input should be "
                                      "greater than or equal to 1 (got 0.5)"), info.value


def test_an_unknown_or_missing_assumption_key_is_named(data_copy):
    path = data_copy / "cost_assumptions.csv"
    rows = _rows("cost_assumptions.csv")
    _write(path, [*rows, {**rows[0], "key": "gpu_tax"}])
    with pytest.raises(CatalogError) as info:
        cost.default_assumptions()
    assert _one_line(info).startswith(f"cost_assumptions.csv line {len(rows) + 2}, column 'key': gpu_tax: Extra")
    for c in (cost._assumption_rows, cost.assumption_sources, cost.default_assumptions):
        c.cache_clear()
    _write(path, [r for r in rows if r["key"] != "pue"])
    with pytest.raises(CatalogError) as info:
        cost.default_assumptions()
    assert _one_line(info) == "cost_assumptions.csv: no row for key 'pue' (Field required)"


def test_hardware_text_parser_is_the_same_loader():
    text = (DATA / "hardware.csv").read_text(encoding="utf-8")
    broken = text.replace("h200-sxm,NVIDIA H200 SXM 141GB,gpu", "h200-sxm,NVIDIA H200 SXM 141GB,tpu", 1)
    with pytest.raises(CatalogError) as info:
        parse_hardware_csv(broken)
    assert _one_line(info).startswith("hardware.csv line 3, column 'kind': Input should be 'gpu', 'system' or 'cpu'")
