"""Model catalog, parameter counts and config.json import: golden values derived by hand from the models'
config.json fields (MoonshotAI/Kimi-K2 README.md, deepseek-ai/DeepSeek-V3 inference/configs/config_671B.json)."""

import json

import pytest

from k2calc.errors import CatalogError, UnknownIdError
from k2calc.models import (
    MODELS_DIR,
    get_model,
    load_models,
    param_counts,
    parse_config_json,
)

REQUIRED = ["kimi-k2-thinking", "kimi-k2-instruct", "minimax-m2", "deepseek-v3", "qwen3-235b-a22b",
            "gpt-oss-120b", "glm-4.6", "gpt-oss-20b", "llama-3.1-70b", "llama-3.1-8b"]


def test_catalog_has_every_required_model():
    assert set(REQUIRED) <= set(load_models())


def test_kimi_k2_parameter_groups_by_hand():
    """Kimi K2 (MoonshotAI/Kimi-K2 README.md architecture table; llama.cpp reports 1026.41B).

    MLA layer: q_a 7168x1536 + q_b 1536x(64x192) + kv_a 7168x576 + kv_b 512x(64x256) + o 8192x7168
    = 11,010,048 + 18,874,368 + 4,128,768 + 8,388,608 + 58,720,256 = 101,122,048 (+ norms 1536+512).
    Expert = 3 x 7168 x 2048 = 44,040,192. Routed: 60 layers x 384 = 1,014,686,023,680.
    Embeddings = lm_head = 163,840 x 7168 = 1,174,405,120.
    """
    c = param_counts(get_model("kimi-k2-thinking"))
    assert c.attention == 61 * 101_122_048
    assert c.routed_experts == 60 * 384 * 44_040_192
    assert c.shared_experts == 60 * 1 * 44_040_192
    assert c.dense_mlp == 3 * 7168 * 18432
    assert c.embeddings == c.lm_head == 1_174_405_120
    assert c.total / 1e9 == pytest.approx(1026.4, abs=0.05)  # llama.cpp reports 1026.41B
    # active: everything but the 376 unchosen experts per MoE layer: ~32.9B, ~31.7B without the lookup
    assert c.active == c.total - 60 * (384 - 8) * 44_040_192
    assert c.active / 1e9 == pytest.approx(32.86, abs=0.05)
    assert c.active_excluding_embeddings / 1e9 == pytest.approx(31.69, abs=0.05)


@pytest.mark.parametrize("model_id, total_b, active_b, tol", [
    ("deepseek-v3", 671.0, 37.0, 0.02),       # 671B main model (MTP excluded), 37B active
    ("minimax-m2", 230.0, 10.0, 0.12),         # "230B / 10B": derived 228.7B / 10.4B without the lookup
    ("qwen3-235b-a22b", 235.0, 22.0, 0.02),
    ("gpt-oss-120b", 117.0, 5.1, 0.02),        # OpenAI counts active without embeddings
    ("gpt-oss-20b", 21.0, 3.6, 0.02),
    ("glm-4.6", 355.0, 32.0, 0.04),            # published total includes the MTP layer
    ("llama-3.1-70b", 70.6, 69.5, 0.02),       # dense: 70.6B total, 69.5B without the embedding table
    ("llama-3.1-8b", 8.03, 7.50, 0.02),
])
def test_totals_agree_with_published(model_id, total_b, active_b, tol):
    c = param_counts(get_model(model_id))
    assert c.total / 1e9 == pytest.approx(total_b, rel=tol)
    assert c.active_excluding_embeddings / 1e9 == pytest.approx(active_b, rel=max(tol, 0.05))


def test_catalog_reads_native_quant_from_quantization_config():
    models = load_models()
    assert models["kimi-k2-thinking"].native_quant == "int4-experts"
    assert models["kimi-k2-instruct"].native_quant == "fp8"
    assert models["gpt-oss-120b"].native_quant == "mxfp4-experts"
    assert models["qwen3-235b-a22b"].native_quant == "bf16"


def test_gpt_oss_sliding_layers_and_mla_fields():
    oss = get_model("gpt-oss-120b")
    assert (oss.sliding_layers, oss.sliding_window) == (18, 128)
    k2 = get_model("kimi-k2-thinking")
    assert (k2.attention, k2.kv_lora_rank, k2.qk_rope_head_dim) == ("mla", 512, 64)


def _config(model_id):
    return json.loads((MODELS_DIR / f"{model_id}.json").read_text())["config"]


@pytest.mark.parametrize("model_id", REQUIRED)
def test_import_config_json_gives_the_catalog_architecture(model_id):
    imported = parse_config_json(json.dumps(_config(model_id)), "imported")
    catalog = get_model(model_id)
    assert param_counts(imported) == param_counts(catalog)
    assert imported.native_quant == catalog.native_quant


def test_import_unsupported_architecture_names_it():
    with pytest.raises(CatalogError, match="MambaForCausalLM"):
        parse_config_json(json.dumps({"architectures": ["MambaForCausalLM"]}))


def test_import_missing_field_names_it():
    config = _config("minimax-m2")
    del config["num_local_experts"]
    with pytest.raises(CatalogError, match="num_local_experts"):
        parse_config_json(json.dumps(config))


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"'])
def test_import_malformed_json_is_one_clear_error(text):
    with pytest.raises(CatalogError):
        parse_config_json(text)


def test_import_negative_size_names_the_field():
    config = _config("llama-3.1-8b")
    config["hidden_size"] = -4096
    with pytest.raises(CatalogError, match="hidden_size"):
        parse_config_json(json.dumps(config))


def test_unknown_model_suggests_close_ids():
    with pytest.raises(UnknownIdError, match="kimi-k2-thinking"):
        get_model("kimi-k2-thinkng")
