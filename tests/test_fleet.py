"""Fleet scale: large-EP pools (DeepEP, EPLB, KV per GPU), disaggregated vs aggregated serving, the SLA
search and the disaggregated class of validate. Golden values derived by hand from the cited sources."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from k2calc import validate
from k2calc.cli import main
from k2calc.errors import K2CalcError
from k2calc.fleet import (
    FleetWorkload,
    aggregated_ep,
    disaggregated,
    kv_transfer_bytes_per_token,
    kv_transfer_s,
    max_utilisation,
    md1_ttft_s,
    pareto_points,
    plan_fleet,
    redundant_experts,
)
from k2calc.fleet_ep import (
    decode_step_pool,
    kv_tokens_per_gpu,
    load_imbalance,
    low_latency_s,
    make_pool,
    normal_s,
    remote_nodes_per_token,
)


def test_kv_transfer_bytes_per_token_is_the_mla_latent():
    # Kimi K2 / DeepSeek V3: 61 layers x (512 + 64) x 2 B (BF16) = 70,272 B per token (facts.md B)
    assert kv_transfer_bytes_per_token(make_pool("kimi-k2-instruct", "h200-sxm", 32)) == 61 * 576 * 2 == 70_272
    assert kv_transfer_bytes_per_token(make_pool("deepseek-v3", "h100-sxm", 32)) == 70_272


def test_kv_transfer_time_of_a_2k_prompt():
    # 2,000 x 70,272 B = 140.5 MB over a 400 Gb/s NIC (50 GB/s) = 2.81 ms, + 20 us network latency
    assert kv_transfer_s(2000, 70_272) == pytest.approx(20e-6 + 140_544_000 / 50e9)


def test_deepep_low_latency_reproduces_its_benchmark_and_scales_with_bytes():
    # DeepEP docs/legacy.md: EP128 at 128 tokens, hidden 7168, top-8: dispatch 192 us, combine 369 us
    d, c = low_latency_s(128, 128, 7168, 8)
    assert (d, c) == pytest.approx((192e-6, 369e-6))
    # 256 tokens per rank at EP72: log2(72) = 6.17 lies 0.17 of the way from EP64 (173/314 us) to
    # EP128 (192/369 us); twice the bytes, twice the time
    w = (math.log2(72) - 6) / 1
    d72, c72 = low_latency_s(256, 72, 7168, 8)
    assert d72 == pytest.approx(2 * (173e-6 + w * 19e-6))
    assert c72 == pytest.approx(2 * (314e-6 + w * 55e-6))
    # Kimi K2 and DeepSeek share hidden 7168 and top-8: a smaller hidden size sends fewer bytes
    assert low_latency_s(128, 32, 4096, 8)[0] < low_latency_s(128, 32, 7168, 8)[0]


def test_deepep_normal_mode_sends_each_token_once_per_remote_node():
    # EP32 = 4 nodes; 8 experts touch 4 (1 - 0.75^8) = 3.60 nodes, 3/4 of them remote = 2.70
    assert remote_nodes_per_token(8, 4) == pytest.approx(4 * (1 - 0.75 ** 8) * 0.75)
    # 4,096 tokens x 7,168 B (FP8) x 2.70 copies over 58 GB/s (DeepEP EP32 dispatch) = 1.37 ms (+ 20 us)
    dispatch, combine = normal_s(4096, 32, 7168, 8)
    copies = 4 * (1 - 0.75 ** 8) * 0.75
    assert dispatch == pytest.approx(20e-6 + 4096 * 7168 * copies / 58e9)
    assert combine == pytest.approx(20e-6 + 4096 * 7168 * 2 * copies / 57e9)


def test_redundant_experts_give_the_published_pools():
    # LMSYS: DeepSeek 256 + 32 = 288 experts on 72 H100; Kimi K2 384 + 96 on 96 H200
    assert redundant_experts(256, 72) == 32
    assert redundant_experts(384, 96) == 96


def test_load_imbalance_is_one_without_ep_and_smaller_with_eplb_and_more_tokens():
    assert load_imbalance(100, 8, 256, 1, eplb=False) == 1.0
    assert load_imbalance(256, 8, 256, 72, eplb=True) < load_imbalance(256, 8, 256, 72, eplb=False)
    assert load_imbalance(1024, 8, 256, 72, eplb=True) < load_imbalance(64, 8, 256, 72, eplb=True)
    assert load_imbalance(256, 8, 256, 128, eplb=True) > load_imbalance(256, 8, 256, 16, eplb=True)


def test_kv_memory_per_gpu_grows_with_ep():
    tokens = [kv_tokens_per_gpu("kimi-k2-instruct", "h200-sxm", ep) for ep in (16, 32, 64, 128)]
    assert tokens == sorted(tokens) and tokens[-1] > tokens[0]
    # K2 (1.03 TB of FP8 weights) does not leave room on 8 H200s for the weights alone plus KV...
    # ...but on 16 GPUs every GPU holds 1/16 of the experts
    assert tokens[0] > 100_000


def test_redundant_experts_take_kv_memory():
    plain = make_pool("kimi-k2-instruct", "h200-sxm", 96)
    eplb = make_pool("kimi-k2-instruct", "h200-sxm", 96, redundant_experts=96)
    assert eplb.kv_tokens_per_gpu < plain.kv_tokens_per_gpu
    # one extra expert per GPU and MoE layer: 60 layers x 3 x 7168 x 2048 FP8 weights (+ block scales) ~ 2.6 GB
    extra = eplb.memory.devices[0].weights_bytes - plain.memory.devices[0].weights_bytes
    assert 2.6e9 < extra < 2.7e9


def test_decode_step_grows_with_batch():
    pool = make_pool("deepseek-v3", "h100-sxm", 72, redundant_experts=32)
    steps = [decode_step_pool(pool, b, 2050).total_s for b in (1, 16, 64, 256)]
    assert steps == sorted(steps)
    # never faster than the pool's roofline (the pipeline's own bound)
    s = decode_step_pool(pool, 256, 2050)
    assert s.total_s >= s.physics.roofline_s


def test_md1_queue():
    assert md1_ttft_s(1.0, 0.0) == 1.5
    assert md1_ttft_s(1.0, 0.5) == pytest.approx(2.0)  # 1.5 + 0.5 / (2 x 0.5)
    assert max_utilisation(2.0, 1.0) == pytest.approx(0.5)
    assert max_utilisation(1.4, 1.0) == 0.0


def test_disaggregated_rows_of_the_two_lmsys_deployments_within_target():
    rows = {r.measurement.id: r for r in validate.disaggregated_rows()}
    for mid in ("dsr1-h100x8-sglang-pd-decode-node", "k2i-h200x8-sglang-pd-decode-node",
                "dsr1-h100x72-sglang-pd-decode-2k"):
        assert 1 / 1.5 <= rows[mid].ratio <= 1.5, (mid, rows[mid].ratio)
    for mid in ("dsr1-h100x8-sglang-pd-prefill-node", "k2i-h200x8-sglang-pd-prefill-node"):
        assert 1 / 1.5 <= rows[mid].ratio <= 1.5, (mid, rows[mid].ratio)
    skipped = dict(validate.skipped())
    assert "16 nodes" in skipped["k2i-h200x128-sglang-pd-prefill"]
    assert not any("not modelled" in why for why in skipped.values())


def test_readme_quotes_the_disaggregated_summary():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert validate.disaggregated_summary_line() in readme


W = FleetWorkload(model="kimi-k2-thinking", users=2000, tokens_per_s_per_user=30, ttft_s=2,
                  input_tokens=2000, output_tokens=1000)


def test_fleet_meets_its_targets():
    for o in plan_fleet(W, ["h200-sxm", "b200", "mi355x"]):
        assert o.meets, (o.hardware, o.mode, o.reason)
        assert o.tokens_per_s_per_user >= 30 * 0.999
        assert o.ttft_s <= 2.0
        assert o.gpus >= 8 and o.capex_usd > 0 and o.power_watts > 0
        assert o.usd_per_million_output_tokens > 0


def test_disaggregated_nodes_by_role_and_balance():
    o = disaggregated(W, "h200-sxm")
    assert o.prefill_nodes >= 1 and o.decode_nodes >= 1
    assert o.gpus == 8 * (o.prefill_nodes + o.decode_nodes)
    # the prefill pool keeps up with the arrivals: input tokens per second per prefill node x nodes
    assert o.input_tokens_per_s_per_prefill_node * o.prefill_nodes == pytest.approx(o.arrival_rate_per_s * 2000)
    # more prompt tokens per request need more prefill nodes
    long = disaggregated(W.model_copy(update={"input_tokens": 6000}), "h200-sxm")
    assert long.prefill_nodes > o.prefill_nodes


@pytest.mark.parametrize("layout", [disaggregated, aggregated_ep])
def test_fleet_size_never_shrinks_with_users(layout):
    sizes = [layout(W.model_copy(update={"users": u}), "h200-sxm").gpus for u in (50, 200, 800, 3200)]
    assert sizes == sorted(sizes)


def test_unreachable_speed_is_said():
    o = disaggregated(W.model_copy(update={"tokens_per_s_per_user": 5000}), "h200-sxm")
    assert not o.meets and "tok/s per user" in o.reason


def test_pareto_points_trade_speed_for_throughput():
    pts = [p for p in pareto_points(W, "h200-sxm") if p.mode == "disaggregated"]
    assert len(pts) > 3
    pts.sort(key=lambda p: p.batch_per_gpu)
    assert pts[0].tokens_per_s_per_user > pts[-1].tokens_per_s_per_user
    assert pts[0].output_tokens_per_s_per_gpu < pts[-1].output_tokens_per_s_per_gpu


def test_fleet_cli(capsys):
    assert main(["fleet", "--model", "kimi-k2-thinking", "--users", "2000", "--tokens-per-s-per-user", "30",
                 "--ttft-s", "2", "--hardware", "h200-sxm,b200,mi355x"]) == 0
    out = capsys.readouterr().out
    for text in ("h200-sxm", "b200", "mi355x", "disaggregated", "aggregated", "$/1M"):
        assert text in out
    assert main(["fleet", "--users", "10", "--hardware", "b200", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {o["mode"] for o in data["options"]} == {"aggregated", "aggregated-ep", "disaggregated"}


@pytest.mark.parametrize("argv", [["fleet"], ["fleet", "--users", "0"], ["fleet", "--users", "5", "--hardware", "h300"],
                                  ["fleet", "--users", "5", "--ttft-s", "-1"], ["fleet", "--users", "5", "--model", "gpt-9"]])
def test_fleet_cli_errors_are_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("k2calc: error:") and err.count("\n") == 1


def test_workload_needs_users_or_rate():
    with pytest.raises(K2CalcError):
        FleetWorkload.build()
    w = FleetWorkload.build(arrival_rate_per_s=10, output_tokens=1000, tokens_per_s_per_user=20, ttft_s=2)
    assert w.concurrent_users() == math.ceil(10 * (2 + 1000 / 20))


# ------------------------------------------------------------------------------------------------
# Speculative decoding
# ------------------------------------------------------------------------------------------------

from k2calc.deployment import resolve  # noqa: E402
from k2calc.estimate import estimate  # noqa: E402
from k2calc.fleet_speculative import (  # noqa: E402
    Speculation,
    acceptance_from_length,
    band_widening,
    draft_weight_bytes,
    kept_tokens,
    speculative_step,
)
from k2calc.memory import estimate_memory  # noqa: E402
from k2calc.models import get_model  # noqa: E402
from k2calc.performance.decode import decode_step  # noqa: E402
from k2calc.scenario import Scenario  # noqa: E402
from dataclasses import replace  # noqa: E402


def test_kept_tokens_and_acceptance_from_published_lengths():
    # Leviathan et al. 2023: (1 - a^(n+1)) / (1 - a); a = 0.6, n = 3: (1 - 0.1296) / 0.4 = 2.176
    assert kept_tokens(0.6, 3) == pytest.approx(2.176)
    assert kept_tokens(0.875, 1) == pytest.approx(1.875)  # DeepSeek V3 paper: 85-90% on the 2nd token
    # LMSYS MTP post: 2.18 tokens kept with 3 drafts -> a = 0.60; lightseekorg K2.5 EAGLE-3 MT-Bench 2.687 -> 0.74
    assert acceptance_from_length(2.18, 3) == pytest.approx(0.601, abs=0.002)
    assert acceptance_from_length(2.687, 3) == pytest.approx(0.739, abs=0.002)  # 1 + a + a^2 + a^3


def test_defaults_by_model():
    kimi = Speculation.of(get_model("kimi-k2-thinking"), "eagle3")
    assert (kimi.draft_tokens, kimi.acceptance, kimi.acceptance_low, kimi.acceptance_high) == (3, 0.74, 0.62, 0.85)
    ds = Speculation.of(get_model("deepseek-v3"), "mtp", draft_tokens=2, acceptance=0.8)
    assert ds.draft_tokens == 2 and ds.acceptance == 0.8 and ds.acceptance_low < 0.8 < ds.acceptance_high
    with pytest.raises(K2CalcError, match="no multi-token-prediction layer"):
        Speculation.of(get_model("kimi-k2-thinking"), "mtp")
    assert Speculation.of(get_model("kimi-k2-thinking"), "none") is None


def test_deepseek_mtp_draft_weights():
    # 685B on Hugging Face - 671B main model = 14B for the MTP module: its own embedding and head copies,
    # 2 x 129,280 x 7,168 = 1.85B in BF16 (3.7 GB), and ~12.1B in the module itself, FP8 experts (1 B per
    # weight + block scales) and BF16 joining projection (~11.6 GB): ~15.3 GB
    m = get_model("deepseek-v3")
    d = resolve(Scenario(model="deepseek-v3", hardware="b200"))
    assert 14.8e9 < draft_weight_bytes(m, d.scheme, "mtp") < 15.8e9


def _dense():
    d = resolve(Scenario(model="llama-3.1-70b", hardware="h100-sxm", count=4, context=8192))
    return d, estimate_memory(d)


def test_speculative_speedup_shrinks_with_batch_and_never_beats_the_kept_tokens():
    d, mem = _dense()
    spec = Speculation.of(d.model, "eagle3")
    speedups = []
    for b in (1, 16, 64, 256):
        plain = decode_step(d, mem, b, 4352)
        s = speculative_step(d, mem, b, 4352, plain, spec)
        assert s.speedup <= s.kept_tokens
        speedups.append(s.speedup)
    assert speedups == sorted(speedups, reverse=True)
    assert speedups[0] > 2 and speedups[-1] < 1.5


def test_moe_verify_reads_more_experts_at_small_batch():
    d = resolve(Scenario(model="deepseek-v3", hardware="b200", count=8, context=8192))
    mem = estimate_memory(d)
    spec = Speculation.of(d.model, "mtp")
    s1 = speculative_step(d, mem, 1, 4352, decode_step(d, mem, 1, 4352), spec)
    s64 = speculative_step(d, mem, 64, 4352, decode_step(d, mem, 64, 4352), spec)
    # 4 tokens route to ~4x the experts of one: the verify step costs clearly more than a plain one
    assert s1.verify_s > 1.1 * s1.plain_s
    assert s64.speedup > s1.speedup


def test_band_widens_with_the_acceptance_range():
    d, mem = _dense()
    plain = decode_step(d, mem, 4, 4352)
    narrow = Speculation("eagle3", 3, 0.74, 0.72, 0.76, "test")
    wide = Speculation("eagle3", 3, 0.74, 0.62, 0.85, "test")
    assert 1 < band_widening(d, mem, 4, 4352, plain, narrow) < band_widening(d, mem, 4, 4352, plain, wide)


def test_estimate_with_speculation_is_faster_at_one_user_and_its_band_wider():
    s = Scenario(model="llama-3.1-70b", hardware="h100-sxm", count=4, context=8192, input_tokens=2048, output_tokens=512)
    plain, spec = estimate(s).performance, estimate(s.model_copy(update={"spec_method": "eagle3"})).performance
    assert spec.decode_tokens_per_s_per_user > 1.5 * plain.decode_tokens_per_s_per_user
    assert spec.decode_band_factor > plain.decode_band_factor
    assert any("speculative decoding (eagle3" in n for n in spec.notes)
    assert spec.decode_tokens_per_s_per_user <= spec.roofline_decode_tokens_per_s_per_user


def test_speculative_run_rows():
    rows = {r.measurement.id: r for r in validate.disaggregated_rows()}
    for mid in ("dsv3-h200x16-sglang-pd-decode-mtp3", "dsv3-h200x16-sglang-pd-decode-mtp4"):
        assert 1 / 1.5 <= rows[mid].ratio <= 1.5
    assert "overlap scheduling" in dict(validate.skipped())["dsv3-h200x16-sglang-pd-decode-nomtp"]


def test_the_draft_takes_memory():
    s = Scenario(model="deepseek-v3", hardware="b200", count=8, context=32768)
    plain, spec = estimate(s), estimate(s.model_copy(update={"spec_method": "mtp"}))
    # the MTP layers are placed by the memory model itself (ModelArch.load_mtp), fewer KV tokens remain
    d = resolve(s)
    loaded = estimate_memory(replace(d, model=d.model.model_copy(update={"load_mtp": True})))
    assert spec.memory.devices[0].weights_bytes == loaded.devices[0].weights_bytes > plain.memory.devices[0].weights_bytes
    assert spec.memory.kv_capacity_tokens < loaded.kv_capacity_tokens < plain.memory.kv_capacity_tokens
    # an EAGLE-3 head (Kimi: 3B parameters in BF16) over 8 tensor-parallel ranks: 0.75 GB per GPU
    k = Scenario(model="kimi-k2-thinking", hardware="h200-sxm", count=8, context=32768)
    extra = (estimate(k.model_copy(update={"spec_method": "eagle3"})).memory.devices[0].weights_bytes
             - estimate(k).memory.devices[0].weights_bytes)
    assert extra == 6e9 / 8
    # where the plain model only just fits, the draft tips it over, and says why
    tight = Scenario(model="kimi-k2-thinking", hardware="h200-sxm", count=8, context=262144, concurrency=2)
    assert estimate(tight).fits
    e = estimate(tight.model_copy(update={"spec_method": "eagle3"}))
    assert not e.fits and "draft" in e.memory.reasons[-1]


def test_fleet_with_speculative_decoding_meets_targets_and_mtp_needs_the_layer():
    w = W.model_copy(update={"spec_method": "eagle3", "users": 500})
    for o in plan_fleet(w, ["b200"]):
        assert o.meets and o.tokens_per_s_per_user >= 30 * 0.999 and o.ttft_s <= 2
    with pytest.raises(K2CalcError, match="no multi-token-prediction layer"):
        plan_fleet(W.model_copy(update={"spec_method": "mtp"}), ["b200"])


def test_the_speed_chart_follows_speculative_decoding():
    from k2calc.sweeps import speed_curve
    s = Scenario(model="llama-3.1-70b", hardware="h100-sxm", count=4, context=8192, input_tokens=2048, output_tokens=512)
    plain = speed_curve(s, [1]).per_user_tok_s[0]
    spec = speed_curve(s.model_copy(update={"spec_method": "eagle3"}), [1]).per_user_tok_s[0]
    assert spec == pytest.approx(estimate(s.model_copy(update={"spec_method": "eagle3"})).performance
                                 .decode_tokens_per_s_per_user)
    assert spec > 1.5 * plain


def test_md1_wait_tail():
    from k2calc.fleet import md1_ttft_p95_s, md1_wait_quantile_s
    # rho = 0.5: theta D solves 0.5 (e^x - 1) = x, x = 1.2564; p95 wait = ln(0.5 / 0.05) / 1.2564 = 1.833 D
    assert md1_wait_quantile_s(2.0, 0.5) == pytest.approx(2 * math.log(10) / 1.25643, rel=1e-4)
    assert md1_wait_quantile_s(1.0, 0.05) == 0.0  # 95% of prompts find the queue empty
    waits = [md1_wait_quantile_s(1.0, r) for r in (0.1, 0.3, 0.6, 0.9)]
    assert waits == sorted(waits)
    assert md1_ttft_p95_s(1.0, 0.7) > md1_ttft_s(1.0, 0.7)


def test_a_p95_target_costs_prefill_nodes_and_is_met():
    strict = W.model_copy(update={"ttft_p95_s": 2.0})
    for o in plan_fleet(strict, ["h200-sxm"]):
        assert o.meets and o.ttft_s <= o.ttft_p95_s <= 2.0
    assert disaggregated(strict, "h200-sxm").prefill_nodes >= disaggregated(W, "h200-sxm").prefill_nodes
    for o in plan_fleet(W, ["h200-sxm"]):
        assert o.ttft_p95_s >= o.ttft_s
