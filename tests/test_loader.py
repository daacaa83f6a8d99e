"""The typed CSV loader (k2calc.loader.load_csv) and the fine-tuning tables it reads: every error names
the file, the line and the column."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from k2calc.errors import CatalogError
from k2calc.finetune.data import efficiencies, published_runs
from k2calc.loader import load_csv


class Row(BaseModel):
    name: str
    value: float = Field(gt=0)
    note: str | None = None


@pytest.mark.parametrize("content, message", [
    (b"name,value\nmfu,0.35\nbad,x\n", "t.csv line 3, column 'value': Input should be a valid number"),
    (b"name,value,colour\nmfu,0.35,red\n", "t.csv line 1, column 'colour': not a column"),
    (b"name,note\nmfu,x\n", "t.csv line 1: missing column(s) value"),
    (b"name,value\nmfu,0.35,9\n", "t.csv line 2: more cells than columns"),
    (b"name,value\nmfu\n", "t.csv line 2: fewer cells than columns"),
    (b"name,value\nmfu,0.35\ncaf\xe9,1\n", "t.csv line 3: not UTF-8 text"),
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
