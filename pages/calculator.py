"""Calculator: the verdict first, then key figures, speed against users, memory per device and cost."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.errors import K2CalcError
from k2calc.report_content import (
    BOTTLENECK_WORDS,
    api_formula_text,
    api_prices_text,
    api_verdict_text,
    bottleneck_text,
    context_fill_text,
    headline,
    longest_context_text,
)
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
    plotly_chart,
    session_baseline,
)

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
line = f"**{headline(result)}**, {scenario.concurrency:,} user(s) x {scenario.context:,} tokens"
if mem.fits:
    answer = ""
    if perf is not None:
        answer = (f"\n\n**{perf.decode_tokens_per_s_per_user:,.1f} tok/s** per user, first token in "
                  f"{perf.ttft_s:,.2f} s")
        if cost is not None:
            api = cost.api_usd_per_million_output_tokens
            answer += (f"; **${cost.usd_per_million_output_tokens:,.2f}** per 1M output tokens self-hosted"
                       + (f" vs **${api:,.2f}** via the API ({cost.api_provider})" if api is not None else ""))
        answer += "."
    st.success(f"Fits. {line}.{answer}")
else:
    st.error(f"Does not fit. {line}.\n\n{mem.reasons[0]}")
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



def _fill_context() -> None:
    """'Prompt fills the context': the prompt becomes the context minus the answer."""
    ss = st.session_state
    ss["input_tokens"] = max(1, int(ss["context"]) - int(ss["output_tokens"]))


if perf is not None:  # None when it does not fit: no speed or cost as if it ran
    bands = perf.bands()
    user, total, ttft = bands["decode_tokens_per_s_per_user"], bands["decode_tokens_per_s_total"], bands["ttft_s"]
    r1 = st.columns(4)
    r1[0].metric("Decode per user", f"{user.value:,.1f} tok/s", **vs_baseline("decode_tokens_per_s_per_user"),
                 help=f"Band {user.low:,.1f}-{user.high:,.1f} tok/s. Roofline (perfect efficiency): "
                      f"{perf.roofline_decode_tokens_per_s_per_user:,.1f} tok/s.")
    r1[1].metric("Time to first token", f"{ttft.value:,.2f} s", **vs_baseline("ttft_s"),
                 help=f"{scenario.input_tokens:,}-token prompt; band {ttft.low:,.2f}-{ttft.high:,.2f} s; prompts of "
                      "users arriving together queue behind each other.")
    if cost is not None:
        r1[2].metric("Own cost per 1M output tokens", f"${cost.usd_per_million_output_tokens:,.2f}",
                     **vs_baseline("usd_per_million_output_tokens"),
                     help=f"At {cost.assumptions['utilisation']:.0%} utilisation; "
                          f"${cost.usd_per_million_output_tokens_at_saturation:,.2f} busy all year.")
        api = cost.api_usd_per_million_output_tokens
        r1[3].metric("API per 1M output tokens", f"${api:,.2f}" if api is not None else "no price",
                     **vs_baseline("api_usd_per_million_output_tokens"),
                     help="For this workload: output price + (prompt / answer tokens) x input price, as the API also "
                          "bills every prompt token. Formula and list prices below.")
    r2 = st.columns(4)
    r2[0].metric(f"Decode total, {scenario.concurrency:,} user(s)", f"{total.value:,.0f} tok/s",
                 **vs_baseline("decode_tokens_per_s_total"), help=f"Band {total.low:,.0f}-{total.high:,.0f} tok/s.")
    r2[1].metric("Limited by", BOTTLENECK_WORDS.get(perf.bottleneck, perf.bottleneck),
                 help="The largest part of one decode step: " + bottleneck_text(perf.bottleneck) + ".")
    if cost is not None:
        r2[2].metric("Purchase (capex)", f"${cost.capex_usd:,.0f}", **vs_baseline("capex_usd"), help="; ".join(
            f"{k}: ${v:,.0f}" for k, v in cost.capex_breakdown_usd.items()))
        r2[3].metric("Break-even vs API", f"{cost.breakeven_months:,.1f} months" if cost.breakeven_months
                     else ("never" if cost.api_usd_per_million_output_tokens is not None else "no API price"),
                     help="Months until buying costs less than paying the API for the same output volume "
                          f"({cost.monthly_output_tokens / 1e6:,.0f}M output tokens a month).")
        st.markdown(f"**Self-host or API?** {api_verdict_text(result)}  \n"
                    f"{api_prices_text(result)}" + (f"; this workload: {api_formula_text(result)}."
                                                    if api_formula_text(result) else "."))
    elif result.cost_error:
        st.warning(f"Cost not computed: {result.cost_error}")
    st.caption(
        f"Speeds are estimates with a x{perf.decode_band_factor:.2f} band: it covers two thirds of the published "
        f"runs of {perf.calibration_class} when each is predicted without its own source "
        f"({perf.supporting_rows} measurement(s) from {perf.supporting_sources} source(s); see Method and accuracy)."
        + "".join(f" {n}." for n in perf.notes)
    )
    fill, button = st.columns([3, 1], vertical_alignment="center")
    fill.caption(context_fill_text(result))
    button.button("Prompt fills context", key="fill_context", on_click=_fill_context,
                  disabled=scenario.input_tokens + scenario.output_tokens >= scenario.context,
                  help="Set the prompt to the context minus the answer: speed and first token with every "
                       "user's context full.")

first = mem.devices[0]
r3 = st.columns(5)
r3[0].metric("Weights, one replica", format_gb(mem.weights_bytes), help="All weights as stored, scales included [GB].")
if first.free_bytes >= 0:
    r3[1].metric("Memory used, device 0", format_device_bytes(first.usable_bytes - first.free_bytes),
                 help=f"Of {format_device_bytes(first.usable_bytes)} the engine may use "
                      f"({format_device_bytes(first.capacity_bytes)} installed).")
else:  # over its memory: what it would need, and by how much that is too much (never 'used')
    r3[1].metric("Memory needed, device 0", format_device_bytes(first.usable_bytes - first.free_bytes),
                 delta=f"{format_device_bytes(-first.free_bytes)} more than usable", delta_color="inverse",
                 help=f"Only {format_device_bytes(first.usable_bytes)} is usable by the engine "
                      f"({format_device_bytes(first.capacity_bytes)} installed): it does not fit.")
r3[2].metric("KV capacity [tokens]", f"{mem.kv_capacity_tokens:,}", **vs_baseline("kv_capacity_tokens"),
             help=f"KV cache: {mem.kv_bytes_per_token:,} bytes per token of one sequence ({d.kv_dtype}).")
r3[3].metric("Max concurrency", f"{mem.max_concurrency:,}", **vs_baseline("max_concurrency"),
             help=f"Sequences of {scenario.context:,} tokens at once.")
if cost is not None:
    r3[4].metric("Power under load", f"{cost.power_watts:,.0f} W", **vs_baseline("power_watts"),
                 help=f"Peak {cost.peak_power_watts:,.0f} W.")
st.caption(f"Longest context at {scenario.concurrency:,} user(s): {longest_context_text(result)}.")

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

def _speed_tab() -> None:
    if perf is None:
        st.info("No speed: this setup does not fit, so nothing runs. Pick one of the ways to make it fit above; "
                "the Memory tab shows how many sequences fit at each context length.")
        return
    # The sweeps reuse the estimate's deployment and memory, cached per scenario (a cost slider
    # recomputes none of them); a pinned baseline is drawn as a faint dotted trace.
    plotly_chart(cached_speed_figure(result, catalogs, baseline), key="speed_chart")


def _memory_tab() -> None:
    plotly_chart(cached_memory_figure(result, catalogs), key="memory_chart")
    plotly_chart(cached_context_figure(result, catalogs), key="context_chart")
    rows = [{
        "device": dev.name, "capacity [GiB]": dev.capacity_bytes / GiB, "usable [GiB]": dev.usable_bytes / GiB,
        "weights [GiB]": dev.weights_bytes / GiB, "KV cache [GiB]": dev.kv_bytes / GiB,
        "activations [GiB]": dev.activation_bytes / GiB, "runtime [GiB]": dev.overhead_bytes / GiB,
        "free [GiB]": max(0, dev.free_bytes) / GiB,
        **({"missing [GiB]": max(0, -dev.free_bytes) / GiB} if not mem.fits else {}),
    } for dev in mem.devices]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="device_table",
                 column_config={c: st.column_config.NumberColumn(format="%.1f") for c in rows[0] if c != "device"})
    st.caption(f"Topology: {d.topology}; TP {d.tp}, PP {d.pp}, replicas {d.replicas}. Usable = the engine's "
               f"share ({d.engine.name}) or the OS limit. Activations and runtime are estimates (k2calc/engines.py). "
               "Memory in GiB (2^30 bytes), weights in GB (10^9 bytes).")


def _cost_tab() -> None:
    if cost is None:
        st.info(f"No cost for this scenario: {result.no_cost_reason}.")
        return
    plotly_chart(cached_cost_figure(result, catalogs), key="cost_chart")
    for note in cost.notes:
        st.caption(note)


# Only the open tab is drawn (another on its click): every plotly chart costs the browser a render, and
# the first screen's figures appear sooner without hidden charts (benchmarks/app_browser.py).
tabs = st.tabs(["Speed vs users", "Memory", "Cost"], key="calculator_tab", on_change="rerun")
for tab, draw in zip(tabs, (_speed_tab, _memory_tab, _cost_tab)):
    if tab.open:
        with tab:
            draw()
