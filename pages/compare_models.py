"""Compare models: Kimi K2 Thinking vs Kimi K2 (FP8) vs MiniMax M2 (or any others) on the chosen hardware."""

from __future__ import annotations

import streamlit as st

from k2calc.charts import compare_models_chart
from k2calc.errors import K2CalcError
from k2calc.models import load_models
from k2calc.sweeps import compare_models
from ui import page_setup, plotly_chart, speed_columns

DEFAULT_MODELS = ["kimi-k2-thinking", "kimi-k2-instruct", "minimax-m2"]

scenario, catalogs = page_setup()
extra = catalogs.models
names = {**{m.id: m.name for m in load_models().values()}, **{k: m.name for k, m in extra.items()}}

st.title("Compare models")
device, cpu = catalogs.hardware_catalog().get(scenario.hardware), catalogs.hardware_catalog().get(scenario.cpu or "")
hardware = f"{scenario.count} x {device.name if device else scenario.hardware}"
if cpu is not None:  # the hybrid box with its CPUs and RAM
    hardware += f" + {scenario.sockets} x {cpu.name} with {scenario.ram_gb or 0:,.0f} GB RAM"
st.caption(f"On the sidebar's hardware ({hardware}), engine, context "
           f"({scenario.context:,} tokens) and {scenario.concurrency} user(s); each model in its native "
           "quantization unless the sidebar picks another.")
chosen = st.multiselect("Models", list(names), default=[m for m in DEFAULT_MODELS if m in names],
                        format_func=names.get, key="compare_models")
if not chosen:
    st.info("Pick at least one model.")
    st.stop()
try:
    df = compare_models(scenario, chosen, catalogs)
except K2CalcError as exc:
    st.error(str(exc))
    st.stop()

plotly_chart(compare_models_chart(df), key="compare_models_chart")
st.dataframe(
    df, hide_index=True, key="compare_models_table",
    # what a buyer decides on first; ids and bytes per token last
    column_order=["model", "fits", "devices_needed", "usd_per_mtok_output", "api_usd_per_mtok_output",
                  "per_user_tok_s", "ttft_s", "weights_gb"],
    column_config={
        "model": st.column_config.TextColumn("model", width="medium"),
        **speed_columns(),
        "quant_label": st.column_config.TextColumn("quantization"),
        "weights_gb": st.column_config.NumberColumn("weights [GB]", format="%.1f", width="small"),
        "devices_needed": st.column_config.NumberColumn("devices needed", format="%d", width="small"),
        "usd_per_mtok_output": st.column_config.NumberColumn("own $ / 1M out", format="$%.2f", width="small"),
        "api_usd_per_mtok_output": st.column_config.NumberColumn("API $ / 1M out", format="$%.2f", width="small"),
    },
)
unfit = df[~df["fits"].astype(bool)]
if len(unfit):
    st.markdown("**Does not fit the sidebar's count**:\n"
                + "\n".join(f"- {r.model} ({r.quant_label}): {r.reason}" for r in unfit.itertuples()))
st.caption("Devices needed: the smallest count of the sidebar's hardware that holds the model at this "
           "context and concurrency. Costs use the sidebar's cost assumptions; API prices from "
           "data/api_prices.csv (dated).")
