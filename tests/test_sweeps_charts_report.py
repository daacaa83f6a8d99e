"""Sweeps (k2calc.sweeps), chart builders (k2calc.charts) and the report (k2calc.report).

The sweeps only arrange what the core computes, so the tests check the shape a buyer relies on:
speed falls per user and rises in total with users, never above the roofline; fewer sequences fit
as they grow; the model and hardware comparisons give the verdicts the memory golden values imply; every chart has
units on its numeric axes and serialises; the reports carry the scenario and every assumption's source.
"""

from __future__ import annotations

import html
import io
import json
import re
import subprocess
import sys

import pandas as pd
import plotly.graph_objects as go
import pytest

from k2calc import charts, sweeps
from k2calc.cost import assumption_sources
from k2calc.estimate import estimate
from k2calc.report import report_html, report_json, report_markdown, tables_csv
from k2calc.scenario import Scenario
from k2calc.sensitivity import Swing, sensitivity
from k2calc.units import GB

SCENARIOS = {
    "8x h200": Scenario(),
    "2x mac": Scenario(hardware="mac-studio-m3-ultra-512gb", count=2),
    "hybrid": Scenario(hardware="rtx-4090", count=2, cpu="xeon-platinum-8488c", ram_gb=2048),
    "minimax 4x mi300x": Scenario(model="minimax-m2", hardware="mi300x", count=4, engine="sglang"),
}


@pytest.fixture(scope="module")
def k2_estimate():
    return estimate(Scenario(concurrency=8))


# ------------------------------------------------------------------------------------------------
# Sweeps
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_speed_curve_shape(name):
    curve = sweeps.speed_curve(SCENARIOS[name])
    assert list(curve["concurrency"]) == sorted(curve["concurrency"]) and curve["concurrency"].iloc[0] == 1
    user = list(curve["per_user_tok_s"])
    assert all(b <= a * (1 + 1e-9) for a, b in zip(user, user[1:])), "per-user speed rises with users"
    assert (curve["total_tok_s"] >= curve["per_user_tok_s"] * (1 - 1e-9)).all()
    for prefix in ("per_user", "total"):
        value, low, high = curve[f"{prefix}_tok_s"], curve[f"{prefix}_low_tok_s"], curve[f"{prefix}_high_tok_s"]
        assert (low < value).all() and (value < high).all()
        assert (value <= curve[f"roofline_{prefix}_tok_s"]).all() and (high <= curve[f"roofline_{prefix}_tok_s"]).all()
    assert (curve["ttft_s"] > 0).all()
    # the default sweep runs past the last concurrency that fits, so the chart shows where memory ends
    assert curve["fits"].iloc[0] and not curve["fits"].iloc[-1]


def test_speed_curve_explicit_points_and_scenario_point():
    s = Scenario(concurrency=3)
    curve = sweeps.speed_curve(s, [8, 1, 3])
    assert list(curve["concurrency"]) == [1, 3, 8]
    e = estimate(s)
    row = curve.set_index("concurrency").loc[3]
    assert row["per_user_tok_s"] == pytest.approx(e.performance.decode_tokens_per_s_per_user)
    assert row["total_tok_s"] == pytest.approx(e.performance.decode_tokens_per_s_total)
    assert 3 in sweeps.speed_curve(s)["concurrency"].values


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_context_curve_monotone(name):
    curve = sweeps.context_curve(SCENARIOS[name])
    assert list(curve.columns) == ["context_tokens", "max_concurrency", "kv_capacity_tokens", "fits_at_concurrency"]
    conc = list(curve["max_concurrency"])
    assert all(b <= a for a, b in zip(conc, conc[1:]))
    assert SCENARIOS[name].context in curve["context_tokens"].values
    # fits at the scenario's concurrency exactly where that many sequences fit
    assert (curve["fits_at_concurrency"] == (curve["max_concurrency"] >= SCENARIOS[name].concurrency)).all()


def test_published_points_same_model_and_class():
    pts = sweeps.published_points(Scenario())
    assert len(pts) and set(pts.columns) >= {"id", "metric", "concurrency", "measured", "predicted", "unit",
                                              "source", "same_hardware"}
    assert pts["same_hardware"].any()
    assert all(pts["id"].str.startswith(("k25-", "k2t-")))  # Kimi K2 (Thinking/2.5) rows only
    assert sweeps.published_points(Scenario(model="llama-3.1-8b", hardware="h200-sxm", count=1)).empty


def test_compare_models_k2_vs_m2_on_8x_h200():
    s = Scenario(hardware="h200-sxm", count=8, context=131072)
    df = sweeps.compare_models(s, ["kimi-k2-thinking", "kimi-k2-instruct", "minimax-m2"]).set_index("model_id")
    assert bool(df.loc["kimi-k2-thinking", "fits"]) and bool(df.loc["minimax-m2", "fits"])
    assert not df.loc["kimi-k2-instruct", "fits"]
    assert df.loc["kimi-k2-instruct", "devices_needed"] == 16
    assert df.loc["kimi-k2-instruct", "reason"]
    assert df.loc["minimax-m2", "weights_gb"] == pytest.approx(230, abs=3)
    assert df.loc["kimi-k2-thinking", "weights_gb"] == pytest.approx(594, abs=2)
    assert df.loc["kimi-k2-thinking", "kv_bytes_per_token"] == 70272
    assert df.loc["kimi-k2-thinking", "devices_needed"] <= 8
    for model in df.index:
        assert df.loc[model, "per_user_tok_s"] > 0 and df.loc[model, "usd_per_mtok_output"] > 0
        assert df.loc[model, "api_usd_per_mtok_output"] > 0  # all three have an API price


def test_compare_models_quant_override_and_bad_ids():
    s = Scenario(quant="q4_k_m", engine="llama.cpp", hardware="mac-studio-m3-ultra-512gb", count=2)
    df = sweeps.compare_models(s, ["kimi-k2-thinking", "no-such-model"]).set_index("model_id")
    assert df.loc["kimi-k2-thinking", "quant"] == "q4_k_m"
    assert not df.loc["no-such-model", "fits"] and "unknown model" in df.loc["no-such-model", "reason"]


def test_compare_hardware_defaults_for_k2_thinking():
    df = sweeps.compare_hardware(Scenario(model="kimi-k2-thinking"))
    by = df.set_index("label")
    assert list(df["label"]) == [c["label"] for c in sweeps.DEFAULT_HARDWARE_CONFIGS]
    assert by.loc["8x H200", "fits"] and by.loc["2x Mac Studio 512 GB", "fits"]
    assert not by.loc["1x DGX Spark", "fits"] and not by.loc["1x Mac Studio 512 GB", "fits"]
    assert by.loc["1x DGX Spark", "reason"]
    assert set(df["klass"]) == set(charts.CLASS_COLOURS)
    assert by.loc["8x H200", "klass"] == "GPU server"
    assert by.loc["hybrid 2x RTX 4090 + 2x Xeon 8488C, 2 TB", "klass"] == "hybrid CPU+GPU"
    front = df[df["pareto"]]
    assert len(front) and front["fits"].all()
    fitting = df[df["fits"]]
    for _, p in front.iterrows():  # nobody is both cheaper and faster than a Pareto row
        assert not ((fitting["usd_per_mtok_output"] <= p["usd_per_mtok_output"])
                    & (fitting["per_user_tok_s"] >= p["per_user_tok_s"])
                    & ((fitting["usd_per_mtok_output"] < p["usd_per_mtok_output"])
                       | (fitting["per_user_tok_s"] > p["per_user_tok_s"]))).any()
    for _, r in fitting[~fitting["pareto"]].iterrows():  # everyone else is beaten by someone
        assert ((fitting["usd_per_mtok_output"] <= r["usd_per_mtok_output"])
                & (fitting["per_user_tok_s"] >= r["per_user_tok_s"])).sum() > 1


def test_compare_hardware_errors_kept_and_catalog_added():
    configs = [{"label": "bad", "hardware": "no-such-gpu", "count": 8},
               {"label": "8x H200", "hardware": "h200-sxm", "count": 8}]
    df = sweeps.compare_hardware(Scenario(), configs, include_catalog=True)
    bad = df.set_index("label").loc["bad"]
    assert not bad["fits"] and "unknown hardware" in bad["reason"]
    assert df["hardware"].isin(["b200", "mac-studio-m3-ultra-512gb", "dgx-spark"]).sum() == 3
    extra = df[df["hardware"] == "b200"].iloc[0]
    assert extra["fits"] and extra["count"] >= 4


def test_compare_hardware_resets_hardware_specific_settings():
    s = Scenario(hardware_price_usd=1.0, tp=4, pp=2, engine="sglang", dp_attention=True)
    by = sweeps.compare_hardware(s).set_index("label")
    assert by.loc["2x Mac Studio 512 GB", "fits"]  # mlx-lm, not SGLang's DP attention
    assert by.loc["8x B200", "capex_usd"] > 100_000  # the H200 price override does not leak


def test_cumulative_cost_and_breakeven(k2_estimate):
    df = sweeps.cumulative_cost(k2_estimate, months=36)
    c = k2_estimate.cost
    assert list(df["month"]) == list(range(37))
    assert df["buy_usd"].iloc[0] == pytest.approx(c.capex_usd)
    assert df["buy_usd"].iloc[12] == pytest.approx(c.capex_usd + 12 * c.monthly_own_usd)
    assert df["api_usd"].iloc[10] == pytest.approx(10 * c.monthly_api_usd)
    assert "rent_usd" in df
    mac = estimate(Scenario(hardware="mac-studio-m3-ultra-512gb", count=2))
    assert "rent_usd" not in sweeps.cumulative_cost(mac)  # no cloud rental of Macs
    # a cheap box against a dear API: the chart's break-even matches the cost model's
    cheap = estimate(Scenario(hardware="mac-studio-m3-ultra-512gb", count=2, monthly_output_tokens=2e8,
                              electricity_usd_per_kwh=0.0, hosting_usd_per_kw_month=0.0))
    assert 0 < cheap.cost.breakeven_months < 60  # the crossing is inside the chart's five years
    d = sweeps.cumulative_cost(cheap)
    month = charts._crossing(list(d["month"]), list(d["buy_usd"]), list(d["api_usd"]))
    assert month == pytest.approx(cheap.cost.breakeven_months, rel=1e-6)


def test_tornado_base_recovered_from_linear_swings(k2_estimate):
    rows = sensitivity(k2_estimate.scenario)
    df = sweeps.tornado(rows)
    assert list(df.columns)[:6] == ["assumption", "low_label", "high_label", "usd_per_mtok_low",
                                    "usd_per_mtok_high", "base_usd_per_mtok"]
    assert df["base_usd_per_mtok"].iloc[0] == pytest.approx(k2_estimate.cost.usd_per_million_output_tokens, rel=1e-9)
    spans = (df["usd_per_mtok_high"] - df["usd_per_mtok_low"]).abs().fillna(0)
    assert list(spans) == sorted(spans, reverse=True)
    given = sweeps.tornado([Swing("x", "lo", "hi", 1.0, 3.0, None, None)], base_usd_per_mtok=2.5)
    assert given["base_usd_per_mtok"].iloc[0] == 2.5


# ------------------------------------------------------------------------------------------------
# Charts
# ------------------------------------------------------------------------------------------------

UNIT = re.compile(r"\[[^\]]+\]")


def _check_axes(fig: go.Figure) -> None:
    """Every titled axis names its unit in brackets; every numeric axis is titled; the figure serialises."""
    assert isinstance(fig, go.Figure)
    layout = fig.to_plotly_json()["layout"]
    titled = 0
    for name, axis in layout.items():
        if not re.fullmatch(r"[xy]axis\d*", name):
            continue
        title = (axis.get("title") or {}).get("text")
        if title:
            titled += 1
            assert UNIT.search(title), f"{name} title '{title}' has no [unit]"
        elif axis.get("type") != "category" and axis.get("showticklabels", True):
            # an untitled axis must be categorical (device, model or assumption names)
            used = [t for t in fig.data if (t.xaxis if name[0] == "x" else t.yaxis) == name[0] + name[5:]]
            values = [v for t in used for v in ((t.x if name[0] == "x" else t.y) or ())]
            assert all(isinstance(v, str) for v in values), f"{name} is numeric but untitled"
    assert titled >= 1
    assert "data" in json.loads(fig.to_json())
    # theme-neutral: no hard-coded opaque background
    assert layout.get("paper_bgcolor") == "rgba(0,0,0,0)" and layout.get("plot_bgcolor") == "rgba(0,0,0,0)"


def test_every_chart_has_units_and_serialises(k2_estimate):
    s = k2_estimate.scenario
    figures = [
        charts.memory_per_device(k2_estimate.memory),
        charts.speed_vs_concurrency(sweeps.speed_curve(s), sweeps.published_points(s)),
        charts.speed_vs_concurrency(sweeps.speed_curve(s, [1, 2, 4])),
        charts.concurrency_vs_context(sweeps.context_curve(s), context=s.context, concurrency=s.concurrency),
        charts.cost_breakdown(k2_estimate),
        charts.compare_models_chart(sweeps.compare_models(Scenario(context=131072),
                                                          ["kimi-k2-thinking", "kimi-k2-instruct", "minimax-m2"])),
        charts.hardware_scatter(sweeps.compare_hardware(s)),
        charts.cumulative_cost_chart(sweeps.cumulative_cost(k2_estimate)),
        charts.tornado_chart(sweeps.tornado(sensitivity(s))),
        charts.measured_vs_predicted(),
    ]
    for fig in figures:
        _check_axes(fig)


def test_memory_chart_short_labels_and_over_capacity():
    e = estimate(Scenario(model="kimi-k2-instruct"))  # does not fit on 8x H200
    fig = charts.memory_per_device(e.memory)
    assert list(fig.data[0].x) == [f"GPU {i}" for i in range(8)]
    assert any(t.name == "over capacity" for t in fig.data)
    hybrid = estimate(SCENARIOS["hybrid"])
    fig = charts.memory_per_device(hybrid.memory)
    labels = [x for t in fig.data if t.name == "weights" for x in t.x]
    assert labels[:2] == ["GPU 0", "GPU 1"] and labels[-1].startswith("System RAM")
    # 2 TiB of RAM beside 24 GiB GPUs: a panel each, so the GPUs' bars are not flat at zero
    axes = {t.xaxis for t in fig.data if t.name == "weights"}
    assert axes == {"x", "x2"} and fig.layout.yaxis2.title.text == "system RAM [GiB]"


def test_speed_chart_markers_and_unfit_region():
    s = Scenario()
    fig = charts.speed_vs_concurrency(sweeps.speed_curve(s), sweeps.published_points(s))
    names = [t.name for t in fig.data if t.name]
    assert any(n.startswith("published, same hardware") for n in names)
    assert any("roofline" in n for n in names) and any("band" in n for n in names)
    assert fig.layout.xaxis.type == "log"
    assert any(shape.type == "rect" for shape in fig.layout.shapes)  # memory runs out within the sweep


def test_colours_fixed_per_model_and_class():
    strong = [charts.MODEL_COLOURS[m] for m in ("kimi-k2-thinking", "kimi-k2-instruct", "minimax-m2")]
    assert len(set(strong)) == 3
    assert charts.model_colour("kimi-k2-thinking") == charts.MODEL_COLOURS["kimi-k2-thinking"]
    imported = charts.model_colour("my-imported-model")  # not in the catalog: a colour from the spare set
    assert imported in charts._EXTRA_COLOURS and imported not in charts.MODEL_COLOURS.values()
    again = subprocess.run([sys.executable, "-c", "from k2calc.charts import model_colour; "
                            "print(model_colour('my-imported-model'))"], capture_output=True, text=True)
    assert again.stdout.strip() == imported  # the same in another process (no salted hash)
    df = sweeps.compare_hardware(Scenario())
    fig = charts.hardware_scatter(df)
    classes = {t.name: t.marker.color for t in fig.data if t.name in charts.CLASS_COLOURS}
    assert classes == charts.CLASS_COLOURS  # every class is drawn, each in its own colour
    cm = charts.compare_models_chart(sweeps.compare_models(Scenario(), ["minimax-m2"]))
    assert cm.data[0].marker.color == charts.MODEL_COLOURS["minimax-m2"]


def test_charts_without_cost():
    e = estimate(Scenario(hardware="h200-sxm", hardware_price_usd=None, model="kimi-k2-thinking"))
    no_cost = e.model_copy(update={"cost": None})
    for fig in (charts.cost_breakdown(no_cost), charts.cumulative_cost_chart(sweeps.cumulative_cost(no_cost))):
        _check_axes(fig)
        assert "no cost" in fig.layout.annotations[0].text


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def test_report_markdown_lists_every_assumption(k2_estimate):
    md = report_markdown(k2_estimate, share_url="?concurrency=8")
    assert "Kimi K2 Thinking" in md and "NVIDIA H200 SXM 141GB" in md and "FITS" in md
    for key, a in assumption_sources().items():
        assert key in md
        assert a.date in md
    assert "?concurrency=8" in md
    assert "server/nvidia-hopper" in md  # calibration class
    assert "Moonshot" in md  # API price row with its provider
    assert "aiinframap.com" in md  # hardware price source
    assert "vLLM" in md  # engine memory policy
    assert "$" not in md.replace("\\$", "")  # dollar signs escaped (Streamlit reads $...$ as LaTeX)


def test_report_markdown_not_fitting():
    e = estimate(Scenario(model="kimi-k2-instruct"))
    md = report_markdown(e)
    assert "Does not fit" in md and "Smallest that fits: 16 x NVIDIA H200" in md


EVIL = "<script>alert(1)</script>|*x*"


def _evil_estimate():
    from k2calc.hardware import Hardware
    from k2calc.scenario import Catalogs
    from k2calc.units import GiB

    device = Hardware(id="evil-gpu", name=EVIL, kind="gpu", vendor="NVIDIA", memory_bytes=192 * GiB,
                      memory_bandwidth_gb_per_s=4000, bf16_dense_tflops=1000, tdp_watts=800, price_usd=30000,
                      price_date="2026-01", status="unverified", source=EVIL)
    catalogs = Catalogs(hardware={"evil-gpu": device})
    return estimate(Scenario(model="llama-3.1-8b", hardware="evil-gpu", count=2), catalogs)


def test_user_text_is_escaped_in_the_markdown_and_html_downloads():
    e = _evil_estimate()
    md = report_markdown(e, share_url="?x=<b>")
    # no tag survives and no Markdown control character is left active
    assert "<script" not in md.lower() and "</script" not in md.lower() and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\|\\*x\\*" in md
    tables: list[list[int]] = [[]]
    for line in md.splitlines():  # every table keeps its column count: the name's | is escaped
        if line.startswith("|"):
            tables[-1].append(len(re.findall(r"(?<!\\)\|", line)))
        elif tables[-1]:
            tables.append([])
    assert len(tables) > 3 and all(len(set(t)) <= 1 for t in tables)
    page = report_html(e)
    assert "<script>alert" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|*x*" in page
    # the scripts are plotly's: as many open as close, none with the name's text unescaped
    assert page.count("<script") == page.count("</script>")
    assert not any("<" in body.replace("<\\/", "") and "alert" in body
                   for body in re.findall(r"<script[^>]*>(.*?)</script>", page, re.S)[1:])


def test_markdown_escape_keeps_ordinary_text_readable():
    from k2calc.report import _md_escape

    assert _md_escape("electricity_usd_per_kwh 1.5 GiB, 12 x H200") == "electricity_usd_per_kwh 1.5 GiB, 12 x H200"
    assert _md_escape("_a_ [x](javascript:1) `c` ~~d~~ R&D") == \
        "\\_a\\_ \\[x\\](javascript:1) \\`c\\` \\~\\~d\\~\\~ R&amp;D"
    assert _md_escape("# h") == "\\# h" and _md_escape("- i") == "\\- i" and _md_escape("1. i") == "1\\. i"


def test_report_html_standalone(k2_estimate):
    page = report_html(k2_estimate, share_url="?concurrency=8")
    assert page.lstrip().startswith("<!DOCTYPE html>") and "<html" in page
    text = html.unescape(page)
    assert "Kimi K2 Thinking" in text and "NVIDIA H200 SXM 141GB" in text and "8 x NVIDIA H200" in text
    assert "FITS" in text
    for a in assumption_sources().values():
        assert a.source in text
    # plotly.js inline once (no CDN), so the file works offline
    assert page.count("plotly.js v") == 1
    scripts = re.findall(r"<script[^>]*>", page)
    assert not any("src=" in s for s in scripts)
    head = page[:200_000]
    assert "<script" in page and ("plotly" in head.lower() or "Plotly" in page)
    assert page.count('class="plotly-graph-div"') == 3  # memory, speed, cost
    assert "@media print" in page


def test_report_html_custom_figures_and_not_fitting():
    e = estimate(Scenario(model="kimi-k2-instruct"))
    figs = {"memory": charts.memory_per_device(e.memory), "tornado": charts.tornado_chart(sweeps.tornado(
        [Swing("x", "lo", "hi", 1.0, 3.0, None, None)], 2.0))}
    page = report_html(e, figures=figs)
    assert "Does not fit" in page and page.count('class="plotly-graph-div"') == 2
    assert page.count("<h2>Charts</h2>") == 1  # the tornado has no section of its own
    empty = report_html(e, figures={})
    assert "plotly-graph-div" not in empty and "Kimi K2 Instruct" in empty


def test_report_json_round_trip(k2_estimate):
    data = json.loads(report_json(k2_estimate, share_url="?concurrency=8"))
    assert data["fits"] is True and data["share_url"] == "?concurrency=8"
    assert set(assumption_sources()) <= set(data["assumptions_sources"])
    assert data["assumptions_sources"]["pue"]["source"]
    assert data["memory"]["weights_bytes"] == k2_estimate.memory.weights_bytes
    assert data["other_sources"]["api_price"]["provider"] == "Moonshot"


def test_tables_csv_parse_back(k2_estimate):
    tables = tables_csv(k2_estimate)
    assert set(tables) == {"memory_per_device.csv", "speeds.csv", "cost.csv", "assumptions.csv"}
    frames = {k: pd.read_csv(io.StringIO(v)) for k, v in tables.items()}
    mem = frames["memory_per_device.csv"]
    assert len(mem) == 8 and mem["weights_bytes"].sum() == sum(d.weights_bytes for d in k2_estimate.memory.devices)
    assert mem["weights_gib"].iloc[0] == pytest.approx(mem["weights_bytes"].iloc[0] / 2**30, abs=1e-3)
    speeds = frames["speeds.csv"].set_index("metric")
    assert speeds.loc["decode_tokens_per_s_per_user", "value"] == pytest.approx(
        k2_estimate.performance.decode_tokens_per_s_per_user)
    cost = frames["cost.csv"].set_index("item")
    assert cost.loc["capex_usd", "value"] == pytest.approx(k2_estimate.cost.capex_usd)
    assumptions = frames["assumptions.csv"]
    assert set(assumption_sources()) <= set(assumptions["key"])


def test_weights_unit_is_gb():
    df = sweeps.compare_models(Scenario(), ["kimi-k2-thinking"])
    assert df["weights_gb"].iloc[0] == pytest.approx(estimate(Scenario()).memory.weights_bytes / GB)
