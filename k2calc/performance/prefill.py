"""Prefill: the time to process a prompt, and the FLOPs it takes.

About 2 x active parameters FLOP per token plus the quadratic attention term, at an achievable fraction
of the dense peak for the kernel's dtype, plus reading the weights once per chunk; hybrid ktransformers
prefills long prompts on the GPU, streaming the CPU-resident experts over PCIe layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arrays import ceil, maximum, minimum, where
from ..memory import Deployment, MemoryEstimate
from ..models import ModelArch, param_counts
from .calibration import (
    ENGINE_FAMILY,
    Platform,
    achievable_bandwidth_bytes_per_s,
    kernel_efficiency,
    platform_of,
)
from .decode import (
    HYBRID_LAYER_SYNC_S,
    _collective_s,
    _cpu_peak,
    _layer_latency,
    _matrix_params_per_token,
    _peak,
    cpu_bandwidth_bytes_per_s,
    expert_latency_factor,
    experts_touched,
    gemm_efficiency,
    linear_attention_flops_per_token,
)


def prefill_layer_latency(m: ModelArch, p: Platform) -> float:
    """Fixed time per layer and prefill chunk [s]: prefill runs outside CUDA graphs, so every kernel
    pays its launch (:data:`PREFILL_LAYER_LATENCY_S`, scaled for the experts per token as in decode);
    never less than the platform's decode figure (ROCm and Apple GPUs already launch eagerly in decode)."""
    return max(_layer_latency(m, p), PREFILL_LAYER_LATENCY_S * expert_latency_factor(m))


# Eager kernel launches of one prefill chunk per layer: 10x the 40 us a CUDA-graph decode layer takes on
# 8x H200 (K2.5 1,000-token TTFT, SGLang cookbook), as first fitted on H200, GLM-4.6 and Qwen3 on B200.
PREFILL_LAYER_LATENCY_S = 0.4e-3


# A linear-attention layer's prefill runs the chunked delta-rule kernels (FLA's Triton chunk_gated_delta_rule
# and its KDA twin: cumulative gates, the WY representation, the chunk states and outputs, a short causal
# convolution), a dozen more launches than a full-attention layer, outside CUDA graphs. Fitted on the two
# single-user TTFTs published for hybrid models: Qwen3-Next 80B-A3B on 8x B200 (SGLang cookbook, 128 ms
# for 338 tokens, 36 Gated DeltaNet layers: ~1.6 ms more per layer than predicted without it) and Kimi
# Linear on 4x MI300X (141 ms for 610 tokens, 20 KDA layers: ~3 ms more per layer); between the two.
PREFILL_LINEAR_LAYER_EXTRA_S = 1.6e-3


# Achieved PCIe bandwidth when ktransformers streams CPU-resident experts to the GPU for prefill, as a
# share of the link's theoretical per-direction figure: K2 Thinking prefill on a 4090 48 GB spends
# ~37 s moving 571 GB of experts over PCIe 4.0 x16 (32 GB/s): ~0.48.
PCIE_STREAM_EFFICIENCY = 0.48



def prefill_flops(m: ModelArch, tokens: int, prompts: int = 1) -> tuple[float, float, float]:
    """(routed-expert, other, lm_head) FLOP to prefill `prompts` prompts of `tokens` tokens in all
    [FLOP]: 2 FLOP per active matrix parameter per token plus each prompt's causal attention (MLA
    n^2 x heads x (qk + v dims), GQA n^2 x heads x 2 x head_dim per layer, sliding layers n x window, for
    n = tokens / prompts); the lm_head runs once per prompt, for its last token."""
    routed = 2 * param_counts(m).active_routed * tokens
    params = _matrix_params_per_token(m, range(m.num_layers))
    other = 2 * params * tokens - routed
    n = tokens / prompts
    if m.attention == "mla":
        other += (prompts * (m.num_layers - m.linear_layers) * causal_pairs_x2(m, n) * m.num_heads
                  * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim))
        if m.index_topk:  # the lightning indexer scores every earlier token: n^2 / 2 pairs x 2 FLOP
            other += prompts * (m.num_layers - m.linear_layers) * n ** 2 * m.index_n_heads * m.index_head_dim
    else:
        other += prompts * m.full_attention_layers * n ** 2 * m.num_heads * 2 * m.head_dim
        other += prompts * m.sliding_layers * n * minimum(n, m.sliding_window or 0) * m.num_heads * 4 * m.head_dim
    other += tokens * linear_attention_flops_per_token(m)  # linear in the prompt length
    return routed, other, 2.0 * m.vocab_size * m.hidden_size * prompts


def causal_pairs_x2(m: ModelArch, n: float) -> float:
    """Twice the (query, key) pairs causal attention scores over an `n`-token prompt [pairs]: n^2, or
    k^2 + 2 (n - k) k when each query attends to at most k = index_topk tokens (sparse attention)."""
    k = m.index_topk
    if not k:
        return n ** 2
    return where(n <= k, n ** 2, k ** 2 + 2 * (n - k) * k)  # n: a number or an array of prompt lengths


# CPU prefill of routed experts: achieved share of the kernel's peak. AMX kernels (kt-kernel AMXINT8/INT4,
# KTransformers 0.3), of the BF16 matrix peak: DeepSeek V3 186-255 tok/s on 2x Xeon 6454S and K2 Thinking
# 578 tok/s aggregate on 8x L20 + 2x 6454S, both ~0.085. llamafile/GGUF kernels (KTransformers 0.2.1), of
# the FP32 AVX-512 vector peak: DeepSeek V3 Q4_K_M 88 tok/s on 2x 6454S, ~0.43.
CPU_PREFILL_AMX = 0.085
CPU_PREFILL_GGUF = 0.43
CPU_GEMM_HALF_ROWS = 16
# Prompts shorter than this are prefilled by the CPU even where long ones stream the experts to the GPU
# (streaming every expert for a few tokens never pays); an assumption.
STREAM_MIN_TOKENS = 1024
# Request handling before the first prefill kernel (HTTP, tokenisation, scheduling) [s]; an assumption.
REQUEST_OVERHEAD_S = {"server": 0.02, "ktransformers": 0.05, "llama.cpp": 0.01, "ollama": 0.01, "mlx": 0.01}
# Ollama runs llama.cpp's GGML kernels: its prefill efficiency is llama.cpp's; what its own scheduler and
# runner cost shows in its class correction.
KERNEL_FAMILY = {"ollama": "llama.cpp"}


@dataclass(frozen=True)
class _PromptWork:
    """What a prompt touches: FLOP by kind, tokens per touched expert, weight bytes read [B]."""

    routed: float
    other: float
    lm_head: float
    expert_rows: float
    routed_share: float       # share of the routed experts' bytes the prompt touches
    routed_bytes: float       # routed-expert bytes of one model copy
    other_bytes: float        # every other weight byte


def _prompt_work(m: ModelArch, mem: MemoryEstimate, tokens: int, prompts: int = 1) -> _PromptWork:
    routed, other, lm_head = prefill_flops(m, tokens, prompts)
    groups = mem.weights_by_group_bytes
    if m.is_moe:
        touched = experts_touched(m.n_routed_experts, m.experts_per_tok, tokens)
        rows, share = tokens * m.experts_per_tok / touched, touched / m.n_routed_experts
    else:
        rows, share = tokens, 1.0
    return _PromptWork(routed, other, lm_head, rows, share, groups["routed_experts"],
                       mem.weights_bytes - groups["routed_experts"])


def prefill_time(d: Deployment, mem: MemoryEstimate, tokens: int, prompts: int = 1,
                 efficiency: float | None = None) -> tuple[float, float]:
    """(predicted, roofline) seconds to prefill `tokens` prompt tokens, `prompts` prompts together, in
    one replica [s]. `efficiency`: the GPU kernels' achieved share of peak in place of the engine
    family's calibrated figure (a large-EP pool's DeepGEMM kernels, :mod:`k2calc.fleet_ep`).

    Weights are read once per chunk, the routed experts only as far as the prompt touches them
    (E(1-(1-k/E)^N) experts per layer); each GEMM runs at its kernel's efficiency scaled by how many
    tokens its weight matrix sees."""
    m, s = d.model, d.scheme
    w = _prompt_work(m, mem, tokens, prompts)
    flops = w.routed + w.other + w.lm_head
    touched_bytes = w.other_bytes + w.routed_bytes * w.routed_share
    family = ENGINE_FAMILY[d.engine.id]
    cpu_eta = CPU_PREFILL_GGUF if s.expert_kernel == "gguf" else CPU_PREFILL_AMX
    if d.topology == "cpu":
        peak = _cpu_peak(d.cpu, d.sockets, s.expert_kernel)
        compute = (w.routed / gemm_efficiency(w.expert_rows, CPU_GEMM_HALF_ROWS)
                   + w.other / gemm_efficiency(tokens, CPU_GEMM_HALF_ROWS) + w.lm_head) / (peak * cpu_eta)
        t = maximum(compute, touched_bytes / cpu_bandwidth_bytes_per_s(d.cpu, d.sockets, d.engine.id))
        return t, maximum(flops / peak, touched_bytes / (d.cpu.memory_bandwidth_bytes_per_s * d.sockets))
    dev = d.device
    p = platform_of(dev)
    kernel = s.expert_kernel if m.is_moe else s.format_of("dense_mlp").kernel
    n_gpu = d.count if d.topology == "hybrid" else d.tp
    peak = _peak(dev, kernel) * n_gpu
    kernels = KERNEL_FAMILY.get(family, family)
    eta = efficiency or kernel_efficiency("prefill", f"{kernels}:{kernel}", p.name, fallback=kernels)
    gpu_compute = (w.other / gemm_efficiency(tokens, p.gemm_half_rows) + w.lm_head) / (peak * eta)
    expert_compute = w.routed / (peak * eta * gemm_efficiency(w.expert_rows, p.gemm_half_rows))
    latency = m.num_layers * prefill_layer_latency(m, p) + m.linear_layers * PREFILL_LINEAR_LAYER_EXTRA_S
    if d.topology == "hybrid":
        ram = mem.devices[-1]
        gpu_weights = (mem.weights_bytes - ram.weights_bytes) / (achievable_bandwidth_bytes_per_s(dev) * n_gpu)
        ram_touched = ram.weights_bytes * (w.routed_share if m.is_moe else 1.0)
        fixed = latency + m.num_layers * HYBRID_LAYER_SYNC_S
        cpu_share = ram.weights_bytes / max(1, w.routed_bytes) if m.is_moe else 0.0
        # Long prompts: the GPU computes every layer, the RAM-resident weights streamed over PCIe.
        link = (dev.link_bytes_per_s or 32e9) * n_gpu
        t = ram_touched / (link * PCIE_STREAM_EFFICIENCY) + gpu_weights + gpu_compute + expert_compute + fixed
        roof = maximum(ram_touched / link, flops / peak)
        if not m.is_moe:
            return t, roof
        # Routed experts in RAM are computed where they live, with AMX (or llamafile for GGUF).
        cpu_peak = _cpu_peak(d.cpu, d.sockets, s.expert_kernel)
        cpu_compute = w.routed * cpu_share / (cpu_peak * cpu_eta * gemm_efficiency(w.expert_rows, CPU_GEMM_HALF_ROWS))
        cpu_read = ram_touched / cpu_bandwidth_bytes_per_s(d.cpu, d.sockets, d.engine.id)
        # The CPU streams its experts from DDR5 while it computes: the slower of the two counts.
        t_cpu = gpu_compute + expert_compute * (1 - cpu_share) + maximum(cpu_compute, cpu_read) + gpu_weights + fixed
        roof_cpu = maximum(flops / (peak + cpu_peak), ram_touched / (d.cpu.memory_bandwidth_bytes_per_s * d.sockets))
        on_cpu = d.kt_prefill == "cpu" or tokens < STREAM_MIN_TOKENS
        return where(on_cpu, t_cpu, t), where(on_cpu, roof_cpu, roof)
    # Pipeline stages run one after another on a prompt; tensor-parallel ranks share each stage's work.
    # Every chunk of `chunk_tokens` reads the weights it touches once.
    bw = dev.memory_bandwidth_bytes_per_s * d.tp
    chunks = ceil(tokens / max(1, d.engine.chunk_tokens(dev.memory_bytes)))
    comm = m.num_layers * 2 * _collective_s(p, dev, tokens * m.hidden_size * 2, d.tp)
    t = gpu_compute + expert_compute + chunks * (touched_bytes / (achievable_bandwidth_bytes_per_s(dev) * d.tp) + latency) + comm
    return t, maximum(flops / peak, touched_bytes / bw)


