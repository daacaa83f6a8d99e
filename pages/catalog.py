"""Catalog: hardware and models with their sources; add a custom device or import a config.json."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.errors import K2CalcError
from k2calc.hardware import load_hardware
from k2calc.models import load_models, param_counts, parse_config_json

st.title("Catalog")
tab_hw, tab_models, tab_import = st.tabs(["Hardware", "Models", "Import a model"])
with tab_hw:
    hw = pd.DataFrame([h.model_dump() for h in load_hardware().values()])
    st.dataframe(hw, hide_index=True, key="hardware_table",
                 column_config={"memory_bytes": st.column_config.NumberColumn("memory [bytes]", format="%d"),
                                "memory_bandwidth_gb_per_s": st.column_config.NumberColumn("bandwidth [GB/s]"),
                                "price_usd": st.column_config.NumberColumn("price [USD]", format="%,.0f")})
    st.caption("Status: verified (primary source), corroborated (several sources), derived (computed), "
               "unverified (one secondary source: treat as an assumption). Prices carry their date and source.")
with tab_models:
    rows = []
    for m in load_models().values():
        c = param_counts(m)
        rows.append({"id": m.id, "name": m.name, "architecture": m.architecture,
                     "total params [B]": c.total / 1e9, "active params [B]": c.active / 1e9,
                     "layers": m.num_layers, "attention": m.attention, "experts": m.n_routed_experts,
                     "experts per token": m.experts_per_tok, "native quant": m.native_quant,
                     "max context [tokens]": m.max_context_tokens, "sources": "; ".join(m.sources)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="models_table",
                 column_config={"total params [B]": st.column_config.NumberColumn(format="%.1f"),
                                "active params [B]": st.column_config.NumberColumn(format="%.1f")})
with tab_import:
    st.markdown("Upload a Hugging Face `config.json` (DeepseekV3/Kimi, MiniMaxM2, Qwen3Moe, GptOss, Glm4Moe or "
                "dense Llama/Qwen/Mistral). The model is then available in every page for this session.")
    upload = st.file_uploader("config.json", type=["json"], key="config_upload")
    model_id = st.text_input("Id for the model", value="my-model", key="import_id")
    if upload is not None:
        try:
            model = parse_config_json(upload.getvalue(), model_id.strip().lower() or "my-model")
        except K2CalcError as exc:
            st.error(str(exc))
        else:
            custom = dict(st.session_state.get("custom_models", {}))
            custom[model.id] = model
            st.session_state["custom_models"] = custom
            c = param_counts(model)
            st.success(f"Imported **{model.id}**: {c.total / 1e9:,.1f}B parameters ({c.active / 1e9:,.1f}B active), "
                       f"{model.num_layers} layers, {model.attention.upper()} attention, native {model.native_quant}. "
                       "Pick it in the sidebar's Model list.")
