"""What a model stores: bytes of every tensor group, of every layer, and of the KV cache per token.

These depend on the model and the quantization scheme only, never on where the bytes are placed (that is
:mod:`k2calc.memory`) or how fast they are read (:mod:`k2calc.performance`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import K2CalcError
from .models import GROUPS, ModelArch, layer_params, param_counts
from .quant import Scheme

# Bytes per cached element by KV dtype. llama.cpp's F16 cache is 2 bytes like BF16; q8_0/q4_0 are
# GGUF blocks (34 B and 18 B per 32 elements, ggml-common.h).
KV_DTYPES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


def weights_by_group(model: ModelArch, scheme: Scheme) -> dict[str, int]:
    """Bytes of every tensor group of one full copy of the model, as stored [B]."""
    counts = param_counts(model).as_dict()
    return {g: round(counts[g] * scheme.format_of(g).bytes_per_weight) for g in GROUPS}


def kv_bytes_per_token(model: ModelArch, kv_dtype: str = "bf16") -> float:
    """KV cache of one token of one sequence, whole model, growing part [B/token].

    MLA: layers x (kv_lora_rank + qk_rope_head_dim) x bytes (Kimi K2: 61 x 576 x 2 = 70,272 B).
    GQA: full-attention layers x 2 x kv_heads x head_dim x bytes (MiniMax M2: 253,952 B).
    """
    b = kv_element_bytes(kv_dtype)
    if model.attention == "mla":
        return model.num_layers * (model.kv_lora_rank + model.qk_rope_head_dim) * b
    return (model.num_layers - model.sliding_layers) * 2 * model.num_kv_heads * model.head_dim * b


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
    if m.attention == "gqa":
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


__all__ = ["KV_DTYPES", "LayerBytes", "all_layer_bytes", "kv_bytes_per_token", "kv_element_bytes",
           "kv_window_bytes_per_token", "layer_bytes", "layer_totals", "pipeline_stages", "weights_by_group"]
