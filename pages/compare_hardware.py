"""Compare hardware: 8x H200, 8x B200/B100, Mac Studios, a hybrid workstation, DGX Spark and the rest."""

from __future__ import annotations

import streamlit as st

from k2calc.charts import hardware_scatter
from k2calc.errors import K2CalcError
from k2calc.sweeps import compare_hardware
from ui import page_setup

scenario, catalogs = page_setup()

st.title("Compare hardware")
st.caption(f"{scenario.model} ({scenario.quant}), {scenario.context:,}-token context, {scenario.concurrency} "
           f"user(s), {scenario.input_tokens:,} in / {scenario.output_tokens:,} out per request.")
whole = st.toggle("Add every catalog device at its smallest fitting count", key="compare_whole_catalog")
try:
    df = compare_hardware(scenario, catalogs=catalogs, include_catalog=whole)
except K2CalcError as exc:
    st.error(str(exc))
    st.stop()

fitting = df[df["fits"]]
if len(fitting):
    st.plotly_chart(hardware_scatter(df), key="hardware_scatter", width="stretch")
    st.caption("Each point is a deployment that fits; the line joins the Pareto front (no other option is "
               "both cheaper per token and faster per user).")
st.dataframe(
    df, hide_index=True, key="compare_hardware_table",
    column_config={
        "label": st.column_config.TextColumn("configuration"), "klass": st.column_config.TextColumn("class"),
        "per_user_tok_s": st.column_config.NumberColumn("decode per user [tok/s]", format="%.1f"),
        "total_tok_s": st.column_config.NumberColumn("decode total [tok/s]", format="%.0f"),
        "ttft_s": st.column_config.NumberColumn("TTFT [s]", format="%.2f"),
        "capex_usd": st.column_config.NumberColumn("capex [USD]", format="%,.0f"),
        "usd_per_mtok_output": st.column_config.NumberColumn("$ / 1M output tokens", format="%.2f"),
        "power_w": st.column_config.NumberColumn("power under load [W]", format="%,.0f"),
    },
)
