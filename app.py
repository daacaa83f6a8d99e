"""k2calc web app: the scenario lives in the sidebar; pages show what the k2calc core computes.

Run with ``streamlit run app.py``. Pages never compute physics: they build a Scenario, call
k2calc, and display the result.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from k2calc.engines import ENGINES
from k2calc.errors import K2CalcError
from k2calc.hardware import load_hardware
from k2calc.memory import KV_DTYPES
from k2calc.models import load_models
from k2calc.quant import QUANT_IDS, SCHEMES
from k2calc.scenario import Scenario

if PagesManager.uses_pages_directory:
    # Streamlit runs the first script run after server start in its legacy "pages/ directory" mode
    # (the design puts page files in pages/), where sidebar widgets get other ids than in every later
    # run, so the user's first change would be lost. st.navigation switches that mode off for the
    # process; rerun at once so every run the user sees is a normal st.navigation run.
    PagesManager.uses_pages_directory = False
    st.rerun()

st.set_page_config(page_title="k2calc: LLM hardware calculator", page_icon="🧮", layout="wide")

DEFAULT = Scenario()


@st.cache_data
def _catalog_labels() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Display labels for the model, hardware and CPU select boxes (file loading is cached)."""
    models = {m.id: m.name for m in load_models().values()}
    hardware = {h.id: f"{h.name} ({h.kind})" for h in load_hardware().values() if not h.is_cpu}
    cpus = {h.id: h.name for h in load_hardware().values() if h.is_cpu}
    return models, hardware, cpus


def sidebar_scenario() -> Scenario | None:
    """The scenario widgets (explicit keys); returns the validated Scenario or None after an error."""
    models, hardware, cpus = _catalog_labels()
    sb = st.sidebar
    sb.header("Scenario")
    model = sb.selectbox("Model", list(models), format_func=models.get, key="model",
                         index=list(models).index(DEFAULT.model))
    quant = sb.selectbox("Quantization", QUANT_IDS, key="quant",
                         format_func=lambda q: "native (as shipped)" if q == "native" else SCHEMES[q].label,
                         help="How the weights are stored; 'native' is the model's own release format.")
    hw = sb.selectbox("Hardware", list(hardware), format_func=hardware.get, key="hardware",
                      index=list(hardware).index(DEFAULT.hardware))
    count = sb.number_input("Count (GPUs or systems)", min_value=1, max_value=1024, value=DEFAULT.count,
                            step=1, key="count")
    nodes = sb.number_input("Nodes (servers)", min_value=1, max_value=128, value=1, step=1, key="nodes")
    hybrid = sb.toggle("Hybrid CPU+GPU (experts in system RAM)", key="hybrid",
                       help="ktransformers / llama.cpp: attention and KV cache on the GPUs, routed experts "
                            "computed by the CPU from system RAM.")
    cpu = ram_gb = None
    sockets = DEFAULT.sockets
    if hybrid:
        cpu = sb.selectbox("Host CPU", list(cpus), format_func=cpus.get, key="cpu")
        sockets = sb.number_input("CPU sockets", min_value=1, max_value=8, value=2, key="sockets")
        ram_gb = sb.number_input("System RAM [GB, as sold]", min_value=8, max_value=65536, value=2048,
                                 step=64, key="ram_gb")
    context = sb.number_input("Context per sequence [tokens]", min_value=1, max_value=10_000_000,
                              value=DEFAULT.context, step=1024, key="context",
                              help="Prompt plus output tokens one sequence keeps in the KV cache.")
    concurrency = sb.number_input("Concurrent sequences", min_value=1, max_value=1_000_000,
                                  value=DEFAULT.concurrency, step=1, key="concurrency")
    with sb.expander("Advanced: engine, KV cache"):
        engine = st.selectbox("Engine", ["auto", *ENGINES], key="engine",
                              format_func=lambda e: "auto (by hardware)" if e == "auto" else ENGINES[e].name)
        kv_dtype = st.selectbox("KV cache dtype", list(KV_DTYPES), key="kv_dtype",
                                help="KV cache: the attention keys/values kept for every token of every sequence.")
    try:
        return Scenario.build(
            model=model, quant=quant, hardware=hw, count=int(count), nodes=int(nodes), cpu=cpu,
            sockets=int(sockets), ram_gb=float(ram_gb) if ram_gb else None,
            engine=None if engine == "auto" else engine, kv_dtype=kv_dtype, context=int(context),
            concurrency=int(concurrency),
        )
    except K2CalcError as exc:
        sb.error(str(exc))
        return None


st.session_state["scenario"] = sidebar_scenario()
page = st.navigation([st.Page("pages/calculator.py", title="Calculator", icon="🧮", default=True)])
page.run()
