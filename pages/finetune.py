"""Fine-tune: LoRA / QLoRA / full SFT on the sidebar's hardware: does it fit, how fast, how long, what cost."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.errors import K2CalcError
from k2calc.finetune import DEFAULT_TARGETS, TARGETS, FinetuneSpec, estimate_finetune
from k2calc.units import GiB
from ui import page_setup

scenario, catalogs = page_setup()

st.title("Fine-tune")
c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("Method", ["lora", "qlora", "full"], key="ft_method",
                      format_func={"lora": "LoRA (BF16 base)", "qlora": "QLoRA (4-bit base)",
                                   "full": "full fine-tuning"}.get)
rank = c2.number_input("LoRA rank", min_value=1, max_value=1024, value=8, key="ft_rank")
seq_len = c3.number_input("Sequence length [tokens]", min_value=1, max_value=10_000_000, value=2048, step=256,
                          key="ft_seq")
micro_batch = c4.number_input("Micro-batch [sequences]", min_value=1, max_value=4096, value=1, key="ft_batch")
c5, c6, c7, c8 = st.columns(4)
tokens = c5.number_input("Dataset [tokens]", min_value=1, max_value=10**15, value=10_000_000, step=1_000_000,
                          key="ft_tokens")
epochs = c6.number_input("Epochs", min_value=0.1, max_value=1000.0, value=1.0, step=0.5, key="ft_epochs")
swap = c7.number_input("Swap [GiB]", min_value=0.0, max_value=65536.0, value=0.0, step=50.0, key="ft_swap")
checkpointing = c8.toggle("Gradient checkpointing", value=True, key="ft_ckpt")
targets = st.multiselect("LoRA targets", list(TARGETS), default=list(DEFAULT_TARGETS), key="ft_targets")

try:
    spec = FinetuneSpec.from_scenario(
        scenario, swap_gb=float(swap), method=method, rank=int(rank), targets=tuple(targets) or ("attention",),
        seq_len=int(seq_len), micro_batch=int(micro_batch), gradient_checkpointing=checkpointing,
        tokens=int(tokens), epochs=float(epochs))
    ft = estimate_finetune(spec, catalogs)
except K2CalcError as exc:
    st.error(str(exc))
    st.stop()

dep = ft.deployment
where = f"{dep.count} x {dep.device.name}" if dep.device else ""
if dep.cpu:
    where += (" + " if where else "") + f"{dep.sockets} x {dep.cpu.name}, {dep.ram_bytes / GiB:,.0f} GiB RAM"
st.caption(f"{dep.model.name} on {where} (from the sidebar). The hybrid route (KTransformers + LLaMA-Factory) "
           "keeps routed experts in system RAM and computes them on the CPU.")
if ft.fits:
    st.success(f"Fits{' (part of it in swap: slow)' if ft.slow else ''}. {ft.model_name}, {method}, "
               f"{ft.trainable_params / 1e6:,.1f}M trainable parameters.")
    m = st.columns(4)
    m[0].metric("Training speed", f"{ft.tokens_per_s:,.{0 if ft.tokens_per_s >= 100 else 1}f} tok/s",
                help=f"Roofline {ft.roofline_tokens_per_s:,.0f} tok/s; limited by {ft.bottleneck}.")
    m[1].metric("Run time", f"{ft.hours:,.1f} h", help=f"{tokens:,} tokens x {epochs:g} epoch(s).")
    m[2].metric("Energy", f"{ft.energy_kwh:,.0f} kWh", help=f"At {ft.power_watts:,.0f} W.")
    m[3].metric("Electricity (owned)", f"${ft.cost_usd:,.2f}",
                help=f"At ${ft.usd_per_kwh:.3f}/kWh. Cloud: " + (f"${ft.cloud_cost_usd:,.0f}" if ft.cloud_cost_usd
                                                                 else ft.cloud_note))
    for w in ft.warnings:
        st.warning(w)
else:
    st.error("Does not fit: speed, run time and cost are not estimated.\n\n"
             + "\n".join(f"- {r}" for r in ft.reasons))
    if ft.fixes:
        st.info("Would fit with any one of these changes:\n\n" + "\n".join(f"- {f.change}" for f in ft.fixes))
    else:
        st.info("No single change tried (QLoRA, gradient checkpointing, micro-batch 1, shorter sequences, more "
                "devices or RAM) makes it fit.")
rows = [{"device": d.name, "capacity [GiB]": d.capacity_bytes / GiB, "weights [GiB]": d.weights_bytes / GiB,
         "adapters [GiB]": d.adapter_bytes / GiB, "optimizer [GiB]": d.optimizer_bytes / GiB,
         "gradients [GiB]": d.gradient_bytes / GiB, "activations [GiB]": d.activation_bytes / GiB,
         # a device that is over its memory shows what is missing, never a negative 'free'
         "free [GiB]": max(0, d.free_bytes) / GiB, "missing [GiB]": max(0, -d.free_bytes) / GiB,
         "slow": d.slow} for d in ft.devices]
st.dataframe(pd.DataFrame(rows), hide_index=True, key="ft_table",
             column_config={c: st.column_config.NumberColumn(format="%.2f") for c in rows[0]
                            if c not in ("device", "slow")})
with st.expander("Assumptions"):
    for a in ft.assumptions:
        st.markdown(f"- {a}")
