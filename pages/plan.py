"""Plan a budget: workload and constraints in, ranked deployments and rejections out; buy vs rent vs API
over time; what moves the cost most."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.charts import cumulative_cost_chart, hardware_scatter, tornado_chart
from k2calc.engines import ENGINES
from k2calc.errors import K2CalcError
from k2calc.finetune import FinetuneSpec
from k2calc.models import load_models
from k2calc.planner import build_constraints, build_workload, option_scenario, plan
from k2calc.planner.explain import options_frame, what_changes_the_winner
from k2calc.planner.finetune import plan_finetune
from k2calc.quant import SCHEMES
from k2calc.sensitivity import sensitivity
from k2calc.sweeps import cumulative_cost, tornado
from k2calc.units import format_usd
from ui import estimate_or_stop, page_setup, plotly_chart

scenario, catalogs = page_setup()
names = {**{m.id: m.name for m in load_models().values()}, **{k: m.name for k, m in catalogs.models.items()}}

st.title("Plan a budget")
with st.form("plan_form"):
    c1, c2, c3 = st.columns(3)
    models = c1.multiselect("Models", list(names), default=[scenario.model] if scenario.model in names else [],
                            format_func=names.get, key="plan_models")
    users = c2.number_input("Concurrent users", min_value=1, max_value=100_000, value=50, key="plan_users")
    slo = c3.number_input("Speed each user needs [tok/s]", min_value=0.1, max_value=5000.0, value=20.0,
                          key="plan_slo")
    c4, c5, c6 = st.columns(3)
    inp = c4.number_input("Prompt [tokens]", min_value=1, value=scenario.input_tokens, key="plan_input")
    out = c5.number_input("Answer [tokens]", min_value=1, value=scenario.output_tokens, key="plan_output")
    budget = c6.number_input("Budget [USD] (empty = none)", min_value=1.0, value=None, key="plan_budget")
    c7, c8, c9 = st.columns(3)
    power = c7.number_input("Power limit under load [W] (empty = none)", min_value=1.0, value=None, key="plan_power")
    where = c8.selectbox("Buy or rent", ["any", "on-prem", "cloud"], key="plan_where")
    rank_by = c9.selectbox("Rank by", ["usd_per_mtok", "tco"], key="plan_rank",
                           format_func=lambda r: "$ per 1M output tokens" if r == "usd_per_mtok" else "total cost")
    st.caption("The site (empty = no limit; a device whose figure is not in the catalog fails a limit on it)")
    s1, s2, s3 = st.columns(3)
    monthly = s1.number_input("Monthly budget [USD] (running costs or rental)", min_value=1.0, value=None,
                              key="plan_monthly")
    rack_kw = s2.number_input("Power per rack [kW] (one server or box)", min_value=0.1, value=None, key="plan_rack_kw")
    rack_units = s3.number_input("Rack space [U]", min_value=1.0, value=None, key="plan_rack_units")
    s4, s5, s6 = st.columns(3)
    noise = s4.selectbox("Loudest allowed", [None, "office", "lab", "datacentre"], key="plan_noise",
                         format_func=lambda v: "any noise" if v is None else v)
    cooling = s5.selectbox("Cooling the site has", [None, "air", "liquid"], key="plan_cooling",
                           format_func=lambda v: "any" if v is None else v)
    unverified = s6.checkbox("Rank unverified or rarely shipped devices too", key="plan_unverified")
    submitted = st.form_submit_button("Plan", type="primary")

try:
    w = build_workload(users=int(users), tokens_per_s_per_user=float(slo), input_tokens=int(inp),
                       output_tokens=int(out))
    c = build_constraints(models=tuple(models) or None, budget_usd=budget, power_limit_watts=power,
                          where=where, rank_by=rank_by, monthly_budget_usd=monthly, rack_kw=rack_kw,
                          rack_units=rack_units, noise=noise, cooling=cooling, include_unverified=unverified)
    current = scenario if scenario.model in c.models else None
    result = plan(w, c, scenario.cost_assumptions(), catalogs=catalogs, current=current)
except K2CalcError as exc:
    st.error(str(exc))
    st.stop()

st.caption(f"{result.configurations:,} configurations, {result.candidates:,} candidate deployments (users per "
           f"replica x buy or rent) evaluated in {result.seconds:.2f} s.")
for model, api in result.api_usd_per_million_output_tokens.items():
    if api is not None:
        st.caption(f"The {names.get(model, model)} API costs {format_usd(api, 2)} per 1M output tokens for this workload.")
def _what_to_buy(o) -> str:
    """'2 x (8 x NVIDIA B200 (HGX, 180GB), EP8)' with the hybrid box's CPUs and RAM: names, not ids."""
    hw = catalogs.hardware_catalog()
    host = f" + {o.sockets}x {hw[o.cpu].name if o.cpu in hw else o.cpu}, {o.ram_gb:,} GiB RAM" if o.cpu else ""
    split = "".join([f", EP{o.ep}" if o.ep > 1 else "", ", DP attention" if o.dp_attention else "",
                     f", {o.gpu_experts} experts per layer on the GPUs" if o.gpu_experts else ""])
    devices = f"{o.count} x {o.hardware_name}" if o.count else o.hardware_name
    return f"{o.replicas} x ({devices}{host}{split})" if o.replicas > 1 else f"{devices}{host}{split}"


def _table(options):
    """Buying columns first (what to buy, $/1M, capex, break-even, speed), then the rest."""
    return pd.DataFrame([{
        "what to buy": _what_to_buy(o), "buy/rent": o.mode,
        "$ / 1M output tokens": o.usd_per_million_output_tokens, "capex [USD]": o.capex_usd,
        "break-even vs API": ("-" if o.mode == "rent" else "never" if o.breakeven_months is None
                              else f"{o.breakeven_months:,.0f} months"),
        "tok/s per user": o.tokens_per_s_per_user, "per month [USD]": o.monthly_usd,
        "model": names.get(o.model, o.model),
        "quantization": SCHEMES[o.quant].label if o.quant in SCHEMES else o.quant,
        "engine": ENGINES[o.engine].name if o.engine in ENGINES else o.engine,
        "power [W]": o.power_watts, "rack [U]": o.rack_units, "noise": o.noise_class, "cooling": o.cooling,
        "Pareto": o.pareto,
    } for o in options])


PLAN_COLUMNS = {  # the buying columns sized to their headers; the rest scroll to the right
    "what to buy": st.column_config.TextColumn(width="medium"),
    "buy/rent": st.column_config.TextColumn(),
    "$ / 1M output tokens": st.column_config.NumberColumn(format="$%.2f"),
    "capex [USD]": st.column_config.NumberColumn(format="$%,.0f"),
    "break-even vs API": st.column_config.TextColumn(),
    "tok/s per user": st.column_config.NumberColumn(format="%.1f"),
    "per month [USD]": st.column_config.NumberColumn(format="$%,.0f"),
    "power [W]": st.column_config.NumberColumn(format="%,.0f"),
}

if result.options:
    st.dataframe(_table(result.options), hide_index=True, key="plan_table", column_config=PLAN_COLUMNS)
    pick = st.selectbox("Open an option in the calculator", range(len(result.options)), key="plan_pick",
                        format_func=lambda i: f"{i + 1}. {_what_to_buy(result.options[i])}, "
                                              f"{result.options[i].quant}, {result.options[i].mode}")
    if st.button("Open in the calculator", key="plan_open"):
        st.session_state["pending_scenario"] = option_scenario(result.options[pick], w, catalogs).model_copy(
            update={k: v for k, v in scenario.cost_overrides().items()
                    if k not in ("hardware_price_usd", "cloud_usd_per_hour")})  # those belong to a device
        st.switch_page("pages/calculator.py")
else:
    st.error("Nothing qualifies. The closest attempts are below.")
if result.current is not None:
    cur = result.current
    hw = catalogs.hardware_catalog()
    device = hw.get(scenario.hardware)
    mine = (f"{scenario.sockets or 2}x {device.name}" if device and device.is_cpu
            else f"{scenario.count} x {device.name if device else scenario.hardware}")
    if scenario.cpu:
        cpu = hw.get(scenario.cpu)
        mine += f" + {scenario.sockets or 2}x {cpu.name if cpu else scenario.cpu}, {scenario.ram_gb or 0:,.0f} GiB RAM"
    if cur.option is not None:
        st.info(f"Your hardware (the sidebar: {mine}) serves this workload as {_what_to_buy(cur.option)}, "
                f"{cur.option.mode}, at {format_usd(cur.option.usd_per_million_output_tokens, 2)} per 1M output "
                f"tokens: it would rank #{cur.rank} in the list above.")
    else:
        st.info(f"Your hardware (the sidebar: {mine}) does not serve this workload: {cur.reason}.")
if result.apart:
    with st.expander(f"Apart: {len(result.apart)} options on devices whose catalog row is unverified or rarely shipped"):
        st.dataframe(_table(result.apart).assign(why=[o.apart for o in result.apart]), hide_index=True,
                     key="plan_apart", column_config=PLAN_COLUMNS)
if result.rejected:
    with st.expander(f"Why {len(result.rejected)} hardware classes were rejected (the first constraint the closest "
                     "attempt failed)", expanded=not result.options):
        for hw, why in result.rejected.items():
            st.markdown(f"- **{hw}**: {why}")

if len(result.options) >= 2:
    st.subheader("Explain the choice")
    plotly_chart(hardware_scatter(options_frame(result.options, catalogs), title="The options: cost against speed"),
                 key="plan_pareto")
    first, second = result.options[:2]
    st.caption(f"What would change the winner: #1 {first.label} ({first.mode}) against #2 {second.label} "
               f"({second.mode}), $ per 1M output tokens, everything else as planned.")
    for m in what_changes_the_winner(result, w, catalogs):
        st.markdown(f"- **{m.assumption}**: " + (f"#2 becomes cheaper from {m.flips_at}" if m.flips_at
                                                  else "#1 stays first over the range"))
        st.dataframe(pd.DataFrame({"setting": m.labels, "#1 [USD/1M]": m.first_usd, "#2 [USD/1M]": m.second_usd}),
                     hide_index=True, key=f"plan_move_{m.assumption[:12]}")

with st.expander("Plan a fine-tuning job on the same catalog and site"):
    f1, f2, f3 = st.columns(3)
    ft_method = f1.selectbox("Method", ["lora", "qlora", "full"], key="plan_ft_method")
    ft_tokens = f2.number_input("Training tokens", min_value=1, value=10_000_000, key="plan_ft_tokens")
    ft_hours = f3.number_input("Deadline [h]", min_value=0.1, value=48.0, key="plan_ft_deadline")
    if st.button("Plan the job", key="plan_ft_go"):  # a large model takes seconds: only when asked
        try:
            job = FinetuneSpec.build(model=c.models[0], method=ft_method, tokens=int(ft_tokens))
            ft = plan_finetune(job, float(ft_hours), c, scenario.cost_assumptions(), catalogs=catalogs)
        except K2CalcError as exc:
            st.error(str(exc))
        else:
            st.caption(f"{ft.candidates:,} placements evaluated in {ft.seconds:.1f} s; buy = capex + the run's "
                       "electricity, rent = $/device-hour x hours.")
            if ft.options:
                st.dataframe(pd.DataFrame([{"hardware": o.label, "buy/rent": o.mode, "hours": o.hours,
                                            "tok/s": o.tokens_per_s, "cost [USD]": o.cost_usd} for o in ft.options]),
                             hide_index=True, key="plan_ft_table")
            else:
                st.warning("Nothing finishes in time within the constraints.")
            for hw, why in list(ft.rejected.items())[:12]:
                st.markdown(f"- **{hw}**: {why}")

st.subheader("Buy vs rent vs API over time (sidebar scenario)")
e = estimate_or_stop(scenario, catalogs)
if e.cost is not None:
    plotly_chart(cumulative_cost_chart(cumulative_cost(e)), key="cumulative_cost")
    st.subheader("What moves the cost most")
    plotly_chart(tornado_chart(tornado(sensitivity(scenario, catalogs))), key="tornado")
else:
    st.info(f"No cost for this scenario: {e.no_cost_reason}.")
