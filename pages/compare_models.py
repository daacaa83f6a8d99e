"""Compare models: Kimi K2 Thinking vs Kimi K2 (FP8) vs MiniMax M2 (or any others) on the chosen hardware."""

from __future__ import annotations

import streamlit as st

from k2calc.charts import compare_models_chart
from k2calc.errors import K2CalcError
from k2calc.models import load_models
from k2calc.sweeps import compare_models
from ui import page_setup

DEFAULT_MODELS = ["kimi-k2-thinking", "kimi-k2-instruct", "minimax-m2"]

scenario, catalogs = page_setup()
extra = catalogs.models
names = {**{m.id: m.name for m in load_models().values()}, **{k: m.name for k, m in extra.items()}}

st.title("Compare models")
st.caption(f"On the sidebar's hardware ({scenario.count} x {scenario.hardware}), engine, context "
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

st.plotly_chart(compare_models_chart(df), key="compare_models_chart", width="stretch")
st.dataframe(
    df, hide_index=True, key="compare_models_table",
    column_config={
        "model_id": st.column_config.TextColumn("id"), "quant_label": st.column_config.TextColumn("quantization"),
        "weights_gb": st.column_config.NumberColumn("weights [GB]", format="%.1f"),
        "kv_bytes_per_token": st.column_config.NumberColumn("KV cache [B/token]", format="%d"),
        "devices_needed": st.column_config.NumberColumn("devices needed", format="%d"),
        "per_user_tok_s": st.column_config.NumberColumn("decode per user [tok/s]", format="%.1f"),
        "total_tok_s": st.column_config.NumberColumn("decode total [tok/s]", format="%.0f"),
        "ttft_s": st.column_config.NumberColumn("time to first token [s]", format="%.2f"),
        "usd_per_mtok_output": st.column_config.NumberColumn("own cost [$ / 1M output tokens]", format="%.2f"),
        "api_usd_per_mtok_output": st.column_config.NumberColumn("API [$ / 1M output tokens]", format="%.2f"),
    },
)
st.caption("Devices needed: the smallest count of the sidebar's hardware that holds the model at this "
           "context and concurrency. Costs use the sidebar's cost assumptions; API prices from "
           "data/api_prices.csv (dated).")
