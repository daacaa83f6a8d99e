"""Calculator page: the fit verdict and where every byte goes, for the sidebar's scenario."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.charts import memory_per_device
from k2calc.errors import K2CalcError
from k2calc.scenario import Scenario, estimate
from k2calc.units import GiB, format_device_bytes, format_gb

BOTTLENECK_WORDS = {"gpu-memory-bandwidth": "memory", "cpu-memory-bandwidth": "CPU RAM", "compute": "compute",
                    "interconnect": "network", "kernel-latency": "latency"}
BOTTLENECK_HELP = ("memory = reading weights and KV cache; CPU RAM = the CPU reading experts from DDR5; "
                   "compute = arithmetic; network = GPU-to-GPU communication; latency = fixed time per layer "
                   "(kernel launches), which batching amortises.")

scenario = st.session_state.get("scenario") or Scenario()
st.title("Will it fit?")

try:
    result = estimate(scenario)
except K2CalcError as exc:
    st.error(str(exc))
    st.stop()

d, mem = result.deployment, result.memory
where = f"{d.count} x {d.device.name}" if d.device else ""
if d.cpu:
    where += f" + {d.sockets} x {d.cpu.name}, {format_device_bytes(d.ram_bytes)} RAM"
headline = (f"**{d.model.name}** ({d.scheme.label}) on **{where}** with {d.engine.name}, "
            f"{scenario.concurrency} x {scenario.context:,} tokens")
if mem.fits:
    st.success(f"Fits. {headline}.", icon="✅")
else:
    st.error(f"Does not fit. {headline}.\n\n{mem.reasons[0]}", icon="❌")
    small = result.smallest
    if small.get("count"):
        st.info(f"Smallest that fits: **{small['count']} x {d.device.name}** ({small['nodes']} node(s)).")
    elif small.get("ram_gb"):
        st.info(f"Needs about **{small['ram_gb']:,} GiB** of system RAM.")
    else:
        st.info(small["reason"])
for warning in mem.warnings:
    st.warning(warning)

first = mem.devices[0]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Weights, one replica", format_gb(mem.weights_bytes), help="All weights as stored, scales included [GB].")
c2.metric("Memory used, device 0", format_device_bytes(first.usable_bytes - first.free_bytes),
          help=f"Of {format_device_bytes(first.usable_bytes)} the engine may use "
               f"({format_device_bytes(first.capacity_bytes)} installed).")
c3.metric("KV capacity [tokens]", f"{mem.kv_capacity_tokens:,}",
          help=f"KV cache: {mem.kv_bytes_per_token:,} bytes per token of one sequence ({d.kv_dtype}).")
c4.metric("Max concurrency", f"{mem.max_concurrency:,}", help=f"Sequences of {scenario.context:,} tokens at once.")

perf = result.performance
bands = perf.bands()
st.subheader("How fast")
s1, s2, s3, s4 = st.columns(4)
user, total, ttft = bands["decode_tokens_per_s_per_user"], bands["decode_tokens_per_s_total"], bands["ttft_s"]
s1.metric("Decode per user", f"{user.value:,.1f} tok/s",
          help=f"Band {user.low:,.1f}-{user.high:,.1f} tok/s. Roofline (perfect efficiency): "
               f"{perf.roofline_decode_tokens_per_s_per_user:,.1f} tok/s.")
s2.metric(f"Decode total, {scenario.concurrency} user(s)", f"{total.value:,.0f} tok/s",
          help=f"Band {total.low:,.0f}-{total.high:,.0f} tok/s.")
s3.metric(f"Time to first token ({scenario.input_tokens:,}-token prompt)", f"{ttft.value:,.2f} s",
          help=f"Band {ttft.low:,.2f}-{ttft.high:,.2f} s; prompts of users arriving together queue behind "
               "each other.")
s4.metric("Limited by", BOTTLENECK_WORDS.get(perf.bottleneck, perf.bottleneck),
          help=f"The largest part of one decode step ({perf.bottleneck}): " + BOTTLENECK_HELP)
st.caption(
    f"Speeds are estimates with a x{perf.decode_band_factor:.2f} band from {perf.supporting_rows} published "
    f"measurement(s) of {perf.calibration_class} (`python -m k2calc validate` lists them)."
    + "".join(f" {n}." for n in perf.notes)
)

st.subheader("Where the memory goes")
st.plotly_chart(memory_per_device(mem), key="memory_chart", width="stretch")

rows = [{
    "device": dev.name,
    "capacity [GiB]": dev.capacity_bytes / GiB, "usable [GiB]": dev.usable_bytes / GiB,
    "weights [GiB]": dev.weights_bytes / GiB, "KV cache [GiB]": dev.kv_bytes / GiB,
    "activations [GiB]": dev.activation_bytes / GiB, "runtime [GiB]": dev.overhead_bytes / GiB,
    "free [GiB]": dev.free_bytes / GiB,
} for dev in mem.devices]
st.dataframe(pd.DataFrame(rows), hide_index=True, key="device_table",
             column_config={c: st.column_config.NumberColumn(format="%.1f") for c in rows[0] if c != "device"})
st.caption(
    f"Topology: {d.topology}; TP {d.tp}, PP {d.pp}, replicas {d.replicas}. Usable = the engine's share "
    f"({d.engine.name}) or the OS limit. Activations and runtime are estimates (see k2calc/engines.py); "
    "memory in GiB (2^30 bytes), weights in GB (10^9 bytes)."
)
