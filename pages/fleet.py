"""Fleet: the smallest fleet meeting a service-level target, aggregated vs disaggregated, per GPU type,
and the throughput-per-GPU against speed-per-user curve."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.errors import K2CalcError
from k2calc.fleet import (
    DEFAULT_FLEET_HARDWARE,
    FleetWorkload,
    pareto_points,
    plan_fleet,
)
from k2calc.fleet_charts import fleet_pareto_chart
from k2calc.hardware import load_hardware
from k2calc.models import load_models
from ui import page_setup, plotly_chart

scenario, _ = page_setup()
models = {m.id: m.name for m in load_models().values() if m.is_moe}
gpus = {h.id: h.name for h in load_hardware().values() if h.kind == "gpu"}

st.title("Fleet: disaggregated vs aggregated serving")
with st.form("fleet_form"):
    c1, c2, c3 = st.columns(3)
    model = c1.selectbox("Model", list(models), format_func=models.get, key="fleet_model",
                         index=list(models).index(scenario.model) if scenario.model in models else 0)
    users = c2.number_input("Concurrent users", min_value=1, max_value=10_000_000, value=2000, key="fleet_users")
    speed = c3.number_input("Speed each user needs [tok/s]", min_value=0.1, max_value=10_000.0, value=30.0,
                            key="fleet_speed")
    c4, c5, c6 = st.columns(3)
    ttft = c4.number_input("Mean time to first token at most [s]", min_value=0.01, max_value=3600.0, value=2.0,
                           key="fleet_ttft")
    inp = c5.number_input("Prompt [tokens]", min_value=1, max_value=1_000_000, value=2000, key="fleet_input")
    out = c6.number_input("Answer [tokens]", min_value=1, max_value=1_000_000, value=1000, key="fleet_output")
    c7, c8, c9 = st.columns([3, 1, 1])
    hardware = c7.multiselect("GPUs", list(gpus), default=list(DEFAULT_FLEET_HARDWARE), format_func=gpus.get,
                              key="fleet_hardware")
    p95 = c9.number_input("p95 TTFT at most [s] (empty = none)", min_value=0.01, max_value=3600.0, value=None,
                          key="fleet_ttft_p95")
    spec = c8.selectbox("Speculative decoding", ["none", "mtp", "eagle3"], key="fleet_spec",
                        format_func={"none": "off", "mtp": "MTP layer", "eagle3": "EAGLE-3 head"}.get)
    st.form_submit_button("Find the fleet", type="primary")

try:
    w = FleetWorkload.build(model=model, users=int(users), tokens_per_s_per_user=float(speed), ttft_s=float(ttft),
                            input_tokens=int(inp), output_tokens=int(out), spec_method=spec,
                            ttft_p95_s=float(p95) if p95 else None)
    options = plan_fleet(w, hardware)
except K2CalcError as exc:
    st.error(str(exc))
    st.stop()

st.dataframe(pd.DataFrame([{
    "GPU": gpus.get(o.hardware, o.hardware), "layout": o.mode, "meets": o.meets,
    "$ / 1M output tokens": o.usd_per_million_output_tokens, "capex [USD]": o.capex_usd,
    "nodes (prefill + decode)": f"{o.prefill_nodes} + {o.decode_nodes}" if o.prefill_nodes else f"{o.decode_nodes}",
    "GPUs": o.gpus, "tok/s per user": o.tokens_per_s_per_user, "TTFT [s]": o.ttft_s, "p95 TTFT [s]": o.ttft_p95_s,
    "power [kW]": o.power_watts / 1e3 if o.power_watts else None,
    "input tok/s per prefill node": o.input_tokens_per_s_per_prefill_node,
    "output tok/s per decode node": o.output_tokens_per_s_per_decode_node,
    "why not / notes": o.reason or "; ".join(o.notes)} for o in options]), hide_index=True, key="fleet_table",
    column_config={"GPU": st.column_config.TextColumn(width="medium"),
                   "layout": st.column_config.TextColumn(width="small"),
                   "meets": st.column_config.CheckboxColumn(width="small"),
                   "$ / 1M output tokens": st.column_config.NumberColumn(format="$%.3f", width="small"),
                   "capex [USD]": st.column_config.NumberColumn(format="$%,.0f", width="small"),
                   "nodes (prefill + decode)": st.column_config.TextColumn(width="small"),
                   "GPUs": st.column_config.NumberColumn(width="small"),
                   "tok/s per user": st.column_config.NumberColumn(format="%.1f", width="small"),
                   "TTFT [s]": st.column_config.NumberColumn(format="%.2f", width="small"),
                   "p95 TTFT [s]": st.column_config.NumberColumn(format="%.2f", width="small"),
                   "power [kW]": st.column_config.NumberColumn(format="%.1f", width="small"),
                   "input tok/s per prefill node": st.column_config.NumberColumn(format="%,.0f", width="small"),
                   "output tok/s per decode node": st.column_config.NumberColumn(format="%,.0f", width="small")})
st.caption("Aggregated: replicas of the Calculator's deployment. Aggregated-ep and disaggregated: large expert-parallel "
           "pools with DP attention, DeepEP and EPLB; disaggregated sends each prompt's KV cache from the prefill to "
           "the decode pool. TTFT: mean and 95th percentile of the prompts' M/D/1 queue; $ per 1M at the default cost assumptions.")
plotly_chart(fleet_pareto_chart([p for h in hardware for p in pareto_points(w, h)]), key="fleet_pareto")
