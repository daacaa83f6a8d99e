"""Tests for the budget planner (k2calc/planner/), the sensitivity table (k2calc/sensitivity.py) and
their command lines.

The planner takes one to two seconds per call, so each workload is planned once
per module (module-scoped fixtures) and every test reads the same result.
"""

from __future__ import annotations


import pytest

from k2calc.cli import main
from k2calc.errors import K2CalcError
from k2calc.estimate import estimate
from k2calc.hardware import load_hardware
from k2calc.planner import (
    Constraints,
    Workload,
    build_constraints,
    build_workload,
    option_scenario,
    plan,
)
from k2calc.scenario import Scenario
from k2calc.sensitivity import sensitivity

K2 = Workload(users=50, tokens_per_s_per_user=20, input_tokens=8192, output_tokens=1024)
MINIMAX = Workload(users=8, tokens_per_s_per_user=15)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """The CLI in-process: (exit status, stdout, stderr); argparse errors raise SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


rebuild = option_scenario  # the planner rebuilds an option's replica scenario


@pytest.fixture(scope="module")
def k2_plan():
    return plan(K2, Constraints(models=("kimi-k2-thinking",)))


@pytest.fixture(scope="module")
def minimax_plan():
    return plan(MINIMAX, Constraints(models=("minimax-m2",)))


PLANS = {"k2": (K2, "k2_plan"), "minimax": (MINIMAX, "minimax_plan")}


# ================================================================================ 5. every option qualifies

@pytest.mark.parametrize("name", sorted(PLANS))
def test_every_option_fits_and_meets_the_service_level(request, name):
    w, fixture = PLANS[name]
    result = request.getfixturevalue(fixture)
    assert result.options, result.rejected
    for o in result.options:
        e = estimate(rebuild(o, w))
        speed = e.performance.decode_tokens_per_s_per_user
        assert e.memory.fits, (o.label, e.memory.reasons)
        assert speed >= w.tokens_per_s_per_user, (o.label, speed)
        assert o.tokens_per_s_per_user >= w.tokens_per_s_per_user, o.label
        assert o.mode in ("buy", "rent") and o.replicas >= 1


@pytest.mark.parametrize("name", sorted(PLANS))
def test_options_sorted_by_rank_key_and_pareto_marks_are_sound(request, name):
    result = request.getfixturevalue(PLANS[name][1])
    costs = [o.usd_per_million_output_tokens for o in result.options]
    assert costs == sorted(costs)
    assert any(o.pareto for o in result.options)
    for o in (o for o in result.options if o.pareto):
        for p in result.options:
            dominates = (p.usd_per_million_output_tokens <= o.usd_per_million_output_tokens
                         and p.tokens_per_s_per_user >= o.tokens_per_s_per_user
                         and (p.usd_per_million_output_tokens < o.usd_per_million_output_tokens
                              or p.tokens_per_s_per_user > o.tokens_per_s_per_user))
            assert not dominates, f"{o.label} ({o.mode}) is marked pareto but {p.label} ({p.mode}) dominates it"


# ================================================================================ 6. rejections

def test_too_slow_and_too_small_classes_are_rejected_with_a_reason(k2_plan):
    """One EPYC 9654 socket streams 358 GB/s (STREAM, data/bandwidth.csv): K2 Thinking's ~11 GB a token
    at Q2_K stays under 20 tok/s; under vLLM (0.9 of each card) 32x RTX 3090 (24 GB each) cannot hold
    its weights plus runtime (SGLang's static pool can: that class is left to SGLang)."""
    vllm_only = plan(K2, Constraints(models=("kimi-k2-thinking",), hardware=("rtx-3090", "epyc-9654"),
                                     server_engines=("vllm",)))
    for key, words in (("epyc-9654", "tok/s"), ("rtx-3090", "does not fit")):
        reason = vllm_only.rejected.get(key)
        assert reason and words in reason, (key, vllm_only.rejected)
        assert not any(o.hardware == key and not o.cpu for o in vllm_only.options)
    # qualified classes are not listed as rejected
    assert not {o.hardware for o in k2_plan.options if not o.cpu} & set(k2_plan.rejected)


def test_impossible_service_level_rejects_every_class():
    result = plan(Workload(users=50, tokens_per_s_per_user=5000), Constraints())
    assert result.options == []
    assert result.candidates > 0
    assert set(load_hardware()) <= set(result.rejected)
    for hw, reason in result.rejected.items():
        assert ("below the 5000 required" in reason or "fit" in reason), (hw, reason)


def test_cli_impossible_service_level_says_nothing_qualifies(capsys):
    code, out, err = run(capsys, "plan", "--tokens-per-s-per-user", "5000")
    assert code == 0 and err == ""
    assert "nothing qualifies" in out
    assert "rejected:" in out and "dgx-spark:" in out


def test_budget_excludes_options_over_budget():
    result = plan(K2, Constraints(budget_usd=50_000))
    assert all(o.capex_usd <= 50_000 for o in result.options if o.mode == "buy")
    assert any(reason.startswith("over budget") for reason in result.rejected.values()), result.rejected


def test_budget_keeps_the_options_under_budget():
    """MiniMax M2 for 8 users has buy options both sides of 50,000 USD (8x RTX PRO 6000 is 72,520)."""
    result = plan(MINIMAX, Constraints(models=("minimax-m2",), budget_usd=50_000))
    buys = [o for o in result.options if o.mode == "buy"]
    assert buys
    assert all(o.capex_usd <= 50_000 for o in buys), [(o.label, o.capex_usd) for o in buys]


def test_budget_is_binding_for_minimax(minimax_plan):
    assert any(o.mode == "buy" and o.capex_usd > 50_000 for o in minimax_plan.options)


@pytest.mark.parametrize("where, mode", [("cloud", "rent"), ("on-prem", "buy")])
def test_where_selects_buy_or_rent(where, mode):
    result = plan(K2, Constraints(where=where))
    assert result.options
    assert {o.mode for o in result.options} == {mode}
    if mode == "rent":
        assert all(o.capex_usd == 0 for o in result.options)


# ================================================================================ 7. bad input

def test_build_workload_rejects_zero_users():
    with pytest.raises(K2CalcError, match=r"^users: "):
        build_workload(users=0)


def test_build_constraints_rejects_negative_budget():
    with pytest.raises(K2CalcError, match=r"^budget_usd: "):
        build_constraints(budget_usd=-1)


@pytest.mark.parametrize("argv, words", [
    (("plan", "--users", "0"), "users"),
    (("plan", "--model", "kimi-k2-thinkng"), "kimi-k2-thinking"),
    (("plan", "--hardware", "h200"), "h200-sxm"),
])
def test_cli_plan_bad_input_is_one_line(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("k2calc: error: ")
    assert words in err


# ================================================================================ 8. sensitivity

@pytest.fixture(scope="module")
def k2_rows():
    return sensitivity(Scenario.build())


def test_sensitivity_rows_sorted_by_span(k2_rows):
    spans = [r.span for r in k2_rows]
    assert spans == sorted(spans, reverse=True)
    assert {r.assumption for r in k2_rows} >= {"utilisation", "electricity", "hardware price", "amortisation", "hosting"}


def test_sensitivity_utilisation_low_costs_more(k2_rows):
    row = next(r for r in k2_rows if r.assumption == "utilisation")
    assert row.usd_per_mtok_low > row.usd_per_mtok_high
    assert (row.low_label, row.high_label) == ("25%", "75%")


def test_sensitivity_every_row_names_its_range(k2_rows):
    for r in k2_rows:
        assert r.low_label.strip() and r.high_label.strip(), r
        assert r.as_dict()["span_usd_per_mtok"] == r.span


def test_sensitivity_without_api_price(capsys):
    rows = sensitivity(Scenario.build(model="llama-3.1-70b"))
    assert rows
    assert all(r.breakeven_low is None and r.breakeven_high is None for r in rows)
    assert any(r.usd_per_mtok_low is not None for r in rows)
    code, out, err = run(capsys, "sensitivity", "--model", "llama-3.1-70b")
    assert code == 0 and err == ""
    assert "never" in out and "utilisation" in out


# ================================================================================ 9. benchmark

def test_benchmark_times_the_planner(capsys, k2_plan):
    code, out, err = run(capsys, "benchmark", "--repeat", "3")
    assert code == 0 and err == ""
    line = next((x for x in out.splitlines() if "(default)" in x), None)
    assert line, out
    configs, candidates = (int(x.replace(",", "")) for x in line.split(")", 1)[1].split()[:2])
    assert (configs, candidates) == (k2_plan.configurations, k2_plan.candidates), line


def test_planner_uses_a_sessions_custom_device():
    """A device added in the app (here: an H200 with 256 GiB) is planned like a catalog one."""
    from k2calc.scenario import Catalogs
    big = load_hardware()["h200-sxm"].model_copy(update={"id": "big-h200", "name": "H200 with 256 GiB",
                                                          "memory_bytes": 256 * 2**30})
    catalogs = Catalogs(hardware={"big-h200": big})
    result = plan(Workload(users=4, tokens_per_s_per_user=10, input_tokens=2048, output_tokens=512),
                  Constraints(models=("kimi-k2-thinking",), hardware=("big-h200",)), catalogs=catalogs)
    assert result.options and all(o.hardware == "big-h200" for o in result.options)
    assert min(o.count for o in result.options) == 4  # 594 GB of weights fit four 256 GiB cards, not two


def test_cli_plan_site_flags_explain_and_finetune(capsys):
    code, out, err = run(capsys, "plan", "--cooling", "air", "--noise", "datacentre", "--rack-kw", "15", "--explain",
                         "--current-hardware", "h200-sxm", "--current-count", "8")
    assert code == 0 and err == "", err
    assert "your hardware (8 x h200-sxm)" in out and "what would change the winner" in out
    assert "mi355x: needs liquid cooling; the site has air" in out
    code, out, err = run(capsys, "plan", "--finetune", "lora", "--model", "llama-3.1-8b", "--train-tokens", "1000000",
                         "--deadline-hours", "10", "--hardware", "rtx-4090")
    assert code == 0 and err == "" and "within 10 h" in out and " x rtx-4090" in out
    code, out, err = run(capsys, "plan", "--finetune", "lora", "--deadline-hours", "-1")
    assert code == 2 and "--deadline-hours" in err
