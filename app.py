"""k2calc web app: the scenario lives in the sidebar and in the URL; pages show what the core computes.

Run with ``streamlit run app.py``. Pages never compute physics: they read the Scenario this entry
point builds (``st.session_state["scenario"]``), call k2calc and display the result. Every sidebar
widget has an explicit key equal to the Scenario field it sets, and the scenario is mirrored into the
URL's query parameters, so any state is a link (k2calc.links.to_query / from_query).
"""

from __future__ import annotations

import streamlit as st

from k2calc.engines import ENGINES
from k2calc.errors import CatalogError, K2CalcError
from k2calc.hardware import load_hardware
from k2calc.links import (
    BASELINE_PARAM,
    CUSTOM_PARAM,
    baseline_from_param,
    catalogs_from_param,
    catalogs_param,
    from_query,
    physics_query,
    share_query,
)
from k2calc.memory import KV_DTYPES
from k2calc.models import load_models
from k2calc.quant import QUANT_IDS, SCHEMES
from k2calc.scenario import Catalogs, Scenario
from k2calc.whatif import COST_SCALES, workload_scales
from ui import (
    draw_pending_charts,
    leave_legacy_pages_mode,
    session_baseline,
    session_catalogs,
    slider_pair,
    start_pending_charts,
)

leave_legacy_pages_mode()

st.set_page_config(page_title="k2calc: LLM hardware calculator", page_icon=":material/calculate:", layout="wide")

DEFAULT = Scenario()
AUTO = "auto"
HELP = {
    "tp": "Tensor parallelism (TP): every layer is split across this many GPUs, which talk twice per layer.",
    "pp": "Pipeline parallelism (PP): the layers are split into this many stages, one after another.",
    "ep": "Expert parallelism (EP): whole experts of a mixture-of-experts layer are spread over GPUs.",
    "kv": "KV cache: the attention keys and values kept for every token of every sequence. MLA models "
          "(Kimi K2, DeepSeek) store one compressed latent per token and layer.",
    "context": "Tokens one sequence keeps in the KV cache: prompt plus answer.",
    "spec": "A draft proposes a few tokens, the model checks them all in one step and keeps the ones it agrees "
            "with: faster per user at small batch, less so (or slower) at large batch. Defaults by model are "
            "published acceptance rates; the speed band widens with their range.",
    "users": "Requests served at the same time, each holding its own KV cache. The slider goes up to the most "
             "that could ever fit (at the shortest context that holds one request); type any number in the box.",
}
COST_STEPS = {"utilisation": 0.05, "electricity_usd_per_kwh": 0.01, "amortisation_years": 0.5, "cache_hit_rate": 0.05}


@st.cache_data
def _catalog_labels() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Display labels for the model, hardware and CPU select boxes (file loading is cached)."""
    models = {m.id: m.name for m in load_models().values()}
    hardware = {h.id: f"{h.name}" for h in load_hardware().values() if not h.is_cpu}
    cpus = {h.id: h.name for h in load_hardware().values() if h.is_cpu}
    return models, hardware, cpus


def _extra_models() -> dict:
    return st.session_state.get("custom_models", {})


def _field_bounds(name: str) -> tuple[float | None, float | None]:
    """The scenario field's inclusive bounds (ge/le) for a number input's min and max."""
    low = high = None
    for m in Scenario.model_fields[name].metadata:
        low = float(m.ge) if getattr(m, "ge", None) is not None else low
        high = float(m.le) if getattr(m, "le", None) is not None else high
    return low, high


def _seed_from_url() -> None:
    """On a session's first run, put the link's scenario (and custom models/devices) into the state."""
    if "seeded" in st.session_state:
        return
    st.session_state["seeded"] = True
    params = st.query_params.to_dict()
    ignored: list[str] = []
    try:
        custom = catalogs_from_param(params.get(CUSTOM_PARAM))
    except K2CalcError as exc:
        custom = Catalogs()
        ignored.append(str(exc))
    st.session_state["custom_models"] = dict(custom.models)
    st.session_state["custom_hardware"] = dict(custom.hardware)
    scenario, bad = from_query(params, custom)
    baseline, bad_baseline = baseline_from_param(params.get(BASELINE_PARAM), custom)
    st.session_state["baseline"] = baseline
    st.session_state["url_warnings"] = ignored + bad + bad_baseline
    _seed_widgets(scenario)


def _seed_widgets(scenario: Scenario) -> None:
    """Put a scenario into the sidebar widgets' state (before they are drawn in this run)."""
    ss = st.session_state
    for name, value in scenario.model_dump().items():
        ss[name] = value
    device = session_catalogs().hardware_catalog().get(scenario.hardware) if scenario.hardware else None
    ss["hybrid"] = scenario.cpu is not None and device is not None and not device.is_cpu
    ss["cpu_only"] = device is not None and device.is_cpu
    for choice in ("engine_choice", "tp_choice", "pp_choice", "ep_choice", "memory_fraction_choice",
                   "wired_limit_choice"):
        ss.pop(choice, None)


def _apply_pending() -> None:
    """A page asked to open a scenario (the planner's "open in the calculator"): seed the widgets."""
    pending = st.session_state.pop("pending_scenario", None)
    if pending is not None:
        _seed_widgets(pending)


def _none_if_auto(value):
    return None if value in (AUTO, 0, 0.0) else value


def _scenario_from_state(cpu_only: bool, hybrid: bool) -> Scenario:
    """The Scenario the sidebar's widget values describe; raises K2CalcError naming a bad field."""
    ss = st.session_state
    return Scenario.build(
        model=ss["model"], quant=ss["quant"],
        hardware=ss["hardware"],
        count=1 if cpu_only else int(ss["count"]),
        nodes=1 if cpu_only else int(ss["nodes"]),
        cpu=ss.get("cpu") if hybrid else None,
        sockets=int(ss.get("sockets") or DEFAULT.sockets),
        ram_gb=float(ss["ram_gb"]) if (hybrid or cpu_only) else None,
        engine=_none_if_auto(ss["engine_choice"]), kv_dtype=ss["kv_dtype"],
        tp=_none_if_auto(ss["tp_choice"]), pp=_none_if_auto(ss["pp_choice"]),
        ep=_none_if_auto(ss["ep_choice"]), dp_attention=ss["dp_attention"],
        dcp=int(ss["dcp"]), gpu_experts=int(ss["gpu_experts"]) if hybrid else 0,
        kt_prefill=ss["kt_prefill"], context=int(ss["context"]),
        concurrency=int(ss["concurrency"]),
        input_tokens=int(ss["input_tokens"]), output_tokens=int(ss["output_tokens"]),
        memory_fraction=_none_if_auto(ss["memory_fraction_choice"]),
        wired_limit_gb=_none_if_auto(ss["wired_limit_choice"]),
        spec_method=ss.get("spec_method", "none"), spec_draft_tokens=ss.get("spec_draft_tokens"),
        spec_acceptance=ss.get("spec_acceptance"),
        **{f: ss.get(f) for f in (
            "utilisation", "electricity_usd_per_kwh", "pue", "hosting_usd_per_kw_month",
            "maintenance_pct_per_year", "amortisation_years", "residual_value_pct", "cache_hit_rate",
            "hardware_price_usd", "cloud_usd_per_hour", "monthly_output_tokens", "api_input_usd_per_mtok",
            "api_output_usd_per_mtok")},
        bits_per_weight=ss.get("bits_per_weight"), api_provider=ss.get("api_provider"),
    )


def _current_scenario() -> Scenario:
    """The scenario as the widgets hold it now (after a slider's callback), for the sliders' limits; the
    last good one (or the defaults) while the widgets describe an invalid one."""
    ss = st.session_state
    try:
        return _scenario_from_state(bool(ss.get("cpu_only")), bool(ss.get("hybrid")) and not ss.get("cpu_only"))
    except (K2CalcError, KeyError, TypeError, ValueError):
        return ss.get("scenario") or DEFAULT


@st.cache_data(max_entries=256, show_spinner=False)
def _scales_for(key: tuple, _scenario: Scenario, _catalogs: Catalogs) -> dict[str, tuple]:
    return workload_scales(_scenario, _catalogs)


def _scales(scenario: Scenario, catalogs: Catalogs) -> dict[str, tuple]:
    """Slider steps for the request and the device count (k2calc.whatif.workload_scales), cached per scenario."""
    key = (tuple(sorted(physics_query(scenario).items())), catalogs_param(catalogs))
    return _scales_for(key, scenario, catalogs)


def _pin_baseline() -> None:
    if st.session_state.get("scenario") is not None:  # None while the sidebar shows an error
        st.session_state["baseline"] = st.session_state["scenario"]


def _clear_baseline() -> None:
    st.session_state["baseline"] = None


def baseline_controls(sb) -> None:
    """Pin the scenario on screen as the baseline every key figure is compared with (kept in the link)."""
    sb.button("Pin as baseline", key="pin_baseline", on_click=_pin_baseline, icon=":material/push_pin:",
              width="stretch",
              help="Keep this scenario; key figures then show their change against it, the speed chart shows "
                   "it as a faint trace and the report compares both. The share link carries it.")
    if session_baseline() is not None:
        sb.button("Clear baseline", key="clear_baseline", on_click=_clear_baseline, icon=":material/close:",
                  width="stretch", help="Stop comparing; the link no longer carries a baseline.")


def sidebar_scenario() -> Scenario | None:
    """The scenario widgets; returns the validated Scenario, or None after showing the error."""
    models, hardware, cpus = _catalog_labels()
    custom = session_catalogs()  # its names say "(custom)"
    models = {**models, **{k: m.name for k, m in custom.models.items()}}
    hardware = {**hardware, **{k: h.name for k, h in custom.hardware.items() if not h.is_cpu}}
    sb = st.sidebar
    sb.header("Scenario")
    baseline_controls(sb)
    catalogs = session_catalogs()
    scales = _scales(_current_scenario(), catalogs)
    sb.selectbox("Model", list(models), format_func=lambda k: models.get(k, k), key="model")
    sb.selectbox("Quantization", QUANT_IDS, key="quant",
                 format_func=lambda q: "native (as shipped)" if q == "native" else SCHEMES[q].label,
                 help="How the weights are stored; 'native' is the model's own release format.")
    cpu_only = sb.toggle("CPU only (no GPU)", key="cpu_only")
    if cpu_only:
        if st.session_state.get("hardware") not in cpus:
            st.session_state["hardware"] = next(iter(cpus))
        sb.selectbox("CPU", list(cpus), format_func=cpus.get, key="hardware")
    else:
        if st.session_state.get("hardware") not in hardware:
            st.session_state["hardware"] = DEFAULT.hardware
        sb.selectbox("Hardware", list(hardware), format_func=hardware.get, key="hardware")
        slider_pair(sb, "count", "Count (GPUs or systems)", scales["count"],
                    number=dict(min_value=1, max_value=1024, step=1))
        sb.number_input("Nodes (servers)", min_value=1, max_value=128, step=1, key="nodes")
    hybrid = False if cpu_only else sb.toggle(
        "Hybrid CPU+GPU (experts in system RAM)", key="hybrid",
        help="ktransformers / llama.cpp: attention and KV cache on the GPUs, routed experts computed by the "
             "CPU from system RAM.")
    if hybrid:
        if st.session_state.get("cpu") not in cpus:
            st.session_state["cpu"] = "xeon-platinum-8488c"
        sb.selectbox("Host CPU", list(cpus), format_func=cpus.get, key="cpu")
    if hybrid or cpu_only:
        sb.number_input("CPU sockets", min_value=1, max_value=8, step=1, key="sockets")
        if not st.session_state.get("ram_gb"):
            st.session_state["ram_gb"] = 2048.0
        sb.number_input("System RAM [GB, as sold]", min_value=8.0, max_value=65536.0, step=64.0, key="ram_gb")
    slider_pair(sb, "context", "Context per sequence [tokens]", scales["context"], help=HELP["context"],
                number=dict(min_value=1, max_value=10_000_000, step=1024))
    slider_pair(sb, "concurrency", "Concurrent users [sequences]", scales["concurrency"], help=HELP["users"],
                number=dict(min_value=1, max_value=1_000_000, step=1))
    slider_pair(sb, "input_tokens", "Prompt per request [tokens]", scales["input_tokens"],
                number=dict(min_value=1, max_value=10_000_000, step=256))
    slider_pair(sb, "output_tokens", "Answer per request [tokens]", scales["output_tokens"],
                number=dict(min_value=1, max_value=10_000_000, step=128))
    with sb.expander("What if: money", expanded=True):
        from k2calc.cost import assumption_sources
        sources = assumption_sources()
        for field, label, fmt in (
            ("utilisation", "Utilisation [share of the year]", lambda v: f"{v:.0%}"),
            ("electricity_usd_per_kwh", "Electricity [USD/kWh]", lambda v: f"${v:.2f}/kWh"),
            ("amortisation_years", "Amortisation [years]", lambda v: f"{v:g} years"),
            ("cache_hit_rate", "API cached-prompt share [0-1]", lambda v: f"{v:.0%}"),
        ):
            src = sources[field]
            slider_pair(st, field, label, COST_SCALES[field], fmt=fmt, default=src.value,
                        number=dict(step=COST_STEPS[field], placeholder=f"{src.value:g} (default)"),
                        help=f"Default {src.value:g} {src.unit} ({src.date}): {src.source}")
        device = catalogs.hardware_catalog().get(st.session_state.get("hardware"))
        catalog_price = device.price_usd if device is not None else None
        slider_pair(st, "hardware_price_usd", "Price per device [USD] (empty = catalog)",
                    COST_SCALES["hardware_price_usd"], fmt=lambda v: f"${v:,.0f}", default=catalog_price,
                    number=dict(min_value=0.0, step=500.0, placeholder=(
                        f"{catalog_price:,.0f} (catalog)" if catalog_price else "no catalog price")))
        from k2calc.cost import api_price
        listed = api_price(str(st.session_state.get("model")), st.session_state.get("api_provider"))
        for field, label, attr in (("api_output_usd_per_mtok", "API output price [USD per 1M tokens]", "output_usd_per_mtok"),
                                   ("api_input_usd_per_mtok", "API input price [USD per 1M tokens]", "input_usd_per_mtok")):
            price = getattr(listed, attr) if listed else None
            slider_pair(st, field, f"{label} (empty = list price)", COST_SCALES[field], fmt=lambda v: f"${v:,.2f}",
                        default=price, number=dict(min_value=0.0, max_value=1000.0, step=0.1, placeholder=(
                            f"{price:,.2f} ({listed.provider}, {listed.date})" if listed else "no list price")),
                        help=(f"{listed.provider} list price {price:,.2f} USD per 1M tokens ({listed.date}): "
                              f"{listed.source}" if listed else "No public API price for this model."))
    _keep_folded_values()
    # Switches, not st.expander(on_change="rerun"): with Streamlit 1.67, changing a widget inside such
    # an expander sometimes reset every other sidebar widget to its first option (seen in Chromium,
    # tests/app/test_browser.py); a switch and a plain container do not.
    advanced_open = sb.toggle("Advanced: engine, parallelism, KV cache", key="advanced_open")
    if advanced_open:
        _advanced_widgets(sb.container(border=True))
    cost_open = sb.toggle("More cost assumptions", key="more_cost_open")
    if cost_open:
        _more_cost_widgets(sb.container(border=True), sources)
    folded = _folded_settings(advanced_open, cost_open)
    if folded:
        sb.caption("Set in the closed sections: " + "; ".join(folded) + ".")
    try:
        return _scenario_from_state(cpu_only, hybrid)
    except K2CalcError as exc:
        sb.error(str(exc))
        return None


# What a widget of the two sections that start closed (off) shows when left alone (the scenario's
# defaults), and its short name. A closed section is not drawn (a run draws about 20 fewer widgets: 83 ->
# 50-60 ms of server CPU per Calculator rerun under load, `python benchmarks/app_load.py`), and Streamlit
# forgets the value of a widget a run does not draw, so each run writes them back (_keep_folded_values).
FOLDED_DEFAULTS = {"engine_choice": (AUTO, "engine"), "kv_dtype": (DEFAULT.kv_dtype, "KV cache"),
                   "tp_choice": (0, "TP"), "pp_choice": (0, "PP"), "ep_choice": (0, "EP"),
                   "spec_method": ("none", "speculative decoding"), "dp_attention": (False, "DP attention"),
                   "dcp": (DEFAULT.dcp, "DCP"), "gpu_experts": (DEFAULT.gpu_experts, "experts on the GPU"),
                   "kt_prefill": (DEFAULT.kt_prefill, "hybrid prefill"),
                   "memory_fraction_choice": (0.0, "engine memory fraction"),
                   "wired_limit_choice": (0.0, "wired limit [GiB]")}
FOLDED_SPEC = ("spec_draft_tokens", "spec_acceptance")  # drawn only with speculative decoding on; empty = default
FOLDED_COST = {"pue": "PUE", "hosting_usd_per_kw_month": "hosting [USD/kW-month]",
               "maintenance_pct_per_year": "maintenance [%/year]", "residual_value_pct": "residual value [%]",
               "cloud_usd_per_hour": "cloud [USD/device-hour]", "monthly_output_tokens": "monthly output [tokens]"}
FOLDED_KEYS = (*FOLDED_DEFAULTS, *FOLDED_SPEC, *FOLDED_COST)


def _folded_settings(advanced_open: bool, cost_open: bool) -> list[str]:
    """'name value' of each setting in a closed section that differs from its default (a closed
    section never hides a choice the scenario uses)."""
    ss, out = st.session_state, []
    if not advanced_open:
        out += [f"{name} {ss[k]}" for k, (default, name) in FOLDED_DEFAULTS.items()
                if k in ss and ss[k] != default]
        if ss.get("spec_method", "none") != "none":
            out += [f"{k.removeprefix('spec_').replace('_', ' ')} {ss[k]}"
                    for k in FOLDED_SPEC if ss.get(k) is not None]
    if not cost_open:
        out += [f"{name} {ss[k]:,g}" for k, name in FOLDED_COST.items() if ss.get(k) is not None]
    return out


def _keep_folded_values() -> None:
    """Keep the values of the folded widgets as plain session state (Streamlit's documented way to
    keep a widget's value across runs that do not draw it)."""
    ss = st.session_state
    for key in FOLDED_KEYS:
        if key in ss:
            ss[key] = ss[key]


def _advanced_widgets(box) -> None:
    """Engine, parallelism, KV cache, speculative decoding and hybrid placement, in the open section."""
    with box:
        st.selectbox("Engine", [AUTO, *ENGINES], key="engine_choice",
                     format_func=lambda e: "auto (by hardware)" if e == AUTO else ENGINES[e].name)
        st.selectbox("KV cache dtype", list(KV_DTYPES), key="kv_dtype", help=HELP["kv"])
        c1, c2, c3 = st.columns(3)
        c1.number_input("TP", min_value=0, max_value=1024, step=1, key="tp_choice", help=HELP["tp"] + " 0 = auto.")
        c2.number_input("PP", min_value=0, max_value=256, step=1, key="pp_choice", help=HELP["pp"] + " 0 = auto.")
        c3.number_input("EP", min_value=0, max_value=1024, step=1, key="ep_choice", help=HELP["ep"] + " 0 = off.")
        st.selectbox("Speculative decoding", ["none", "mtp", "eagle3"], key="spec_method", help=HELP["spec"],
                     format_func=lambda m: {"none": "off", "mtp": "MTP layer (DeepSeek V3, GLM)",
                                            "eagle3": "EAGLE-3 draft head"}[m])
        if st.session_state.get("spec_method", "none") != "none":
            c1, c2 = st.columns(2)
            c1.number_input("Draft tokens (empty = model default)", min_value=1, max_value=16, step=1,
                            key="spec_draft_tokens")
            c2.number_input("Acceptance per token (empty = model default)", min_value=0.01, max_value=0.99,
                            step=0.01, key="spec_acceptance")
        st.toggle("SGLang DP attention", key="dp_attention",
                  help="Each GPU holds different requests' KV cache instead of a copy of all of them.")
        st.number_input("vLLM decode context parallel (DCP)", min_value=1, max_value=64, step=1, key="dcp")
        st.number_input("Hybrid: experts per layer on the GPU", min_value=0, max_value=4096, step=8,
                        key="gpu_experts")
        st.selectbox("Hybrid prefill", ["auto", "cpu", "gpu"], key="kt_prefill",
                     help="cpu: routed experts prefilled by AMX on the CPU; gpu: streamed over PCIe to the GPU.")
        st.number_input("Engine memory fraction (0 = engine default)", min_value=0.0, max_value=1.0, step=0.01,
                        key="memory_fraction_choice")
        st.number_input("Mac wired-memory limit [GiB] (0 = macOS default)", min_value=0.0, max_value=65536.0,
                        step=16.0, key="wired_limit_choice")


def _more_cost_widgets(box, sources) -> None:
    """Site and rental cost assumptions, in the open section; `sources`: their dated defaults."""
    with box:
        for field, label, step in (
            ("pue", "PUE [ratio]", 0.05),
            ("hosting_usd_per_kw_month", "Hosting [USD per kW-month]", 10.0),
            ("maintenance_pct_per_year", "Maintenance [% of capex per year]", 1.0),
            ("residual_value_pct", "Residual value [% of capex]", 1.0),
        ):
            src = sources[field]
            low, high = _field_bounds(field)
            st.number_input(label, step=step, key=field, placeholder=f"{src.value:g} (default)",
                            min_value=low, max_value=high,
                            help=f"Default {src.value:g} {src.unit} ({src.date}): {src.source}")
        st.number_input("Cloud rental per device-hour [USD] (empty = catalog)", min_value=0.0,
                        step=0.1, key="cloud_usd_per_hour")
        st.number_input("Monthly output volume [tokens] (empty = capacity x utilisation)",
                        min_value=1.0, step=1e6, key="monthly_output_tokens")


def _init_choices() -> None:
    """Widgets whose 'auto' choice maps to a None field get their own keys, seeded from the scenario."""
    ss = st.session_state
    ss.setdefault("engine_choice", ss.get("engine") or AUTO)
    ss.setdefault("tp_choice", ss.get("tp") or 0)
    ss.setdefault("pp_choice", ss.get("pp") or 0)
    ss.setdefault("ep_choice", ss.get("ep") or 0)
    ss.setdefault("memory_fraction_choice", ss.get("memory_fraction") or 0.0)
    ss.setdefault("wired_limit_choice", ss.get("wired_limit_gb") or 0.0)


PAGES = [
    st.Page("pages/calculator.py", title="Calculator", icon=":material/calculate:", default=True),
    st.Page("pages/compare_models.py", title="Compare models", icon=":material/balance:"),
    st.Page("pages/compare_hardware.py", title="Compare hardware", icon=":material/dns:"),
    st.Page("pages/plan.py", title="Plan a budget", icon=":material/savings:"),
    st.Page("pages/fleet.py", title="Fleet", icon=":material/hub:"),
    st.Page("pages/finetune.py", title="Fine-tune", icon=":material/tune:"),
    st.Page("pages/report.py", title="Report", icon=":material/description:"),
    st.Page("pages/catalog.py", title="Catalog", icon=":material/inventory_2:"),
    st.Page("pages/method.py", title="Method and accuracy", icon=":material/science:"),
]


def main() -> None:
    """Seed and draw the sidebar, mirror the scenario into the URL, then run the chosen page."""
    _seed_from_url()
    _apply_pending()
    _init_choices()
    scenario = sidebar_scenario()
    catalogs = session_catalogs()
    st.session_state["scenario"] = scenario
    if scenario is not None:
        query = share_query(scenario, catalogs, session_baseline())
        if query != st.query_params.to_dict():
            st.query_params.from_dict(query)
    if st.session_state.get("url_warnings"):
        st.warning("Parts of the link were ignored and left at their defaults: "
                   + "; ".join(st.session_state["url_warnings"]), icon=":material/warning:")
    start_pending_charts()
    st.navigation(PAGES).run()
    draw_pending_charts()


try:
    main()
except CatalogError as exc:  # a broken data file: one line naming file, line and column on every page
    st.error(f"A data file could not be read, so k2calc cannot run: {exc}", icon=":material/error:")
    st.stop()
