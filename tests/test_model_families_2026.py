"""The model families of 2026: hybrid linear attention (Qwen3-Next's Gated DeltaNet, Kimi Linear's KDA),
DeepSeek V3.2's sparse attention, MTP layers shipped in the checkpoint, and the catalog entries.

Golden values are derived by hand from each model's config.json (cited in data/models/<id>.json) and the
state/cache layouts of vLLM ``mamba_utils.py`` and DeepSeek-V3.2-Exp ``inference/model.py``."""

import json

import pytest

from k2calc.deployment import resolve
from k2calc.errors import CatalogError
from k2calc.estimate import estimate
from k2calc.memory import estimate_memory
from k2calc.models import (
    MODELS_DIR,
    get_model,
    mtp_params,
    param_counts,
    parse_config_json,
)
from k2calc.performance.decode import _attention_flops_per_token, decode_step
from k2calc.performance.prefill import prefill_flops
from k2calc.quant import resolve_scheme
from k2calc.scenario import Catalogs, Scenario
from k2calc.weights import (
    kv_bytes_per_token,
    kv_read_share,
    linear_state_bytes_per_sequence,
    mtp_bytes,
)

NEW = ["kimi-k2.5", "deepseek-v3.2", "minimax-m2.1", "glm-4.7", "qwen3-next-80b-a3b", "kimi-linear-48b",
       "qwen3-32b"]


def _config(model_id):
    return json.loads((MODELS_DIR / f"{model_id}.json").read_text())["config"]


# --- the catalog: the published checkpoint within 2% ------------------------------------------------

@pytest.mark.parametrize("model_id", NEW)
def test_estimate_memory_matches_the_published_checkpoint(model_id):
    """`estimate` stores the weights in the native format, MTP layers included, within 2% of the checkpoint
    size each data/models/<id>.json cites (published.checkpoint_gb, with its source)."""
    m = get_model(model_id)
    e = estimate(Scenario.build(model=model_id, hardware="b200", count=8, context=16_384))
    assert e.memory.checkpoint_bytes == pytest.approx(m.checkpoint_bytes, rel=0.02)


@pytest.mark.parametrize("model_id", NEW)
def test_import_config_json_gives_the_catalog_architecture(model_id):
    imported = parse_config_json(json.dumps(_config(model_id)), "imported")
    catalog = get_model(model_id)
    assert param_counts(imported) == param_counts(catalog)
    assert imported.native_quant == catalog.native_quant
    assert imported.linear_layer_ids == catalog.linear_layer_ids
    assert imported.index_topk == catalog.index_topk


def test_qwen3_next_parameters_by_hand():
    """Qwen3-Next 80B-A3B (config.json; the Qwen3-Coder-Next fixture of the same shape totals
    79,674,391,296). Gated DeltaNet layer: in_proj_qkvz 2048 x (2x2048 + 2x4096) = 25,165,824,
    in_proj_ba 2048 x 64 = 131,072, conv1d 8,192 x 4 = 32,768, dt_bias + A_log 64, out_proj 4096 x 2048
    = 8,388,608: 33,718,336 (+ a 128-wide norm). Gated attention: q 2048 x (16x256x2) + k, v 2048 x 512
    each + o 4096 x 2048 = 27,262,976. Experts: 48 x 512 x 3 x 2048 x 512."""
    m = get_model("qwen3-next-80b-a3b")
    assert m.linear_layers == 36 and m.full_attention_layers == 12
    assert m.linear_layer_ids[:4] == (0, 1, 2, 4)  # every fourth layer (3, 7, ...) is full attention
    c = param_counts(m)
    assert c.attention == 36 * 33_718_336 + 12 * 27_262_976
    assert c.routed_experts == 48 * 512 * 3 * 2048 * 512
    assert c.total == 79_674_391_296
    # one MTP layer (vLLM qwen3_next_mtp.py) brings it to the published 81.3B
    assert (c.total + sum(mtp_params(m).values())) / 1e9 == pytest.approx(81.3, abs=0.05)


def test_kimi_linear_parameters_by_hand():
    """Kimi Linear 48B-A3B: the safetensors index totals 49,122,681,728 parameters (98,245,363,456 B in
    BF16). KDA layer: q, k, v 3 x 2304 x 4096 + o 4096 x 2304 + short convs 3 x 4096 x 4 + f and g gates
    2 x (2304 x 128 + 128 x 4096) + b_proj 2304 x 32 + A_log 32 + dt_bias 4096 = 39,514,144."""
    m = get_model("kimi-linear-48b")
    assert m.linear_layers == 20 and m.full_attention_layers == 7
    assert 3 not in m.linear_layer_ids  # 1-based full_attn_layers [4, 8, ...] is layer index 3
    c = param_counts(m)
    assert c.total == 49_122_681_728
    assert sum(c.as_dict().values()) * 2 == 98_245_363_456


# --- golden KV and state bytes per attention kind ---------------------------------------------------

def test_gated_deltanet_state_and_kv_by_hand():
    """Qwen3-Next: KV only on the 12 full layers: 12 x 2 x 2 KV heads x 256 x 2 B = 24,576 B/token.
    State per Gated DeltaNet layer: recurrent 32 v-heads x 128 x 128 x 2 B (BF16, vLLM's default: the model
    dtype) = 1,048,576 + conv (2 x 16 x 128 + 32 x 128) x (4 - 1) x 2 B = 49,152: x 36 = 39,518,208 B."""
    m = get_model("qwen3-next-80b-a3b")
    assert kv_bytes_per_token(m, "bf16") == 24_576
    assert linear_state_bytes_per_sequence(m) == 36 * (1_048_576 + 49_152) == 39_518_208


def test_sglang_keeps_the_recurrent_state_in_fp32():
    """SGLang's --mamba-ssm-dtype defaults to float32 (sgl-cookbook Qwen3-Next.md): the Gated DeltaNet
    recurrent state doubles, 36 x (32 x 128 x 128 x 4 + 49,152) = 77,266,944 B; the BF16 conv state stays."""
    m = get_model("qwen3-next-80b-a3b")
    assert linear_state_bytes_per_sequence(m, "sglang") == 36 * (2_097_152 + 49_152) == 77_266_944
    assert linear_state_bytes_per_sequence(m, "vllm") == 39_518_208
    kda = get_model("kimi-linear-48b")
    assert linear_state_bytes_per_sequence(kda, "sglang") == linear_state_bytes_per_sequence(kda, "vllm")


def test_kda_state_and_kv_by_hand():
    """Kimi Linear: MLA latent on the 7 full layers: 7 x (512 + 64) x 2 B = 8,064 B/token. KDA state per
    layer: recurrent 32 x 128 x 128 x 4 B (FP32: vLLM kda_state_dtype) = 2,097,152 + q, k, v short convs
    3 x 4096 x 3 x 2 B = 73,728: x 20 = 43,417,600 B per sequence, whatever the context."""
    m = get_model("kimi-linear-48b")
    assert kv_bytes_per_token(m, "bf16") == 8_064
    assert linear_state_bytes_per_sequence(m) == 20 * (2_097_152 + 73_728) == 43_417_600


def test_sparse_attention_indexer_cache_by_hand():
    """DeepSeek V3.2: per layer the MLA latent (512 + 64) in the KV dtype plus the indexer's key, always
    FP8 128 B + one FP32 scale per 128 = 132 B (DeepSeek-V3.2-Exp inference/model.py, Indexer):
    61 x (576 x 2 + 132) = 78,324 B/token in BF16, 61 x (576 + 132) = 43,188 in FP8."""
    m = get_model("deepseek-v3.2")
    assert kv_bytes_per_token(m, "bf16") == 61 * (576 * 2 + 132) == 78_324
    assert kv_bytes_per_token(m, "fp8") == 61 * (576 + 132) == 43_188


def test_sparse_attention_reads_the_latent_of_at_most_topk_tokens():
    """Past 2,048 tokens a decode step reads every token's indexer key but only 2,048 latents."""
    m = get_model("deepseek-v3.2")
    assert kv_read_share(m, 2048) == 1.0
    read = 78_324 * 131_072 * kv_read_share(m, 131_072)
    assert read == pytest.approx(61 * (1152 * 2048 + 132 * 131_072))


def test_sparse_attention_flops_grow_only_through_the_indexer():
    """Decode attention FLOPs past index_topk grow only by the indexer's 2 x 64 heads x 128 per token and
    layer; a dense-attention twin grows by the whole MLA score and value work."""
    m = get_model("deepseek-v3.2")
    growth = _attention_flops_per_token(m, 200_000) - _attention_flops_per_token(m, 100_000)
    assert growth == pytest.approx(61 * 2 * 64 * 128 * 100_000)
    dense = get_model("deepseek-v3")
    assert _attention_flops_per_token(dense, 200_000) - _attention_flops_per_token(dense, 100_000) > 10 * growth


def test_linear_layers_cost_the_same_at_any_context():
    """Kimi Linear's decode attention FLOPs grow only through its 7 MLA layers; prefill grows linearly
    in the prompt for the KDA layers, quadratically for the MLA layers alone."""
    m = get_model("kimi-linear-48b")
    growth = _attention_flops_per_token(m, 2_000) - _attention_flops_per_token(m, 1_000)
    assert growth == pytest.approx(7 * 2 * 32 * 1_000 * (2 * 512 + 64))
    twin = m.model_copy(update={"linear_layer_ids": (), "linear_attention": None})
    long, short = prefill_flops(m, 64_000)[1], prefill_flops(m, 32_000)[1]
    long_twin, short_twin = prefill_flops(twin, 64_000)[1], prefill_flops(twin, 32_000)[1]
    assert long - short < long_twin - short_twin


# --- capacity and speed ------------------------------------------------------------------------------

def _twin_catalogs(model_id: str) -> tuple[Catalogs, str]:
    """The model with every layer full attention (MLA/GQA), as a session import."""
    m = get_model(model_id)
    twin = m.model_copy(update={"id": "twin", "linear_layer_ids": (), "linear_attention": None})
    return Catalogs(models={"twin": twin}), "twin"


@pytest.mark.parametrize("model_id", ["qwen3-next-80b-a3b", "kimi-linear-48b"])
def test_hybrid_models_hold_more_long_sequences_than_full_attention(model_id):
    cats, twin = _twin_catalogs(model_id)
    kw = dict(hardware="h200-sxm", count=2, context=262_144)
    hybrid = estimate_memory(resolve(Scenario.build(model=model_id, **kw)))
    full = estimate_memory(resolve(Scenario.build(model=twin, **kw), cats))
    assert hybrid.max_concurrency > 2 * full.max_concurrency
    assert hybrid.linear_state_bytes_per_sequence > 0 and full.linear_state_bytes_per_sequence == 0


def test_the_state_counts_once_per_sequence_in_capacity():
    """Sequences that fit = pool // (KV per token x context + state) on every device."""
    est = estimate_memory(resolve(Scenario.build(model="qwen3-next-80b-a3b", hardware="h200-sxm", count=1,
                                                 context=65_536)))
    dev = est.devices[0]
    per_seq = dev.kv_bytes_per_token * 65_536 + dev.state_bytes_per_sequence
    assert dev.state_bytes_per_sequence == linear_state_bytes_per_sequence(get_model("qwen3-next-80b-a3b"))
    assert est.max_concurrency == int(dev.kv_pool_bytes // per_seq)


def test_hybrid_decode_slows_less_with_context_than_its_full_attention_twin():
    cats, twin = _twin_catalogs("qwen3-next-80b-a3b")

    def step(model, seq_len, catalogs=None):
        d = resolve(Scenario.build(model=model, hardware="h200-sxm", count=1, context=131_072,
                                   concurrency=8), catalogs)
        return decode_step(d, estimate_memory(d), 8, seq_len).total_s

    hybrid = step("qwen3-next-80b-a3b", 128_000) / step("qwen3-next-80b-a3b", 4_000)
    full = step(twin, 128_000, cats) / step(twin, 4_000, cats)
    assert 1 < hybrid < full


# --- MTP layers ---------------------------------------------------------------------------------------

def test_deepseek_mtp_module_by_hand():
    """DeepSeek V3's MTP module (README_WEIGHTS.md: 685B = 671B main + 14B MTP): one MoE layer (256 + 1
    experts of 3 x 7168 x 2048, MLA, router), eh_proj 14336 x 7168, and its own embedding and head
    (2 x 129,280 x 7168): 13.46B."""
    m = get_model("deepseek-v3")
    assert sum(mtp_params(m).values()) / 1e9 == pytest.approx(13.46, abs=0.01)
    assert mtp_params(m)["routed_experts"] == 256 * 3 * 7168 * 2048
    assert mtp_params(m)["embeddings"] == mtp_params(m)["lm_head"] == 129_280 * 7168
    assert (param_counts(m).total + sum(mtp_params(m).values())) / 1e9 == pytest.approx(685, abs=1)


def test_mtp_is_loaded_only_when_the_model_says_so():
    m = get_model("glm-4.7")
    scheme = resolve_scheme("native", m)
    extra = mtp_bytes(m, scheme)
    assert extra == pytest.approx(2 * sum(mtp_params(m).values()))  # BF16
    assert mtp_bytes(get_model("kimi-k2-thinking"), scheme) == 0
    kw = dict(hardware="b200", count=8, context=16_384)
    off = estimate_memory(resolve(Scenario.build(model="glm-4.7", **kw)))
    cats = Catalogs(models={"glm-mtp": m.model_copy(update={"id": "glm-mtp", "load_mtp": True})})
    on = estimate_memory(resolve(Scenario.build(model="glm-mtp", **kw), cats))
    assert on.weights_bytes - off.weights_bytes == pytest.approx(extra, abs=8)
    assert sum(d.weights_bytes for d in on.devices) - sum(d.weights_bytes for d in off.devices) == pytest.approx(
        extra, rel=1e-6)
    assert on.checkpoint_bytes == off.checkpoint_bytes


# --- import: families recognised, unsupported ones named ----------------------------------------------

def test_import_reads_kimi_k25_text_config():
    m = parse_config_json(json.dumps(_config("kimi-k2.5")), "k25")
    assert (m.family, m.attention, m.n_routed_experts, m.native_quant) == ("deepseek_v3", "mla", 384, "int4-experts")


def test_import_unmodelled_architecture_is_one_clear_line():
    with pytest.raises(CatalogError, match="GlmMoeDsaForCausalLM.*cannot be modelled yet"):
        parse_config_json(json.dumps({"architectures": ["GlmMoeDsaForCausalLM"], "hidden_size": 6144}))


def test_import_kda_layer_out_of_range_names_the_field():
    config = _config("kimi-linear-48b")
    config["linear_attn_config"]["kda_layers"] = [0, 1]
    with pytest.raises(CatalogError, match="kda_layers"):
        parse_config_json(json.dumps(config))


def test_import_multimodal_wrapper_without_text_config_is_one_clear_line():
    with pytest.raises(CatalogError, match="text_config"):
        parse_config_json(json.dumps({"architectures": ["KimiK25ForConditionalGeneration"]}))
