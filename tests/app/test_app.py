"""The Streamlit app through streamlit.testing.v1.AppTest: every page runs, widgets change figures,
links seed the scenario, a broken link warns, downloads are produced."""

import json
from pathlib import Path

import pytest
from apptest import open_app
from streamlit.proto.Metric_pb2 import Metric as MetricProto
from streamlit.testing.v1 import AppTest

from k2calc.estimate import estimate
from k2calc.hardware import Hardware
from k2calc.links import from_query, share_query, to_query
from k2calc.models import parse_config_json
from k2calc.scenario import Catalogs, Scenario
from k2calc.units import GiB

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["calculator", "compare_models", "compare_hardware", "plan", "finetune", "report", "catalog", "method"]


_app = open_app


@pytest.fixture
def app():
    return _app()


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_default_scenario_fits_and_shows_key_figures(app):
    assert "Fits" in app.success[0].value and "Kimi K2 Thinking" in app.success[0].value
    labels = [m.label for m in app.metric]
    for label in ("Weights, one replica", "KV capacity [tokens]", "Decode per user", "Limited by",
                  "Purchase (capex)", "Own cost per 1M output tokens", "API per 1M output tokens"):
        assert label in labels
    assert _metric(app, "Weights, one replica") == "594.2 GB"


def test_fewer_gpus_turns_the_verdict_and_names_the_smallest(app):
    app.sidebar.number_input(key="count").set_value(4).run()
    assert not app.exception
    assert "Does not fit" in app.error[0].value
    assert "Smallest that fits: **8 x" in app.info[0].value


def test_moving_a_slider_changes_the_figures_it_should(app):
    kv, speed = _metric(app, "Memory used, device 0"), _metric(app, "Decode total, 1 user(s)")
    app.sidebar.number_input(key="context").set_value(262144).run()
    assert _metric(app, "Memory used, device 0") != kv
    app.sidebar.number_input(key="concurrency").set_value(2).run()  # 2 x 256K fits 8x H200 (8 x 256K does not)
    assert _metric(app, "Decode total, 2 user(s)") != speed


def test_a_setup_that_does_not_fit_shows_no_speed_or_cost_and_offers_fixes(app):
    app.sidebar.number_input(key="count").set_value(4).run()
    labels = [m.label for m in app.metric]
    assert "Weights, one replica" in labels
    assert not {"Decode per user", "Time to first token", "Purchase (capex)"} & set(labels)
    fixes = [b for b in app.button if b.key and b.key.startswith("fix_")]
    assert [b.key for b in fixes] == ["fix_devices"] and "8 x NVIDIA H200" in fixes[0].label
    fixes[0].click().run()
    assert not app.exception
    assert app.session_state["scenario"].count == 8 and "Fits" in app.success[0].value


def test_a_context_too_short_for_the_request_says_so_instead_of_results(app):
    app.sidebar.number_input(key="context").set_value(1024).run()
    assert not app.exception
    assert "cannot hold the prompt (8,192) + answer (1,024) = 9,216 tokens" in app.error[0].value
    assert not app.metric


def test_the_scenario_is_mirrored_into_the_url(app):
    app.sidebar.number_input(key="concurrency").set_value(4).run()
    params = {k: v[-1] if isinstance(v, list) else v for k, v in app.query_params.items()}
    assert params["concurrency"] == "4"
    scenario, ignored = from_query(params)
    assert scenario.concurrency == 4 and not ignored


def test_a_link_seeds_the_scenario():
    s = Scenario.build(model="minimax-m2", quant="mlx-8bit", hardware="mac-studio-m3-ultra-512gb", count=1,
                       concurrency=2, utilisation=0.3)
    at = _app(to_query(s))
    assert "MiniMax M2" in at.success[0].value and "Mac Studio" in at.success[0].value
    assert at.session_state["scenario"] == s


def test_a_broken_link_warns_and_uses_defaults():
    at = _app({"model": "kimi-k2-thinkng", "count": "-3", "colour": "red"})
    assert not at.exception
    text = at.warning[0].value
    assert "kimi-k2-thinkng" in text and "count" in text and "colour" in text
    assert "Kimi K2 Thinking" in at.success[0].value  # defaults stand


def test_hybrid_toggle_places_experts_in_ram(app):
    app.sidebar.selectbox(key="hardware").set_value("rtx-4090")
    app.sidebar.number_input(key="count").set_value(2)
    app.sidebar.toggle(key="hybrid").set_value(True).run()
    assert not app.exception
    assert "Fits" in app.success[0].value
    app.session_state["calculator_tab"] = "Memory"  # only the open tab is drawn
    app.run()
    assert any("System RAM" in str(v) for v in app.dataframe[0].value["device"])


def test_invalid_combination_shows_one_error_not_an_exception(app):
    app.sidebar.number_input(key="count").set_value(3).run()
    assert not app.exception
    assert "cannot split 64 attention heads" in app.error[0].value


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_in_the_app(app, page):
    app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, app.exception
    assert app.title, "every page has a title"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_its_own(page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=120).run()
    assert not at.exception, at.exception


def test_report_page_produces_downloads(app):
    app.switch_page("pages/report.py").run()
    assert not app.exception
    buttons = {b.label for b in app.get("download_button")}
    assert {"PDF (A4)", "HTML report", "Markdown", "JSON"} <= buttons
    assert any("Kimi K2 Thinking" in m.value for m in app.markdown)


def test_a_custom_device_is_usable_and_travels_in_the_link(app):
    app.switch_page("pages/catalog.py").run()
    app.text_input(key="dev_id").set_value("lab-gpu")
    app.text_input(key="dev_name").set_value("Lab GPU 192")
    app.number_input(key="dev_mem").set_value(192.0)
    app.button[0].click().run()  # the form's submit button
    assert not app.exception
    assert any("Lab GPU 192" in s.value for s in app.success)
    app.run()  # the sidebar lists it from the next run on
    assert "Lab GPU 192 (custom)" in app.sidebar.selectbox(key="hardware").options  # labels, not ids
    app.sidebar.selectbox(key="hardware").set_value("lab-gpu").run()
    assert not app.exception
    link = {k: v[-1] if isinstance(v, list) else v for k, v in app.query_params.items()}
    assert link["hardware"] == "lab-gpu" and "custom" in link
    fresh = _app(link)  # a colleague opens the link
    assert fresh.session_state["scenario"].hardware == "lab-gpu"
    assert not fresh.warning


def test_a_bad_custom_device_is_one_error_line(app):
    app.switch_page("pages/catalog.py").run()
    app.text_input(key="dev_id").set_value("Lab GPU")  # ids are lowercase with dashes
    app.button[0].click().run()
    assert not app.exception and not app.success
    assert [e.value for e in app.error] == ["id: String should match pattern '^[a-z0-9][a-z0-9.-]*$' (got 'Lab GPU')"]


def test_a_damaged_custom_parameter_warns():
    at = _app({"custom": "not-base64!!", "concurrency": "2"})
    assert "custom models/devices could not be read" in at.warning[0].value
    assert at.session_state["scenario"].concurrency == 2


def test_finetune_page_reproduces_the_seed_configuration():
    """The seed: Kimi K2 LoRA SFT on 2x RTX 4090 + 2x Xeon 8488C with 1.97 TB of RAM (2017 GiB)."""
    at = _app({"model": "kimi-k2-instruct", "hardware": "rtx-4090", "count": "2", "cpu": "xeon-platinum-8488c",
               "ram_gb": "2017.0"})
    at.switch_page("pages/finetune.py").run()
    assert not at.exception
    assert "Fits" in at.success[0].value
    speed = float(next(m.value for m in at.metric if m.label == "Training speed").split()[0])
    assert 46.55 / 1.5 <= speed <= 46.55 * 1.5


def test_finetune_page_that_does_not_fit_shows_why_and_fixes_not_speed(app):
    """The default link (Kimi K2 Thinking on 8 x H200): LoRA needs 2 TB of BF16 weights."""
    app.switch_page("pages/finetune.py").run()
    assert not app.exception
    assert "Does not fit" in app.error[0].value and "each of 8 GPUs" in app.error[0].value
    assert not any(m.label in ("Training speed", "Run time", "Electricity (owned)") for m in app.metric)
    assert "QLoRA" in app.info[0].value and "16 x NVIDIA H200" in app.info[0].value


LAB_GPU = Hardware(id="lab-gpu", name="Lab GPU 192", kind="gpu", vendor="NVIDIA", memory_bytes=192 * GiB,
                   memory_bandwidth_gb_per_s=4000, bf16_dense_tflops=1000, tdp_watts=800, status="unverified",
                   source="test")


def test_a_custom_device_from_the_link_works_on_the_finetune_page():
    catalogs = Catalogs(hardware={"lab-gpu": LAB_GPU})
    scenario = Scenario(model="llama-3.1-8b", hardware="lab-gpu", count=2)
    at = _app(share_query(scenario, catalogs))  # the link carries the device in its `custom` parameter
    assert "Lab GPU 192 (custom)" in at.success[0].value  # the Calculator's verdict says it is custom
    at.switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    assert "Fits" in at.success[0].value
    devices = list(at.dataframe[0].value["device"])
    assert devices == ["GPU 0 (Lab GPU 192 (custom))", "GPU 1 (Lab GPU 192 (custom))"]
    assert devices == [d.name for d in estimate(scenario, catalogs).memory.devices]
    assert "Training speed" in [m.label for m in at.metric]


V2_LITE_CONFIG = {
    "architectures": ["DeepseekV2ForCausalLM"], "num_hidden_layers": 27, "hidden_size": 2048,
    "num_attention_heads": 16, "num_key_value_heads": 16, "q_lora_rank": None, "kv_lora_rank": 512,
    "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 64,
    "num_experts_per_tok": 6, "n_shared_experts": 2, "moe_intermediate_size": 1408, "intermediate_size": 10944,
    "first_k_dense_replace": 1, "vocab_size": 102400, "max_position_embeddings": 163840,
}


def test_an_imported_config_json_from_the_link_works_on_the_finetune_page():
    """DeepSeek-V2-Lite (not in the catalog) as imported on the Catalog page; its published KTransformers LoRA
    run: 530 tok/s on 1 x RTX 4090 + 2 x Xeon 8488C."""
    model = parse_config_json(json.dumps(V2_LITE_CONFIG), "deepseek-v2-lite")
    scenario = Scenario(model="deepseek-v2-lite", hardware="rtx-4090", count=1, cpu="xeon-platinum-8488c",
                        ram_gb=256)
    at = _app(share_query(scenario, Catalogs(models={model.id: model})))
    assert "deepseek-v2-lite" in at.success[0].value  # the Calculator
    at.switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    assert "Fits" in at.success[0].value and "deepseek-v2-lite" in at.success[0].value
    at.number_input(key="ft_seq").set_value(512).run()
    speed = float(next(m.value for m in at.metric if m.label == "Training speed").split()[0].replace(",", ""))
    assert 530.38 / 1.5 <= speed <= 530.38 * 1.5


def test_a_planner_option_opens_in_the_calculator(app):
    app.switch_page("pages/plan.py").run()
    assert not app.exception
    first = app.selectbox(key="plan_pick").options[0]  # e.g. "1. 2 x (8 x NVIDIA B200 (HGX, 180GB), EP8), native, buy"
    what = first.split(". ", 1)[1]
    replicas = int(what.split(" x (")[0]) if " x (" in what else 1
    app.button(key="plan_open").click().run()
    assert not app.exception
    s = app.session_state["scenario"]
    hardware = Catalogs().hardware_catalog()[s.hardware]
    assert f"{s.count} x {hardware.name}" in what  # the option names the device, not its id
    assert s.concurrency == -(-50 // replicas)  # the users one replica serves
    assert app.title[0].value.startswith("Will it fit")


# ------------------------------------------------------------------------------------------------
# What-if sliders and the pinned baseline (issue 16)
# ------------------------------------------------------------------------------------------------

def _link(at: AppTest) -> dict:
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


@pytest.mark.parametrize("field, value, figure", [
    ("concurrency", 8, "Decode per user"),
    ("context", 131072, "Memory used, device 0"),
    ("input_tokens", 16384, "Time to first token"),
    ("output_tokens", 4096, "API per 1M output tokens"),
    ("count", 16, "Purchase (capex)"),
    ("utilisation", 0.9, "Own cost per 1M output tokens"),
    ("electricity_usd_per_kwh", 0.3, "Own cost per 1M output tokens"),
    ("amortisation_years", 3.0, "Own cost per 1M output tokens"),
    ("cache_hit_rate", 0.5, "API per 1M output tokens"),
    ("hardware_price_usd", 25_000.0, "Purchase (capex)"),
    ("api_output_usd_per_mtok", 4.0, "API per 1M output tokens"),
    ("api_input_usd_per_mtok", 1.0, "API per 1M output tokens"),
])
def test_each_slider_moves_its_figure_the_exact_value_and_the_url(app, field, value, figure):
    before = _metric(app, figure)
    app.sidebar.select_slider(key=f"{field}_slider").set_value(value).run()
    assert not app.exception, app.exception
    assert getattr(app.session_state["scenario"], field) == value
    assert app.sidebar.number_input(key=field).value == value  # the exact box follows the slider
    assert _metric(app, figure) != before
    assert from_query(_link(app))[0] == app.session_state["scenario"]  # the link restores it exactly
    assert _link(app)[field] == (repr(value) if isinstance(value, float) else str(value))


def test_a_typed_value_off_the_grid_stays_exact_and_the_slider_shows_the_nearest_step(app):
    app.sidebar.number_input(key="concurrency").set_value(6).run()
    assert app.sidebar.select_slider(key="concurrency_slider").value == 8  # nearest power of two (log scale)
    assert app.session_state["scenario"].concurrency == 6 and _link(app)["concurrency"] == "6"
    app.sidebar.number_input(key="electricity_usd_per_kwh").set_value(0.137).run()
    assert app.sidebar.select_slider(key="electricity_usd_per_kwh_slider").value == 0.14
    assert app.session_state["scenario"].electricity_usd_per_kwh == 0.137
    fresh = _app(_link(app))  # the link restores the exact values, not the steps
    assert fresh.session_state["scenario"].concurrency == 6
    assert fresh.session_state["scenario"].electricity_usd_per_kwh == 0.137


def test_slider_limits_come_from_the_model_and_what_fits():
    at = _app({"model": "minimax-m2", "quant": "mlx-8bit", "hardware": "mac-studio-m3-ultra-512gb", "count": "1"})
    context = at.sidebar.select_slider(key="context_slider")
    assert context.options[-1] == "196,608"  # MiniMax M2's max_position_embeddings
    users = at.sidebar.select_slider(key="concurrency_slider").options
    scenario = at.session_state["scenario"]
    from k2calc.whatif import max_users
    assert users[-1] == f"{max_users(scenario):,}" and users[0] == "1"
    counts = at.sidebar.select_slider(key="count_slider").options
    assert "3" not in counts and counts[:3] == ["1", "2", "4"]


def test_pin_a_baseline_move_three_sliders_and_the_deltas_reconcile():
    at = _app()
    at.run()
    at.sidebar.button(key="pin_baseline").click().run()
    pinned = at.session_state["baseline"]
    assert pinned == Scenario()
    at.sidebar.select_slider(key="concurrency_slider").set_value(8).run()
    at.sidebar.select_slider(key="electricity_usd_per_kwh_slider").set_value(0.3).run()
    at.sidebar.select_slider(key="utilisation_slider").set_value(0.9).run()
    assert not at.exception, at.exception
    now = at.session_state["scenario"]
    assert (now.concurrency, now.electricity_usd_per_kwh, now.utilisation) == (8, 0.3, 0.9)
    metrics = {m.label: m for m in at.metric}

    # By hand, from the cost formula: annual cost / output tokens a year, in the baseline and now.
    def per_million(s: Scenario) -> float:
        e = estimate(s)
        c, a = e.cost, e.cost.assumptions
        avg_kw = c.power_watts / 1000 * (a["utilisation"] + a["idle_power_share"] * (1 - a["utilisation"]))
        energy = avg_kw * 8760 * a["pue"] * a["electricity_usd_per_kwh"]
        hosting = c.peak_power_watts / 1000 * a["hosting_usd_per_kw_month"] * 12
        capital = c.capex_usd * (1 - a["residual_value_pct"] / 100) / a["amortisation_years"]
        maintenance = c.capex_usd * a["maintenance_pct_per_year"] / 100
        tokens = e.performance.output_tokens_per_s_total * 3600 * 8760 * a["utilisation"]
        return (capital + energy + hosting + maintenance) / tokens * 1e6

    change = per_million(now) - per_million(pinned)
    assert change < 0  # more users, busier hardware: cheaper per token despite dearer power
    cost = metrics["Own cost per 1M output tokens"]
    assert cost.delta.startswith(f"-${abs(change):,.2f} (")
    assert cost.value == f"${per_million(now):,.2f}"
    # cheaper and faster are good: costs and times use the inverse colours (a fall shows green)
    colour = {name: MetricProto.MetricColor.Name(m.proto.color) for name, m in metrics.items()}
    assert colour["Own cost per 1M output tokens"] == "GREEN"  # fell
    assert colour["Time to first token"] == "RED"  # rose: 8 prompts queue
    assert colour["Decode total, 8 user(s)"] == "GREEN" and colour["Decode per user"] == "RED"
    assert colour["Purchase (capex)"] == "GRAY"
    assert metrics["Purchase (capex)"].delta == "no change"
    assert any("concurrency 1 -> 8" in m.value and "electricity_usd_per_kwh default -> 0.3" in m.value
               for m in at.markdown)
    # the baseline travels in the link, and a colleague's link restores both
    link = _link(at)
    assert from_query(link)[0] == now and "baseline" in link
    fresh = _app(link)
    assert fresh.session_state["baseline"] == pinned and fresh.session_state["scenario"] == now
    assert next(m for m in fresh.metric if m.label == "Own cost per 1M output tokens").delta == cost.delta
    # the speed chart shows the baseline as a faint trace
    chart = next(c for c in at.get("plotly_chart") if "Decode speed" in c.proto.spec)
    assert "baseline per user" in chart.proto.spec
    # the report compares both
    at.switch_page("pages/report.py").run()
    assert not at.exception
    report = "\n".join(m.value for m in at.markdown)
    assert "Against the pinned baseline" in report and "electricity_usd_per_kwh" in report
    assert f"-\\${abs(change):,.2f}" in report
    # clearing the baseline removes the deltas and the link parameter
    at.switch_page("pages/calculator.py").run()
    at.sidebar.button(key="clear_baseline").click().run()
    assert at.session_state["baseline"] is None and "baseline" not in _link(at)
    assert not any(m.delta for m in at.metric)


def test_a_damaged_baseline_in_the_link_warns():
    at = _app({"baseline": "###", "concurrency": "2"})
    assert "baseline could not be read" in at.warning[0].value
    assert at.session_state["scenario"].concurrency == 2 and at.session_state["baseline"] is None


def test_plan_page_site_constraints_name_what_failed(app):
    """An office room: no catalog GPU server is sourced as office-quiet, so their classes are rejected by
    the noise limit (issue 14), and the page still answers."""
    app.switch_page("pages/plan.py").run()
    app.selectbox(key="plan_noise").set_value("office")
    app.button[0].click().run()  # the form's submit button
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert "noise class datacentre, louder than office allows" in text


def test_plan_page_plans_a_finetuning_job(app):
    app.switch_page("pages/plan.py").run()
    app.multiselect(key="plan_models").set_value(["llama-3.1-8b"])
    app.button[0].click().run()
    app.number_input(key="plan_ft_tokens").set_value(1_000_000)
    app.button(key="plan_ft_go").click().run()
    assert not app.exception
    assert any("placements evaluated" in c.value for c in app.caption)


@pytest.mark.parametrize("catalog_id, hardware, count", [
    ("qwen3-next-80b-a3b", "h200-sxm", 2),   # Gated DeltaNet + full attention
    ("kimi-linear-48b", "h200-sxm", 1),      # KDA + MLA
    ("deepseek-v3.2", "h200-sxm", 8),        # DeepSeek sparse attention (indexer keys)
])
def test_an_imported_config_of_each_2026_family_runs_in_the_app(catalog_id, hardware, count):
    """A config.json of each new attention kind, imported as the Catalog page imports it (under its own
    id, carried in the link), fits and gets a speed on the Calculator like the catalog model it copies."""
    config = json.loads((ROOT / "data" / "models" / f"{catalog_id}.json").read_text())["config"]
    model = parse_config_json(json.dumps(config), f"my-{catalog_id}")
    scenario = Scenario(model=model.id, hardware=hardware, count=count, context=32768)
    at = _app(share_query(scenario, Catalogs(models={model.id: model})))
    assert model.id in at.success[0].value  # the verdict names the imported model and says it fits
    imported = estimate(scenario, Catalogs(models={model.id: model}))
    catalog = estimate(scenario.model_copy(update={"model": catalog_id}))
    assert imported.fits and catalog.fits
    assert imported.memory.kv_bytes_per_token == catalog.memory.kv_bytes_per_token
    assert imported.performance.decode_tokens_per_s_per_user == pytest.approx(
        catalog.performance.decode_tokens_per_s_per_user)


def test_the_plan_page_names_hardware_as_a_buyer_reads_it(app):
    """The ranking and the buyer's own hardware by device names (never catalog ids), buying columns first."""
    app.switch_page("pages/plan.py").run()
    assert not app.exception
    mine = next(i.value for i in app.info if i.value.startswith("Your hardware"))
    assert "the sidebar: 8 x NVIDIA H200 SXM 141GB" in mine and "h200-sxm" not in mine
    table = app.dataframe[0].value
    assert list(table.columns[:6]) == ["what to buy", "buy/rent", "$ / 1M output tokens", "capex [USD]",
                                       "break-even vs API", "tok/s per user"]
    assert not table["what to buy"].str.contains("h200-sxm|b200|mi355x").any()
    assert table["break-even vs API"].str.len().gt(0).all()  # 'never', '-' (rented) or months: never empty


def test_a_sessions_first_charts_come_after_its_key_figures(monkeypatch):
    """The first run of a session sends its plotly charts last, after one pause for the browser (it shows
    the key figures before it loads plotly's script); later runs send them in place at once. Either way
    the chart ends up in its tab and no placeholder stays."""
    from types import SimpleNamespace

    import ui

    pauses = []
    monkeypatch.setattr(ui, "time", SimpleNamespace(sleep=pauses.append))
    at = open_app()
    assert pauses == [ui.first_chart_delay_s()[0]]
    assert at.session_state["_plotly_sent"]
    assert [c for c in at.tabs[0].get("plotly_chart") if "Decode speed" in c.proto.spec]
    assert not [c for c in at.caption if "Drawing the chart" in c.value]
    at.sidebar.number_input(key="concurrency").set_value(4).run()
    assert pauses == [ui.first_chart_delay_s()[0]]  # no second pause
    assert [c for c in at.tabs[0].get("plotly_chart") if "Decode speed" in c.proto.spec]


def test_settings_in_closed_sidebar_sections_still_count_and_are_named():
    """A link with advanced and cost settings: the sections stay closed (their widgets are not drawn),
    the scenario uses every setting through later reruns and the sidebar names them."""
    at = open_app({"tp": "4", "pp": "2", "pue": "1.5", "kv_dtype": "fp8"})
    assert not [w for w in at.sidebar.number_input if w.key in ("tp_choice", "pue")]
    at.sidebar.number_input(key="concurrency").set_value(3).run()
    s = at.session_state["scenario"]
    assert (s.tp, s.pp, s.pue, s.kv_dtype, s.concurrency) == (4, 2, 1.5, "fp8", 3)
    assert "Set in the closed sections: KV cache fp8; TP 4; PP 2; PUE 1.5." in [c.value for c in at.sidebar.caption]


def test_the_method_page_shows_accuracy_on_runs_the_calibration_never_saw():
    """Beside the cross-validated figures, the holdout's: what to expect on an unpublished setup."""
    from k2calc.validate import holdout_rows, summary

    h = summary(holdout_rows())
    at = open_app()
    at.switch_page("pages/method.py").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "On runs collected after the calibration" in text
    assert f"**{h['decode_within_1_5x']:.0%}** of {h['decode_rows']}" in text
    assert f"**{h['prefill_ttft_within_2x']:.0%}** of {h['prefill_ttft_rows']}" in text


def test_a_mistyped_first_chart_pause_is_one_message(monkeypatch):
    """K2CALC_FIRST_CHART_DELAY_S that is not 0-10 seconds: the default pause and one line saying so."""
    import ui

    for raw in ("abc", "-1", "1e308", "nan"):
        monkeypatch.setenv("K2CALC_FIRST_CHART_DELAY_S", raw)
        delay, problem = ui.first_chart_delay_s()
        assert delay == ui.FIRST_CHART_DELAY_S and "not a pause of 0-10 seconds" in problem, raw
    monkeypatch.setenv("K2CALC_FIRST_CHART_DELAY_S", "0")
    assert ui.first_chart_delay_s() == (0.0, None)
