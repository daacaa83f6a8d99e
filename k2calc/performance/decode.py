"""Decode: the time of one step that gives each of B sequences one more token.

Every device reads its share of the weights touched this step (active weights once for the whole batch;
for MoE layers the expected distinct experts E(1-(1-k/E)^B)) and each sequence's KV cache, and does 2
FLOP per active parameter per token plus attention's dot products. Step time per pipeline stage =
per-layer fixed latency (kernel launches, small kernels) + bytes / achievable bandwidth + FLOPs /
achievable compute + communication (two tensor-parallel all-reduces per layer, expert-parallel
all-to-all, pipeline hops); plus a fixed per-step engine overhead (scheduling, sampling).

Hybrid CPU+GPU (ktransformers, llama.cpp with experts on the CPU): per layer the GPU part (attention,
shared experts, dense layers, GPU-resident experts) and the CPU part (routed experts read from DDR5 at
the sockets' achievable bandwidth) run side by side; the slower side sets the pace.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..arrays import ceil, is_array, maximum, minimum, where
from ..hardware import Hardware
from ..memory import Deployment, MemoryEstimate, stage_rank_bytes
from ..models import ModelArch, all_layer_params, layer_params
from ..weights import attended_tokens, kv_read_share, layer_bytes, pipeline_stages
from .calibration import (
    KERNEL_PEAK_DTYPE,
    Platform,
    achievable_bandwidth_bytes_per_s,
    decode_kernel_evidence,
    platform_of,
)

# CPU side (hybrid and CPU-only): the share of one socket's STREAM bandwidth (data/bandwidth.csv) that
# the expert kernels reach in decode (kt-kernel / llama.cpp at batch 1), and what each further socket
# adds. ktransformers places experts per NUMA node; DeepSeek V3 Q4_K_M: EPYC 9654 one socket 14 tok/s,
# 2x Xeon 6454S 13.5 tok/s, MiniMax M2.1 on 2x 8488C 21.8 tok/s. llama.cpp without NUMA-aware placement
# gains nothing from a second socket: llamafile issue 765 (both sockets 4 tok/s, one socket 8), llama.cpp
# issue 11744 (dual EPYC 9175F 2.4 tok/s, 4.3 only with page placement).
CPU_DECODE_STREAM_SHARE = 0.58  # tools/fit_calibration.py on the ktransformers and llama.cpp CPU decode rows
CPU_EXTRA_SOCKET_GAIN = {"ktransformers": 0.35}
# Per-layer hand-off between GPU and CPU in hybrid decode (launch, PCIe round trip, synchronisation).
HYBRID_LAYER_SYNC_S = 60e-6
CPU_DECODE_COMPUTE = 0.15  # share of AMX / AVX-512 peak in CPU expert kernels at small batch


def decode_compute_efficiency(kernel: str, p: Platform) -> float:
    """Achieved share of the kernel dtype's peak in decode GEMMs on platform `p` with full tiles [1]
    (see :func:`~k2calc.performance.calibration.decode_kernel_evidence`)."""
    return decode_kernel_evidence(kernel, p.name)[0]


@dataclass
class StepCost:
    """Time of one decode step and where it goes [s]; bytes [B] and FLOP per device on the critical path."""

    fixed_s: float = 0.0
    weights_s: float = 0.0
    kv_s: float = 0.0
    compute_s: float = 0.0
    attention_s: float = 0.0   # KV reads slowed below the bandwidth by the attention kernel (MLA, few heads)
    communication_s: float = 0.0
    cpu_s: float = 0.0
    overlap_s: float = 0.0     # <= 0: memory traffic and compute of the same kernels run together
    roofline_s: float = 0.0
    roofline_memory_s: float = 0.0   # the step's bytes at peak bandwidth (GPU servers, unified memory) [s]
    roofline_compute_s: float = 0.0  # the step's FLOPs at peak arithmetic (same) [s]
    bytes_read: float = 0.0
    flops: float = 0.0

    @property
    def total_s(self) -> float:
        return (self.fixed_s + self.weights_s + self.kv_s + self.attention_s + self.compute_s
                + self.communication_s + self.cpu_s + self.overlap_s)

    def bottleneck(self) -> str:
        """The largest part of the step. Kernel time above the bytes' time is 'compute' only when the
        arithmetic itself is the limit: the step's FLOPs at the best share of peak a decode GEMM reaches
        (DECODE_GEMM_EFFICIENCY) take longer than its bytes at peak bandwidth. Below that ridge the time
        goes to kernels running far from their best at this batch (INT4 experts dequantised per token,
        mostly empty tensor-core tiles): 'kernel-efficiency'. Kimi K2 Thinking on 8x H200 at 2 users:
        0.03 ms of FLOPs at peak against 1.8 ms of bytes, so its 5 ms of expert kernels are not compute."""
        parts = {"gpu-memory-bandwidth": self.weights_s + self.kv_s, "compute": self.compute_s,
                 "attention-kernel": self.attention_s,
                 "interconnect": self.communication_s, "kernel-latency": self.fixed_s, "cpu-memory-bandwidth": self.cpu_s}
        largest = max(parts, key=parts.get)
        if largest == "compute" and self.roofline_compute_s / DECODE_GEMM_EFFICIENCY < self.roofline_memory_s:
            return "kernel-efficiency"
        return largest


def experts_touched(n_experts: int, top_k: int, batch: float) -> float:
    """Expected distinct experts a MoE layer reads for `batch` tokens: E(1 - (1 - k/E)^B) [count]."""
    if n_experts == 0:
        return 0.0
    return n_experts * (1.0 - (1.0 - top_k / n_experts) ** batch)


def _attention_flops_per_token(m: ModelArch, seq_len: float) -> float:
    """Attention dot products for one decoded token over `seq_len` cached tokens, whole model [FLOP].

    Per full-attention layer, MLA (weights absorbed): 2 x heads x L x (kv_lora + rope) for scores + 2 x
    heads x L x kv_lora for values, over L = min(seq_len, index_topk) under DeepSeek sparse attention,
    whose indexer scores every cached token (2 x index heads x index dim x seq_len); GQA: 4 x heads x
    head_dim x L, sliding layers over at most the window. Linear-attention layers cost the same at any
    context (:func:`linear_attention_flops_per_token`)."""
    if m.attention == "mla":
        per_layer = 2 * m.num_heads * attended_tokens(m, seq_len) * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
        per_layer += 2 * m.index_n_heads * m.index_head_dim * seq_len if m.index_topk else 0
        return (m.num_layers - m.linear_layers) * per_layer + linear_attention_flops_per_token(m)
    full = m.full_attention_layers * 4 * m.num_heads * m.head_dim * seq_len
    window = min(seq_len, m.sliding_window or 0)
    return full + m.sliding_layers * 4 * m.num_heads * m.head_dim * window + linear_attention_flops_per_token(m)


# FLOP per element of a linear-attention layer's recurrent state per token: the decay, the delta rule's
# prediction S k and rank-1 update, and the read-out q S (about 2 FLOP each per element); an estimate
# from the gated delta rule (Yang et al., arXiv 2412.06464) that KDA shares.
LINEAR_FLOPS_PER_STATE_ELEMENT = 7


def linear_attention_flops_per_token(m: ModelArch) -> float:
    """Recurrent-state arithmetic of one token through every linear-attention layer [FLOP]: the same at
    any context length (no cache to attend over)."""
    state = m.linear_num_value_heads * m.linear_key_head_dim * m.linear_value_head_dim
    return m.linear_layers * LINEAR_FLOPS_PER_STATE_ELEMENT * state


# A decode step reads each sequence's linear-attention state and writes it back.
LINEAR_STATE_TRAFFIC = 2


def sequence_read_bytes(d: Deployment, rank, seq_len: float, with_window: bool = True) -> float:
    """Bytes one sequence's attention reads (and its linear state writes back) on device `rank` in one
    decode step [B]: the stored KV cache (under sparse attention only the share it reads), the
    sliding-window part up to the window (`with_window`; the hybrid and CPU steps leave it out), and the
    linear layers' state read and written."""
    m = d.model
    window = min(seq_len, m.sliding_window or 0) if with_window else 0
    return (rank.kv_bytes_per_token * seq_len * kv_read_share(m, seq_len, d.kv_dtype)
            + rank.kv_window_bytes_per_token * window + LINEAR_STATE_TRAFFIC * rank.state_bytes_per_sequence)


@lru_cache(maxsize=256)
def _cumulative_params(m: ModelArch) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Prefix sums over layers of (non-routed matrix parameters, parameters of one routed expert x k)."""
    other, routed = [0.0], [0.0]
    for lp in all_layer_params(m):
        other.append(other[-1] + lp.attention_sharded + lp.attention_replicated + lp.dense_mlp + lp.shared + lp.router)
        routed.append(routed[-1] + lp.routed_per_expert * min(m.experts_per_tok, lp.n_routed))
    return tuple(other), tuple(routed)


def _matrix_params_per_token(m: ModelArch, layers: range) -> float:
    """Parameters a token multiplies through in the contiguous `layers` (k routed experts each) [elements]."""
    other, routed = _cumulative_params(m)
    return other[layers.stop] - other[layers.start] + routed[layers.stop] - routed[layers.start]


def _routed_params_per_token(m: ModelArch, layers: range) -> float:
    """Routed-expert parameters a token multiplies through in `layers` (its k experts) [elements]."""
    _, routed = _cumulative_params(m)
    return routed[layers.stop] - routed[layers.start]


@dataclass(frozen=True)
class DecodeFlops:
    """FLOP of one decode step, split by the kernel that does them [FLOP]."""

    routed: float      # routed-expert GEMMs (the scheme's expert kernel)
    other: float       # every other weight matrix (attention projections, shared experts, dense MLP)
    attention: float   # attention over the KV cache (FlashAttention/FlashMLA-class kernels)

    @property
    def total(self) -> float:
        return self.routed + self.other + self.attention

    def scaled(self, factor: float) -> "DecodeFlops":
        return DecodeFlops(self.routed * factor, self.other * factor, self.attention * factor)


def decode_flops(m: ModelArch, layers: range, batch: float, seq_len: float) -> DecodeFlops:
    """FLOP of one decode step of `batch` tokens through `layers` (whole model's share) [FLOP]."""
    routed = _routed_params_per_token(m, layers)
    matrix = _matrix_params_per_token(m, layers)
    share = len(layers) / m.num_layers
    return DecodeFlops(2 * batch * routed, 2 * batch * (matrix - routed),
                       batch * _attention_flops_per_token(m, seq_len) * share)


def gemm_efficiency(rows: float, half_rows: float = 32.0) -> float:
    """Share of a GEMM kernel's best efficiency reached when a weight matrix sees `rows` tokens [1]:
    rows / (rows + half_rows). The default 32 rows for tensor-core GPUs is an assumption checked
    against K2.5's 1,000-token TTFT on 8x H200."""
    return rows / (rows + half_rows)


# Attention kernels over the KV cache reach a good share of the BF16 peak even at small batch (they
# stream the cache); an assumption.
ATTENTION_EFFICIENCY = 0.3


# Dense GEMMs of a decode step (attention projections, dense and shared MLPs): the best share of the
# peak a GEMM reaches, scaled by tile occupancy for the batch's rows (gemm_efficiency). Fitted on
# Llama 3.1 70B BF16 on 8x A100 at 16-100 users and Llama 3.1 8B FP8 on DGX Spark at 32 users.
DECODE_GEMM_EFFICIENCY = 0.3
DECODE_GEMM_HALF_ROWS = 64


def _compute_s(f: DecodeFlops, device: Hardware, p: Platform, scheme, is_moe: bool, devices: int = 1,
               batch: float = 1, expert_rows: float = 1, gemv: bool = False,
               grouped: bool = False) -> tuple[float, float]:
    """(weight GEMMs, attention) time for `f` on `devices` devices of a platform [s]: dense GEMMs at a
    tile-occupancy dependent efficiency for `batch` rows; routed experts likewise for the `expert_rows`
    tokens each touched expert sees (batch x k / experts touched), at the MoE kernel's calibrated share
    of the peak with full tiles; attention at its kernel's. `gemv`: the engine multiplies a few tokens
    with matrix-vector kernels that waste no tile (llama.cpp's MMVQ up to 8 tokens). `grouped`: whole
    experts per GPU (expert parallelism), multiplied as grouped GEMMs over the tokens each receives, so
    even row-bound kernels gain with the rows."""
    expert_kernel = scheme.expert_kernel
    other_kernel = scheme.format_of("attention").kernel
    half = DECODE_GEMM_HALF_ROWS if p.gemm_half_rows >= 8 and not gemv else min(p.gemm_half_rows, GEMV_HALF_ROWS)
    gemm = DECODE_GEMM_EFFICIENCY * gemm_efficiency(batch, half)
    t = f.other / (_peak(device, other_kernel) * devices * gemm)
    if is_moe:
        rows = 1.0 if expert_kernel in ROW_BOUND_MOE_KERNELS and not grouped else expert_rows
        moe = decode_compute_efficiency(expert_kernel, p) * gemm_efficiency(rows, half)
        t += f.routed / (_peak(device, expert_kernel) * devices * moe)
    return t, f.attention / (_peak(device, "bf16") * devices * ATTENTION_EFFICIENCY)


# llama.cpp (and Ollama) multiply up to 8 tokens with matrix-vector kernels (ggml-cuda mmvq.cu,
# MMVQ_MAX_BATCH_SIZE = 8) instead of tensor-core tiles: no 64-row tile is wasted at batch 1, which
# made an RTX 3090 look compute-bound on an 8B model. Half efficiency at 2 tokens, as Apple's 8x8 tiles.
GEMV_HALF_ROWS = 2.0
GEMV_ENGINES = frozenset({"llama.cpp", "ollama"})


# INT4 W4A16 MoE decode (Marlin-class kernels dequantising each expert for every token) does not gain
# from more tokens per expert: Kimi K2.5 on 8x H200 (SGLang cookbook, k25-h200x8 rows) stays near
# 255 tok/s in total from 16 to 100 users. Measured with tensor-parallel expert slices; with expert
# parallelism (whole experts per GPU) the experts run as grouped GEMMs over the tokens each receives.
ROW_BOUND_MOE_KERNELS = frozenset({"w4a16"})


# A kernel streams its operands while its arithmetic units work on what has arrived: its time is about
# the larger of its memory time and its compute time (the roofline), with a smooth knee where the two
# are equal (2^(1/p) = 1.19 x either at p = 4; an assumption). Memory and compute of different kernels
# (weight GEMMs, attention) do not overlap: their times add.
OVERLAP_POWER = 4.0


def overlapped(memory_s: float, compute_s: float) -> float:
    """Time of a kernel that moves `memory_s` worth of bytes and does `compute_s` worth of FLOPs [s]:
    (m^p + c^p)^(1/p), between max(m, c) and m + c.

    >>> round(overlapped(1.0, 0.0), 6), round(overlapped(1.0, 1.0), 3), round(overlapped(1.0, 0.1), 4)
    (1.0, 1.189, 1.0)
    """
    if is_array(memory_s, compute_s):
        big = np.maximum(memory_s, compute_s)
        safe = np.where(big > 0, big, 1.0)
        both = big * ((memory_s / safe) ** OVERLAP_POWER + (compute_s / safe) ** OVERLAP_POWER) ** (1 / OVERLAP_POWER)
        return np.where((memory_s <= 0) | (compute_s <= 0), memory_s + compute_s, both)
    if memory_s <= 0 or compute_s <= 0:
        return memory_s + compute_s
    big = max(memory_s, compute_s)
    return big * ((memory_s / big) ** OVERLAP_POWER + (compute_s / big) ** OVERLAP_POWER) ** (1 / OVERLAP_POWER)


def _peak(device: Hardware, kernel: str) -> float:
    """Dense peak of `device` for the dtype `kernel` computes in [FLOP/s] (BF16 when unknown)."""
    return device.peak_flops_per_s(KERNEL_PEAK_DTYPE.get(kernel, "bf16")) or device.peak_flops_per_s("bf16") or 1e12


def _collective_s(p: Platform, device: Hardware, message_bytes: float, ranks: int) -> float:
    """One ring all-reduce of `message_bytes` over `ranks` devices [s]."""
    if ranks <= 1:
        return 0.0
    link = device.link_bytes_per_s or 25e9
    return p.collective_latency_s + 2 * (ranks - 1) / ranks * message_bytes / link


# Between servers: 400 Gb/s InfiniBand or RoCE per GPU (50 GB/s line rate; NDR reaches 46-48 GB/s per
# NIC in nccl-tests, NVIDIA/nccl-tests issue 290, maintainer 2025-03-03) and a small all-reduce's latency:
# 19-20 us for 8-128 B between two A100 nodes over HDR (nccl-tests issue 150, 2023-06-29).
INTERNODE_BYTES_PER_S = 50e9
INTERNODE_LATENCY_S = 20e-6


def _hop(d: Deployment, p: Platform, dev: Hardware) -> tuple[float, float]:
    """(latency [s], bandwidth [B/s]) of a pipeline hop: the scale-up link within a node, the
    cluster network between nodes."""
    if d.nodes > 1 and d.topology == "gpu":
        return INTERNODE_LATENCY_S, INTERNODE_BYTES_PER_S
    return p.collective_latency_s, dev.link_bytes_per_s or 25e9


def _step_communication_s(d: Deployment, p: Platform, layers: range, batch: int) -> float:
    """Collectives of one decode step in `layers` [s]: two tensor-parallel all-reduces per layer (after
    attention and after the MLP); with expert parallelism the MoE layers' all-reduce becomes an
    all-to-all dispatch and combine of each token's hidden state to its k experts' ranks. A TP group
    wider than a node pays the cluster network."""
    m, dev = d.model, d.device
    message = batch * m.hidden_size * 2
    spans_nodes = d.topology == "gpu" and d.nodes > 1 and d.tp > d.count // d.nodes
    if spans_nodes:
        p = p.model_copy(update={"collective_latency_s": INTERNODE_LATENCY_S})
    link = INTERNODE_BYTES_PER_S if spans_nodes else (dev.link_bytes_per_s or 25e9)
    allreduce = 0.0 if d.tp <= 1 else p.collective_latency_s + 2 * (d.tp - 1) / d.tp * message / link
    expert_parallel = sum(1 for i in layers if layer_params(m, i).n_routed > 0) if d.ep > 1 else 0
    total = (len(layers) - expert_parallel) * 2 * allreduce
    if expert_parallel:
        dispatch = p.collective_latency_s + message * m.experts_per_tok * (d.ep - 1) / d.ep / link
        total = total + expert_parallel * (allreduce + 2 * dispatch)
    return total


# SGLang's MLA decode attention on Hopper reads the latent cache far below the HBM bandwidth when
# few query heads and sequences share a GPU (K2.5 on 8x H200 at TP8, 8 heads per GPU: decode slows from
# 108 tok/s at ~0.8K tokens of context to 40 tok/s at ~4.3K, about 15.6 GB/s of cache per GPU at one
# sequence and 45 GB/s at 16). The achieved rate grows with the parallel work (sequences x heads per GPU)
# to the power 0.4: rate = MLA_SMALL_WORK_BYTES_PER_S x work^0.4, capped at the bandwidth. Long caches
# are split across more thread blocks (split-KV), so each MLA_SPLIT_TOKENS of context count as one more
# unit of work (an assumption: the published rows reach 4.3K tokens). Blackwell's MLA kernels show no
# such loss (DeepSeek R1 on 8x B200: 108 tok/s at both context lengths).
MLA_SMALL_WORK_BYTES_PER_S = 6.8e9
MLA_WORK_EXPONENT = 0.4
MLA_SPLIT_TOKENS = 4096
MLA_SLOW_PLATFORMS = frozenset({"nvidia-hopper"})
MLA_SLOW_ENGINES = frozenset({"sglang"})  # vLLM's FlashMLA pads the heads to a full tile: no such loss
# Only with fewer than 16 query heads per GPU (Kimi K2's 64 heads at TP8): DeepSeek R1 (128 heads, 16
# per GPU) on 8x H200 under SGLang decodes 58 tok/s per user at 16 users (InferenceX issue 870), at the
# bandwidth, with no such loss.
MLA_SLOW_BELOW_HEADS = 16


def _kv_read_rate(d: Deployment, p: Platform, bandwidth: float, seqs: int, heads: int, seq_len: float) -> float:
    """Bytes/s at which one GPU reads its sequences' KV cache in a decode step, given the device's
    achievable `bandwidth` [B/s]."""
    rate = bandwidth
    if (d.model.attention == "mla" and p.name in MLA_SLOW_PLATFORMS and d.engine.id in MLA_SLOW_ENGINES
            and heads < MLA_SLOW_BELOW_HEADS):
        work = maximum(1, seqs * heads) * maximum(1.0, seq_len / MLA_SPLIT_TOKENS)
        rate = minimum(rate, MLA_SMALL_WORK_BYTES_PER_S * work ** MLA_WORK_EXPONENT)
    return rate


def _layer_latency(m: ModelArch, p: Platform) -> float:
    """Fixed time per decoder layer and decode step [s]: the platform's figure for a MoE layer with 8
    experts per token, half of it for a dense MLP, in between for fewer experts (each routed expert adds
    work to the grouped-GEMM, top-k and combine kernels). Fitted: Qwen3-235B and GLM-4.6 (k = 8) and
    gpt-oss-120b (k = 4) on 8x B200, DeepSeek R1 on 8x B200, K2.5 on 8x H200. Averaged over the layer
    types of a hybrid model: a linear-attention layer runs no MLA kernels, so it takes the GQA figure."""
    base = p.layer_latency_mla_s if m.attention == "mla" else p.layer_latency_gqa_s
    if m.linear_layers:
        base = ((m.num_layers - m.linear_layers) * base + m.linear_layers * p.layer_latency_gqa_s) / m.num_layers
    return base * expert_latency_factor(m)


def expert_latency_factor(m: ModelArch) -> float:
    """A layer's share of a MoE layer's fixed time: 1 with 8 or more experts per token, 1/2 for a dense
    MLP, in between for fewer experts [1]."""
    return 0.5 + 0.5 * min(m.experts_per_tok, 8) / 8


def _lm_head_bytes(m: ModelArch, scheme) -> float:
    return scheme.format_of("lm_head").bytes_per_weight * m.vocab_size * m.hidden_size


def _rank_stage_bytes(d: Deployment, layers: range) -> tuple[float, float]:
    """(bytes without routed experts, bytes per routed expert) that one tensor-parallel rank reads in
    `layers`, by :func:`~k2calc.memory.rank_layer_bytes` [B]: a step touching t experts per MoE layer
    reads fixed + per_expert x t (t never exceeds a layer's experts)."""
    split = (d.model, d.scheme, d.tp, d.dp, d.engine.mla_replicated_under_tp, layers)
    fixed = stage_rank_bytes(*split, experts=0.0)
    return fixed, stage_rank_bytes(*split, experts=1.0) - fixed


@lru_cache(maxsize=256)
def _layer_bytes_terms(m: ModelArch, s) -> tuple[float, float]:
    """(every layer's bytes but the routed experts', bytes of one routed expert in every MoE layer) of
    the whole model [B], by :meth:`~k2calc.weights.LayerBytes.with_experts`."""
    non_routed = per_expert = 0.0
    for i in range(m.num_layers):
        lb = layer_bytes(m, s, i)
        non_routed += lb.non_routed
        per_expert += lb.with_experts(1.0) - lb.non_routed if lb.n_routed else 0.0
    return non_routed, per_expert


def _server_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float) -> StepCost:
    """Decode step of a GPU server or unified-memory system replica (TP x PP)."""
    m, s, dev = d.model, d.scheme, d.device
    p = platform_of(dev)
    bw, achievable = dev.memory_bandwidth_bytes_per_s, achievable_bandwidth_bytes_per_s(dev)
    attn_tp = d.tp // d.dp
    touched = experts_touched(m.n_routed_experts, m.experts_per_tok, batch)
    cost = StepCost(fixed_s=p.step_overhead_s)
    for stage, layers in enumerate(pipeline_stages(m.num_layers, d.pp)):
        fixed, per_expert = _rank_stage_bytes(d, layers)
        weights = fixed + per_expert * touched
        if stage == d.pp - 1:
            weights += _lm_head_bytes(m, s) / d.tp
        rank = mem.devices[stage * d.tp]
        kv = ceil(batch / rank.seq_groups) * sequence_read_bytes(d, rank, seq_len)
        flops = decode_flops(m, layers, batch, seq_len).scaled(1 / d.tp)
        comm = _step_communication_s(d, p, layers, batch)
        if stage > 0:  # hand the activations to the next pipeline stage (another node if there are several)
            latency, link = _hop(d, p, dev)
            comm += latency + batch * m.hidden_size * 2 / link
        cost.fixed_s += len(layers) * _layer_latency(m, p)
        weights_s = weights / achievable
        at_bandwidth = kv / achievable
        kv_time = kv / _kv_read_rate(d, p, achievable, ceil(batch / rank.seq_groups), m.num_heads // attn_tp, seq_len)
        gemm_s, attention_s = _compute_s(flops, dev, p, s, m.is_moe, batch=batch,
                                         expert_rows=batch * m.experts_per_tok / maximum(touched, 1e-9),
                                         gemv=d.engine.id in GEMV_ENGINES, grouped=d.ep > 1)
        cost.weights_s += weights_s
        cost.kv_s += at_bandwidth
        cost.attention_s += kv_time - at_bandwidth
        cost.compute_s += gemm_s + attention_s
        cost.overlap_s += (overlapped(weights_s, gemm_s) - weights_s - gemm_s
                           + overlapped(kv_time, attention_s) - kv_time - attention_s)
        cost.communication_s += comm
        roof_memory_s, roof_compute_s = (weights + kv) / bw, flops.total / _peak(dev, s.expert_kernel)
        cost.roofline_s += maximum(roof_memory_s, roof_compute_s)
        cost.roofline_memory_s += roof_memory_s
        cost.roofline_compute_s += roof_compute_s
        cost.bytes_read += weights + kv
        cost.flops += flops.total
    return cost


def cpu_bandwidth_bytes_per_s(cpu: Hardware, sockets: int, engine: str = "ktransformers") -> float:
    """Bandwidth at which an engine's CPU kernels stream weights from `sockets` sockets in decode [B/s]:
    one socket's STREAM figure (data/bandwidth.csv) x the kernels' share of it, each further socket
    adding the engine's NUMA gain (:data:`CPU_EXTRA_SOCKET_GAIN`)."""
    gain = CPU_EXTRA_SOCKET_GAIN.get(engine, 0.0)
    return achievable_bandwidth_bytes_per_s(cpu) * CPU_DECODE_STREAM_SHARE * (1 + (sockets - 1) * gain)


def _cpu_peak(cpu: Hardware, sockets: int, kernel: str = "bf16") -> float:
    """Peak of `sockets` sockets for a kernel [FLOP/s]: GGUF (llama.cpp / llamafile) kernels run on the
    FP32 AVX-512 vector units; the others on the BF16 matrix path (AMX, or AVX-512 BF16 on EPYC)."""
    if kernel == "gguf" and cpu.fp32_vector_tflops:
        return cpu.fp32_vector_tflops * 1e12 * sockets
    return (cpu.peak_flops_per_s("bf16") or 5e12) * sockets


def _hybrid_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float) -> StepCost:
    """Decode step of GPUs + CPU: the GPU part and the CPU-resident experts run side by side per layer."""
    m, s, gpu, cpu = d.model, d.scheme, d.device, d.cpu
    p = platform_of(gpu)
    n = d.count
    ram = mem.devices[-1]
    total_weights = sum(dev.weights_bytes for dev in mem.devices)
    touched = experts_touched(m.n_routed_experts, m.experts_per_tok, batch)
    gpu_share = min(d.gpu_experts, m.n_routed_experts) / m.n_routed_experts if m.is_moe else 0.0
    non_routed, per_expert = _layer_bytes_terms(m, s)
    routed = per_expert * touched
    gpu_bytes = non_routed + routed * gpu_share
    cpu_bytes = routed * (1 - gpu_share)
    flops = decode_flops(m, range(m.num_layers), batch, seq_len)
    cpu_flops = flops.routed * (1 - gpu_share)
    gpu_flops = DecodeFlops(flops.routed * gpu_share, flops.other, flops.attention)
    if not m.is_moe:  # dense: whole layers in RAM (llama.cpp -ngl); their share of bytes and FLOPs
        layer_share = ram.weights_bytes / max(total_weights, 1)
        cpu_bytes, gpu_bytes = gpu_bytes * layer_share, gpu_bytes * (1 - layer_share)
        cpu_flops = flops.total * layer_share
        gpu_flops = flops.scaled(1 - layer_share)
    gpu_bytes += _lm_head_bytes(m, s)
    replicated_kv = d.engine.mla_replicated_under_tp and m.attention == "mla"
    kv = batch * sequence_read_bytes(d, mem.devices[0], seq_len, with_window=False) * (1 if replicated_kv else n)
    gemm_s, attention_s = _compute_s(gpu_flops, gpu, p, s, m.is_moe, devices=n, batch=batch,
                                     expert_rows=batch * m.experts_per_tok / maximum(touched, 1e-9),
                                     gemv=d.engine.id in GEMV_ENGINES)
    gpu_time = overlapped((gpu_bytes / n + kv / n) / achievable_bandwidth_bytes_per_s(gpu), gemm_s + attention_s)
    cpu_time = overlapped(cpu_bytes / cpu_bandwidth_bytes_per_s(cpu, d.sockets, d.engine.id),
                          cpu_flops / (_cpu_peak(cpu, d.sockets) * CPU_DECODE_COMPUTE))
    comm = m.num_layers * 2 * _collective_s(p, gpu, batch * m.hidden_size * 2, n)
    cost = StepCost(fixed_s=p.step_overhead_s + m.num_layers * (_layer_latency(m, p) + HYBRID_LAYER_SYNC_S),
                    communication_s=comm, bytes_read=gpu_bytes + cpu_bytes + kv, flops=flops.total)
    cpu_bound = cpu_time >= gpu_time
    cost.cpu_s = where(cpu_bound, cpu_time, 0.0)
    cost.weights_s = where(cpu_bound, 0.0, gpu_time)
    roof_gpu = maximum((gpu_bytes + kv) / n / gpu.memory_bandwidth_bytes_per_s, gpu_flops.total / (_peak(gpu, s.expert_kernel) * n))
    roof_cpu = maximum(cpu_bytes / (cpu.memory_bandwidth_bytes_per_s * d.sockets), cpu_flops / _cpu_peak(cpu, d.sockets))
    cost.roofline_s = maximum(roof_gpu, roof_cpu)
    return cost


def _cpu_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float) -> StepCost:
    """Decode step on CPUs alone: every byte from DDR5."""
    m, s, cpu = d.model, d.scheme, d.cpu
    touched = experts_touched(m.n_routed_experts, m.experts_per_tok, batch)
    non_routed, per_expert = _layer_bytes_terms(m, s)
    weights = _lm_head_bytes(m, s) + non_routed + per_expert * touched
    kv = batch * sequence_read_bytes(d, mem.devices[0], seq_len, with_window=False)
    flops = decode_flops(m, range(m.num_layers), batch, seq_len).total
    peak = _cpu_peak(cpu, d.sockets)
    memory_s = (weights + kv) / cpu_bandwidth_bytes_per_s(cpu, d.sockets, d.engine.id)
    compute_s = flops / (peak * CPU_DECODE_COMPUTE)
    cost = StepCost(fixed_s=m.num_layers * CPU_LAYER_LATENCY_S + CPU_STEP_OVERHEAD_S, cpu_s=memory_s,
                    compute_s=compute_s, overlap_s=overlapped(memory_s, compute_s) - memory_s - compute_s,
                    bytes_read=weights + kv, flops=flops)
    cost.roofline_s = maximum((weights + kv) / (cpu.memory_bandwidth_bytes_per_s * d.sockets), flops / peak)
    return cost


# CPU-only decode: per-layer thread synchronisation and per-step overhead (llama.cpp); assumptions.
CPU_LAYER_LATENCY_S = 20e-6
CPU_STEP_OVERHEAD_S = 0.5e-3


def decode_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float) -> StepCost:
    """Cost of one decode step for `batch` sequences of `seq_len` cached tokens in one replica."""
    builder = {"gpu": _server_step, "unified": _server_step, "hybrid": _hybrid_step, "cpu": _cpu_step}
    return builder[d.topology](d, mem, batch, seq_len)


