"""Tests for k2calc.measurements and data/measurements.csv."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from k2calc.errors import CatalogError, K2CalcError
from k2calc.measurements import COLUMNS, METRICS, UNITS, Measurement, load_measurements

REPO = Path(__file__).resolve().parent.parent
CSV_PATH = REPO / "data" / "measurements.csv"
# Rows 1-107 map the published-numbers table the file started from one to one; the rows after them come
# from the SGLang cookbook, engine issues and dated pages, each with where to find it.
PUBLISHED_TABLE_ROWS = 107

MODEL_IDS = {
    "kimi-k2-thinking", "kimi-k2-instruct", "deepseek-v3", "minimax-m2", "qwen3-235b-a22b", "gpt-oss-120b",
    "gpt-oss-20b", "glm-4.6", "llama-3.1-70b", "llama-3.1-8b",
    # the model families of 2026 (issue 15)
    "kimi-k2.5", "deepseek-v3.2", "minimax-m2.1", "glm-4.7", "qwen3-next-80b-a3b", "kimi-linear-48b", "qwen3-32b",
}
HARDWARE_IDS = {
    "h100-sxm", "h200-sxm", "h800", "b100", "b200", "mi300x", "mi325x", "mi355x", "l20", "rtx-3090", "rtx-4090",
    "rtx-4090-48gb", "rtx-5090", "rtx-pro-6000", "dgx-spark", "mac-studio-m3-ultra-512gb",
    "mac-studio-m3-ultra-256gb", "a100-sxm-80gb",
}
CPU_IDS = {"xeon-platinum-8488c", "xeon-gold-6454s", "xeon-6980p", "epyc-9355", "epyc-9654", "epyc-9965"}


@pytest.fixture(scope="module")
def rows() -> list[Measurement]:
    return load_measurements()


def by_id(rows: list[Measurement], id_: str) -> Measurement:
    (row,) = [r for r in rows if r.id == id_]
    return row


def test_published_table_rows_then_findable_rows(rows):
    """Runs from the repository alone (it read a file outside it before and skipped without it): rows
    added after the published table cite where a reader finds them (a repository file with its commit,
    an issue, PR or discussion number, or a dated page), and every row names a source one can open."""
    assert len(rows) > PUBLISHED_TABLE_ROWS
    findable = re.compile(r"commit|@[0-9a-f]{7}|#\d+|issue|PR |discussion|20\d\d-\d\d|https?://")
    assert [r.id for r in rows[PUBLISHED_TABLE_ROWS:] if not findable.search(r.source)] == []
    openable = re.compile(r"commit|https?://|github|arxiv|[\w-]+/[\w.-]+|\.(md|com|ai|org|io)\b")
    assert [r.id for r in rows if not openable.search(r.source)] == []


def test_ids_are_from_the_catalogs_or_empty(rows):
    assert {r.model_id for r in rows} - {None} <= MODEL_IDS
    assert {r.hardware_id for r in rows} - {None} <= HARDWARE_IDS
    assert {r.cpu_id for r in rows} - {None} <= CPU_IDS


def test_rows_without_a_model_id_say_why(rows):
    unmapped = [r for r in rows if r.model_id is None]
    assert {"DeepSeek-V2-Lite-14B", "DeepSeek-R1-Distill-14B"} <= {r.model_name for r in unmapped}
    assert all(re.search(r"not in the (k2calc )?catalog", r.notes, re.I) for r in unmapped), \
        [(r.id, r.notes) for r in unmapped if not re.search(r"not in the (k2calc )?catalog", r.notes, re.I)]


def test_ids_unique_and_units_match_metrics(rows):
    assert len({r.id for r in rows}) == len(rows)
    assert all(r.unit == UNITS[r.metric] for r in rows)
    assert set(UNITS) == set(METRICS)


def test_k25_h200_c16_tpot_becomes_tokens_per_second_per_user(rows):
    row = by_id(rows, "k25-h200x8-sglang-c16-tpot")
    assert (row.model_id, row.quant, row.hardware_id, row.count, row.engine) == (
        "kimi-k2-thinking", "native", "h200-sxm", 8, "sglang")
    # "1000 in / 1000 out" were the random dataset's maxima; the columns hold the measured means
    assert (row.input_tokens, row.output_tokens, row.concurrency) == (496, 510, 16)
    assert "1000/1000 are maxima" in row.notes
    assert row.metric == "decode_tokens_per_s_per_user"
    assert row.value == pytest.approx(1000 / 53.25, abs=0.01)
    assert row.value == pytest.approx(18.78, abs=0.01)
    assert "53.25 ms" in row.notes


def test_conversions_and_scenario_fields(rows):
    ttft = by_id(rows, "k2t-l20x8-kt-in1024-ttft")
    assert ttft.metric == "ttft_s" and ttft.value == pytest.approx(41.31648)
    assert (ttft.cpu_id, ttft.sockets, ttft.gpu_experts, ttft.concurrency) == ("xeon-gold-6454s", 2, 200, 37)
    hybrid = by_id(rows, "k2t-4090-48gbx1-kt-p2048-prefill")
    assert (hybrid.hardware_id, hybrid.cpu_id, hybrid.sockets, hybrid.ram_gb) == (
        "rtx-4090-48gb", "xeon-platinum-8488c", 2, 2048)
    cluster = by_id(rows, "k2i-h200x128-sglang-pd-decode")
    assert (cluster.count, cluster.nodes, cluster.concurrency, cluster.metric) == (
        128, 16, 480, "decode_tokens_per_s_total")
    node = by_id(rows, "k2i-h200x8-sglang-pd-decode-node")
    assert (node.count, node.nodes) == (8, 1)
    output = by_id(rows, "k25-h200x8-sglang-c16-output")
    assert output.metric == "output_tokens_per_s_total" and output.value == 258.18
    assert by_id(rows, "k26-m3u512-mlx-bpw3.331-decode").quant == "bpw:3.331"
    assert by_id(rows, "k2i-pro6000x1-9355-llamacpp-decode").quant == "bpw:4.6"


def test_loader_is_cached_and_returns_fresh_lists(rows):
    again = load_measurements()
    assert again == rows and again is not rows
    assert again[0] is rows[0]


def _write(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _good_rows() -> list[dict[str, str]]:
    with CSV_PATH.open(newline="") as f:
        return list(csv.DictReader(f))[:3]


def test_malformed_row_names_line_and_column(tmp_path):
    bad = _good_rows()
    bad[2]["value"] = "fast"  # data row 3 = CSV line 4
    with pytest.raises(CatalogError, match=r"line 4, column 'value'"):
        load_measurements(_write(tmp_path, bad))


@pytest.mark.parametrize(
    ("column", "value"),
    [("metric", "tokens_per_fortnight"), ("unit", "ms"), ("quant", "q5_weird"), ("engine", "tgi"),
     ("count", "0"), ("value", "inf"), ("dp_attention", "maybe")],
)
def test_bad_cells_are_catalog_errors(tmp_path, column, value):
    bad = _good_rows()
    bad[1][column] = value  # data row 2 = CSV line 3
    with pytest.raises(CatalogError, match=rf"line 3, column '{column}'"):
        load_measurements(_write(tmp_path, bad))


def test_duplicate_id_and_bad_header_and_missing_file(tmp_path):
    dup = _good_rows()
    dup[1]["id"] = dup[0]["id"]
    with pytest.raises(CatalogError, match=r"line 3, column 'id': duplicate"):
        load_measurements(_write(tmp_path, dup))
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,value\nx,1\n")
    with pytest.raises(CatalogError, match="line 1"):
        load_measurements(wrong)
    with pytest.raises(K2CalcError):
        load_measurements(tmp_path / "absent.csv")


def test_measurement_is_frozen_and_strict(rows):
    with pytest.raises(Exception):
        rows[0].value = 1.0  # type: ignore[misc]
    with pytest.raises(Exception):
        Measurement.model_validate({**rows[0].model_dump(), "surprise": 1})
