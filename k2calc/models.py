"""Model catalog: architectures read from Hugging Face ``config.json`` fields, and parameter counts.

A model is what its ``config.json`` says it is. The catalog files in ``data/models/<id>.json`` hold
the config fields verbatim (``"config"``) plus what a config does not say: the display name, the
published totals to check against, and sources. A user's own ``config.json`` goes through exactly the
same :func:`from_hf_config` path.

Parameter counts are derived from the architecture per tensor group (routed experts, shared experts,
attention, dense MLP, embeddings, lm_head, router, norms), never taken from a published "total": the
published figure is only a check (Kimi K2: 1026.4B derived vs "1T"; llama.cpp reports 1026.41B).

References
----------
``MoonshotAI/Kimi-K2: README.md`` (architecture table) and the Hugging Face model card
``moonshotai/Kimi-K2-Thinking``; ``deepseek-ai/DeepSeek-V3: inference/configs/config_671B.json``; each
``data/models/<id>.json`` lists the sources of its own figures;
DeepSeek-V3 paper (arXiv 2412.19437) section 2.1 for MLA projections;
Hugging Face transformers ``modeling_*`` files for the tensor shapes of each family.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from .errors import CatalogError, UnknownIdError, validation_message
from .loader import DATA_DIR

MODELS_DIR = DATA_DIR / "models"

Family = Literal["deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_moe", "qwen3_next", "kimi_linear",
                 "gpt_oss", "glm4_moe", "dense"]

# architectures[0] in config.json -> family. Kimi K2 ships as DeepseekV3ForCausalLM (model_type kimi_k2);
# Kimi K2.5 as KimiK25ForConditionalGeneration, its language model in `text_config` (MULTIMODAL_WRAPPERS).
ARCHITECTURES: dict[str, Family] = {
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "DeepseekV2ForCausalLM": "deepseek_v3",
    "KimiK2ForCausalLM": "deepseek_v3",
    "KimiK25ForConditionalGeneration": "deepseek_v3",
    "DeepseekV32ForCausalLM": "deepseek_v32",
    "Qwen3NextForCausalLM": "qwen3_next",
    "KimiLinearForCausalLM": "kimi_linear",
    "MiniMaxM2ForCausalLM": "minimax_m2",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "GptOssForCausalLM": "gpt_oss",
    "Glm4MoeForCausalLM": "glm4_moe",
    "LlamaForCausalLM": "dense",
    "MistralForCausalLM": "dense",
    "Qwen2ForCausalLM": "dense",
    "Qwen3ForCausalLM": "dense",
}

# Multimodal checkpoints whose language model sits in config.json's `text_config` (the vision tower, under
# 1% of the bytes, is left out: vLLM's kimi_k25.py builds the language model from config.text_config).
MULTIMODAL_WRAPPERS = frozenset({"KimiK25ForConditionalGeneration"})

# Architectures whose memory or speed follow rules k2calc does not model yet: one line says why, instead of
# a guess (the attention kinds named are those of each family's config.json and modeling file).
UNSUPPORTED_ARCHITECTURES: dict[str, str] = {
    "GlmMoeDsaForCausalLM": "GLM-5's sparse attention shares one indexer across layers (index_topk_freq)",
    "DeepseekV4ForCausalLM": "DeepSeek V4 compresses its KV cache per layer (compress_ratios)",
    "Qwen3_5MoeForConditionalGeneration": "Qwen3.5's multimodal hybrid layout is not modelled yet",
    "Qwen3_5ForConditionalGeneration": "Qwen3.5's multimodal hybrid layout is not modelled yet",
    "MiniMaxText01ForCausalLM": "MiniMax-01's lightning attention layers are not modelled",
    "MiniMaxM1ForCausalLM": "MiniMax-M1's lightning attention layers are not modelled",
    "MambaForCausalLM": "a pure state-space model (Mamba) has no attention layers to model",
    "Mamba2ForCausalLM": "a pure state-space model (Mamba2) has no attention layers to model",
    "JambaForCausalLM": "Jamba's Mamba layers are not modelled",
    "NemotronHForCausalLM": "Nemotron-H's Mamba2 layers are not modelled",
    "FalconH1ForCausalLM": "Falcon-H1's parallel Mamba2 heads are not modelled",
}


# Physical limits of an architecture k2calc will compute (10x or more above any model published by 2026):
# beyond them a config.json or a link is rejected with the range, so every estimate stays finite and fast.
MAX_LAYERS = 1000
MAX_HIDDEN = 65536
MAX_HEADS = 4096
MAX_HEAD_DIM = 4096
MAX_EXPERTS = 4096
MAX_SHARED_EXPERTS = 64
MAX_INTERMEDIATE = 1_048_576
MAX_VOCAB = 10_000_000
MAX_CONTEXT = 100_000_000
MAX_MTP_LAYERS = 16
MAX_CONFIG_BYTES = 1_000_000  # a config.json is a few KB


class ModelArch(BaseModel):
    """One model's architecture, in config.json terms. Sizes in elements, context in tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    architecture: str = Field(max_length=100)
    family: Family
    num_layers: int = Field(gt=0, le=MAX_LAYERS)
    hidden_size: int = Field(gt=0, le=MAX_HIDDEN)
    num_heads: int = Field(gt=0, le=MAX_HEADS)
    num_kv_heads: int = Field(gt=0, le=MAX_HEADS)
    head_dim: int = Field(gt=0, le=MAX_HEAD_DIM, description="per-head dim of Q/K/V for GQA; qk dim (nope+rope) for MLA")
    attention: Literal["mla", "gqa"]
    # MLA (DeepSeek V3 / Kimi K2)
    q_lora_rank: int | None = Field(None, ge=0, le=MAX_HIDDEN)
    kv_lora_rank: int = Field(0, ge=0, le=MAX_HIDDEN)
    qk_rope_head_dim: int = Field(0, ge=0, le=MAX_HEAD_DIM)
    qk_nope_head_dim: int = Field(0, ge=0, le=MAX_HEAD_DIM)
    v_head_dim: int = Field(0, ge=0, le=MAX_HEAD_DIM)
    # sliding-window attention (gpt-oss): number of layers that only keep `sliding_window` tokens
    sliding_window: int | None = Field(None, gt=0, le=MAX_CONTEXT)
    sliding_layers: int = Field(0, ge=0, le=MAX_LAYERS)
    attention_bias: bool = False
    qk_norm: bool = False
    # MoE
    n_routed_experts: int = Field(0, ge=0, le=MAX_EXPERTS)
    experts_per_tok: int = Field(0, ge=0, le=MAX_EXPERTS)
    n_shared_experts: int = Field(0, ge=0, le=MAX_SHARED_EXPERTS)
    moe_intermediate_size: int = Field(0, ge=0, le=MAX_INTERMEDIATE)
    dense_intermediate_size: int = Field(0, ge=0, le=MAX_INTERMEDIATE)
    first_k_dense: int = Field(0, ge=0, le=MAX_LAYERS, description="leading layers with a dense MLP instead of MoE")
    expert_bias: bool = False
    vocab_size: int = Field(gt=0, le=MAX_VOCAB)
    max_context_tokens: int = Field(gt=0, le=MAX_CONTEXT)
    tie_embeddings: bool = False
    mtp_layers: int = Field(0, ge=0, le=MAX_MTP_LAYERS, description="multi-token-prediction layers shipped in the checkpoint")
    load_mtp: bool = Field(False, description="the engine loads the MTP layers (speculative decoding on); off by default")
    shared_intermediate_size: int = Field(0, ge=0, le=MAX_INTERMEDIATE, description="shared expert width; 0 = moe_intermediate_size")
    # Hybrid linear attention (Qwen3-Next Gated DeltaNet, Kimi Linear KDA): these layers keep a fixed-size
    # recurrent state per sequence instead of a KV cache; every other layer is full attention.
    linear_attention: Literal["gated_deltanet", "kda"] | None = None
    linear_layer_ids: tuple[int, ...] = Field((), max_length=MAX_LAYERS, description="0-based indices of the linear layers")
    linear_num_key_heads: int = Field(0, ge=0, le=MAX_HEADS)
    linear_num_value_heads: int = Field(0, ge=0, le=MAX_HEADS)
    linear_key_head_dim: int = Field(0, ge=0, le=MAX_HEAD_DIM)
    linear_value_head_dim: int = Field(0, ge=0, le=MAX_HEAD_DIM)
    linear_conv_kernel: int = Field(0, ge=0, le=64)
    linear_state_dtype: Literal["bf16", "fp32"] = "bf16"
    gated_attention: bool = Field(False, description="full-attention q_proj also emits a per-head output gate (Qwen3-Next)")
    # DeepSeek sparse attention (V3.2): a lightning indexer picks index_topk tokens per query
    index_n_heads: int = Field(0, ge=0, le=MAX_HEADS)
    index_head_dim: int = Field(0, ge=0, le=MAX_HEAD_DIM)
    index_topk: int | None = Field(None, gt=0, le=MAX_CONTEXT)
    native_quant: str = Field("bf16", max_length=50)
    published_total_params: float | None = Field(None, ge=0)
    published_active_params: float | None = Field(None, ge=0)
    checkpoint_bytes: float | None = Field(None, ge=0)
    sources: tuple[str, ...] = ()
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "ModelArch":
        """Counts that must fit inside others (an expert chosen must exist, a dense layer must be a layer)."""
        for part, whole in (("num_kv_heads", "num_heads"), ("experts_per_tok", "n_routed_experts"),
                            ("first_k_dense", "num_layers"), ("sliding_layers", "num_layers")):
            if getattr(self, part) > getattr(self, whole):
                raise ValueError(f"{part} {getattr(self, part)} exceeds {whole} {getattr(self, whole)}")
        if self.n_routed_experts and not self.experts_per_tok:
            raise ValueError("a model with routed experts needs experts_per_tok of at least 1")
        if self.attention == "mla" and not self.kv_lora_rank:
            raise ValueError("MLA attention needs kv_lora_rank of at least 1")
        if any(i >= self.num_layers for i in self.linear_layer_ids):
            raise ValueError(f"linear attention layer index {max(self.linear_layer_ids)} is not below num_layers "
                             f"{self.num_layers}")
        if self.linear_layer_ids and not (self.linear_attention and self.linear_num_value_heads
                                          and self.linear_key_head_dim and self.linear_value_head_dim):
            raise ValueError("linear attention layers need their heads and head dimensions")
        if self.index_topk and not (self.index_n_heads and self.index_head_dim):
            raise ValueError("sparse attention (index_topk) needs index_n_heads and index_head_dim")
        return self

    def __hash__(self) -> int:
        # Cheap hash for the per-model caches (equality still compares every field).
        return hash((self.id, self.num_layers, self.hidden_size, self.n_routed_experts, self.vocab_size))

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0

    @property
    def moe_layers(self) -> int:
        return self.num_layers - self.first_k_dense if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        return self.num_layers - self.moe_layers

    @property
    def linear_layers(self) -> int:
        """Layers with linear attention (a fixed-size state per sequence, no KV cache) [count]."""
        return len(self.linear_layer_ids)

    @property
    def full_attention_layers(self) -> int:
        """Layers that attend over the whole context (no sliding window, not linear) [count]."""
        return self.num_layers - self.linear_layers - self.sliding_layers

    def is_linear_layer(self, layer: int) -> bool:
        """Whether decoder layer `layer` (0-based) uses linear attention."""
        return layer in self._linear_set

    @property
    def _linear_set(self) -> frozenset[int]:
        return frozenset(self.linear_layer_ids)


def _int(lo: int, hi: int) -> Any:
    """An optional config.json integer within [lo, hi] (JSON numbers only: no strings, booleans or floats)."""
    return Field(None, ge=lo, le=hi)


class QuantWeights(BaseModel):
    """``quantization_config.config_groups.<group>.weights`` (compressed-tensors): the bits read."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)
    num_bits: StrictInt | None = _int(1, 64)


class QuantGroup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)
    weights: QuantWeights | None = None


class QuantizationConfig(BaseModel):
    """The part of ``quantization_config`` k2calc reads to name the shipped weight format."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)
    quant_method: StrictStr | None = Field(None, max_length=100)
    config_groups: dict[str, QuantGroup | None] | None = Field(None, max_length=64)
    ignore: list[StrictStr] | None = Field(None, max_length=100_000)


class LinearAttnConfig(BaseModel):
    """Kimi Linear's ``linear_attn_config``: which layers are KDA (1-based, as in the file) and their heads."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)
    kda_layers: list[StrictInt] | None = Field(None, max_length=MAX_LAYERS)
    full_attn_layers: list[StrictInt] | None = Field(None, max_length=MAX_LAYERS)
    num_heads: StrictInt | None = _int(1, MAX_HEADS)
    head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    short_conv_kernel_size: StrictInt | None = _int(1, 64)


class HFConfig(BaseModel):
    """The ``config.json`` fields k2calc reads, typed and bounded (names exactly as in the file).

    Every field is optional here; which ones a family needs is checked by :func:`from_hf_config`.
    Other fields are allowed and ignored. Integers must be JSON integers (``7168``, not ``"7168"``,
    ``7168.5`` or ``true``) within physically sensible limits, so an estimate stays finite and fast.
    """

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    architectures: list[StrictStr] | None = Field(None, max_length=16)
    num_hidden_layers: StrictInt | None = _int(1, MAX_LAYERS)
    hidden_size: StrictInt | None = _int(1, MAX_HIDDEN)
    num_attention_heads: StrictInt | None = _int(1, MAX_HEADS)
    num_key_value_heads: StrictInt | None = _int(1, MAX_HEADS)
    head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    vocab_size: StrictInt | None = _int(1, MAX_VOCAB)
    max_position_embeddings: StrictInt | None = _int(1, MAX_CONTEXT)
    model_max_length: StrictInt | None = _int(1, MAX_CONTEXT)
    tie_word_embeddings: StrictBool | None = None
    num_nextn_predict_layers: StrictInt | None = _int(0, MAX_MTP_LAYERS)
    attention_bias: StrictBool | None = None
    use_qk_norm: StrictBool | None = None
    # MLA
    q_lora_rank: StrictInt | None = _int(1, MAX_HIDDEN)
    kv_lora_rank: StrictInt | None = _int(1, MAX_HIDDEN)
    qk_rope_head_dim: StrictInt | None = _int(0, MAX_HEAD_DIM)
    qk_nope_head_dim: StrictInt | None = _int(0, MAX_HEAD_DIM)
    v_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    # MLPs and experts
    intermediate_size: StrictInt | None = _int(0, MAX_INTERMEDIATE)
    moe_intermediate_size: StrictInt | None = _int(1, MAX_INTERMEDIATE)
    n_routed_experts: StrictInt | None = _int(1, MAX_EXPERTS)
    num_experts: StrictInt | None = _int(1, MAX_EXPERTS)
    num_local_experts: StrictInt | None = _int(1, MAX_EXPERTS)
    num_experts_per_tok: StrictInt | None = _int(1, MAX_EXPERTS)
    num_experts_per_token: StrictInt | None = _int(1, MAX_EXPERTS)
    n_shared_experts: StrictInt | None = _int(0, MAX_SHARED_EXPERTS)
    num_shared_experts: StrictInt | None = _int(0, MAX_SHARED_EXPERTS)
    shared_expert_intermediate_size: StrictInt | None = _int(1, MAX_INTERMEDIATE)
    first_k_dense_replace: StrictInt | None = _int(0, MAX_LAYERS)
    mlp_only_layers: list[StrictInt] | None = Field(None, max_length=MAX_LAYERS)
    # sliding-window attention
    layer_types: list[StrictStr] | None = Field(None, max_length=MAX_LAYERS)
    sliding_window: StrictInt | None = _int(1, MAX_CONTEXT)
    # hybrid linear attention: Qwen3-Next (Gated DeltaNet) and Kimi Linear (KDA)
    full_attention_interval: StrictInt | None = _int(1, MAX_LAYERS)
    linear_num_key_heads: StrictInt | None = _int(1, MAX_HEADS)
    linear_num_value_heads: StrictInt | None = _int(1, MAX_HEADS)
    linear_key_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    linear_value_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    linear_conv_kernel_dim: StrictInt | None = _int(1, 64)
    mamba_ssm_dtype: StrictStr | None = Field(None, max_length=20)
    linear_attn_config: LinearAttnConfig | None = None
    # DeepSeek sparse attention (V3.2)
    index_n_heads: StrictInt | None = _int(1, MAX_HEADS)
    index_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    index_topk: StrictInt | None = _int(1, MAX_CONTEXT)
    quantization_config: QuantizationConfig | None = None


def _require(config: HFConfig, *names: str) -> Any:
    """First present field among `names` (aliases), else a CatalogError naming the field."""
    for name in names:
        if getattr(config, name) is not None:
            return getattr(config, name)
    raise CatalogError(f"config.json field '{names[0]}' is missing")


def _native_quant_of(config: HFConfig, family: Family) -> str:
    """The shipped weight format, read from ``quantization_config`` (None: the torch_dtype, BF16)."""
    q = config.quantization_config or QuantizationConfig()
    method = (q.quant_method or "").lower()
    if not method:
        return "bf16"
    if method == "fp8":
        return "fp8"
    if method == "mxfp4":
        return "mxfp4-experts" if family == "gpt_oss" else "mxfp4"
    if method == "compressed-tensors":
        for group in (q.config_groups or {}).values():
            bits = group.weights.num_bits if group and group.weights else None
            if bits == 4:
                ignored = " ".join(q.ignore or ())
                experts_only = "self_attn" in ignored or "shared_experts" in ignored
                return "int4-experts" if experts_only else "int4"
            if bits == 8:
                return "fp8"
    if method in ("gptq", "awq"):
        return "gptq-int4"
    raise CatalogError(f"quantization_config.quant_method '{method[:80]}' is not supported; "
                       "choose a quantization explicitly (e.g. --quant bf16 or --bits-per-weight)")


def _config_error(exc: ValidationError, model: type[BaseModel]) -> CatalogError:
    return CatalogError(f"config.json field {validation_message(exc, model=model, quote=True)}")


def _attention_fields(c: HFConfig, family: Family, hidden: int, heads: int) -> dict[str, Any]:
    """ModelArch's attention fields: MLA (DeepSeek V3 / Kimi K2 / Kimi Linear's full layers, with V3.2's
    lightning indexer) or GQA with its head width (Qwen3-Next's gated attention), plus the linear layers."""
    req = lambda *n: _require(c, *n)  # noqa: E731
    fields: dict[str, Any] = {}
    if family in ("deepseek_v3", "deepseek_v32", "kimi_linear"):
        rope, nope = req("qk_rope_head_dim"), req("qk_nope_head_dim")
        if rope + nope < 1:
            raise CatalogError("config.json fields 'qk_rope_head_dim' + 'qk_nope_head_dim' must be at least 1")
        fields.update(
            attention="mla", head_dim=rope + nope, q_lora_rank=c.q_lora_rank,
            kv_lora_rank=req("kv_lora_rank"), qk_rope_head_dim=rope, qk_nope_head_dim=nope,
            v_head_dim=req("v_head_dim"), attention_bias=False,
        )
    else:
        head_dim = c.head_dim or hidden // heads
        if head_dim < 1:
            raise CatalogError(f"config.json field 'num_attention_heads' ({heads}) exceeds 'hidden_size' "
                               f"({hidden}); give 'head_dim'")
        fields.update(attention="gqa", head_dim=head_dim)
    if family == "deepseek_v32":
        fields.update(index_n_heads=req("index_n_heads"), index_head_dim=req("index_head_dim"),
                      index_topk=req("index_topk"))
    if family == "qwen3_next":
        fields.update(_gated_deltanet_fields(c))
    if family == "kimi_linear":
        fields.update(_kda_fields(c))
    return fields


def _gated_deltanet_fields(c: HFConfig) -> dict[str, Any]:
    """Qwen3-Next: Gated DeltaNet layers from ``layer_types`` or else every layer but each
    ``full_attention_interval``-th (transformers configuration_qwen3_next.py builds layer_types so)."""
    req = lambda *n: _require(c, *n)  # noqa: E731
    layers = req("num_hidden_layers")
    if c.layer_types:
        linear = tuple(i for i, t in enumerate(c.layer_types[:layers]) if t == "linear_attention")
    else:
        interval = req("full_attention_interval")
        linear = tuple(i for i in range(layers) if (i + 1) % interval)
    return dict(
        linear_attention="gated_deltanet", linear_layer_ids=linear, gated_attention=True,
        linear_num_key_heads=req("linear_num_key_heads"), linear_num_value_heads=req("linear_num_value_heads"),
        linear_key_head_dim=req("linear_key_head_dim"), linear_value_head_dim=req("linear_value_head_dim"),
        linear_conv_kernel=req("linear_conv_kernel_dim"),
        # vLLM mamba_utils.py gated_delta_net_state_dtype: the model dtype unless mamba_ssm_dtype says float32
        linear_state_dtype="fp32" if (c.mamba_ssm_dtype or "").lower() in ("float32", "fp32") else "bf16",
    )


def _kda_fields(c: HFConfig) -> dict[str, Any]:
    """Kimi Linear: ``linear_attn_config.kda_layers`` are 1-based (vLLM configs/kimi_linear.py
    ``is_kda_layer(i)``: ``i + 1 in kda_layers``); K, V and the state share heads and head_dim."""
    lin = c.linear_attn_config
    if lin is None or lin.kda_layers is None or lin.num_heads is None or lin.head_dim is None:
        raise CatalogError("config.json field 'linear_attn_config' needs 'kda_layers', 'num_heads' and 'head_dim'")
    layers = _require(c, "num_hidden_layers")
    if any(not 1 <= i <= layers for i in lin.kda_layers):
        raise CatalogError(f"config.json field 'linear_attn_config.kda_layers' must list layers 1 to {layers}")
    return dict(
        linear_attention="kda", linear_layer_ids=tuple(sorted({i - 1 for i in lin.kda_layers})),
        linear_num_key_heads=lin.num_heads, linear_num_value_heads=lin.num_heads,
        linear_key_head_dim=lin.head_dim, linear_value_head_dim=lin.head_dim,
        linear_conv_kernel=lin.short_conv_kernel_size or 4,
        # vLLM mamba_utils.py kda_state_dtype: the recurrent state is float32, the short-conv states model dtype
        linear_state_dtype="fp32",
    )


def _mlp_fields(c: HFConfig, family: Family, layers: int) -> dict[str, Any]:
    """ModelArch's MLP and expert fields, read from each family's own config keys."""
    req = lambda *n: _require(c, *n)  # noqa: E731
    fields: dict[str, Any] = {}
    if family == "dense":
        fields.update(dense_intermediate_size=req("intermediate_size"), first_k_dense=layers)
    elif family in ("deepseek_v3", "deepseek_v32", "glm4_moe"):
        fields.update(
            n_routed_experts=req("n_routed_experts"), experts_per_tok=req("num_experts_per_tok"),
            n_shared_experts=c.n_shared_experts or 0,
            moe_intermediate_size=req("moe_intermediate_size"),
            dense_intermediate_size=req("intermediate_size"),
            first_k_dense=c.first_k_dense_replace or 0,
        )
    elif family in ("qwen3_moe", "qwen3_next"):
        fields.update(
            n_routed_experts=req("num_experts"), experts_per_tok=req("num_experts_per_tok"),
            moe_intermediate_size=req("moe_intermediate_size"),
            dense_intermediate_size=c.intermediate_size or 0,
            first_k_dense=len(c.mlp_only_layers or []),
        )
        if family == "qwen3_next":  # one shared expert of its own width (modeling_qwen3_next.py)
            fields.update(n_shared_experts=1, shared_intermediate_size=req("shared_expert_intermediate_size"))
    elif family == "kimi_linear":  # Kimi's own key names (configuration_kimi.py)
        fields.update(
            n_routed_experts=req("num_experts"), experts_per_tok=req("num_experts_per_token", "num_experts_per_tok"),
            n_shared_experts=c.num_shared_experts or 0, moe_intermediate_size=req("moe_intermediate_size"),
            dense_intermediate_size=req("intermediate_size"), first_k_dense=c.first_k_dense_replace or 0,
        )
    else:  # minimax_m2, gpt_oss: experts in num_local_experts, expert width in intermediate_size
        fields.update(
            n_routed_experts=req("num_local_experts", "num_experts"),
            experts_per_tok=req("num_experts_per_tok"),
            moe_intermediate_size=req("intermediate_size"),
            expert_bias=family == "gpt_oss",
        )
    return fields


def from_hf_config(config: Any, model_id: str, name: str | None = None, **metadata: Any) -> ModelArch:
    """Build a :class:`ModelArch` from a Hugging Face ``config.json`` dict.

    Supported families: DeepseekV3/Kimi K2 (MLA + MoE), MiniMaxM2, Qwen3Moe, GptOss, Glm4Moe and dense
    Llama/Mistral/Qwen. The fields read are validated by :class:`HFConfig` (types and physical limits);
    an unsupported architecture, a missing field or a value out of range raises one :class:`CatalogError`
    naming the field and the allowed range. Extra keyword arguments (published figures, sources, notes)
    are stored as given.
    """
    if not isinstance(config, dict):
        kind = {type(None): "null", str: "a string", list: "an array", bool: "a boolean"}.get(type(config), "a number")
        raise CatalogError(f"config.json must be a JSON object ({{...}}), not {kind}")
    config = _language_model_config(config)
    try:
        c = HFConfig.model_validate(config)
    except ValidationError as exc:
        raise _config_error(exc, HFConfig) from None
    arch = c.architectures[0] if c.architectures else ""
    if arch in UNSUPPORTED_ARCHITECTURES:
        raise CatalogError(f"architecture '{arch}' cannot be modelled yet: {UNSUPPORTED_ARCHITECTURES[arch]}")
    if arch not in ARCHITECTURES:
        supported = ", ".join(sorted(ARCHITECTURES))
        raise CatalogError(f"architecture '{arch[:80] or 'missing'}' is not supported (supported: {supported})")
    family = ARCHITECTURES[arch]
    req = lambda *n: _require(c, *n)  # noqa: E731

    layers = req("num_hidden_layers")
    hidden = req("hidden_size")
    heads = req("num_attention_heads")
    kv_heads = c.num_key_value_heads or heads
    fields: dict[str, Any] = dict(
        id=model_id, name=name or model_id, architecture=arch, family=family,
        num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads,
        vocab_size=req("vocab_size"),
        max_context_tokens=req("max_position_embeddings", "model_max_length"),
        tie_embeddings=bool(c.tie_word_embeddings),
        mtp_layers=_mtp_layers(c, family),
        attention_bias=c.attention_bias if c.attention_bias is not None else family == "gpt_oss",
        qk_norm=c.use_qk_norm if c.use_qk_norm is not None else family in ("qwen3_moe", "qwen3_next"),
    )
    fields.update(_attention_fields(c, family, hidden, heads))
    fields.update(_mlp_fields(c, family, layers))
    sliding = sum(1 for t in c.layer_types or () if t == "sliding_attention")
    if sliding and c.sliding_window:
        fields.update(sliding_window=c.sliding_window, sliding_layers=sliding)
    fields["native_quant"] = _native_quant_of(c, family)
    fields.update(metadata)
    try:
        return ModelArch(**fields)
    except ValidationError as exc:
        raise CatalogError(f"model '{model_id[:80]}': {validation_message(exc, model=ModelArch, quote=True)}") from None


def _language_model_config(config: dict) -> dict:
    """The language model's part of a multimodal config.json (:data:`MULTIMODAL_WRAPPERS`): its
    ``text_config`` under the wrapper's architecture, with the top-level ``quantization_config``
    (Kimi K2.5 keeps it there); any other config unchanged."""
    archs = config.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    if arch not in MULTIMODAL_WRAPPERS:
        return config
    text = config.get("text_config")
    if not isinstance(text, dict):
        raise CatalogError(f"config.json field 'text_config' must hold the language model of '{arch}'")
    merged = {**text, "architectures": [arch]}
    if "quantization_config" in config:
        merged["quantization_config"] = config["quantization_config"]
    return merged


def _mtp_layers(c: HFConfig, family: Family) -> int:
    """Multi-token-prediction layers in the checkpoint: ``num_nextn_predict_layers``; Qwen3-Next ships one
    without the field (vLLM qwen3_next_mtp.py: ``getattr(config, "num_nextn_predict_layers", 1)``)."""
    if c.num_nextn_predict_layers is not None:
        return c.num_nextn_predict_layers
    return 1 if family == "qwen3_next" else 0


def parse_config_json(text: str | bytes, model_id: str = "custom", name: str | None = None) -> ModelArch:
    """Parse an uploaded ``config.json`` (text) into a :class:`ModelArch`; one clear error if malformed."""
    if len(text) > MAX_CONFIG_BYTES:
        raise CatalogError(f"config.json is {len(text):,} bytes; a config.json is a few KB (at most "
                           f"{MAX_CONFIG_BYTES:,} bytes accepted)")
    try:
        config = json.loads(text)  # NaN/Infinity parse; the schema rejects them in the field they are in
    except RecursionError:
        raise CatalogError("config.json is nested too deeply to be a config.json") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise CatalogError(f"config.json is not valid JSON: {str(exc)[:120]}") from None
    return from_hf_config(config, model_id, name or model_id)


def _load_catalog_file(path: Path) -> ModelArch:
    try:
        data = json.loads(path.read_text())
        published = data.get("published", {})
        return from_hf_config(
            data["config"], data["id"], data["name"],
            native_quant=data["native_quant"],
            published_total_params=published.get("total_params"),
            published_active_params=published.get("active_params"),
            checkpoint_bytes=published["checkpoint_gb"] * 1e9 if "checkpoint_gb" in published else None,
            sources=tuple(data.get("sources", ())), notes=data.get("notes", ""),
        )
    except (KeyError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path.name}: malformed catalog file ({exc})") from None


@lru_cache(maxsize=1)
def load_models() -> dict[str, ModelArch]:
    """The catalog in ``data/models``, keyed by id, in file-name order."""
    return {m.id: m for m in map(_load_catalog_file, sorted(MODELS_DIR.glob("*.json")))}


def get_model(model_id: str, extra: dict[str, ModelArch] | None = None) -> ModelArch:
    """Catalog (plus session-imported `extra`) lookup; unknown ids raise with close matches."""
    catalog = {**load_models(), **(extra or {})}
    if model_id not in catalog:
        raise UnknownIdError("model", model_id, catalog)
    return catalog[model_id]


# --------------------------------------------------------------------------------------------
# Parameter counts per tensor group
# --------------------------------------------------------------------------------------------

GROUPS = ("routed_experts", "shared_experts", "attention", "dense_mlp", "embeddings", "lm_head", "router", "norms")


@dataclass(frozen=True)
class LayerParams:
    """Parameters of one decoder layer, split the way engines place them [elements].

    ``attention_replicated`` is the part vLLM keeps whole on every tensor-parallel rank (MLA's
    q_a/kv_a down-projections: vLLM ``deepseek_v2.py`` uses ReplicatedLinear for them).
    """

    attention_sharded: int
    attention_replicated: int
    norms: int
    dense_mlp: int
    routed_per_expert: int
    n_routed: int
    shared: int
    router: int

    @property
    def routed(self) -> int:
        return self.routed_per_expert * self.n_routed


def attention_params(m: ModelArch, layer: int | None = None) -> tuple[int, int, int]:
    """(sharded, replicated-under-TP, norm) parameters of one attention block [elements]: layer `layer`'s
    (a linear-attention layer's when it is one; None: a full-attention layer)."""
    if layer is not None and m.is_linear_layer(layer):
        return linear_attention_params(m)
    h = m.hidden_size
    if m.attention == "mla":
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            q_down, q_up, q_norm = h * m.q_lora_rank, m.q_lora_rank * m.num_heads * qk, m.q_lora_rank
        else:
            q_down, q_up, q_norm = 0, h * m.num_heads * qk, 0
        kv_down = h * (m.kv_lora_rank + m.qk_rope_head_dim)
        kv_up = m.kv_lora_rank * m.num_heads * (m.qk_nope_head_dim + m.v_head_dim)
        o = m.num_heads * m.v_head_dim * h
        index, index_norm = indexer_params(m)
        return q_up + kv_up + o, q_down + kv_down + index, q_norm + m.kv_lora_rank + index_norm
    q_out, kv_out = m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim
    q_proj = h * q_out * (2 if m.gated_attention else 1)  # Qwen3-Next: query and its output gate
    sharded = q_proj + 2 * h * kv_out + q_out * h
    if m.attention_bias:
        sharded += q_out + 2 * kv_out
    if m.family == "gpt_oss":
        sharded += h + m.num_heads  # o_proj bias and the per-head attention sinks
    norms = 2 * m.head_dim if m.qk_norm else 0
    return sharded, 0, norms


def indexer_params(m: ModelArch) -> tuple[int, int]:
    """(matrix, norm) parameters of one layer's lightning indexer (DeepSeek V3.2) [elements]: wq_b
    (q_lora_rank -> heads x dim), wk (hidden -> dim), weights_proj (hidden -> heads), k_norm (LayerNorm
    weight and bias). deepseek-ai/DeepSeek-V3.2-Exp: inference/model.py, class Indexer."""
    if not m.index_topk:
        return 0, 0
    h, heads, dim = m.hidden_size, m.index_n_heads, m.index_head_dim
    return (m.q_lora_rank or h) * heads * dim + h * dim + h * heads, 2 * dim


def linear_attention_params(m: ModelArch) -> tuple[int, int, int]:
    """(sharded, replicated-under-TP, norm) parameters of one linear-attention layer [elements].

    Gated DeltaNet (transformers modeling_qwen3_next.py): in_proj_qkvz h x (2 key_dim + 2 value_dim),
    in_proj_ba h x 2 v_heads, conv1d (2 key_dim + value_dim) x kernel, dt_bias and A_log per v head,
    out_proj value_dim x h, a gated RMSNorm of head_v_dim. KDA (Kimi Linear modeling_kimi.py): q/k/v
    h x heads*dim each, a short conv of each, f and g gates as low-rank pairs (h x dim, dim x heads*dim),
    b_proj h x heads, A_log per head, dt_bias per channel, o_proj, o_norm of dim."""
    h, kernel = m.hidden_size, m.linear_conv_kernel
    key_dim = m.linear_num_key_heads * m.linear_key_head_dim
    value_dim = m.linear_num_value_heads * m.linear_value_head_dim
    if m.linear_attention == "kda":
        heads, dim = m.linear_num_value_heads, m.linear_key_head_dim
        sharded = (3 * h * value_dim + 3 * value_dim * kernel + 2 * dim * value_dim + h * heads + heads
                   + value_dim + value_dim * h)
        return sharded, 2 * h * dim, dim
    heads = m.linear_num_value_heads
    sharded = (h * (2 * key_dim + 2 * value_dim) + h * 2 * heads + (2 * key_dim + value_dim) * kernel
               + 2 * heads + value_dim * h)
    return sharded, 0, m.linear_value_head_dim


def layer_params(m: ModelArch, layer: int) -> LayerParams:
    """Parameters of decoder layer `layer` (0-based) [elements]."""
    return all_layer_params(m)[layer]


@lru_cache(maxsize=256)
def all_layer_params(m: ModelArch) -> tuple[LayerParams, ...]:
    """Every decoder layer's parameters, computed once per model [elements]."""
    return tuple(_layer_params(m, i) for i in range(m.num_layers))


def _layer_params(m: ModelArch, layer: int) -> LayerParams:
    h = m.hidden_size
    sharded, replicated, attn_norms = attention_params(m, layer)
    is_moe = m.is_moe and layer >= m.first_k_dense
    per_expert = 3 * h * m.moe_intermediate_size  # gate, up, down
    if m.expert_bias:
        per_expert += 2 * m.moe_intermediate_size + h
    router = 0
    if is_moe and m.family == "qwen3_next":  # gate weight without bias + the shared expert's gate (h -> 1)
        router = m.n_routed_experts * h + h
    elif is_moe:
        router = m.n_routed_experts * h + m.n_routed_experts  # gate weight + bias / score correction
    return LayerParams(
        attention_sharded=sharded,
        attention_replicated=replicated,
        norms=2 * h + attn_norms,
        dense_mlp=0 if is_moe else 3 * h * m.dense_intermediate_size,
        routed_per_expert=per_expert if is_moe else 0,
        n_routed=m.n_routed_experts if is_moe else 0,
        shared=m.n_shared_experts * 3 * h * (m.shared_intermediate_size or m.moe_intermediate_size) if is_moe else 0,
        router=router,
    )


@dataclass(frozen=True)
class ParamCounts:
    """Whole-model parameter counts per tensor group [elements]."""

    routed_experts: int
    shared_experts: int
    attention: int
    dense_mlp: int
    embeddings: int
    lm_head: int
    router: int
    norms: int
    active_routed: int

    @property
    def total(self) -> int:
        return sum(getattr(self, g) for g in GROUPS)

    @property
    def active(self) -> int:
        """Parameters touched per token: all but the routed experts not chosen [elements]."""
        return self.total - self.routed_experts + self.active_routed

    @property
    def active_excluding_embeddings(self) -> int:
        """Active parameters that do matrix work (the embedding lookup reads one row) [elements]."""
        return self.active - self.embeddings

    def as_dict(self) -> dict[str, int]:
        return {g: getattr(self, g) for g in GROUPS}


@lru_cache(maxsize=256)
def param_counts(m: ModelArch) -> ParamCounts:
    """Derive every tensor group's parameter count from the architecture (MTP layers excluded)."""
    layers = all_layer_params(m)
    embeddings = m.vocab_size * m.hidden_size
    active_routed = sum(lp.routed_per_expert for lp in layers) * m.experts_per_tok
    return ParamCounts(
        routed_experts=sum(lp.routed for lp in layers),
        shared_experts=sum(lp.shared for lp in layers),
        attention=sum(lp.attention_sharded + lp.attention_replicated for lp in layers),
        dense_mlp=sum(lp.dense_mlp for lp in layers),
        embeddings=embeddings,
        lm_head=0 if m.tie_embeddings else embeddings,
        router=sum(lp.router for lp in layers),
        norms=sum(lp.norms for lp in layers) + m.hidden_size,
        active_routed=active_routed,
    )


# Families whose MTP module stores its own copy of the embedding and the output head in the checkpoint
# (DeepSeek-V3 README_WEIGHTS.md: layer 61 holds embed_tokens and shared_head.head besides its decoder layer).
MTP_STORES_EMBEDDINGS = frozenset({"deepseek_v3", "deepseek_v32"})


@lru_cache(maxsize=256)
def mtp_params(m: ModelArch) -> dict[str, int]:
    """Parameters of the checkpoint's multi-token-prediction layers, per tensor group [elements].

    Each MTP layer is one full-attention decoder layer shaped like the model's last (its MoE or dense MLP)
    plus a projection of [embedding; hidden] (2h -> h: DeepSeek ``eh_proj``, Qwen3-Next ``fc``, counted with
    attention) and three norms; DeepSeek's also stores the embedding and output head again
    (:data:`MTP_STORES_EMBEDDINGS`). References: DeepSeek-V3 ``README_WEIGHTS.md`` (MTP module), transformers
    and vLLM ``deepseek_mtp.py``, ``glm4_moe_mtp.py``, ``qwen3_next_mtp.py``."""
    groups = dict.fromkeys(GROUPS, 0)
    if not m.mtp_layers:
        return groups
    h = m.hidden_size
    last = _layer_params(m, m.num_layers - 1)
    sharded, replicated, attn_norms = attention_params(m)
    copies = m.vocab_size * h if m.family in MTP_STORES_EMBEDDINGS else 0
    per_layer = {
        "routed_experts": last.routed, "shared_experts": last.shared, "dense_mlp": last.dense_mlp,
        "router": last.router, "attention": sharded + replicated + 2 * h * h, "norms": 2 * h + attn_norms + 3 * h,
        "embeddings": copies, "lm_head": copies,
    }
    return {g: m.mtp_layers * per_layer.get(g, 0) for g in GROUPS}


__all__ = [
    "ModelArch", "ParamCounts", "LayerParams", "GROUPS", "from_hf_config", "parse_config_json",
    "load_models", "get_model", "param_counts", "layer_params", "all_layer_params", "attention_params",
    "indexer_params", "linear_attention_params", "mtp_params",
]
