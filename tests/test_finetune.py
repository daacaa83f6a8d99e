"""Fine-tuning estimates (k2calc.finetune): published LoRA SFT runs, hand-derived memory, properties,
errors and the command-line glue."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2calc.errors import K2CalcError, UnknownIdError
from k2calc.estimate import estimate
from k2calc.finetune import (
    CPU_SFT_EFFICIENCY,
    GPU_MFU,
    NF4_DQ_BITS,
    FinetuneSpec,
    add_parser,
    calibration,
    estimate_finetune,
    fits,
    run,
)
from k2calc.hardware import Hardware, get_hardware
from k2calc.memory import ram_usable_bytes
from k2calc.models import from_hf_config, get_model, param_counts
from k2calc.scenario import Catalogs, Scenario
from k2calc.units import GiB

SEED = dict(model="kimi-k2-instruct", hardware="rtx-4090", count=2, cpu="xeon-platinum-8488c", sockets=2,
            ram_gb=2017, swap_gb=200, method="lora", rank=8, seq_len=2048, micro_batch=1)
"""The seed: Kimi K2 LoRA SFT, KTransformers + LLaMA-Factory, 2x RTX 4090 + 2x Xeon 8488C, 1.97 TB RAM
(1.97 x 1024 = 2017 GiB) + 200 GB swap, kimik2_lora_sft_kt.yaml (lora_rank 8, cutoff_len 2048, batch 1)."""

V2_LITE_CONFIG = {
    "architectures": ["DeepseekV2ForCausalLM"], "num_hidden_layers": 27, "hidden_size": 2048,
    "num_attention_heads": 16, "q_lora_rank": None, "kv_lora_rank": 512, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 64, "num_experts_per_tok": 6,
    "n_shared_experts": 2, "moe_intermediate_size": 1408, "intermediate_size": 10944,
    "first_k_dense_replace": 1, "vocab_size": 102400, "max_position_embeddings": 163840,
}


def within(predicted: float, measured: float, factor: float = 1.5) -> bool:
    return measured / factor <= predicted <= measured * factor


def used(est, kind: str | None = None) -> int:
    return sum(d.used_bytes for d in est.devices if kind is None or d.kind == kind)


# ------------------------------------------------------------------------------------------------
# Published runs
# ------------------------------------------------------------------------------------------------


def _k2_ram_need(tokens: int = 2048) -> int:
    """Kimi K2 on the hybrid route, by hand: BF16 routed experts and embedding table in RAM, plus the CPU
    expert kernels' backward cache of one MoE layer: tokens x (hidden + k x 3 x moe_intermediate) x 2 B."""
    c = param_counts(get_model("kimi-k2-instruct"))
    return 2 * (c.routed_experts + c.embeddings) + tokens * (7168 + 8 * 3 * 2048) * 2


def test_seed_kimi_k2_fits_and_matches_published_throughput():
    est = estimate_finetune(FinetuneSpec(**SEED))
    assert est.route == "hybrid"
    assert est.fits, est.reasons
    assert within(est.tokens_per_s, 46.55), est.tokens_per_s
    assert est.bottleneck.startswith("cpu")
    # 2 x (1,014.7B routed + 1.17B embedding) BF16 + 220 MiB cache = 1,892 GiB: below the 2017 GiB x 0.95
    # usable, so the 200 GB of swap stay empty and nothing is slow
    ram = next(d for d in est.devices if d.kind == "ram")
    assert _k2_ram_need() == 2 * 1_015_860_428_800 + 230_686_720 == 2_031_951_544_320
    assert ram.used_bytes == _k2_ram_need()
    assert ram.free_bytes == int(2017 * GiB) - int(2017 * GiB * 0.05) - _k2_ram_need()
    assert not est.slow and not est.warnings
    # GPUs hold attention, shared experts, dense MLP, lm_head: ~21 GB of BF16 split over two 24 GB cards
    for gpu in (d for d in est.devices if d.kind == "gpu"):
        assert gpu.free_bytes > 0


def test_short_ram_spills_frozen_weights_to_swap_and_pays_for_reading_them():
    """1,800 GiB of RAM + 200 GiB swap: what RAM cannot hold goes to swap and is read on every pass."""
    fast = estimate_finetune(FinetuneSpec(**SEED))
    est = estimate_finetune(FinetuneSpec(**{**SEED, "ram_gb": 1800}))
    assert est.fits and est.slow
    moved = _k2_ram_need() - ram_usable_bytes(int(1800 * GiB))
    swap = next(d for d in est.devices if d.kind == "swap")
    assert swap.weights_bytes == moved and swap.slow
    # forward + activation gradient + recompute = 3 reads of the swapped weights per micro-batch of 2,048
    swap_s = 3 * moved / 2e9 / 2048
    assert est.time_per_token_s["swap_reads"] == pytest.approx(swap_s)
    assert 1 / est.tokens_per_s == pytest.approx(1 / fast.tokens_per_s + swap_s)
    assert any("swap" in w and "SLOW" in w for w in est.warnings)


def test_seed_with_512_gb_ram_does_not_fit_names_ram_and_reports_no_speed():
    est = estimate_finetune(FinetuneSpec(**{**SEED, "ram_gb": 512}))
    assert not est.fits
    assert any("RAM" in r for r in est.reasons), est.reasons
    # nothing is reported as if it ran
    assert est.tokens_per_s is None and est.hours is None and est.cost_usd is None and est.energy_kwh is None
    d = json.loads(json.dumps(est.as_dict()))
    assert d["performance"] is None and d["cost"] is None
    # RAM for everything without swap: the need over the 95% usable share, in whole GiB
    ram_fix = next(f for f in est.fixes if "ram_gb" in f.update)
    assert ram_fix.update["ram_gb"] == math.ceil(_k2_ram_need() / 0.95 / GiB) == 1993
    for fix in est.fixes:
        assert fits(FinetuneSpec(**{**SEED, "ram_gb": 512, **fix.update})), fix


def test_fixes_come_free_changes_first_and_each_fits():
    """Kimi K2 Thinking LoRA on 8 x H200: BF16 weights are 2 TB, 8 x 141 GB is not enough. QLoRA (4.127 bit)
    fits; of more GPUs, 16 is the smallest count tried that holds 2 TB / 16 = 128 GB each."""
    spec = FinetuneSpec(model="kimi-k2-thinking", hardware="h200-sxm", count=8)
    est = estimate_finetune(spec)
    assert not est.fits and est.tokens_per_s is None
    assert [f.update for f in est.fixes] == [{"method": "qlora"}, {"count": 16}]
    assert not fits(spec.model_copy(update={"count": 12}))  # not a candidate count, and too small anyway
    text = run(_parse(["--model", "kimi-k2-thinking", "--hardware", "h200-sxm", "--count", "8"]))
    assert "DOES NOT FIT" in text and "would fit with: QLoRA" in text and "tokens/s" not in text


def test_deepseek_v3_lora_matches_published_throughput_and_host_memory():
    # KTransformers developer notes: 2x 48 GB RTX 4090 + Xeon 8488C, r=8, qlen 512, GAS 16: 40.35 tok/s,
    # "~1.2-1.3 TB host memory"
    spec = FinetuneSpec(model="deepseek-v3", hardware="rtx-4090-48gb", count=2, cpu="xeon-platinum-8488c",
                        sockets=2, ram_gb=1536, rank=8, alpha=32, seq_len=512, micro_batch=1)
    est = estimate_finetune(spec)
    assert within(est.tokens_per_s, 40.35), est.tokens_per_s
    assert est.fits, est.reasons
    assert 1.15e12 <= used(est, "ram") <= 1.40e12


def test_deepseek_v2_lite_lora_matches_published_throughput_and_memory():
    v2_lite = from_hf_config(V2_LITE_CONFIG, "deepseek-v2-lite", "DeepSeek-V2-Lite")
    spec = FinetuneSpec(model="deepseek-v2-lite", hardware="rtx-4090", count=1, cpu="xeon-platinum-8488c",
                        sockets=2, ram_gb=256, rank=8, seq_len=512)
    est = estimate_finetune(spec, Catalogs(models={"deepseek-v2-lite": v2_lite}))
    assert within(est.tokens_per_s, 530.38), est.tokens_per_s
    assert est.fits
    # developer notes: ~30 GB host memory, ~5-6 GB GPU memory
    assert 25e9 <= used(est, "ram") <= 35e9
    assert used(est, "gpu") <= 8 * GiB
    with pytest.raises(UnknownIdError):  # an imported model exists only in the catalogs it came with
        estimate_finetune(spec)


def test_one_cpu_efficiency_fits_all_three_published_points():
    rows = calibration()
    assert [r["model"] for r in rows] == ["kimi-k2-instruct", "deepseek-v3", "deepseek-v2-lite"]
    for r in rows:
        assert 1 / 1.3 <= r["ratio_measured_over_predicted"] <= 1.3, r
    geomean = math.exp(sum(math.log(r["implied_cpu_efficiency"]) for r in rows) / len(rows))
    assert CPU_SFT_EFFICIENCY == pytest.approx(geomean, rel=0.02)


# ------------------------------------------------------------------------------------------------
# Hand-derived memory
# ------------------------------------------------------------------------------------------------


def test_llama_8b_lora_attention_memory_by_hand():
    spec = FinetuneSpec(model="llama-3.1-8b", hardware="h100-sxm", count=1, rank=16,
                        targets=("attention",), seq_len=2048, micro_batch=1)
    est = estimate_finetune(spec)
    r, h, kv, layers, vocab = 16, 4096, 8 * 128, 32, 128256
    # q: 4096 -> 4096, k and v: 4096 -> 1024, o: 4096 -> 4096; r x (d_in + d_out) each
    per_layer = r * (h + h) + r * (h + kv) * 2 + r * (h + h)
    assert per_layer == 425_984
    adapters = per_layer * layers
    assert adapters == 13_631_488
    assert est.trainable_params == adapters
    (gpu,) = est.devices
    assert gpu.adapter_bytes == 2 * adapters           # BF16 adapter weights
    assert gpu.gradient_bytes == 2 * adapters          # BF16 adapter gradients
    assert gpu.optimizer_bytes == 12 * adapters        # FP32 master + two FP32 AdamW moments
    assert gpu.adapter_bytes + gpu.gradient_bytes + gpu.optimizer_bytes == 218_103_808
    assert gpu.weights_bytes == 2 * 8_030_261_248      # frozen BF16 base
    tokens = 2048
    # checkpointing: BF16 layer inputs + one layer's 34 x hidden bytes + BF16/FP32 logits
    assert gpu.activation_bytes == 2 * h * tokens * layers + 34 * h * tokens + 6 * vocab * tokens
    no_ckpt = estimate_finetune(spec.model_copy(update={"gradient_checkpointing": False})).devices[0]
    assert no_ckpt.activation_bytes == 34 * h * tokens * layers + 6 * vocab * tokens


def test_qlora_stores_linear_weights_in_nf4_double_quant():
    assert NF4_DQ_BITS == pytest.approx(4.127, abs=5e-4)
    est = estimate_finetune(FinetuneSpec(model="llama-3.1-8b", hardware="rtx-4090", method="qlora",
                                         targets=("attention", "dense_mlp")))
    c = param_counts(get_model("llama-3.1-8b"))
    linear = c.attention + c.dense_mlp
    expected = linear * NF4_DQ_BITS / 8 + (c.embeddings + c.lm_head + c.norms + c.router) * 2
    assert est.devices[0].weights_bytes == round(expected)
    assert est.fits  # QLoRA of an 8B model fits a 24 GB card


def test_full_fine_tuning_is_sharded_16_bytes_per_parameter():
    est = estimate_finetune(FinetuneSpec(model="llama-3.1-8b", hardware="h100-sxm", count=8, method="full"))
    total = param_counts(get_model("llama-3.1-8b")).total
    per_gpu = est.devices[0]
    assert len(est.devices) == 8
    state = per_gpu.weights_bytes + per_gpu.gradient_bytes + per_gpu.optimizer_bytes
    assert state == pytest.approx(16 * total / 8, abs=3)
    assert est.trainable_params == total


def test_expert_targets_count_every_expert_and_live_in_ram_on_hybrid():
    base = FinetuneSpec(**{**SEED, "targets": ("attention",)})
    with_experts = FinetuneSpec(**{**SEED, "targets": ("attention", "experts")})
    a, b = estimate_finetune(base), estimate_finetune(with_experts)
    m = get_model("kimi-k2-instruct")
    per_expert = 8 * (7168 + 2048) * 2 + 8 * (2048 + 7168)
    assert b.adapter_params_by_target["experts"] == per_expert * m.n_routed_experts * m.moe_layers
    ram_a = next(d for d in a.devices if d.kind == "ram")
    ram_b = next(d for d in b.devices if d.kind == "ram")
    assert ram_b.optimizer_bytes == 12 * b.adapter_params_by_target["experts"]
    assert ram_a.optimizer_bytes == 0


# ------------------------------------------------------------------------------------------------
# Cost
# ------------------------------------------------------------------------------------------------


def test_gpu_speed_is_the_mfu_share_of_the_bf16_peak_by_hand():
    """Llama 3.1 8B, LoRA r=16 on attention, 1 x H100, 2,048 tokens, checkpointing: compute-bound."""
    est = estimate_finetune(FinetuneSpec(model="llama-3.1-8b", hardware="h100-sxm", rank=16,
                                         targets=("attention",)))
    h, kv, layers, vocab, seq = 4096, 1024, 32, 128256, 2048
    attention = (h * h + 2 * h * kv + h * h) * layers          # q, k, v, o
    mlp = 3 * h * 14336 * layers                                # gate, up, down
    frozen = 2 * (attention + mlp) * 3                          # forward + activation gradient + recompute
    dots = 32 * (128 + 128) * layers * seq * 4                  # QK and AV, forward + 2 backward + recompute
    lm_head = 2 * vocab * h * 2                                 # not recomputed
    adapters = 13_631_488 * (6 + 2)
    flops = frozen + dots + lm_head + adapters
    assert est.flops_per_token == pytest.approx(flops)
    peak = 989.5e12                                             # H100 SXM dense BF16 (data/hardware.csv)
    assert est.bottleneck == "gpu-compute"
    assert est.tokens_per_s == pytest.approx(GPU_MFU * peak / flops)
    assert est.roofline_tokens_per_s == pytest.approx(peak / flops)


def test_run_time_energy_and_cost():
    spec = FinetuneSpec(model="llama-3.1-8b", hardware="h100-sxm", count=2, tokens=50_000_000, epochs=3,
                        usd_per_kwh=0.15)
    est = estimate_finetune(spec)
    assert est.hours == pytest.approx(150_000_000 / est.tokens_per_s / 3600)
    assert est.power_watts == 2 * 700
    assert est.energy_kwh == pytest.approx(est.power_watts * est.hours / 1000)
    assert est.cost_usd == pytest.approx(est.energy_kwh * 0.15)
    assert est.cloud_cost_usd == pytest.approx(2.49 * 2 * est.hours)
    hybrid = estimate_finetune(FinetuneSpec(**SEED))
    assert hybrid.cloud_cost_usd is None and "no cloud price" in hybrid.cloud_note
    assert hybrid.power_watts == 2 * 450 + 2 * 350
    assert any("electricity only" in a for a in hybrid.assumptions)


# ------------------------------------------------------------------------------------------------
# One deployment: custom devices and imported models as in the Calculator
# ------------------------------------------------------------------------------------------------

LAB_GPU = Hardware(id="lab-gpu", name="Lab GPU 192", kind="gpu", vendor="NVIDIA", memory_bytes=192 * GiB,
                   memory_bandwidth_gb_per_s=4000, bf16_dense_tflops=1000, tdp_watts=800, status="unverified",
                   source="test")
LAB_MAC = Hardware(id="lab-mac", name="Lab Mac 256", kind="system", vendor="Apple", memory_bytes=256 * GiB,
                   memory_bandwidth_gb_per_s=800, bf16_dense_tflops=30, tdp_watts=300, status="unverified",
                   source="test")


@pytest.mark.parametrize("device, count", [(LAB_GPU, 2), (LAB_MAC, 1)])
def test_a_custom_device_trains_on_the_same_deployment_as_inference(device, count):
    catalogs = Catalogs(hardware={device.id: device})
    scenario = Scenario(model="llama-3.1-8b", hardware=device.id, count=count)
    inference = estimate(scenario, catalogs)
    ft = estimate_finetune(FinetuneSpec.from_scenario(scenario), catalogs)
    assert ft.topology == inference.deployment.topology == ("gpu" if device.kind == "gpu" else "unified")
    assert ft.deployment.device == inference.deployment.device == catalogs.hardware[device.id]
    assert ft.deployment.device.name == f"{device.name} (custom)"
    assert [d.name for d in ft.devices] == [d.name for d in inference.memory.devices]
    assert [d.capacity_bytes for d in ft.devices] == [d.capacity_bytes for d in inference.memory.devices]
    if device.kind == "system":  # macOS wired limit: 75% of 256 GiB for training and for mlx-lm alike
        assert ft.devices[0].usable_bytes == inference.memory.devices[0].usable_bytes == 192 * GiB
        raised = scenario.model_copy(update={"wired_limit_gb": 240.0})  # sysctl iogpu.wired_limit_mb
        ft_raised = estimate_finetune(FinetuneSpec.from_scenario(raised), catalogs)
        assert ft_raised.devices[0].usable_bytes == estimate(raised, catalogs).memory.devices[0].usable_bytes
        assert ft_raised.devices[0].usable_bytes == 240 * GiB
    with pytest.raises(UnknownIdError):  # without the catalogs the device is unknown, as for inference
        estimate_finetune(FinetuneSpec.from_scenario(scenario))


def test_a_custom_gpu_on_a_hybrid_box_uses_the_same_ram_rule():
    catalogs = Catalogs(hardware={"lab-gpu": LAB_GPU})
    scenario = Scenario(model="deepseek-v3", hardware="lab-gpu", count=1, cpu="xeon-platinum-8488c", ram_gb=1536)
    inference, ft = estimate(scenario, catalogs), estimate_finetune(FinetuneSpec.from_scenario(scenario), catalogs)
    ram_inf = next(d for d in inference.memory.devices if d.kind == "ram")
    ram_ft = next(d for d in ft.devices if d.kind == "ram")
    assert (ram_ft.name, ram_ft.capacity_bytes, ram_ft.usable_bytes) == \
        (ram_inf.name, ram_inf.capacity_bytes, ram_inf.usable_bytes)


def test_training_is_data_parallel_so_inference_tp_rules_do_not_apply():
    """vLLM cannot split Llama 8B's 32 heads over TP=3; ZeRO-3 training on 3 GPUs shards parameters instead."""
    with pytest.raises(K2CalcError, match="cannot split"):
        estimate(Scenario(model="llama-3.1-8b", hardware="h100-sxm", count=3))
    est = estimate_finetune(FinetuneSpec(model="llama-3.1-8b", hardware="h100-sxm", count=3, method="full"))
    total = param_counts(get_model("llama-3.1-8b")).total
    assert len(est.devices) == 3
    state = est.devices[0].weights_bytes + est.devices[0].gradient_bytes + est.devices[0].optimizer_bytes
    assert state == pytest.approx(16 * total / 3, abs=3)


def test_as_dict_is_json_and_has_the_breakdown():
    d = json.loads(json.dumps(estimate_finetune(FinetuneSpec(**SEED)).as_dict()))
    assert {"fits", "reasons", "memory", "performance", "cost", "assumptions"} <= set(d)
    dev = d["memory"]["devices"][0]
    assert {"name", "kind", "capacity_bytes", "weights_bytes", "adapter_bytes", "optimizer_bytes",
            "gradient_bytes", "activation_bytes", "free_bytes", "slow"} <= set(dev)
    assert {d_["kind"] for d_ in d["memory"]["devices"]} == {"gpu", "ram", "swap"}
    assert d["performance"]["tokens_per_s"] > 0 and d["cost"]["hours"] > 0


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------

BASES = (
    dict(model="llama-3.1-8b", hardware="h100-sxm", count=1),
    dict(model="llama-3.1-70b", hardware="h200-sxm", count=4),
    dict(model="deepseek-v3", hardware="rtx-4090", count=2, cpu="xeon-platinum-8488c", ram_gb=1536),
    dict(model="kimi-k2-instruct", hardware="rtx-4090", count=2, cpu="xeon-platinum-8488c", ram_gb=2017, swap_gb=200),
    dict(model="llama-3.1-8b", hardware="rtx-4090", count=1, cpu="epyc-9654", ram_gb=256),
    dict(model="llama-3.1-8b", hardware="epyc-9654", ram_gb=256),
)
bases = st.sampled_from(BASES)
ranks = st.integers(1, 256)
seq_lens = st.integers(16, 16384)
batches = st.integers(1, 8)
methods = st.sampled_from(("lora", "qlora", "full"))


def total_need(est) -> int:
    """Bytes needed on all devices together (RAM and swap counted once)."""
    return used(est)


@settings(max_examples=25, deadline=None)
@given(bases, ranks, st.integers(1, 64), seq_lens, batches)
def test_memory_grows_with_rank(base, rank, more, seq_len, mb):
    a = estimate_finetune(FinetuneSpec(**base, rank=rank, seq_len=seq_len, micro_batch=mb))
    b = estimate_finetune(FinetuneSpec(**base, rank=rank + more, seq_len=seq_len, micro_batch=mb))
    assert total_need(b) > total_need(a)


@settings(max_examples=25, deadline=None)
@given(bases, methods, seq_lens, st.integers(1, 4096), batches, st.booleans())
def test_memory_grows_with_seq_len_and_micro_batch(base, method, seq_len, more, mb, ckpt):
    spec = FinetuneSpec(**base, method=method, seq_len=seq_len, micro_batch=mb, gradient_checkpointing=ckpt)
    a = estimate_finetune(spec)
    assert total_need(estimate_finetune(spec.model_copy(update={"seq_len": seq_len + more}))) > total_need(a)
    assert total_need(estimate_finetune(spec.model_copy(update={"micro_batch": mb + 1}))) > total_need(a)


@settings(max_examples=25, deadline=None)
@given(bases, methods, seq_lens, batches)
def test_checkpointing_lowers_activations(base, method, seq_len, mb):
    spec = FinetuneSpec(**base, method=method, seq_len=seq_len, micro_batch=mb)
    on = estimate_finetune(spec)
    off = estimate_finetune(spec.model_copy(update={"gradient_checkpointing": False}))
    act = lambda e: sum(d.activation_bytes for d in e.devices)  # noqa: E731
    assert act(on) < act(off)
    assert on.flops_per_token > off.flops_per_token  # the price: one more forward


@settings(max_examples=25, deadline=None)
@given(bases, ranks, seq_lens, batches)
def test_full_fine_tuning_needs_more_memory_than_lora(base, rank, seq_len, mb):
    lora = estimate_finetune(FinetuneSpec(**base, rank=rank, seq_len=seq_len, micro_batch=mb))
    full = estimate_finetune(FinetuneSpec(**base, method="full", seq_len=seq_len, micro_batch=mb))
    assert total_need(full) > total_need(lora)


@settings(max_examples=40, deadline=None)
@given(bases, methods, ranks, seq_lens, batches, st.booleans(), st.integers(1, 8))
def test_never_faster_than_the_compute_roofline(base, method, rank, seq_len, mb, ckpt, count):
    base = {**base, "count": count} if "count" in base else base
    est = estimate_finetune(FinetuneSpec(**base, method=method, rank=rank, seq_len=seq_len, micro_batch=mb,
                                         gradient_checkpointing=ckpt))
    peak = sum(get_hardware(h).peak_flops_per_s("bf16") * n for h, n in _devices(est.spec))
    if est.fits:  # the roofline: every FLOP at 100% of the BF16 peak of every device at once
        assert est.roofline_tokens_per_s == pytest.approx(peak / est.flops_per_token)
        assert 0 < est.tokens_per_s <= est.roofline_tokens_per_s
    else:         # nothing reported as if it ran
        assert est.tokens_per_s is None and est.roofline_tokens_per_s is None and est.hours is None


def _devices(spec: FinetuneSpec) -> list[tuple[str, int]]:
    """(hardware id, how many) of every compute device: accelerators and CPU sockets."""
    if spec.cpu:
        return [(spec.hardware, spec.count), (spec.cpu, spec.sockets)]
    if get_hardware(spec.hardware).is_cpu:
        return [(spec.hardware, spec.sockets)]
    return [(spec.hardware, spec.count)]


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("update, words", [
    ({"rank": 0}, "rank"),
    ({"rank": -4}, "rank"),
    ({"seq_len": 131_073}, "maximum context"),
    ({"tokens": 0}, "token"),
    ({"ram_gb": None}, "--ram-gb"),
    ({"cpu": "h100-sxm"}, "not a CPU"),
    ({"targets": ("attention", "mlp")}, "unknown LoRA target"),
    ({"method": "dora"}, "method"),
    ({"epochs": 0}, "epochs"),
    ({"sockets": 3}, "sockets"),
])
def test_bad_input_is_one_clear_line(update, words):
    with pytest.raises(K2CalcError) as info:
        estimate_finetune(FinetuneSpec(**{**SEED, **update}))
    message = str(info.value)
    assert words in message and "\n" not in message


def test_unknown_ids_name_close_matches():
    with pytest.raises(UnknownIdError, match="kimi-k2-instruct"):
        estimate_finetune(FinetuneSpec(**{**SEED, "model": "kimi-k2-instruc"}))
    with pytest.raises(UnknownIdError, match="rtx-4090"):
        estimate_finetune(FinetuneSpec(**{**SEED, "hardware": "rtx4090"}))


def test_targets_missing_from_the_model_are_an_error():
    with pytest.raises(K2CalcError, match="none of the LoRA targets"):
        estimate_finetune(FinetuneSpec(model="llama-3.1-8b", hardware="h100-sxm", targets=("experts",)))


def test_build_turns_type_errors_into_one_line():
    with pytest.raises(K2CalcError, match="rank"):
        FinetuneSpec.build(rank="many")


# ------------------------------------------------------------------------------------------------
# Command line glue
# ------------------------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="k2calc")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["finetune", *argv])


SEED_ARGV = ["--model", "kimi-k2-instruct", "--hardware", "rtx-4090", "--count", "2",
             "--cpu", "xeon-platinum-8488c", "--sockets", "2", "--ram-gb", "2017", "--swap-gb", "200",
             "--method", "lora", "--rank", "8", "--seq-len", "2048", "--tokens", "1000000"]


def test_cli_text_and_json():
    text = run(_parse(SEED_ARGV))
    assert "FITS" in text and "tokens/s" in text and "System RAM" in text
    data = json.loads(run(_parse([*SEED_ARGV, "--json"])))
    assert data["fits"] is True
    assert data["spec"]["tokens"] == 1_000_000
    assert within(data["performance"]["tokens_per_s"], 46.55)


def test_cli_flags_map_to_the_spec():
    data = json.loads(run(_parse(["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--targets",
                                  "attention", "--rank", "16", "--no-checkpointing", "--micro-batch", "2",
                                  "--epochs", "2", "--usd-per-kwh", "0.2", "--alpha", "32", "--json"])))
    assert data["spec"]["targets"] == ["attention"]
    assert data["spec"]["gradient_checkpointing"] is False
    assert data["memory"]["trainable_params"] == 13_631_488
    assert data["cost"]["usd_per_kwh"] == 0.2


def test_cli_errors_are_k2calc_errors():
    with pytest.raises(K2CalcError, match="rank"):
        run(_parse([*SEED_ARGV, "--rank", "0"]))
    with pytest.raises(K2CalcError, match="--ram-gb"):
        run(_parse(["--model", "kimi-k2-instruct", "--hardware", "rtx-4090", "--cpu", "xeon-platinum-8488c"]))
    with pytest.raises(SystemExit):  # argparse choices: unknown method
        _parse(["--method", "dora"])


def test_core_never_imports_streamlit():
    code = "import sys, k2calc.finetune; sys.exit('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cli_fine_tunes_an_imported_config_json(tmp_path, capsys):
    from k2calc.cli import main
    path = tmp_path / "deepseek-v2-lite" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(V2_LITE_CONFIG))
    argv = ["finetune", "--config-json", str(path), "--hardware", "rtx-4090", "--cpu", "xeon-platinum-8488c",
            "--ram-gb", "256", "--seq-len", "512", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["spec"]["model"] == "deepseek-v2-lite" and data["fits"] is True
    assert within(data["performance"]["tokens_per_s"], 530.38)
    assert main(["finetune", "--model", "deepseek-v2-lite", "--hardware", "rtx-4090"]) == 2  # not in the catalog
    assert "unknown model 'deepseek-v2-lite'" in capsys.readouterr().err
