"""LoRA adapters: which linear layers a target group reaches and how many parameters the adapters add.

A LoRA adapter on a d_in x d_out matrix is two matrices, d_in x r and r x d_out: r (d_in + d_out)
parameters (Hu et al. 2021, "LoRA", arXiv 2106.09685, section 4.1).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import K2CalcError
from ..models import ModelArch
from .spec import TARGETS


def target_matrices(m: ModelArch, target: str) -> list[tuple[int, int, int]]:
    """Linear layers a target group adds adapters to: (d_in [1], d_out [1], how many in the model [count]).

    attention: MLA q_a, q_b (or q), kv_a (with the rope part), kv_b, o; GQA q, k, v, o.
    dense_mlp: gate, up, down of every dense layer. shared_experts: gate, up, down of the shared MLP of
    every MoE layer (Hugging Face fuses the shared experts into one MLP n_shared x moe_intermediate wide).
    experts: gate, up, down of every routed expert of every MoE layer.
    """
    h = m.hidden_size
    if target == "attention":
        return _attention_matrices(m)
    if target == "dense_mlp":
        i, n = m.dense_intermediate_size, m.dense_layers
    elif target == "shared_experts":
        i, n = m.n_shared_experts * m.moe_intermediate_size, m.moe_layers
    elif target == "experts":
        i, n = m.moe_intermediate_size, m.moe_layers * m.n_routed_experts
    else:
        raise K2CalcError(f"unknown LoRA target '{target}'; choose from {', '.join(TARGETS)}")
    return [(h, i, n), (h, i, n), (i, h, n)] if i and n else []


def _attention_matrices(m: ModelArch) -> list[tuple[int, int, int]]:
    """The attention projections of every layer: (d_in, d_out, layers)."""
    h, L = m.hidden_size, m.num_layers
    if m.attention == "mla":
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = ([(h, m.q_lora_rank, L), (m.q_lora_rank, m.num_heads * qk, L)] if m.q_lora_rank
             else [(h, m.num_heads * qk, L)])
        return q + [(h, m.kv_lora_rank + m.qk_rope_head_dim, L),
                    (m.kv_lora_rank, m.num_heads * (m.qk_nope_head_dim + m.v_head_dim), L),
                    (m.num_heads * m.v_head_dim, h, L)]
    q, kv = m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim
    return [(h, q, L), (h, kv, L), (h, kv, L), (q, h, L)]


def adapter_params(m: ModelArch, rank: int, targets: tuple[str, ...]) -> dict[str, int]:
    """LoRA parameters per target group: rank x (d_in + d_out) per matrix [elements]."""
    return {t: sum(rank * (din + dout) * n for din, dout, n in target_matrices(m, t)) for t in targets}


def active_adapter_params(m: ModelArch, by_target: Mapping[str, int]) -> float:
    """Adapter parameters one token passes through: routed-expert adapters only for its k of E experts
    [elements]."""
    total = 0.0
    for t, n in by_target.items():
        total += n * (m.experts_per_tok / m.n_routed_experts if t == "experts" and m.n_routed_experts else 1)
    return total


__all__ = ["target_matrices", "adapter_params", "active_adapter_params"]
