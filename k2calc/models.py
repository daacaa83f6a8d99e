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

Family = Literal["deepseek_v3", "minimax_m2", "qwen3_moe", "gpt_oss", "glm4_moe", "dense"]

# architectures[0] in config.json -> family. Kimi K2 ships as DeepseekV3ForCausalLM (model_type kimi_k2).
ARCHITECTURES: dict[str, Family] = {
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "DeepseekV2ForCausalLM": "deepseek_v3",
    "KimiK2ForCausalLM": "deepseek_v3",
    "MiniMaxM2ForCausalLM": "minimax_m2",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "GptOssForCausalLM": "gpt_oss",
    "Glm4MoeForCausalLM": "glm4_moe",
    "LlamaForCausalLM": "dense",
    "MistralForCausalLM": "dense",
    "Qwen2ForCausalLM": "dense",
    "Qwen3ForCausalLM": "dense",
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
    mtp_layers: int = Field(0, ge=0, le=MAX_MTP_LAYERS, description="multi-token-prediction layers, not loaded for plain serving")
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
    n_shared_experts: StrictInt | None = _int(0, MAX_SHARED_EXPERTS)
    first_k_dense_replace: StrictInt | None = _int(0, MAX_LAYERS)
    mlp_only_layers: list[StrictInt] | None = Field(None, max_length=MAX_LAYERS)
    # sliding-window attention
    layer_types: list[StrictStr] | None = Field(None, max_length=MAX_LAYERS)
    sliding_window: StrictInt | None = _int(1, MAX_CONTEXT)
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
    """ModelArch's attention fields: MLA (DeepSeek V3 / Kimi K2) or GQA with its head width."""
    req = lambda *n: _require(c, *n)  # noqa: E731
    fields: dict[str, Any] = {}
    if family == "deepseek_v3":
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

    return fields


def _mlp_fields(c: HFConfig, family: Family, layers: int) -> dict[str, Any]:
    """ModelArch's MLP and expert fields, read from each family's own config keys."""
    req = lambda *n: _require(c, *n)  # noqa: E731
    fields: dict[str, Any] = {}
    if family == "dense":
        fields.update(dense_intermediate_size=req("intermediate_size"), first_k_dense=layers)
    elif family in ("deepseek_v3", "glm4_moe"):
        fields.update(
            n_routed_experts=req("n_routed_experts"), experts_per_tok=req("num_experts_per_tok"),
            n_shared_experts=c.n_shared_experts or 0,
            moe_intermediate_size=req("moe_intermediate_size"),
            dense_intermediate_size=req("intermediate_size"),
            first_k_dense=c.first_k_dense_replace or 0,
        )
    elif family == "qwen3_moe":
        fields.update(
            n_routed_experts=req("num_experts"), experts_per_tok=req("num_experts_per_tok"),
            moe_intermediate_size=req("moe_intermediate_size"),
            dense_intermediate_size=c.intermediate_size or 0,
            first_k_dense=len(c.mlp_only_layers or []),
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
    try:
        c = HFConfig.model_validate(config)
    except ValidationError as exc:
        raise _config_error(exc, HFConfig) from None
    arch = c.architectures[0] if c.architectures else ""
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
        max_context_tokens=req("max_position_embeddings"),
        tie_embeddings=bool(c.tie_word_embeddings),
        mtp_layers=c.num_nextn_predict_layers or 0,
        attention_bias=c.attention_bias if c.attention_bias is not None else family == "gpt_oss",
        qk_norm=c.use_qk_norm if c.use_qk_norm is not None else family in ("qwen3_moe",),
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


def attention_params(m: ModelArch) -> tuple[int, int, int]:
    """(sharded, replicated-under-TP, norm) parameters of one attention block [elements]."""
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
        return q_up + kv_up + o, q_down + kv_down, q_norm + m.kv_lora_rank
    q_out, kv_out = m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim
    sharded = h * q_out + 2 * h * kv_out + q_out * h
    if m.attention_bias:
        sharded += q_out + 2 * kv_out
    if m.family == "gpt_oss":
        sharded += h + m.num_heads  # o_proj bias and the per-head attention sinks
    norms = 2 * m.head_dim if m.qk_norm else 0
    return sharded, 0, norms


def layer_params(m: ModelArch, layer: int) -> LayerParams:
    """Parameters of decoder layer `layer` (0-based) [elements]."""
    return all_layer_params(m)[layer]


@lru_cache(maxsize=256)
def all_layer_params(m: ModelArch) -> tuple[LayerParams, ...]:
    """Every decoder layer's parameters, computed once per model [elements]."""
    return tuple(_layer_params(m, i) for i in range(m.num_layers))


def _layer_params(m: ModelArch, layer: int) -> LayerParams:
    h = m.hidden_size
    sharded, replicated, attn_norms = attention_params(m)
    is_moe = m.is_moe and layer >= m.first_k_dense
    per_expert = 3 * h * m.moe_intermediate_size  # gate, up, down
    if m.expert_bias:
        per_expert += 2 * m.moe_intermediate_size + h
    router = 0
    if is_moe:
        router = m.n_routed_experts * h + m.n_routed_experts  # gate weight + bias / score correction
    return LayerParams(
        attention_sharded=sharded,
        attention_replicated=replicated,
        norms=2 * h + attn_norms,
        dense_mlp=0 if is_moe else 3 * h * m.dense_intermediate_size,
        routed_per_expert=per_expert if is_moe else 0,
        n_routed=m.n_routed_experts if is_moe else 0,
        shared=m.n_shared_experts * 3 * h * m.moe_intermediate_size if is_moe else 0,
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


__all__ = [
    "ModelArch", "ParamCounts", "LayerParams", "GROUPS", "from_hf_config", "parse_config_json",
    "load_models", "get_model", "param_counts", "layer_params", "all_layer_params", "attention_params",
]
