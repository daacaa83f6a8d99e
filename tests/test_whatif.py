"""What-if core: slider scales and their limits, re-pricing without physics, the baseline link and the
deltas against a baseline (k2calc.whatif, k2calc.links, k2calc.estimate.reprice)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2calc.deployment import resolve
from k2calc.errors import K2CalcError
from k2calc.estimate import estimate, reprice
from k2calc.links import (
    BASELINE_PARAM,
    baseline_from_param,
    baseline_param,
    from_query,
    physics_query,
    share_query,
    to_query,
)
from k2calc.memory import estimate_memory
from k2calc.models import load_models
from k2calc.scenario import COST_FIELDS, MAX_COUNT, Scenario
from k2calc.units import HOURS_PER_YEAR
from k2calc.whatif import (
    COST_SCALES,
    changed_settings,
    compare,
    device_counts,
    max_users,
    nearest_step,
    powers_of_two,
    workload_scales,
)

MAC = dict(model="minimax-m2", quant="mlx-8bit", hardware="mac-studio-m3-ultra-512gb", count=1)


def test_scales_read_as_powers_of_two_and_round_money():
    assert powers_of_two(1, 64) == (1, 2, 4, 8, 16, 32, 64)
    assert COST_SCALES["utilisation"][:3] == (0.05, 0.1, 0.15) and COST_SCALES["utilisation"][-1] == 1.0
    assert 0.13 in COST_SCALES["electricity_usd_per_kwh"]  # the dated default is a step
    assert {40_000.0, 50_000.0, 250_000.0} <= set(COST_SCALES["hardware_price_usd"])


@pytest.mark.parametrize("field", list(COST_SCALES))
def test_every_cost_step_is_a_valid_scenario(field):
    for v in COST_SCALES[field]:
        Scenario.build(**{field: v})


@pytest.mark.parametrize("values", [{}, MAC, dict(count=4), dict(context=131072, input_tokens=65536),
                                    dict(hardware="xeon-platinum-8488c", count=1, ram_gb=2048)])
def test_workload_steps_never_offer_an_error(values):
    """Every step of every workload slider, applied alone, gives a scenario that resolves (it may not fit,
    which the verdict says, but it is never an error)."""
    s = Scenario(**values)
    scales = workload_scales(s)
    model = load_models()[s.model]
    assert max(scales["context"]) <= model.max_context_tokens
    assert max(scales["concurrency"]) <= max(max_users(s), s.concurrency)
    for field, steps in scales.items():
        assert list(steps) == sorted(steps)
        for v in steps:
            changed = s.model_copy(update={field: v})
            assert changed.workload.context_tokens == changed.context  # it holds prompt + answer
            resolve(changed)


def test_users_go_up_to_what_could_ever_fit():
    s = Scenario()
    most = estimate_memory(resolve(s.model_copy(update={"context": 9216}))).max_concurrency
    assert max_users(s) == most and workload_scales(s)["concurrency"][-1] == most
    assert estimate(s.model_copy(update={"context": 9216, "concurrency": most})).fits


def test_device_counts_leave_out_splits_that_fail():
    """Kimi K2 has 64 attention heads: 3 or 6 GPUs cannot split them; powers of two up to 64 can."""
    counts = device_counts(Scenario())
    assert counts == (1, 2, 4, 8, 16, 32, 64)
    assert all(c <= MAX_COUNT for c in counts)
    with pytest.raises(K2CalcError):
        resolve(Scenario(count=128))
    assert device_counts(Scenario(hardware="xeon-platinum-8488c", count=1, ram_gb=2048)) == ()


def test_nearest_step_is_on_a_log_scale_and_keeps_ends():
    assert nearest_step((1, 2, 4, 8, 16, 22), 20) == 22
    assert nearest_step((1024, 2048, 4096), 3000) == 4096  # 3000/2048 = 1.46 > 4096/3000 = 1.37
    assert nearest_step((0.0, 0.05, 0.1), None) == 0.0


@pytest.mark.parametrize("change", [dict(electricity_usd_per_kwh=0.3), dict(utilisation=0.9, amortisation_years=3),
                                    dict(hardware_price_usd=25_000, cache_hit_rate=0.5)])
def test_reprice_equals_a_fresh_estimate(change):
    base = estimate(Scenario(concurrency=4))
    s = Scenario(concurrency=4, **change)
    again = reprice(base, s)
    assert again.performance is base.performance  # no physics computed
    assert again.as_dict() == estimate(s).as_dict()


def test_reprice_runs_the_physics_when_it_changed():
    base = estimate(Scenario())
    s = Scenario(concurrency=8, electricity_usd_per_kwh=0.2)
    assert reprice(base, s).as_dict() == estimate(s).as_dict()


def test_physics_query_leaves_out_the_cost_fields():
    s = Scenario(concurrency=4, electricity_usd_per_kwh=0.3, utilisation=0.8)
    assert physics_query(s) == {"concurrency": "4"}
    assert set(to_query(s)) - set(physics_query(s)) <= set(COST_FIELDS)


baselines = st.builds(
    Scenario,
    model=st.sampled_from(["kimi-k2-thinking", "minimax-m2", "deepseek-v3"]),
    hardware=st.sampled_from(["h200-sxm", "b200", "mac-studio-m3-ultra-512gb"]),
    count=st.integers(1, 64), context=st.integers(1, 10_000_000), input_tokens=st.integers(1, 10_000_000),
    concurrency=st.integers(1, 1_000_000),
    electricity_usd_per_kwh=st.one_of(st.none(), st.floats(0, 10, allow_nan=False)),
    utilisation=st.one_of(st.none(), st.floats(0.001, 1, allow_nan=False)),
    hardware_price_usd=st.one_of(st.none(), st.floats(0, 1e8, allow_nan=False)),
    api_provider=st.one_of(st.none(), st.text(min_size=1, max_size=12)),
)


@settings(max_examples=60, deadline=None)
@given(baseline=baselines, current=baselines)
def test_baseline_travels_in_the_link_losslessly(baseline, current):
    query = share_query(current, baseline=baseline)
    assert from_query(query) == (current, [])  # the baseline parameter is not a scenario setting
    assert baseline_from_param(query[BASELINE_PARAM]) == (baseline, [])


def test_a_damaged_baseline_parameter_is_named_not_raised():
    assert baseline_from_param(None) == (None, [])
    scenario, why = baseline_from_param("not-a-baseline!!")
    assert scenario is None and "baseline could not be read" in why[0]
    assert baseline_param(Scenario()) == "" and baseline_from_param("") == (Scenario(), [])


def test_deltas_against_a_baseline_reconcile_by_hand():
    """Own $/1M output tokens at 0.30 USD/kWh against the 0.13 default: only the energy term changes, by
    average kW x 8,760 h x PUE x (0.30 - 0.13) per year, spread over the same tokens."""
    base = estimate(Scenario())
    now = estimate(Scenario(electricity_usd_per_kwh=0.30))
    d = {x.figure.key: x for x in compare(now, base)}["usd_per_million_output_tokens"]
    c, a = base.cost, base.cost.assumptions
    extra_per_year = c.average_power_watts / 1000 * HOURS_PER_YEAR * a["pue"] * (0.30 - a["electricity_usd_per_kwh"])
    assert math.isclose(d.change, extra_per_year / c.output_tokens_per_year * 1e6, rel_tol=1e-9)
    assert d.improved is False and d.text().startswith("+$")
    speed = {x.figure.key: x for x in compare(now, base)}["decode_tokens_per_s_per_user"]
    assert speed.change == 0 and speed.improved is None and speed.text() == "no change"
    assert changed_settings(now.scenario, base.scenario) == [("electricity_usd_per_kwh", None, 0.30)]


def test_faster_and_cheaper_count_as_better():
    base = estimate(Scenario(concurrency=1))
    now = estimate(Scenario(concurrency=8))
    d = {x.figure.key: x for x in compare(now, base)}
    assert d["decode_tokens_per_s_total"].improved is True  # more in total
    assert d["decode_tokens_per_s_per_user"].improved is False  # slower for each user
    assert d["usd_per_million_output_tokens"].improved is True  # cheaper per token
    unfit = estimate(Scenario(count=4))
    gone = {x.figure.key: x for x in compare(unfit, base)}["decode_tokens_per_s_per_user"]
    assert gone.current is None and gone.text() == "n/a" and gone.improved is None


def test_the_report_shows_both_scenarios_and_the_baseline_trace():
    from k2calc.report import report_html, report_markdown

    base = estimate(Scenario())
    now = estimate(Scenario(concurrency=8, utilisation=0.9))
    md = report_markdown(now, baseline=base)
    assert "## Against the pinned baseline" in md and "| concurrency | 1 | 8 |" in md
    assert "| utilisation | default | 0.9 |" in md
    delta = {d.figure.key: d for d in compare(now, base)}["usd_per_million_output_tokens"]
    assert f"| {delta.text().replace('$', chr(92) + '$')} | better |" in md
    assert "Against the pinned baseline" not in report_markdown(now)
    page = report_html(now, baseline=base)
    assert "Against the pinned baseline" in page and "baseline per user" in page
    import json

    from k2calc.report import report_json
    body = json.loads(report_json(now, baseline=base))
    assert body["baseline"]["scenario"]["concurrency"] == 1
    cost = body["against_baseline"]["usd_per_million_output_tokens"]
    assert cost["improved"] is True and math.isclose(cost["change"], delta.change)
