"""What a model stores: bytes of every tensor group, of every layer, and of the KV cache per token.

These depend on the model and the quantization scheme only, never on where the bytes are placed (that is
:mod:`k2calc.memory`) or how fast they are read (:mod:`k2calc.performance`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import K2CalcError
from .models import GROUPS, ModelArch, layer_params, mtp_params, param_counts
from .quant import Scheme

# Bytes per cached element by KV dtype. llama.cpp's F16 cache is 2 bytes like BF16; q8_0/q4_0 are
# GGUF blocks (34 B and 18 B per 32 elements, ggml-common.h).
KV_DTYPES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


def weights_by_group(model: ModelArch, scheme: Scheme) -> dict[str, int]:
    """Bytes of every tensor group of one full copy of the model as loaded [B] (the MTP layers only when
    ``model.load_mtp``: engines load them for speculative decoding)."""
    counts = param_counts(model).as_dict()
    mtp = mtp_params(model) if model.load_mtp else dict.fromkeys(GROUPS, 0)
    return {g: round((counts[g] + mtp[g]) * scheme.format_of(g).bytes_per_weight) for g in GROUPS}


# DeepSeek V3.2's lightning indexer caches each token's key in FP8 with one FP32 scale per 128 elements,
# whatever the KV cache dtype: deepseek-ai/DeepSeek-V3.2-Exp inference/model.py (commit 6d8cb70), class
# Indexer: k_cache float8_e4m3fn [.., index_head_dim], k_scale_cache float32 [.., index_head_dim // 128].
INDEXER_KEY_BYTES = 1.0
INDEXER_SCALE_BYTES = 4.0
INDEXER_SCALE_BLOCK = 128


def kv_bytes_per_token(model: ModelArch, kv_dtype: str = "bf16") -> float:
    """KV cache of one token of one sequence, whole model, growing part [B/token].

    MLA: full-attention layers x (kv_lora_rank + qk_rope_head_dim) x bytes (Kimi K2: 61 x 576 x 2 =
    70,272 B), plus the lightning indexer's key where sparse attention has one (DeepSeek V3.2: 61 x (128 + 4)).
    GQA: full-attention layers x 2 x kv_heads x head_dim x bytes (MiniMax M2: 253,952 B).
    Linear-attention layers keep no KV cache (:func:`linear_state_bytes_per_sequence`).
    """
    b = kv_element_bytes(kv_dtype)
    layers = model.num_layers - model.linear_layers
    if model.attention == "mla":
        return layers * ((model.kv_lora_rank + model.qk_rope_head_dim) * b + indexer_bytes_per_token_layer(model))
    return (layers - model.sliding_layers) * 2 * model.num_kv_heads * model.head_dim * b


def indexer_bytes_per_token_layer(model: ModelArch) -> float:
    """The lightning indexer's cache of one token in one layer [B/token]: FP8 key + FP32 scales
    (DeepSeek V3.2: 128 + 4 = 132 B); 0 without sparse attention."""
    if not model.index_topk:
        return 0.0
    return model.index_head_dim * INDEXER_KEY_BYTES + model.index_head_dim / INDEXER_SCALE_BLOCK * INDEXER_SCALE_BYTES


def kv_read_share(model: ModelArch, seq_len: float, kv_dtype: str = "bf16") -> float:
    """Share of a sequence's stored KV cache that one decode step reads at `seq_len` cached tokens [1].

    1 for dense attention. DeepSeek sparse attention reads the indexer's keys of every token but the MLA
    latent of at most ``index_topk`` of them: (latent x min(L, k) + indexer x L) / ((latent + indexer) x L).
    Plain arithmetic of scalars (vectorizable with numpy).
    """
    if not model.index_topk or seq_len <= model.index_topk:
        return 1.0
    index = indexer_bytes_per_token_layer(model)
    latent = (model.kv_lora_rank + model.qk_rope_head_dim) * kv_element_bytes(kv_dtype)
    return (latent * model.index_topk / seq_len + index) / (latent + index)


def attended_tokens(model: ModelArch, seq_len: float) -> float:
    """Tokens a full-attention layer's query attends to at `seq_len` cached tokens [tokens]:
    all of them, or ``index_topk`` under DeepSeek sparse attention."""
    return min(seq_len, model.index_topk) if model.index_topk else seq_len


# SGLang keeps the linear layers' recurrent state in FP32 by default (--mamba-ssm-dtype: "The default
# setting is float32", sgl-project/sgl-cookbook docs/autoregressive/Qwen/Qwen3-Next.md, commit 49951ae);
# vLLM keeps it in the model dtype unless the config's mamba_ssm_dtype says otherwise (mamba_utils.py).
FP32_STATE_ENGINES = frozenset({"sglang"})


def linear_state_bytes_per_sequence(model: ModelArch, engine_id: str | None = None) -> float:
    """Fixed-size state of one sequence in the linear-attention layers, whole model [B/sequence], as
    `engine_id` stores it (None: as the config says, vLLM's way).

    Per layer: the recurrent state, value heads x head_k_dim x head_v_dim in the state dtype, plus the
    short-convolution state, (conv channels) x (kernel - 1) in BF16. Gated DeltaNet convolves q, k and v
    fused: 2 key_dim + value_dim channels (Qwen3-Next: 32 x 128 x 128 x 2 + 8,192 x 3 x 2 = 1,097,728 B
    per layer, 36 layers); KDA convolves q, k and v apart: 3 x heads x dim channels with an FP32 state
    (Kimi Linear: 32 x 128 x 128 x 4 + 12,288 x 3 x 2 = 2,170,880 B per layer, 20 layers).
    References: vLLM mamba_utils.py (MambaStateShapeCalculator, MambaStateDtypeCalculator).
    """
    if not model.linear_layers:
        return 0.0
    state = model.linear_num_value_heads * model.linear_key_head_dim * model.linear_value_head_dim
    fp32 = model.linear_state_dtype == "fp32" or engine_id in FP32_STATE_ENGINES
    state_b = 4.0 if fp32 else 2.0
    key_dim = model.linear_num_key_heads * model.linear_key_head_dim
    value_dim = model.linear_num_value_heads * model.linear_value_head_dim
    channels = 3 * value_dim if model.linear_attention == "kda" else 2 * key_dim + value_dim
    conv = channels * (model.linear_conv_kernel - 1) * KV_DTYPES["bf16"]
    return model.linear_layers * (state * state_b + conv)


def mtp_bytes(model: ModelArch, scheme: Scheme) -> int:
    """Bytes of the checkpoint's multi-token-prediction layers under `scheme` [B] (0 without them).

    Counted in the stored checkpoint; held in memory only when the engine loads them for speculative
    decoding (``ModelArch.load_mtp``; then :func:`weights_by_group` counts them)."""
    params = mtp_params(model)
    return round(sum(params[g] * scheme.format_of(g).bytes_per_weight for g in GROUPS))


def checkpoint_bytes(model: ModelArch, scheme: Scheme) -> int:
    """Bytes of the checkpoint as stored: every tensor group plus the MTP layers [B]."""
    counts, mtp = param_counts(model).as_dict(), mtp_params(model)
    return sum(round((counts[g] + mtp[g]) * scheme.format_of(g).bytes_per_weight) for g in GROUPS)


def kv_window_bytes_per_token(model: ModelArch, kv_dtype: str = "bf16") -> float:
    """KV of the sliding-window layers per token, held for at most `sliding_window` tokens [B/token]."""
    b = kv_element_bytes(kv_dtype)
    return model.sliding_layers * 2 * model.num_kv_heads * model.head_dim * b


def kv_element_bytes(kv_dtype: str) -> float:
    """Bytes of one cached element in `kv_dtype` [B]."""
    if kv_dtype not in KV_DTYPES:
        raise K2CalcError(f"unknown KV cache dtype '{kv_dtype}'; choose one of {', '.join(KV_DTYPES)}")
    return KV_DTYPES[kv_dtype]


@dataclass(frozen=True)
class LayerBytes:
    """One layer's bytes split by how tensor parallelism treats them [B]."""

    attn_heads: float      # sharded by attention TP (q, o, MLA up-projections)
    attn_kv: float         # GQA k/v projections: sharded by min(TP, kv_heads)
    attn_down: float       # MLA q_a/kv_a down-projections: replicated by vLLM/SGLang under TP
    norms: float
    router: float
    dense: float
    shared: float
    routed_per_expert: float
    n_routed: int

    @property
    def total(self) -> float:
        return self.with_experts(self.n_routed)

    @property
    def non_routed(self) -> float:
        """Every byte but the routed experts' [B]."""
        return self.attn_heads + self.attn_kv + self.attn_down + self.norms + self.router + self.dense + self.shared

    def with_experts(self, experts: float) -> float:
        """The layer with `experts` of its routed experts (held, or read in a step) [B]."""
        return self.non_routed + self.routed_per_expert * min(experts, self.n_routed)


def layer_bytes(m: ModelArch, s: Scheme, i: int) -> LayerBytes:
    """Bytes of layer `i` under scheme `s` (cached per model and scheme)."""
    return all_layer_bytes(m, s)[i]


@lru_cache(maxsize=256)
def all_layer_bytes(m: ModelArch, s: Scheme) -> tuple[LayerBytes, ...]:
    return tuple(_compute_layer_bytes(m, s, i) for i in range(m.num_layers))


@lru_cache(maxsize=256)
def layer_totals(m: ModelArch, s: Scheme) -> tuple[float, ...]:
    """Every layer's whole bytes (``LayerBytes.total``) under scheme `s` [B], computed once (a dense
    model on a hybrid box is re-placed at every trial load of a limit search)."""
    return tuple(lb.total for lb in all_layer_bytes(m, s))


def _compute_layer_bytes(m: ModelArch, s: Scheme, i: int) -> LayerBytes:
    lp = layer_params(m, i)
    bpw = lambda g: s.format_of(g).bytes_per_weight  # noqa: E731
    kv = 0
    if m.attention == "gqa" and not m.is_linear_layer(i):
        kv = 2 * m.hidden_size * m.num_kv_heads * m.head_dim + (2 * m.num_kv_heads * m.head_dim if m.attention_bias else 0)
    return LayerBytes(
        attn_heads=(lp.attention_sharded - kv) * bpw("attention"), attn_kv=kv * bpw("attention"),
        attn_down=lp.attention_replicated * bpw("attention"), norms=lp.norms * bpw("norms"),
        router=lp.router * bpw("router"), dense=lp.dense_mlp * bpw("dense_mlp"),
        shared=lp.shared * bpw("shared_experts"), routed_per_expert=lp.routed_per_expert * bpw("routed_experts"),
        n_routed=lp.n_routed,
    )


def pipeline_stages(num_layers: int, pp: int) -> list[range]:
    """Contiguous layer ranges of `pp` pipeline stages, as even as possible (extra layers go last)."""
    base, extra = divmod(num_layers, pp)
    sizes = [base + (1 if s >= pp - extra else 0) for s in range(pp)]
    starts = [sum(sizes[:s]) for s in range(pp)]
    return [range(starts[s], starts[s] + sizes[s]) for s in range(pp)]


__all__ = ["KV_DTYPES", "LayerBytes", "all_layer_bytes", "attended_tokens", "checkpoint_bytes",
           "indexer_bytes_per_token_layer", "kv_bytes_per_token", "kv_element_bytes", "kv_read_share",
           "linear_state_bytes_per_sequence", "mtp_bytes",
           "kv_window_bytes_per_token", "layer_bytes", "layer_totals", "pipeline_stages", "weights_by_group"]
