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
from k2calc.finetune import (
    CPU_SFT_EFFICIENCY,
    NF4_DQ_BITS,
    FinetuneSpec,
    add_parser,
    calibration,
    estimate_finetune,
    run,
)
from k2calc.models import from_hf_config, get_model, param_counts
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


def test_seed_kimi_k2_fits_and_matches_published_throughput():
    est = estimate_finetune(FinetuneSpec(**SEED))
    assert est.route == "hybrid"
    assert est.fits, est.reasons
    assert within(est.tokens_per_s, 46.55), est.tokens_per_s
    assert est.bottleneck.startswith("cpu")
    if est.slow:  # part of the weights in swap: it must say so
        assert any("swap" in w.lower() and "slow" in w.lower() for w in est.warnings)
        assert any(d["kind"] == "swap" and d["slow"] for d in est.memory_breakdown())
    # BF16 routed experts (1014.7B x 2 B = 2.03 TB) are in RAM: "more than 2T" per the K2 SFT guide
    ram = next(d for d in est.devices if d.kind == "ram")
    swap = sum(d.weights_bytes for d in est.devices if d.kind == "swap")
    assert ram.weights_bytes + swap >= 2 * param_counts(get_model("kimi-k2-instruct")).routed_experts
    # GPUs hold attention, shared experts, dense MLP, lm_head: ~21 GB of BF16 split over two 24 GB cards
    for gpu in (d for d in est.devices if d.kind == "gpu"):
        assert gpu.free_bytes > 0


def test_seed_with_512_gb_ram_does_not_fit_and_names_ram():
    est = estimate_finetune(FinetuneSpec(**{**SEED, "ram_gb": 512}))
    assert not est.fits
    assert any("RAM" in r for r in est.reasons), est.reasons


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
    est = estimate_finetune(spec, extra_models={"deepseek-v2-lite": v2_lite})
    assert within(est.tokens_per_s, 530.38), est.tokens_per_s
    assert est.fits
    # developer notes: ~30 GB host memory, ~5-6 GB GPU memory
    assert 25e9 <= used(est, "ram") <= 35e9
    assert used(est, "gpu") <= 8 * GiB
    # the same through the `model=` argument
    assert estimate_finetune(spec, model=v2_lite).tokens_per_s == est.tokens_per_s


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
    assert 0 < est.tokens_per_s <= est.roofline_tokens_per_s
    # the roofline itself: every FLOP at 100% of the BF16 peak of every device at once
    assert est.roofline_tokens_per_s * est.flops_per_token > 0


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("update, words", [
    ({"rank": 0}, "rank"),
    ({"rank": -4}, "rank"),
    ({"seq_len": 131_073}, "maximum context"),
    ({"tokens": 0}, "token"),
    ({"ram_gb": None}, "--ram-gb"),
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
