"""Calculator: the verdict first, then key figures, speed against users, memory per device and cost."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.errors import K2CalcError
from k2calc.units import GiB, format_device_bytes, format_gb
from k2calc.whatif import KEY_FIGURES_BY_KEY, changed_settings, compare
from ui import (
    cached_context_figure,
    cached_cost_figure,
    cached_estimate,
    cached_memory_figure,
    cached_speed_figure,
    estimate_or_stop,
    page_setup,
    session_baseline,
)

BOTTLENECK_WORDS = {"gpu-memory-bandwidth": "memory", "cpu-memory-bandwidth": "CPU RAM", "compute": "compute",
                    "interconnect": "network", "kernel-latency": "latency", "attention-kernel": "attention"}
BOTTLENECK_HELP = ("memory = reading weights and KV cache; CPU RAM = the CPU reading experts from DDR5; "
                   "compute = arithmetic; network = GPU-to-GPU communication; latency = fixed time per layer "
                   "(kernel launches), which batching amortises; attention = the attention kernel reading the "
                   "KV cache well below the memory bandwidth (MLA with few heads per GPU: DP attention helps).")

scenario, catalogs = page_setup()
st.title("Will it fit, how fast, at what cost?")
result = estimate_or_stop(scenario, catalogs)
pinned = session_baseline()
try:
    baseline = cached_estimate(pinned, catalogs) if pinned is not None else None
except K2CalcError as exc:  # a baseline from an old link that no longer resolves
    st.warning(f"The pinned baseline cannot be computed: {exc}")
    baseline = None
deltas = {d.figure.key: d for d in compare(result, baseline)} if baseline is not None else {}


def vs_baseline(key: str) -> dict:
    """st.metric's delta and colour for a key figure against the pinned baseline (none when unpinned):
    green when it improved (faster, more, cheaper: costs and times use the inverse colours)."""
    d = deltas.get(key)
    if d is None or d.change is None:
        return {}
    if d.improved is None:  # no change at the shown precision: grey, no arrow
        return {"delta": d.text(), "delta_color": "off", "delta_arrow": "off"}
    colour = "normal" if KEY_FIGURES_BY_KEY[key].better == "higher" else "inverse"
    return {"delta": d.text(), "delta_color": colour, "delta_description": "vs baseline"}


d, mem, perf, cost = result.deployment, result.memory, result.performance, result.cost
where = f"{d.count} x {d.device.name}" if d.device else ""
if d.cpu:
    where += (" + " if where else "") + f"{d.sockets} x {d.cpu.name}, {format_device_bytes(d.ram_bytes)} RAM"
headline = (f"**{d.model.name}** ({d.scheme.label}) on **{where}** with {d.engine.name}, "
            f"{scenario.concurrency} x {scenario.context:,} tokens")
if mem.fits:
    st.success(f"Fits. {headline}.")
else:
    st.error(f"Does not fit. {headline}.\n\n{mem.reasons[0]}")
    small = result.smallest
    if small.get("count"):
        nodes = f" ({small['nodes']} node(s))" if d.topology == "gpu" else ""  # systems count as machines
        st.info(f"Smallest that fits: **{small['count']} x {d.device.name}**{nodes}.")
    elif small.get("ram_gb"):
        st.info(f"Needs about **{small['ram_gb']:,} GiB** of system RAM.")
    else:
        st.info(small["reason"])
for warning in mem.warnings:
    st.warning(warning)
if result.cost_error:
    st.warning(f"Cost not computed: {result.cost_error}")


def _open(fixed) -> None:
    st.session_state["pending_scenario"] = fixed  # app.py seeds the sidebar with it on the rerun


if result.fixes:
    st.markdown("**Ways to make it fit** (cheapest first; each opens the whole scenario with that change):")
    cols = st.columns(min(len(result.fixes), 3))
    for i, fix in enumerate(result.fixes):
        price = f"${fix.capex_usd:,.0f} capex" if fix.capex_usd is not None else "no price"
        per_m = (f", ${fix.usd_per_million_output_tokens:,.2f} per 1M output tokens"
                 if fix.usd_per_million_output_tokens is not None else "")
        cols[i % len(cols)].button(f"{fix.fix.label} ({price})", key=f"fix_{fix.fix.kind}", on_click=_open,
                                   args=(fix.fix.scenario,), help=f"{price}{per_m}", width="stretch")

first = mem.devices[0]
r1 = st.columns(4)
r1[0].metric("Weights, one replica", format_gb(mem.weights_bytes), help="All weights as stored, scales included [GB].")
r1[1].metric("Memory used, device 0", format_device_bytes(first.usable_bytes - first.free_bytes),
             help=f"Of {format_device_bytes(first.usable_bytes)} the engine may use "
                  f"({format_device_bytes(first.capacity_bytes)} installed).")
r1[2].metric("KV capacity [tokens]", f"{mem.kv_capacity_tokens:,}", **vs_baseline("kv_capacity_tokens"),
             help=f"KV cache: {mem.kv_bytes_per_token:,} bytes per token of one sequence ({d.kv_dtype}).")
r1[3].metric("Max concurrency", f"{mem.max_concurrency:,}", **vs_baseline("max_concurrency"),
             help=f"Sequences of {scenario.context:,} tokens at once.")
if perf is not None:  # None when it does not fit: no speed or cost as if it ran
    bands = perf.bands()
    user, total, ttft = bands["decode_tokens_per_s_per_user"], bands["decode_tokens_per_s_total"], bands["ttft_s"]
    r2 = st.columns(4)
    r2[0].metric("Decode per user", f"{user.value:,.1f} tok/s", **vs_baseline("decode_tokens_per_s_per_user"),
                 help=f"Band {user.low:,.1f}-{user.high:,.1f} tok/s. Roofline (perfect efficiency): "
                      f"{perf.roofline_decode_tokens_per_s_per_user:,.1f} tok/s.")
    r2[1].metric(f"Decode total, {scenario.concurrency} user(s)", f"{total.value:,.0f} tok/s",
                 **vs_baseline("decode_tokens_per_s_total"),
                 help=f"Band {total.low:,.0f}-{total.high:,.0f} tok/s.")
    r2[2].metric("Time to first token", f"{ttft.value:,.2f} s", **vs_baseline("ttft_s"),
                 help=f"{scenario.input_tokens:,}-token prompt; band {ttft.low:,.2f}-{ttft.high:,.2f} s; prompts of "
                      "users arriving together queue behind each other.")
    r2[3].metric("Limited by", BOTTLENECK_WORDS.get(perf.bottleneck, perf.bottleneck),
                 help=f"The largest part of one decode step ({perf.bottleneck}): " + BOTTLENECK_HELP)
    if cost is not None:
        r3 = st.columns(4)
        r3[0].metric("Purchase (capex)", f"${cost.capex_usd:,.0f}", **vs_baseline("capex_usd"), help="; ".join(
            f"{k}: ${v:,.0f}" for k, v in cost.capex_breakdown_usd.items()))
        r3[1].metric("Power under load", f"{cost.power_watts:,.0f} W", **vs_baseline("power_watts"), help=f"Peak {cost.peak_power_watts:,.0f} W.")
        r3[2].metric("Own cost per 1M output tokens", f"${cost.usd_per_million_output_tokens:,.2f}",
                     **vs_baseline("usd_per_million_output_tokens"),
                     help=f"At {cost.assumptions['utilisation']:.0%} utilisation; "
                          f"${cost.usd_per_million_output_tokens_at_saturation:,.2f} busy all year.")
        api = cost.api_usd_per_million_output_tokens
        r3[3].metric("API per 1M output tokens", f"${api:,.2f}" if api is not None else "no price",
                     **vs_baseline("api_usd_per_million_output_tokens"),
                     help=f"{cost.api_provider or ''} prices, data/api_prices.csv. Break-even: "
                          + (f"{cost.breakeven_months:,.1f} months" if cost.breakeven_months else "never") + ".")
    st.caption(
        f"Speeds are estimates with a x{perf.decode_band_factor:.2f} band: it covers two thirds of the published "
        f"runs of {perf.calibration_class} when each is predicted without its own source "
        f"({perf.supporting_rows} measurement(s) from {perf.supporting_sources} source(s); see Method and accuracy)."
        + "".join(f" {n}." for n in perf.notes)
    )

if baseline is not None:
    with st.expander("Against the pinned baseline", expanded=True, icon=":material/push_pin:"):
        changes = changed_settings(scenario, pinned)
        st.markdown("**Settings changed**: " + ("; ".join(
            f"{name} {was if was is not None else 'default'} -> {now if now is not None else 'default'}"
            for name, was, now in changes) if changes else "none (this is the baseline)."))
        st.dataframe(pd.DataFrame([{
            "figure": f"{d.figure.label} [{d.figure.unit}]", "baseline": d.figure.format(d.baseline),
            "now": d.figure.format(d.current), "change": d.text(),
            "better?": {True: "better", False: "worse", None: ""}[d.improved]} for d in deltas.values()]),
            hide_index=True, key="baseline_table")

tab_speed, tab_memory, tab_cost = st.tabs(["Speed vs users", "Memory", "Cost"])
with tab_speed:
    if perf is None:
        st.info("No speed: this setup does not fit, so nothing runs. Pick one of the ways to make it fit above; "
                "the chart below shows how many sequences fit at each context length.")
    else:
        # The sweeps reuse the estimate's deployment and memory, cached per scenario (a cost slider
        # recomputes none of them); a pinned baseline is drawn as a faint dotted trace.
        st.plotly_chart(cached_speed_figure(result, catalogs, baseline), key="speed_chart", width="stretch")
    st.plotly_chart(cached_context_figure(result, catalogs), key="context_chart",
                    width="stretch")
with tab_memory:
    st.plotly_chart(cached_memory_figure(result, catalogs), key="memory_chart", width="stretch")
    rows = [{
        "device": dev.name, "capacity [GiB]": dev.capacity_bytes / GiB, "usable [GiB]": dev.usable_bytes / GiB,
        "weights [GiB]": dev.weights_bytes / GiB, "KV cache [GiB]": dev.kv_bytes / GiB,
        "activations [GiB]": dev.activation_bytes / GiB, "runtime [GiB]": dev.overhead_bytes / GiB,
        "free [GiB]": dev.free_bytes / GiB,
    } for dev in mem.devices]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="device_table",
                 column_config={c: st.column_config.NumberColumn(format="%.1f") for c in rows[0] if c != "device"})
    st.caption(f"Topology: {d.topology}; TP {d.tp}, PP {d.pp}, replicas {d.replicas}. Usable = the engine's "
               f"share ({d.engine.name}) or the OS limit. Activations and runtime are estimates (k2calc/engines.py). "
               "Memory in GiB (2^30 bytes), weights in GB (10^9 bytes).")
with tab_cost:
    if cost is None:
        st.info(f"No cost for this scenario: {result.no_cost_reason}.")
    else:
        st.plotly_chart(cached_cost_figure(result, catalogs), key="cost_chart", width="stretch")
        for note in cost.notes:
            st.caption(note)
