"""Compare hardware: 8x H200, 8x B200/B100, Mac Studios, a hybrid workstation, DGX Spark and the rest."""

from __future__ import annotations

import streamlit as st

from k2calc.charts import hardware_scatter
from k2calc.errors import K2CalcError
from k2calc.models import load_models
from k2calc.quant import SCHEMES
from k2calc.sweeps import compare_hardware
from ui import page_setup, plotly_chart, speed_columns

scenario, catalogs = page_setup()

st.title("Compare hardware")
model = {**load_models(), **catalogs.models}.get(scenario.model)
quant = "native" if scenario.quant == "native" else SCHEMES[scenario.quant].label if scenario.quant in SCHEMES \
    else scenario.quant
st.caption(f"{model.name if model else scenario.model} ({quant}), {scenario.context:,}-token context, "
           f"{scenario.concurrency} "
           f"user(s), {scenario.input_tokens:,} in / {scenario.output_tokens:,} out per request.")
whole = st.toggle("Add every catalog device at its smallest fitting count", key="compare_whole_catalog")
try:
    df = compare_hardware(scenario, catalogs=catalogs, include_catalog=whole)
except K2CalcError as exc:
    st.error(str(exc))
    st.stop()

fitting = df[df["fits"]]
if len(fitting):
    plotly_chart(hardware_scatter(df), key="hardware_scatter")
    st.caption("Each point is a deployment that fits; the line joins the Pareto front (no other option is "
               "both cheaper per token and faster per user).")
st.dataframe(
    df, hide_index=True, key="compare_hardware_table",
    # what to buy and what it costs first; engine, class and the reasons last
    column_order=["label", "fits", "usd_per_mtok_output", "capex_usd", "per_user_tok_s", "ttft_s", "power_w"],
    column_config={
        "label": st.column_config.TextColumn("what to buy", width="large"),
        **speed_columns(),
        "klass": st.column_config.TextColumn("class", width="small"),
        "capex_usd": st.column_config.NumberColumn("capex [USD]", format="$%,.0f", width="small"),
        "usd_per_mtok_output": st.column_config.NumberColumn("$ / 1M out", format="$%.2f", width="small"),
        "power_w": st.column_config.NumberColumn("power [W]", format="%,.0f", width="small"),
        "engine": st.column_config.TextColumn("engine", width="small"),
    },
)
unfit = df[~df["fits"].astype(bool)]
if len(unfit):
    st.markdown("**Does not fit** (its row above has no speed or cost):\n"
                + "\n".join(f"- {r.label}: {r.reason}" for r in unfit.itertuples()))
