"""Tests for the hardware catalog (data/hardware.csv) and its loader (k2calc/hardware.py)."""

from __future__ import annotations

import csv
import io

import pytest
from pydantic import ValidationError

from k2calc.errors import CatalogError, K2CalcError, UnknownIdError
from k2calc.hardware import (
    COLUMNS,
    DEFAULT_PATH,
    DTYPES,
    Hardware,
    get_hardware,
    load_hardware,
    parse_hardware_csv,
)
from k2calc.units import GB, TERA, MiB

REQUIRED = {
    "h100-sxm": "gpu", "h200-sxm": "gpu", "h800": "gpu", "b100": "gpu", "b200": "gpu",
    "mi300x": "gpu", "mi325x": "gpu", "mi355x": "gpu", "l20": "gpu", "rtx-3090": "gpu",
    "rtx-4090": "gpu", "rtx-4090-48gb": "gpu", "rtx-5090": "gpu", "rtx-pro-6000": "gpu",
    "dgx-spark": "system", "mac-studio-m3-ultra-512gb": "system", "mac-studio-m3-ultra-256gb": "system",
    "xeon-platinum-8488c": "cpu", "xeon-gold-6454s": "cpu", "xeon-6980p": "cpu",
    "epyc-9355": "cpu", "epyc-9654": "cpu", "epyc-9965": "cpu",
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, Hardware]:
    return load_hardware()


# ---------------------------------------------------------------- the real catalog

def test_header_is_exactly_the_documented_columns_in_order():
    with DEFAULT_PATH.open(newline="") as f:
        assert tuple(next(csv.reader(f))) == COLUMNS
    assert COLUMNS[:4] == ("id", "name", "kind", "vendor") and COLUMNS[-1] == "notes" and len(COLUMNS) == 37


@pytest.mark.parametrize("hw_id, kind", sorted(REQUIRED.items()))
def test_required_ids_present_with_kind(catalog, hw_id, kind):
    assert catalog[hw_id].kind == kind


def test_golden_values(catalog):
    assert catalog["h200-sxm"].memory_bytes == 143771 * 2**20 == 150_754_820_096
    assert catalog["h200-sxm"].memory_marketing_gb == 141
    assert catalog["h100-sxm"].memory_bytes == 81559 * MiB
    assert catalog["b200"].memory_bandwidth_gb_per_s == 8000
    assert catalog["b200"].memory_bandwidth_bytes_per_s == 8e12
    assert catalog["mac-studio-m3-ultra-512gb"].memory_bytes == 549_755_813_888
    assert catalog["mac-studio-m3-ultra-256gb"].memory_bytes == 256 * 2**30
    # The OS and CUDA see 121.7 GiB of the 128 GB (MemTotal = CUDA total_memory, unsloth PR 10486).
    assert catalog["dgx-spark"].memory_bytes == 130_663_006_208
    assert catalog["rtx-4090"].memory_bytes == 24564 * MiB
    assert catalog["mac-studio-m3-ultra-512gb"].memory_bandwidth_gb_per_s == 819
    assert catalog["dgx-spark"].memory_bandwidth_gb_per_s == 273


def test_cpu_bandwidth_is_per_socket_channels_times_rate(catalog):
    x = catalog["xeon-platinum-8488c"]
    assert x.memory_bandwidth_gb_per_s == pytest.approx(8 * 4800 * 8 / 1000)  # 307.2 GB/s
    assert x.memory_bandwidth_bytes_per_s == pytest.approx(307.2e9)
    assert catalog["epyc-9654"].memory_bandwidth_gb_per_s == pytest.approx(460.8)
    for hw in catalog.values():
        if hw.is_cpu:
            assert hw.memory_bytes is None
            assert hw.memory_bandwidth_gb_per_s == pytest.approx(hw.memory_channels * hw.memory_mt_per_s * 8 / 1000)
            assert hw.cores and hw.max_sockets and hw.matrix_isa
            assert hw.status == "derived"


def test_every_gpu_and_system_has_memory_bandwidth_and_a_dated_price(catalog):
    for hw in catalog.values():
        if hw.is_cpu:
            continue
        assert hw.memory_bytes > 0 and hw.memory_bandwidth_gb_per_s > 0, hw.id
        assert hw.memory_marketing_gb, hw.id
        # real capacity is within a few percent of the label, in GiB (binary) terms
        assert 0.9 < hw.memory_bytes / (hw.memory_marketing_gb * 2**30) <= 1.07, hw.id
        priced = hw.price_usd is not None and hw.price_date is not None
        unpriced = hw.price_usd is None and (hw.price_source or "").lower().startswith("unpriced")
        assert priced or unpriced, hw.id


def test_rows_are_sourced_and_unverified_prices_say_so(catalog):
    for hw in catalog.values():
        assert hw.source and hw.notes, hw.id
        if hw.price_usd is not None:
            assert hw.price_source, hw.id
        if hw.cloud_usd_per_hour is not None:
            assert hw.cloud_date and hw.cloud_source, hw.id
    for hw_id in ("h800", "b100", "mi300x", "mi325x", "mi355x", "l20", "rtx-4090-48gb"):
        assert "unverified" in catalog[hw_id].price_source, hw_id
    assert "not an NVIDIA SKU" in catalog["rtx-4090-48gb"].notes


def test_peak_flops_per_dtype(catalog):
    h200 = catalog["h200-sxm"]
    assert h200.peak_flops_per_s("bf16") == pytest.approx(989.5 * TERA)
    assert h200.peak_flops_per_s("fp16") == h200.peak_flops_per_s("bf16")
    assert h200.peak_flops_per_s("fp8") == pytest.approx(1979 * TERA)
    assert h200.peak_flops_per_s("fp4") is None  # Hopper has no FP4
    assert catalog["b200"].peak_flops_per_s("fp4") == pytest.approx(9000 * TERA)
    assert catalog["mac-studio-m3-ultra-512gb"].peak_flops_per_s("int8") is None
    for dtype in DTYPES:
        value = catalog["rtx-4090"].peak_flops_per_s(dtype)
        assert value is None or value > 1e12
    with pytest.raises(UnknownIdError):
        h200.peak_flops_per_s("fp64")


def test_units_and_flags(catalog):
    h100 = catalog["h100-sxm"]
    assert h100.link_bytes_per_s == 450 * GB  # NVLink4, per direction
    # Thunderbolt 5 RDMA between Macs: 75.0 Gb/s measured of 80 Gb/s per direction = 9.4 GB/s.
    assert catalog["mac-studio-m3-ultra-512gb"].link_gb_per_s == 9.4
    assert h100.is_gpu and not h100.is_cpu and not h100.is_system
    assert catalog["dgx-spark"].is_system and catalog["epyc-9654"].is_cpu


def test_frozen_model(catalog):
    with pytest.raises(ValidationError):
        catalog["h200-sxm"].price_usd = 1.0
    cheaper = catalog["h200-sxm"].model_copy(update={"price_usd": 30000.0})
    assert cheaper.price_usd == 30000 and catalog["h200-sxm"].price_usd == 35000


def test_default_load_is_cached_and_copies_are_independent(catalog):
    first = load_hardware()
    first.pop("h200-sxm")
    assert "h200-sxm" in load_hardware()
    assert load_hardware()["b200"] is load_hardware()["b200"]
    assert load_hardware(DEFAULT_PATH) == load_hardware()


def test_get_hardware():
    assert get_hardware("h200-sxm").name.startswith("NVIDIA H200")
    assert get_hardware(" H200-SXM ").id == "h200-sxm"
    with pytest.raises(UnknownIdError) as info:
        get_hardware("h200")
    assert "h200-sxm" in str(info.value)
    assert isinstance(info.value, K2CalcError)
    with pytest.raises(UnknownIdError):
        get_hardware("h200-sxm", catalog={})


# ---------------------------------------------------------------- broken CSV text

def _real_rows() -> list[dict[str, str]]:
    with DEFAULT_PATH.open(newline="") as f:
        return list(csv.DictReader(f))


def _csv(rows: list[dict[str, str]], columns=COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _two_rows(**changes: str) -> str:
    """h100-sxm on line 2, a copy of h200-sxm with ``changes`` on line 3."""
    by_id = {r["id"]: r for r in _real_rows()}
    return _csv([by_id["h100-sxm"], {**by_id["h200-sxm"], **changes}])


def test_real_rows_round_trip():
    assert parse_hardware_csv(_csv(_real_rows())) == load_hardware()
    assert set(parse_hardware_csv(_two_rows())) == {"h100-sxm", "h200-sxm"}


@pytest.mark.parametrize("column, value, words", [
    ("memory_bandwidth_gb_per_s", "-4800", "greater than or equal to 0.1"),
    ("memory_bandwidth_gb_per_s", "fast", "number"),
    ("memory_bytes", "141 GB", "integer"),
    ("memory_bytes", "", "required for kind 'gpu'"),
    ("kind", "tpu", "'gpu'"),
    ("status", "probably", "'verified'"),
    ("id", "H200 SXM", "pattern"),
    ("price_date", "mid-2026", "pattern"),
    ("price_date", "", "required when price_usd is given"),
    ("bf16_dense_tflops", "nan", "finite"),
    ("typical_watts", "900", "exceeds tdp_watts"),
    ("link", "", "link name"),
])
def test_bad_cell_names_line_and_column(column, value, words):
    changes = {column: value}
    if column == "link":
        column = "link_gb_per_s"
    with pytest.raises(CatalogError) as info:
        parse_hardware_csv(_two_rows(**changes), source_name="hardware.csv")
    message = str(info.value)
    assert message.startswith(f"hardware.csv line 3, column '{column}': "), message
    assert words in message, message
    assert "\n" not in message


def test_cpu_rows_need_cpu_columns_and_no_memory():
    by_id = {r["id"]: r for r in _real_rows()}
    cpu = by_id["epyc-9654"]
    for column in ("cores", "memory_channels", "memory_mt_per_s", "max_sockets"):
        with pytest.raises(CatalogError, match=rf"line 2, column '{column}': required for kind 'cpu'"):
            parse_hardware_csv(_csv([{**cpu, column: ""}]))
    with pytest.raises(CatalogError, match=r"line 2, column 'memory_bytes': must be empty"):
        parse_hardware_csv(_csv([{**cpu, "memory_bytes": "1000"}]))
    with pytest.raises(CatalogError, match=r"memory_bandwidth_gb_per_s 999 should be"):
        parse_hardware_csv(_csv([{**cpu, "memory_bandwidth_gb_per_s": "999"}]))


def test_duplicate_id():
    by_id = {r["id"]: r for r in _real_rows()}
    text = _csv([by_id["h100-sxm"], by_id["h200-sxm"], by_id["b200"], by_id["h200-sxm"]])
    with pytest.raises(CatalogError, match=r"line 5, column 'id': duplicate id 'h200-sxm' \(first on line 3\)"):
        parse_hardware_csv(text)


def test_header_problems():
    rows = _real_rows()[:2]
    without = [c for c in COLUMNS if c != "kind"]
    with pytest.raises(CatalogError, match=r"hardware.csv line 1 \(header\): missing column\(s\) 'kind'"):
        parse_hardware_csv(_csv(rows, without))
    with pytest.raises(CatalogError, match=r"line 1 \(header\): unknown column\(s\) 'vram'"):
        parse_hardware_csv(_csv(rows, COLUMNS + ("vram",)))
    with pytest.raises(CatalogError, match="empty file"):
        parse_hardware_csv("")


def test_ragged_row_and_multiline_cell_line_numbers():
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([COLUMNS, list(_real_rows()[0].values()), list(_real_rows()[1].values())[:-1]])
    with pytest.raises(CatalogError, match=r"line 3, column 'notes': expected 37 cells, got 36"):
        parse_hardware_csv(out.getvalue())
    # a quoted cell spanning two lines: the next row's error still names its own first line
    by_id = {r["id"]: r for r in _real_rows()}
    text = _csv([{**by_id["h100-sxm"], "notes": "two\nlines"}, {**by_id["h200-sxm"], "kind": "tpu"}])
    with pytest.raises(CatalogError, match=r"line 4, column 'kind'"):
        parse_hardware_csv(text)


def test_blank_lines_are_skipped_and_missing_file_is_a_catalog_error(tmp_path):
    assert len(parse_hardware_csv(_two_rows() + "\n\n")) == 2
    with pytest.raises(CatalogError, match=r"nope\.csv: cannot read .*No such file"):
        load_hardware(tmp_path / "nope.csv")
    good = tmp_path / "hw.csv"
    good.write_text(_two_rows(memory_bytes="x"))
    with pytest.raises(CatalogError, match=r"^hw.csv line 3, column 'memory_bytes'"):
        load_hardware(good)
