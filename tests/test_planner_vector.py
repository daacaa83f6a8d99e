"""The planner's vectorized evaluator against the scalar estimate (the reference), the planner's first
answer against brute force over the same space, and the buyer's constraints (issue 14).

The evaluator runs the scalar code's own functions on arrays of loads (k2calc/planner/vector.py), so
the two must agree to rounding; the property allows 0.1%, the issue's bound.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from k2calc.cost import default_assumptions
from k2calc.estimate import estimate
from k2calc.hardware import load_hardware
from k2calc.planner import Constraints, Workload, plan
from k2calc.planner.plan import CHECKS
from k2calc.planner.space import configurations
from k2calc.planner.vector import candidate_loads, evaluate, invariants
from k2calc.scenario import Catalogs, Scenario

REL = 1e-3  # 0.1%

DEPLOYMENTS = [
    dict(hardware="h200-sxm", count=8, nodes=1, engine="vllm"),
    dict(hardware="h200-sxm", count=8, nodes=1, engine="sglang", dp_attention=True),
    dict(hardware="b200", count=8, nodes=1, engine="sglang", ep=8),
    dict(hardware="h100-sxm", count=16, nodes=2, engine="vllm"),
    dict(hardware="mi325x", count=4, nodes=1, engine="vllm"),
    dict(hardware="rtx-4090", count=2, cpu="xeon-platinum-8488c", sockets=2, engine="ktransformers", gpu_experts=8),
    dict(hardware="rtx-4090", count=2, cpu="epyc-9355", sockets=2, engine="llama.cpp"),
    dict(hardware="mac-studio-m3-ultra-512gb", count=2, engine="mlx-lm"),
    dict(hardware="dgx-spark", count=2, engine="llama.cpp"),
    dict(hardware="epyc-9654", sockets=2, engine="llama.cpp"),
]
MODELS = ["kimi-k2-thinking", "minimax-m2", "qwen3-235b-a22b", "gpt-oss-120b", "llama-3.1-70b", "llama-3.1-8b",
          "deepseek-v3.2", "kimi-linear-48b"]  # with DeepSeek sparse attention and hybrid linear attention


def _loads(values: dict, w: Workload):
    inv = invariants(values, default_assumptions(), Catalogs())
    if isinstance(inv, str):
        return None, None
    served, replicas = candidate_loads(w.users)
    return inv, evaluate(inv, w, default_assumptions(), Catalogs(), served, replicas)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(model=st.sampled_from(MODELS), deployment=st.sampled_from(DEPLOYMENTS),
       kv=st.sampled_from(["bf16", "fp8"]), users=st.integers(1, 300),
       input_tokens=st.integers(16, 32_768), output_tokens=st.integers(1, 4096), pick=st.integers(0, 10**6))
def test_vectorized_evaluator_equals_the_scalar_estimate(model, deployment, kv, users, input_tokens,
                                                          output_tokens, pick):
    """Every load the evaluator computes is what estimate() says for that scenario: memory fit, tok/s
    per user, TTFT, $ per 1M output tokens (buy and rent)."""
    w = Workload(users=users, input_tokens=input_tokens, output_tokens=output_tokens)
    engine = deployment["engine"]
    if engine == "ktransformers" and model in ("llama-3.1-70b", "llama-3.1-8b"):
        deployment = {**deployment, "engine": "llama.cpp", "gpu_experts": 0}
    values = dict(model=model, quant="native" if engine not in ("llama.cpp", "mlx-lm") else
                  ("q4_k_m" if engine == "llama.cpp" else "mlx-4bit"), kv_dtype=kv, concurrency=1,
                  context=w.context_tokens, input_tokens=input_tokens, output_tokens=output_tokens, **deployment)
    inv, loads = _loads(values, w)
    assume(inv is not None)
    for i in sorted({0, len(loads.served) - 1, pick % len(loads.served)}):
        n = int(loads.served[i])
        e = estimate(inv.scenario.model_copy(update={"concurrency": n}))
        assert bool(loads.fits[i]) == e.fits, (n, e.memory.reasons)
        if not e.fits:
            continue
        p = e.performance
        assert loads.tokens_per_s_per_user[i] == pytest.approx(p.decode_tokens_per_s_per_user, rel=REL)
        assert loads.ttft_s[i] == pytest.approx(p.ttft_s, rel=REL)
        if e.cost is not None:
            assert loads.usd_per_million_buy[i] == pytest.approx(e.cost.usd_per_million_output_tokens, rel=REL)
            if e.cost.cloud_usd_per_million_output_tokens is not None:
                assert loads.usd_per_million_rent[i] == pytest.approx(e.cost.cloud_usd_per_million_output_tokens,
                                                                      rel=REL)


def test_first_answer_equals_brute_force_over_the_same_space():
    """Every configuration of a reduced space (three server GPUs, native weights, FP8 KV cache, vLLM and
    SGLang with their splits) at every replica count 1..50, each by estimate(): the cheapest qualifying
    ($ per 1M output tokens, bought or rented) is the planner's first line."""
    w = Workload(users=50, tokens_per_s_per_user=20, input_tokens=8192, output_tokens=1024)
    c = Constraints(models=("kimi-k2-thinking",), hardware=("h200-sxm", "b200", "mi325x"), quants=("native",),
                    kv_dtypes=("fp8",), include_unverified=True)
    best, seen = (math.inf, None), {}
    for values in configurations(w, c, Catalogs()):
        if "_skip" in values:
            continue
        for r in range(1, w.users + 1):
            n = math.ceil(w.users / r)
            key = (tuple(sorted(values.items())), n)
            if key not in seen:
                seen[key] = estimate(Scenario.build(**{**values, "concurrency": n}))
            e = seen[key]
            if not e.fits or e.performance.decode_tokens_per_s_per_user < w.tokens_per_s_per_user or e.cost is None:
                continue
            for mode, cost in (("buy", e.cost.usd_per_million_output_tokens),
                               ("rent", e.cost.cloud_usd_per_million_output_tokens)):
                if cost is not None and cost < best[0]:
                    best = (cost, (values["hardware"], values["count"], r, mode))
    first = plan(w, c).options[0]
    assert first.usd_per_million_output_tokens == pytest.approx(best[0], rel=1e-9)
    assert (first.hardware, first.count, first.replicas, first.mode) == best[1]


K2 = Workload(users=50, tokens_per_s_per_user=20, input_tokens=8192, output_tokens=1024)


def test_a_rejection_names_the_first_check_failed():
    """8x H200 draws far more than 1 kW and costs far more than $1,000: the power limit comes first in
    the order of checks, so that is the reason given."""
    assert CHECKS.index("power") < CHECKS.index("capex budget")
    r = plan(K2, Constraints(hardware=("h200-sxm",), server_engines=("vllm",), power_limit_watts=1000,
                             budget_usd=1000, where="on-prem"))
    assert not r.options
    assert r.rejected["h200-sxm"].startswith("over the power limit"), r.rejected


def test_budgets_power_and_rack_limits_hold_for_every_option():
    c = Constraints(budget_usd=2e6, monthly_budget_usd=40_000, power_limit_watts=60_000, rack_kw=12,
                    where="on-prem")
    r = plan(K2, c)
    assert r.options, r.rejected
    for o in r.options:
        assert o.capex_usd <= 2e6 and o.monthly_usd <= 40_000 and o.power_watts <= 60_000
        boxes = o.replicas * (math.ceil(o.count / 8) if load_hardware()[o.hardware].is_gpu and not o.cpu else 1)
        assert o.peak_power_watts / boxes <= 12_000 + 1e-6, o.label


def test_unverified_and_rarely_shipped_devices_are_planned_apart():
    hw = load_hardware()
    r = plan(K2, Constraints())
    assert r.apart, "the RTX PRO 6000 and B100 rows (unverified) should still be shown, apart"
    for o in r.options:
        assert hw[o.hardware].status != "unverified" and hw[o.hardware].availability != "rarely-shipped"
        assert o.apart is None
    assert all(o.apart for o in r.apart)
    merged = plan(K2, Constraints(include_unverified=True))
    assert not merged.apart and merged.options[0].usd_per_million_output_tokens <= r.options[0].usd_per_million_output_tokens


def test_an_unknown_site_fact_fails_its_constraint_and_says_so():
    """A device whose cooling is not in the catalog cannot be promised to an air-cooled site."""
    hw = load_hardware()
    unknown = [h.id for h in hw.values() if h.cooling is None and h.is_gpu]
    assume_some = unknown[:1]
    if not assume_some:
        pytest.skip("every GPU has a sourced cooling")
    r = plan(K2, Constraints(hardware=tuple(assume_some), cooling="air", server_engines=("vllm",)))
    assert "cooling unknown" in r.rejected[assume_some[0]], r.rejected


def test_current_hardware_is_ranked_among_the_options():
    r = plan(K2, Constraints(), current=Scenario.build(model="kimi-k2-thinking", hardware="b200", count=8))
    cur = r.current
    assert cur is not None and cur.option is not None, cur
    assert cur.rank == 1 + sum(1 for o in r.options
                               if o.usd_per_million_output_tokens < cur.option.usd_per_million_output_tokens)
    slow = plan(K2, Constraints(), current=Scenario.build(model="kimi-k2-thinking", hardware="epyc-9654",
                                                          ram_gb=1536)).current
    assert slow.option is None and "tok/s" in slow.reason


def test_what_changes_the_winner_starts_from_the_plan_and_moves_the_right_way():
    """At the planned price (x1), tariff and utilisation the top two cost what the plan says; a bought
    option's $ per 1M tokens rises with its price and electricity and falls with utilisation (the same
    annual cost over more tokens); the flip is the first setting where #2 is cheaper."""
    from k2calc.planner.explain import ELECTRICITY_FACTORS, PRICE_FACTORS, UTILISATIONS, what_changes_the_winner
    r = plan(K2, Constraints(where="on-prem"))
    first, second = r.options[:2]
    moves = {m.assumption.split()[0]: m for m in what_changes_the_winner(r, K2)}
    base = {"price": PRICE_FACTORS.index(1.0), "electricity": ELECTRICITY_FACTORS.index(1.0),
            "utilisation": UTILISATIONS.index(0.5)}
    for name, i in base.items():
        m = moves[name]
        assert m.first_usd[i] == pytest.approx(first.usd_per_million_output_tokens, rel=1e-9)
        assert m.second_usd[i] == pytest.approx(second.usd_per_million_output_tokens, rel=1e-9)
        flip = next((label for label, x, y in zip(m.labels, m.first_usd, m.second_usd) if y < x), None)
        assert m.flips_at == flip
    assert list(moves["price"].first_usd) == sorted(moves["price"].first_usd)
    assert list(moves["electricity"].first_usd) == sorted(moves["electricity"].first_usd)
    assert list(moves["utilisation"].first_usd) == sorted(moves["utilisation"].first_usd, reverse=True)


def test_finetune_plan_meets_the_deadline_and_prices_buying_and_renting():
    """LoRA on Llama 3.1 70B, 50M tokens within 24 h: every option finishes in time; a bought option
    costs its capex plus the run's electricity (hours x kW x tariff), a rented one the catalog's
    $/device-hour x hours; cheapest first; a one-hour deadline leaves nothing and says why."""
    from k2calc.finetune import FinetuneSpec
    from k2calc.planner.finetune import plan_finetune
    job = FinetuneSpec(model="llama-3.1-70b", method="lora", tokens=50_000_000)
    r = plan_finetune(job, 24, Constraints())
    assert r.options, r.rejected
    hw = load_hardware()
    for o in r.options:
        assert o.hours <= 24
        if o.mode == "rent":
            assert o.cost_usd == pytest.approx(hw[o.hardware].cloud_usd_per_hour * o.count * o.hours, rel=1e-9)
        else:
            assert o.cost_usd == pytest.approx(o.capex_usd + o.energy_usd) and o.energy_usd > 0
    assert [o.cost_usd for o in r.options] == sorted(o.cost_usd for o in r.options)
    hurry = plan_finetune(job, 0.01, Constraints(hardware=("h200-sxm",)))
    assert not hurry.options and "past the 0.01 h deadline" in hurry.rejected["h200-sxm"]
