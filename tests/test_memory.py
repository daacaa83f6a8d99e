"""Memory model: golden values derived by hand from the models' config.json files and published checkpoint
sizes (each data/models/<id>.json cites its sources), and the seed document's statements."""

import pytest

from k2calc.deployment import resolve
from k2calc.errors import K2CalcError
from k2calc.estimate import estimate
from k2calc.memory import estimate_memory, kv_bytes_per_token, weights_by_group
from k2calc.models import get_model
from k2calc.quant import FORMATS, SCHEMES, resolve_scheme
from k2calc.scenario import Scenario
from k2calc.units import GiB


def mem(**kw):
    return estimate_memory(resolve(Scenario.build(**kw)))


# --- weights --------------------------------------------------------------------------------------

def test_k2_thinking_weights_by_hand():
    """1014.7B routed params x 4.5 bit (INT4 + BF16 scale per 32) + 11.7B other x 2 B = 594.2 GB, the
    checkpoint size (moonshotai/Kimi-K2-Thinking: compressed-tensors pack-quantized, group size 32)."""
    m = get_model("kimi-k2-thinking")
    groups = weights_by_group(m, resolve_scheme("native", m))
    assert groups["routed_experts"] == round(60 * 384 * 44_040_192 * 4.5 / 8)
    assert groups["attention"] == 61 * (101_122_048) * 2
    assert sum(groups.values()) == pytest.approx(594.2e9, rel=0.001)


def test_k2_instruct_fp8_weights_by_hand():
    """FP8 e4m3 + one FP32 scale per 128x128 block = 8.00195 bit on every linear weight; embeddings,
    lm_head (2 x 1.174B x 2 B) and router in BF16: about 1,029 GB (deepseek-ai/DeepSeek-V3
    README_WEIGHTS.md for the block-FP8 format; moonshotai/Kimi-K2-Instruct checkpoint)."""
    assert FORMATS["fp8-block"].bits_per_weight == pytest.approx(8 + 32 / 16384)
    m = get_model("kimi-k2-instruct")
    assert sum(weights_by_group(m, resolve_scheme("native", m)).values()) == pytest.approx(1.029e12, rel=0.002)


@pytest.mark.parametrize("model_id, quant, gb, tol", [
    ("minimax-m2", "native", 230.0, 0.01),     # MiniMax: ~230 GB checkpoint
    ("gpt-oss-120b", "native", 65.0, 0.02),    # MXFP4 experts (4.25 bit) + BF16 rest: ~65 GB
    ("deepseek-v3", "q4_k_m", 404.0, 0.02),    # Ollama deepseek-r1:671b (Q4_K_M): 404 GB
    ("deepseek-v3", "native", 688.0 - 14.6, 0.01),  # 688 GB on HF includes the 14B MTP module in FP8
])
def test_checkpoint_sizes(model_id, quant, gb, tol):
    m = get_model(model_id)
    assert sum(weights_by_group(m, resolve_scheme(quant, m)).values()) / 1e9 == pytest.approx(gb, rel=tol)


def test_gguf_block_sizes():
    """ggml-common.h: Q4_K 144 B per 256 weights = 4.5 bit; Q8_0 34 B per 32 = 8.5 bit."""
    assert FORMATS["q4_k"].bits_per_weight == 4.5
    assert FORMATS["q8_0"].bits_per_weight == 8.5
    assert FORMATS["mxfp4"].bits_per_weight == 4.25
    assert SCHEMES["mlx-4bit"].format_of("routed_experts").bits_per_weight == 4.5


def test_custom_bits_per_weight_applies_to_every_group():
    m = get_model("kimi-k2-thinking")
    total = sum(weights_by_group(m, resolve_scheme("bpw:3.331", m)).values())
    assert total == pytest.approx(1026.41e9 * 3.331 / 8, rel=0.001)
    with pytest.raises(K2CalcError):
        resolve_scheme("bpw:0.5", m)


# --- KV cache -------------------------------------------------------------------------------------

def test_kv_bytes_per_token_by_hand():
    """MLA: 61 x (512 + 64) x 2 = 70,272 B; GQA M2: 62 x 2 x 8 x 128 x 2 = 253,952 B; Qwen3 235B
    192,512 B; GLM-4.6 376,832 B; gpt-oss-120b full layers only: 18 x 2 x 8 x 64 x 2 = 36,864 B."""
    assert kv_bytes_per_token(get_model("kimi-k2-thinking")) == 70_272
    assert kv_bytes_per_token(get_model("kimi-k2-thinking"), "fp8") == 35_136
    assert kv_bytes_per_token(get_model("minimax-m2")) == 253_952
    assert kv_bytes_per_token(get_model("qwen3-235b-a22b")) == 192_512
    assert kv_bytes_per_token(get_model("glm-4.6")) == 376_832
    assert kv_bytes_per_token(get_model("gpt-oss-120b")) == 36_864


def test_mla_latent_is_replicated_not_divided_by_tp():
    """The classic bug divides MLA cache by the TP degree: vLLM keeps the whole latent on every rank."""
    est = mem(model="kimi-k2-thinking", hardware="h200-sxm", count=8, context=100_000)
    assert all(d.kv_bytes == 100_000 * 70_272 for d in est.devices)


def test_gqa_heads_split_across_tp():
    est = mem(model="minimax-m2", hardware="h200-sxm", count=8, context=100_000)
    assert all(d.kv_bytes == 100_000 * 253_952 // 8 for d in est.devices)


def test_sglang_dp_attention_shards_requests():
    est = mem(model="kimi-k2-thinking", hardware="h200-sxm", count=8, engine="sglang", dp_attention=True,
              context=100_000, concurrency=8)
    assert all(d.kv_bytes == 100_000 * 70_272 for d in est.devices)  # one sequence per DP rank
    plain = mem(model="kimi-k2-thinking", hardware="h200-sxm", count=8, engine="sglang", context=100_000)
    assert est.kv_capacity_tokens > 7 * plain.kv_capacity_tokens * 0.9  # 8 ranks, minus full attention copies


def test_vllm_tp8_h200_capacity_matches_engine_log():
    """vLLM recipe moonshotai/Kimi-K2-Think.md: TP8 on 8x H200 logs 'GPU KV cache size: 715,072 tokens'.

    By hand: 0.9 x 143,771 MiB = 126.36 GiB per GPU; weights 594.2 GB / 8 plus the replicated MLA
    down-projections and router = 70.95 GiB; activations (8192-token chunk, 1024-sequence sampler) and
    runtime about 8.0 GiB; (126.36 - 70.95 - 8.0) GiB / 70,272 B = ~724K tokens, within 2% of the log.
    """
    est = mem(model="kimi-k2-thinking", hardware="h200-sxm", count=8, context=262_144)
    assert est.kv_capacity_tokens == pytest.approx(715_072, rel=0.05)
    assert est.kv_capacity_tokens == pytest.approx(715_072, rel=0.02)
    assert est.kv_capacity_tokens % 64 == 0  # whole 64-token pages
    dcp = mem(model="kimi-k2-thinking", hardware="h200-sxm", count=8, context=262_144, dcp=8)
    assert dcp.kv_capacity_tokens == pytest.approx(8 * est.kv_capacity_tokens, rel=0.001)  # "increased by 8 times"


# --- the seed document's statements --------------------------------------------------------------

def test_k2_thinking_fits_8x_h200_at_256k():
    assert mem(model="kimi-k2-thinking", hardware="h200-sxm", count=8, context=262_144).fits


def test_k2_thinking_fits_two_512gb_macs_not_one():
    assert mem(model="kimi-k2-thinking", hardware="mac-studio-m3-ultra-512gb", count=2).fits
    one = mem(model="kimi-k2-thinking", hardware="mac-studio-m3-ultra-512gb", count=1)
    assert not one.fits and "usable" in one.reasons[0]


def test_k2_thinking_does_not_fit_dgx_spark():
    assert not mem(model="kimi-k2-thinking", hardware="dgx-spark", count=1).fits


def test_k2_thinking_hybrid_needs_2tb_ram():
    box = dict(model="kimi-k2-thinking", hardware="rtx-4090", count=2, cpu="xeon-platinum-8488c", sockets=2)
    assert mem(**box, ram_gb=2048).fits
    small = mem(**box, ram_gb=512)
    assert not small.fits and "System RAM" in small.reasons[0]


def test_k2_instruct_128k_needs_b200_not_h200():
    kw = dict(model="kimi-k2-instruct", count=8, context=131_072, kv_dtype="bf16")
    assert not mem(hardware="h200-sxm", **kw).fits
    assert mem(hardware="b200", **kw).fits


def test_minimax_m2_mac_at_8bit_and_spark_only_at_3bit():
    assert mem(model="minimax-m2", hardware="mac-studio-m3-ultra-512gb", count=1, quant="mlx-8bit").fits
    spark = dict(model="minimax-m2", hardware="dgx-spark", count=1, context=8192)
    assert not mem(**spark, quant="q4_k_m").fits
    assert mem(**spark, quant="q3_k_m").fits


# --- smallest configuration ----------------------------------------------------------------------

def test_smallest_count_for_k2_instruct_on_h200_is_two_nodes():
    e = estimate(Scenario.build(model="kimi-k2-instruct", hardware="h200-sxm", count=8, context=131_072))
    assert not e.fits
    assert e.smallest["count"] == 16 and e.smallest["nodes"] == 2


def test_smallest_count_gives_reason_when_nothing_fits():
    e = estimate(Scenario.build(model="kimi-k2-thinking", hardware="rtx-4090", count=2,
                                cpu="xeon-platinum-8488c", ram_gb=256))
    assert e.smallest["count"] is None and "System RAM" in e.smallest["reason"]


def test_mac_wired_limit_is_settable():
    """A 512 GB Mac holds MiniMax M2 at BF16 (457 GB) only after raising the wired limit."""
    kw = dict(model="minimax-m2", quant="bf16", hardware="mac-studio-m3-ultra-512gb", count=1, context=8192)
    assert not mem(**kw).fits  # default: 3/4 of 512 GiB = 384 GiB
    assert mem(**kw, wired_limit_gb=480).fits
    assert mem(**kw, wired_limit_gb=480).devices[0].usable_bytes == 480 * GiB
