"""Catalog: hardware and models with their sources; add a custom device or import a config.json.

What is added here lives in this session and travels in the share link (one compressed parameter)."""

from __future__ import annotations

import datetime

import pandas as pd
import streamlit as st

from k2calc.cost import api_price
from k2calc.errors import K2CalcError, validated
from k2calc.hardware import (
    MAX_BANDWIDTH_GB_PER_S,
    MAX_LINK_GB_PER_S,
    MAX_MEMORY_BYTES,
    MAX_PRICE_USD,
    MAX_TFLOPS,
    MAX_WATTS,
    Hardware,
    load_hardware,
)
from k2calc.models import load_models, param_counts, parse_config_json
from k2calc.units import GiB
from ui import leave_legacy_pages_mode, session_catalogs

leave_legacy_pages_mode()

st.title("Catalog")
custom_hw = dict(st.session_state.get("custom_hardware", {}))
custom_models = dict(st.session_state.get("custom_models", {}))
tab_hw, tab_models, tab_device, tab_import = st.tabs(["Hardware", "Models", "Add a device", "Import a model"])
with tab_hw:
    shown = session_catalogs()  # custom devices and imported models named "(custom)"
    hw = pd.DataFrame([h.model_dump() for h in {**load_hardware(), **shown.hardware}.values()])
    hw["memory_gib"] = hw["memory_bytes"] / GiB
    # what a buyer compares first (name, memory, bandwidth, price and its date, status); the rest after
    first = ["name", "memory_gib", "memory_bandwidth_gb_per_s", "price_usd", "price_date", "status", "kind",
             "bf16_dense_tflops", "fp8_dense_tflops", "tdp_watts", "cloud_usd_per_hour", "source", "price_source", "id"]
    st.dataframe(hw, hide_index=True, key="hardware_table",
                 column_order=first + [c for c in hw.columns if c not in first and c != "memory_bytes"],
                 column_config={"name": st.column_config.TextColumn("device", width="medium"),
                                "memory_gib": st.column_config.NumberColumn("memory [GiB]", format="%,.1f"),
                                "memory_bandwidth_gb_per_s": st.column_config.NumberColumn("bandwidth [GB/s]",
                                                                                           format="%,.0f"),
                                "price_usd": st.column_config.NumberColumn("price [USD]", format="$%,.0f"),
                                "price_date": st.column_config.TextColumn("price date"),
                                "memory_marketing_gb": st.column_config.NumberColumn("memory as sold [GB]"),
                                "cloud_usd_per_hour": st.column_config.NumberColumn("rent [USD/hour]",
                                                                                    format="$%.2f")})
    st.caption("Status: verified (primary source), corroborated (several sources), derived (computed), "
               "unverified (one secondary source: treat as an assumption). Prices carry their date and source.")
with tab_models:
    rows = []
    for m in {**load_models(), **session_catalogs().models}.values():
        c = param_counts(m)
        api = api_price(m.id)
        rows.append({"name": m.name, "total params [billions]": c.total / 1e9,
                     "active params [billions]": c.active / 1e9,
                     "API output [$ / 1M]": api.output_usd_per_mtok if api else None,
                     "API input [$ / 1M]": api.input_usd_per_mtok if api else None,
                     "API price from": f"{api.provider}, {api.date}" if api else "no public price",
                     "architecture": m.architecture,
                     "layers": m.num_layers, "attention": m.attention, "experts": m.n_routed_experts,
                     "experts per token": m.experts_per_tok, "native quant": m.native_quant,
                     "max context [tokens]": m.max_context_tokens, "sources": "; ".join(m.sources), "id": m.id})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="models_table",
                 column_config={"total params [billions]": st.column_config.NumberColumn(format="%.1f"),
                                "active params [billions]": st.column_config.NumberColumn(format="%.1f"),
                                "API output [$ / 1M]": st.column_config.NumberColumn(format="$%.2f"),
                                "API input [$ / 1M]": st.column_config.NumberColumn(format="$%.3f")})
    st.caption("API prices: the first provider listed for the model in data/api_prices.csv (its maker where it "
               "sells one), per 1M tokens, with the date read; 'no public price' where none was found.")
with tab_device:
    st.markdown("A GPU or unified-memory system that is not in the catalog. It appears in the sidebar's "
                "Hardware list and in the share link.")
    with st.form("device_form"):
        c1, c2, c3 = st.columns(3)
        dev_id = c1.text_input("Id (lowercase, dashes)", value="my-gpu", key="dev_id")
        name = c2.text_input("Name", value="My GPU", key="dev_name")
        kind = c3.selectbox("Kind", ["gpu", "system"], key="dev_kind",
                            format_func=lambda k: "GPU card" if k == "gpu" else "unified-memory system")
        c4, c5, c6 = st.columns(3)
        memory = c4.number_input("Memory [GiB, as the driver reports]", min_value=1.0, max_value=MAX_MEMORY_BYTES / GiB,
                                 value=96.0, key="dev_mem")
        bandwidth = c5.number_input("Memory bandwidth [GB/s]", min_value=1.0, max_value=MAX_BANDWIDTH_GB_PER_S,
                                    value=1800.0, key="dev_bw")
        bf16 = c6.number_input("BF16 dense [TFLOPS]", min_value=0.1, max_value=MAX_TFLOPS, value=250.0,
                               key="dev_bf16")
        c7, c8, c9 = st.columns(3)
        fp8 = c7.number_input("FP8 dense [TFLOPS] (0 = none)", min_value=0.0, max_value=MAX_TFLOPS,
                              value=500.0, key="dev_fp8")
        tdp = c8.number_input("Power, TDP [W]", min_value=1.0, max_value=MAX_WATTS, value=600.0, key="dev_tdp")
        link = c9.number_input("Scale-up link [GB/s per direction]", min_value=0.0,
                               max_value=MAX_LINK_GB_PER_S, value=64.0, key="dev_link")
        c10, c11, c12 = st.columns(3)
        price = c10.number_input("Price [USD]", min_value=0.0, max_value=MAX_PRICE_USD, value=8000.0,
                                 key="dev_price")
        vendor = c11.text_input("Vendor", value="NVIDIA", key="dev_vendor")
        memory_type = c12.selectbox("Memory type", ["GDDR7", "HBM3e", "LPDDR5x", "unified"], key="dev_memtype")
        source = st.text_input("Source of these figures", value="my own datasheet", key="dev_source")
        added = st.form_submit_button("Add device")
    if added:
        try:
            device = validated(
                Hardware,
                id=dev_id.strip(), name=name.strip() or dev_id, kind=kind, vendor=vendor.strip() or "unknown",
                memory_bytes=int(memory * GiB), memory_marketing_gb=memory, memory_type=memory_type,
                memory_bandwidth_gb_per_s=bandwidth, bf16_dense_tflops=bf16, fp8_dense_tflops=fp8 or None,
                tdp_watts=tdp, link="custom" if link else None, link_gb_per_s=link or None,
                price_usd=price or None, price_date=datetime.date.today().isoformat() if price else None,
                price_source="entered by the user" if price else None, status="unverified", source=source,
                notes="added in the app",
            )
        except K2CalcError as exc:
            st.error(str(exc))
        else:
            if device.id in load_hardware():
                st.error(f"'{device.id}' is already a catalog id; choose another")
            else:
                custom_hw[device.id] = device
                st.session_state["custom_hardware"] = custom_hw
                st.success(f"Added **{device.name}** ({device.id}). Pick it in the sidebar's Hardware list.")
with tab_import:
    st.markdown("Upload a Hugging Face `config.json` (DeepseekV3/Kimi, MiniMaxM2, Qwen3Moe, GptOss, Glm4Moe or "
                "dense Llama/Qwen/Mistral). The model is then available in every page for this session.")
    upload = st.file_uploader("config.json", type=["json"], key="config_upload")
    model_id = st.text_input("Id for the model", value="my-model", key="import_id")
    if upload is not None:
        try:
            model = parse_config_json(upload.getvalue(), model_id.strip().lower() or "my-model")
            if model.id in load_models():
                raise K2CalcError(f"'{model.id}' is already a catalog model id; choose another id")
        except K2CalcError as exc:
            st.error(str(exc))
        else:
            custom_models[model.id] = model
            st.session_state["custom_models"] = custom_models
            c = param_counts(model)
            st.success(f"Imported **{model.id}**: {c.total / 1e9:,.1f}B parameters ({c.active / 1e9:,.1f}B active), "
                       f"{model.num_layers} layers, {model.attention.upper()} attention, native {model.native_quant}. "
                       "Pick it in the sidebar's Model list.")
