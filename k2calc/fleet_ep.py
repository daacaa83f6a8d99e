"""Multi-node expert parallelism: DeepEP dispatch/combine over the cluster network, DP attention, the
per-rank expert load (with and without EPLB's redundant experts) and the KV memory freed per GPU as
the expert-parallel group grows.

A large-EP *pool* (SGLang ``--enable-dp-attention --moe-a2a-backend deepep``, the LMSYS deployments
of DeepSeek on 96 H100 and Kimi K2 on 128 H200) is one model replica over N GPUs: every GPU runs the
whole attention for its own requests (DP attention: no all-reduce, its own KV cache) and holds
(E + R) / N of the routed experts; each MoE layer sends every token's hidden state to the ranks of
its k experts (dispatch) and brings the k outputs back (combine). The physics of one step (bytes,
FLOPs, kernel latencies) is the pipeline's own (:func:`~k2calc.performance.decode.decode_step`,
:func:`~k2calc.performance.prefill.prefill_time`) on that deployment; this module replaces the
tensor-parallel collectives those functions charge by DeepEP's measured all-to-all, scales the
routed-expert work by the busiest rank's load, and overlaps communication with computation as
two-batch overlap (TBO) does.

References
----------
DeepEP V1 microbenchmarks, H800 + CX7 400 Gb/s InfiniBand per GPU: deepseek-ai/DeepEP docs/legacy.md
@0297fc80 ("Performance": normal kernels at 4,096 tokens per batch, low-latency kernels at 128 tokens,
hidden 7168, top-8, FP8 dispatch, BF16 combine). LMSYS, "Deploying DeepSeek with PD Disaggregation and
Large-scale Expert Parallelism on 96 H100 GPUs", lm-sys/lm-sys.github.io blog/2025-05-05-large-scale-ep.md
@2db4e404 (TBO, EPLB, DP dense FFN, the prefill/decode settings and the perfect-EPLB experiment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from .deployment import resolve
from .memory import Deployment, MemoryEstimate, estimate_memory
from .models import layer_params
from .performance.calibration import platform_of
from .performance.decode import (
    INTERNODE_BYTES_PER_S,
    INTERNODE_LATENCY_S,
    StepCost,
    _collective_s,
    decode_flops,
    decode_step,
    overlapped,
)
from .performance.prefill import prefill_flops, prefill_time
from .scenario import Scenario
from .units import GPUS_PER_NODE

# DeepEP low-latency kernels (pure RDMA; decode), per EP size: (dispatch, combine) time of one call at
# 128 tokens per rank, hidden 7168, top-8, FP8 dispatch (7168 B + 56 FP32 scales per copy) and BF16
# combine, H800 with one CX7 400 Gb/s NIC per GPU [s]. deepseek-ai/DeepEP docs/legacy.md @0297fc80.
DEEPEP_LOW_LATENCY_S = {8: (77e-6, 114e-6), 16: (118e-6, 195e-6), 32: (155e-6, 273e-6),
                        64: (173e-6, 314e-6), 128: (192e-6, 369e-6), 256: (194e-6, 360e-6)}
DEEPEP_LL_TOKENS, DEEPEP_HIDDEN, DEEPEP_TOPK = 128, 7168, 8
# DeepEP normal kernels (prefill), bottleneck bandwidth per EP size: (dispatch, combine) [B/s]; EP 8 is
# NVLink inside one H800 node (~160 GB/s), larger EP the RDMA bytes over the 400 Gb/s NIC. Same source.
DEEPEP_NORMAL_BYTES_PER_S = {8: (153e9, 158e9), 16: (43e9, 43e9), 32: (58e9, 57e9), 64: (51e9, 50e9)}
# The NIC the microbenchmarks ran on: CX7 400 Gb/s = 50 GB/s line rate (the cluster network of
# k2calc.performance.decode, INTERNODE_BYTES_PER_S).
DEEPEP_NIC_BYTES_PER_S = 50e9

# Routing skew without EPLB: the coefficient of variation of one expert's load around the mean. Set by
# the one published ablation: DeepSeek V3 prefill on 4x8 H100 (EP32, 16,384 tokens per GPU, 4K
# prompts) ran 50,302 tok/s per node with SGLang's default expert placement and 59,337 with simulated
# perfect EPLB (LMSYS 2025-05-05, "Overall Throughput"): x1.18, of which the routed-expert share of the
# work (~0.55 of prefill FLOPs) carries the imbalance, so the busiest of 32 ranks holding 8 experts is
# ~1 + 0.18 / 0.55 = 1.33x the mean: CV = 0.33 x sqrt(8) / sqrt(2 ln 32) = 0.35.
ROUTING_SKEW_CV = 0.35
# Achieved share of the FP8 dense peak in a large-EP prefill forward (DeepGEMM grouped GEMMs, FlashMLA,
# and every other kernel of the layer; DeepEP overlapped by TBO), on platforms that run DeepGEMM. Set on
# DeepSeek's own profile, not on the SGLang rows validate compares: 62,713 tok/s per H800 node at 16,384
# tokens per GPU, 4K prompts, EP32 (deepseek-ai/profile-data, as tabled in LMSYS 2025-05-05): this
# module gives that figure at 0.34. For scale: DeepGEMM's contiguous grouped GEMMs alone reach
# 1,093-1,297 of 1,979 TFLOPS (0.55-0.66) on H800 (deepseek-ai/DeepGEMM README, 2025-02).
LARGE_EP_PREFILL_EFFICIENCY = 0.34
DEEPGEMM_PLATFORMS = frozenset({"nvidia-hopper", "nvidia-blackwell"})


def _interpolate(table: dict[int, tuple[float, float]], ep: int) -> tuple[float, float]:
    """A (dispatch, combine) figure at EP size `ep`, linear in log2(EP) between the measured sizes and
    held at the ends."""
    sizes = sorted(table)
    if ep <= sizes[0]:
        return table[sizes[0]]
    if ep >= sizes[-1]:
        return table[sizes[-1]]
    hi = next(s for s in sizes if s >= ep)
    lo = sizes[sizes.index(hi) - 1]
    w = (math.log2(ep) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
    return tuple(a + w * (b - a) for a, b in zip(table[lo], table[hi]))  # type: ignore[return-value]


def low_latency_s(tokens_per_rank: float, ep: int, hidden: int, top_k: int,
                  nic_bytes_per_s: float = DEEPEP_NIC_BYTES_PER_S) -> tuple[float, float]:
    """(dispatch, combine) time of DeepEP's low-latency kernels for one MoE layer [s].

    The measured time at 128 tokens per rank, hidden 7168 and top-8 (:data:`DEEPEP_LOW_LATENCY_S`,
    interpolated in log2 EP), scaled by the bytes sent (tokens x k x hidden) and by the NIC's line
    rate against the 400 Gb/s of the benchmark; never below one small message's network latency.

    >>> [round(t * 1e6) for t in low_latency_s(128, 128, 7168, 8)]
    [192, 369]
    >>> [round(t * 1e6) for t in low_latency_s(256, 64, 7168, 8)]
    [346, 628]
    """
    dispatch, combine = _interpolate(DEEPEP_LOW_LATENCY_S, ep)
    scale = (tokens_per_rank * top_k * hidden) / (DEEPEP_LL_TOKENS * DEEPEP_TOPK * DEEPEP_HIDDEN)
    scale *= DEEPEP_NIC_BYTES_PER_S / nic_bytes_per_s
    return max(INTERNODE_LATENCY_S, dispatch * scale), max(INTERNODE_LATENCY_S, combine * scale)


def remote_nodes_per_token(top_k: int, nodes: int) -> float:
    """Expected other nodes one token's k experts live on, experts spread evenly over `nodes` nodes
    [count]: nodes x (1 - (1 - 1/nodes)^k) nodes are touched, (nodes - 1) / nodes of them remote.
    DeepEP's normal kernels send a token once per remote node and forward it over NVLink inside.

    >>> round(remote_nodes_per_token(8, 4), 3), remote_nodes_per_token(8, 1)
    (2.7, 0.0)
    """
    if nodes <= 1:
        return 0.0
    touched = nodes * (1 - (1 - 1 / nodes) ** top_k)
    return touched * (nodes - 1) / nodes


def normal_s(tokens_per_rank: float, ep: int, hidden: int, top_k: int,
             nic_bytes_per_s: float = DEEPEP_NIC_BYTES_PER_S) -> tuple[float, float]:
    """(dispatch, combine) time of DeepEP's normal (high-throughput) kernels for one MoE layer [s]:
    the bytes on the bottleneck link at the measured bottleneck bandwidth (:data:`DEEPEP_NORMAL_BYTES_PER_S`).
    Within one node (EP <= 8) every token's k copies cross NVLink (7/8 of them to another GPU); across
    nodes each token crosses the NIC once per remote node (:func:`remote_nodes_per_token`). FP8
    dispatch (1 B per element), BF16 combine (2 B).

    >>> [round(t * 1e3, 2) for t in normal_s(4096, 32, 7168, 8)]
    [1.39, 2.8]
    """
    nodes = max(1, math.ceil(ep / GPUS_PER_NODE))
    dispatch_bw, combine_bw = _interpolate(DEEPEP_NORMAL_BYTES_PER_S, ep)
    if nodes == 1:
        copies = top_k * (ep - 1) / ep
    else:
        copies = remote_nodes_per_token(top_k, nodes)
        dispatch_bw *= nic_bytes_per_s / DEEPEP_NIC_BYTES_PER_S
        combine_bw *= nic_bytes_per_s / DEEPEP_NIC_BYTES_PER_S
    message = tokens_per_rank * hidden * copies
    return (INTERNODE_LATENCY_S + message * 1 / dispatch_bw, INTERNODE_LATENCY_S + message * 2 / combine_bw)


def load_imbalance(tokens_per_rank: float, top_k: int, n_experts: int, ep: int, eplb: bool) -> float:
    """The busiest rank's routed-expert load over the mean [1].

    Each rank receives about m = tokens_per_rank x k token-expert pairs. Routing is random (Poisson:
    relative spread 1/sqrt(m)) and, without EPLB, skewed towards popular experts (relative spread
    :data:`ROUTING_SKEW_CV` / sqrt(experts per rank)); the largest of `ep` ranks lies about
    sqrt(2 ln ep) spreads above the mean. EPLB (with redundant experts) is taken as removing the skew;
    the routing noise remains.

    >>> round(load_imbalance(256, 8, 256, 72, eplb=True), 3), round(load_imbalance(16384, 8, 256, 32, eplb=False), 3)
    (1.065, 1.326)
    """
    if ep <= 1:
        return 1.0
    pairs = max(tokens_per_rank * top_k, 1.0)
    skew = 0.0 if eplb else ROUTING_SKEW_CV / math.sqrt(max(n_experts / ep, 1.0))
    return 1.0 + math.sqrt(2 * math.log(ep)) * math.sqrt(1 / pairs + skew ** 2)


@dataclass(frozen=True)
class Pool:
    """One large-EP replica over `gpus` GPUs (DP attention, EP over every GPU): its deployment and memory."""

    deployment: Deployment
    memory: MemoryEstimate
    redundant_experts: int
    eplb: bool

    @property
    def gpus(self) -> int:
        return self.deployment.count

    @property
    def nodes(self) -> int:
        return self.deployment.nodes

    @property
    def kv_tokens_per_gpu(self) -> int:
        """KV tokens one GPU holds for its own requests [tokens]."""
        return self.memory.kv_capacity_tokens // max(1, self.deployment.dp)


def moe_layers(d: Deployment) -> int:
    """Layers with routed experts [count]."""
    return sum(1 for i in range(d.model.num_layers) if layer_params(d.model, i).n_routed > 0)


@lru_cache(maxsize=256)
def make_pool(model: str, hardware: str, gpus: int, quant: str = "native", context: int = 4096,
              redundant_experts: int = 0, eplb: bool = True, kv_dtype: str = "bf16") -> Pool:
    """The large-EP pool of `gpus` GPUs (whole nodes) serving `model` with SGLang, DP attention and
    EP over every GPU; `redundant_experts` extra expert copies per MoE layer (EPLB's, e.g. 32 for
    DeepSeek on 72 H100, 96 for Kimi K2 on 96 H200) spread over the GPUs.

    Built from a one-node deployment the resolver accepts (TP 8, EP 8, DP attention), widened to
    `gpus` GPUs: with DP attention every GPU holds the whole attention, so the head-split check of
    tensor parallelism does not apply, and EPLB's redundant experts let EP sizes that do not divide
    the expert count (EP 72) place whole experts."""
    per_node = min(gpus, GPUS_PER_NODE)
    base = Scenario(model=model, quant=quant, hardware=hardware, count=per_node, nodes=1, engine="sglang",
                    tp=per_node, ep=per_node if per_node > 1 else None, dp_attention=per_node > 1,
                    context=context, input_tokens=min(1024, context - 1), output_tokens=1, kv_dtype=kv_dtype)
    d = resolve(base)
    nodes = max(1, math.ceil(gpus / GPUS_PER_NODE))
    d = replace(d, count=gpus, nodes=nodes, tp=gpus, ep=gpus, dp_attention=gpus > 1, concurrency=1)
    mem = estimate_memory(d)
    extra = redundant_bytes_per_gpu(d, mem, redundant_experts)
    if extra:
        mem = _with_extra_weights(mem, extra, d)
    return Pool(d, mem, redundant_experts, eplb)


def redundant_bytes_per_gpu(d: Deployment, mem: MemoryEstimate, redundant: int) -> int:
    """Weight bytes one GPU adds for its share of `redundant` extra copies of experts in every MoE
    layer [B]: the routed experts' bytes per expert copy x redundant / GPUs."""
    if redundant <= 0 or not d.model.is_moe:
        return 0
    per_copy = mem.weights_by_group_bytes["routed_experts"] / (moe_layers(d) * d.model.n_routed_experts)
    return int(per_copy * moe_layers(d) * redundant / d.count)


def _with_extra_weights(mem: MemoryEstimate, extra: int, d: Deployment) -> MemoryEstimate:
    """`mem` with `extra` weight bytes on every GPU, taken from its KV pool."""
    devices = [replace(dev, weights_bytes=dev.weights_bytes + extra,
                       kv_pool_bytes=max(0, dev.kv_pool_bytes - extra)) for dev in mem.devices]
    first = mem.devices[0]
    shrink = max(0.0, 1 - extra / max(first.kv_pool_bytes, 1))
    return replace(mem, devices=devices, kv_capacity_tokens=int(mem.kv_capacity_tokens * shrink),
                   max_concurrency=int(mem.max_concurrency * shrink),
                   fits=mem.fits and first.kv_pool_bytes > extra)


def kv_tokens_per_gpu(model: str, hardware: str, ep: int, quant: str = "native", redundant_experts: int = 0) -> int:
    """KV tokens one GPU can hold for its requests in a large-EP pool of `ep` GPUs [tokens]: the
    memory EP frees (experts / EP per GPU) goes to the KV cache."""
    return make_pool(model, hardware, ep, quant, redundant_experts=redundant_experts).kv_tokens_per_gpu


@dataclass(frozen=True)
class DecodeStep:
    """One decode step of a large-EP pool at `batch_per_gpu` sequences per GPU [s]."""

    physics: StepCost          # the pipeline's step, tensor-parallel collectives included
    compute_s: float           # everything but communication, routed work at the busiest rank's load
    communication_s: float     # DeepEP low-latency dispatch + combine over every MoE layer
    imbalance: float
    total_s: float             # compute and communication under two-batch overlap
    kept_tokens: float = 1.0   # tokens each sequence gains per step (speculative decoding: more than 1)

    def tokens_per_s_per_gpu(self, batch_per_gpu: int) -> float:
        return batch_per_gpu * self.kept_tokens / self.total_s

    @property
    def per_token_s(self) -> float:
        """Time per generated token of one sequence (TPOT) [s]."""
        return self.total_s / self.kept_tokens


def _tbo(compute_s: float, communication_s: float) -> float:
    """Two-batch overlap: one micro-batch communicates while the other computes, so a step takes about
    the larger of the two (the smooth max of decode.py's kernel overlap) [s]."""
    return overlapped(compute_s, communication_s)


def decode_step_pool(pool: Pool, batch_per_gpu: int, seq_len: float, spec=None,
                     acceptance: float | None = None) -> DecodeStep:
    """Decode step of a large-EP pool with `batch_per_gpu` sequences per GPU of `seq_len` cached tokens;
    with `spec` (:class:`k2calc.fleet_speculative.Speculation`) each step verifies n + 1 tokens per
    sequence after n draft steps and keeps (1 - a^(n+1)) / (1 - a) of them [s]."""
    d, m = pool.deployment, pool.deployment.model
    n = d.count
    step = decode_step(d, pool.memory, batch_per_gpu * n, seq_len)
    compute, kept, tokens_per_gpu = step.total_s - step.communication_s, 1.0, batch_per_gpu
    if spec is not None:
        from .fleet_speculative import draft_s, verify_s
        tokens_per_gpu = batch_per_gpu * (spec.draft_tokens + 1)
        big = decode_step(d, pool.memory, tokens_per_gpu * n, seq_len)
        compute = verify_s(step, big) - big.communication_s + draft_s(d, batch_per_gpu * n, step, spec)
        kept = spec.kept(acceptance)
    flops = decode_flops(m, range(m.num_layers), tokens_per_gpu * n, seq_len)
    routed_share = flops.routed / max(flops.total, 1.0)
    imb = load_imbalance(tokens_per_gpu, m.experts_per_tok, m.n_routed_experts, n, pool.eplb)
    compute += step.compute_s * tokens_per_gpu / batch_per_gpu * routed_share * (imb - 1)
    dispatch, combine = low_latency_s(tokens_per_gpu, n, m.hidden_size, m.experts_per_tok, _nic(d))
    comm = moe_layers(d) * (dispatch + combine) * imb if n > 1 else 0.0
    return DecodeStep(step, compute, comm, imb, _tbo(compute, comm), kept)


def _nic(d: Deployment) -> float:
    """Cluster-network bandwidth per GPU [B/s]: 400 Gb/s class NICs (InfiniBand NDR, RoCE, AMD Pollara)."""
    return INTERNODE_BYTES_PER_S


@dataclass(frozen=True)
class PrefillBatch:
    """One prefill forward of a large-EP pool: every GPU prefills `tokens_per_gpu` prompt tokens [s]."""

    compute_s: float
    communication_s: float
    imbalance: float
    total_s: float
    tokens_per_gpu: int

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.tokens_per_gpu / self.total_s


def prefill_batch_pool(pool: Pool, tokens_per_gpu: int, input_tokens: int) -> PrefillBatch:
    """Prefill of `tokens_per_gpu` prompt tokens on every GPU of the pool, prompts of `input_tokens`.

    The pipeline's prefill time of the whole pool's tokens (:func:`prefill_time`, peak x GPUs; one
    forward holds one chunk per GPU), without the tensor-parallel all-reduces it charges (DP attention
    has none), the routed-expert work at the busiest rank's load, and DeepEP's normal dispatch and
    combine per MoE layer, overlapped by TBO."""
    d, m = pool.deployment, pool.deployment.model
    n = d.count
    tokens = tokens_per_gpu * n
    prompts = max(1, round(tokens / input_tokens))
    engine = d.engine
    chunk = engine.chunk_tokens(d.device.memory_bytes)
    d_fwd = replace(d, engine=replace(engine, chunk_tokens_large=chunk * n, chunk_tokens_small=chunk * n))
    eta = LARGE_EP_PREFILL_EFFICIENCY if platform_of(d.device).name in DEEPGEMM_PLATFORMS else None
    t, _ = prefill_time(d_fwd, pool.memory, tokens, prompts, efficiency=eta)
    tp_allreduce = m.num_layers * 2 * _collective_s(platform_of(d.device), d.device, tokens * m.hidden_size * 2, d.tp)
    compute = t - tp_allreduce
    routed, other, lm_head = prefill_flops(m, tokens, prompts)
    imb = load_imbalance(tokens_per_gpu, m.experts_per_tok, m.n_routed_experts, n, pool.eplb)
    compute *= 1 + routed / (routed + other + lm_head) * (imb - 1)
    dispatch, combine = normal_s(tokens_per_gpu, n, m.hidden_size, m.experts_per_tok, _nic(d))
    comm = moe_layers(d) * (dispatch + combine) * imb if n > 1 else 0.0
    return PrefillBatch(compute, comm, imb, _tbo(compute, comm), tokens_per_gpu)


__all__ = ["Pool", "make_pool", "decode_step_pool", "prefill_batch_pool", "low_latency_s", "normal_s",
           "load_imbalance", "remote_nodes_per_token", "kv_tokens_per_gpu", "redundant_bytes_per_gpu",
           "moe_layers", "DecodeStep", "PrefillBatch"]
