"""Memory model: where every byte of weights, KV cache, activations and engine overhead lives.

Entry point: :func:`estimate_memory` takes a resolved :class:`Deployment` and returns a
:class:`MemoryEstimate` with one :class:`DeviceMemory` per device of one model replica.

Physics (MLA: DeepSeek-V3 paper, arXiv 2412.19437, section 2.1; engine storage and policies: the
references in :mod:`k2calc.engines`):

* Weights per tensor group in the scheme's format (scales included), placed per device: tensor
  parallelism (TP) shards attention heads, MLP/expert widths and the vocabulary; vLLM and SGLang keep
  MLA's q_a/kv_a down-projections and the MoE router whole on every rank; pipeline parallelism (PP)
  splits layers into contiguous stages (embeddings on the first, lm_head on the last).
* KV cache per token: MLA stores one (kv_lora_rank + qk_rope_head_dim) latent per layer, replicated on
  every TP rank (vLLM, SGLang) unless DP-attention gives each rank its own requests or vLLM's decode
  context parallelism (DCP) shards tokens; GQA stores 2 x kv_heads x head_dim per layer, heads split
  across TP ranks (one head per rank when kv_heads < TP); sliding-window layers hold at most the window.
* Engine policy: the usable share of each device (vLLM ``gpu_memory_utilization``, SGLang
  ``mem_fraction_static``, the macOS wired limit, RAM kept for the OS), the activation peak of one
  prefill chunk plus sampler buffers, and runtime overhead (CUDA context, communication buffers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .engines import (
    ACTIVATION_BYTES_PER_HIDDEN_PER_TOKEN,
    MAC_LARGE_THRESHOLD_BYTES,
    MAC_WIRED_FRACTION_LARGE,
    MAC_WIRED_FRACTION_SMALL,
    RAM_OS_RESERVE_FRACTION,
    RAM_OS_RESERVE_MIN_BYTES,
    SAMPLER_BYTES_PER_VOCAB_PER_SEQ,
    UNIFIED_OS_RESERVE_FRACTION,
    Engine,
)
from .hardware import Hardware
from .models import ModelArch
from .quant import Scheme
from .units import format_device_bytes
from .weights import (
    KV_DTYPES,
    LayerBytes,
    all_layer_bytes,
    checkpoint_bytes,
    kv_bytes_per_token,
    kv_element_bytes,
    kv_window_bytes_per_token,
    layer_bytes,
    layer_totals,
    linear_state_bytes_per_sequence,
    mtp_bytes,
    pipeline_stages,
    weights_by_group,
)


@dataclass(frozen=True)
class Deployment:
    """A fully resolved deployment (ids already looked up, parallelism already validated).

    Attributes
    ----------
    topology : "gpu" (GPU server(s)), "unified" (Mac Studio / DGX Spark, alone or several),
        "hybrid" (GPUs + CPU with system RAM), "cpu" (CPU only)
    device : the GPU or unified-memory system; None for "cpu"
    count : devices (GPUs or systems) in the whole deployment [count]
    tp, pp : tensor- and pipeline-parallel degree of one replica; replicas = count / (tp x pp)
    ep : expert-parallel degree (experts placed whole on ranks; same bytes per rank as TP sharding)
    dp_attention : SGLang DP attention: attention weights sharded over tp/dp ranks, requests split
    dcp : vLLM decode context parallel degree (KV tokens sharded across dcp ranks)
    cpu, sockets, ram_bytes : the host CPU, its socket count and system RAM [B] (hybrid and cpu)
    gpu_experts : routed experts per MoE layer kept on the GPUs in hybrid mode [count]
    kt_prefill : hybrid prefill path: "gpu" (experts streamed over PCIe) or "cpu" (AMX on the CPU)
    context_tokens, concurrency : tokens per sequence and sequences served at once
    memory_fraction : override of the engine's share of device memory [1]
    wired_limit_bytes : macOS GPU wired-memory limit per Mac [B]; None = the macOS default
    """

    model: ModelArch
    scheme: Scheme
    engine: Engine
    topology: str
    device: Hardware | None
    count: int = 1
    nodes: int = 1
    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp_attention: bool = False
    dcp: int = 1
    cpu: Hardware | None = None
    sockets: int = 0
    ram_bytes: int = 0
    gpu_experts: int = 0
    kt_prefill: str = "gpu"
    kv_dtype: str = "bf16"
    context_tokens: int = 32768
    concurrency: int = 1
    memory_fraction: float | None = None
    wired_limit_bytes: int | None = None

    @property
    def replicas(self) -> int:
        return max(1, self.count // (self.tp * self.pp)) if self.topology in ("gpu", "unified") else 1

    @property
    def dp(self) -> int:
        """Data-parallel attention groups inside one replica (SGLang --enable-dp-attention)."""
        return self.tp if self.dp_attention else 1


@dataclass
class DeviceMemory:
    """Memory of one device (or the system RAM of a host) [B]. ``free_bytes`` may be negative."""

    name: str
    kind: str  # "gpu" | "unified" | "ram"
    capacity_bytes: int
    usable_bytes: int
    weights_bytes: int
    activation_bytes: int
    overhead_bytes: int
    kv_pool_bytes: int = 0
    kv_bytes: int = 0
    # KV growth per token of one sequence [B/token], sliding-window part [B/token up to the window],
    # and how many DP groups share the replica's sequences on this device.
    kv_bytes_per_token: float = 0.0
    kv_window_bytes_per_token: float = 0.0
    seq_groups: int = 1
    # fixed-size state of one sequence in the linear-attention layers held here [B/sequence]
    state_bytes_per_sequence: float = 0.0

    @property
    def free_bytes(self) -> int:
        return self.usable_bytes - self.weights_bytes - self.kv_bytes - self.activation_bytes - self.overhead_bytes

    def as_dict(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "capacity_bytes": self.capacity_bytes,
            "usable_bytes": self.usable_bytes, "weights_bytes": self.weights_bytes,
            "kv_bytes": self.kv_bytes, "activation_bytes": self.activation_bytes,
            "overhead_bytes": self.overhead_bytes, "kv_pool_bytes": self.kv_pool_bytes,
            "free_bytes": self.free_bytes,
        }


@dataclass
class MemoryEstimate:
    """Everything the memory model says about a deployment. Bytes, tokens, counts."""

    fits: bool
    reasons: list[str]
    warnings: list[str]
    weights_bytes: int
    weights_by_group_bytes: dict[str, int]
    kv_bytes_per_token: int
    kv_window_bytes_per_sequence: int
    kv_capacity_tokens: int
    max_concurrency: int
    max_context_tokens: int
    replicas: int
    devices: list[DeviceMemory] = field(default_factory=list)
    linear_state_bytes_per_sequence: int = 0
    checkpoint_bytes: int = 0  # the weights as stored in this scheme, MTP layers included [B]

    def as_dict(self) -> dict:
        return {
            "weights_bytes": self.weights_bytes, "weights_by_group_bytes": self.weights_by_group_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_window_bytes_per_sequence": self.kv_window_bytes_per_sequence,
            "kv_capacity_tokens": self.kv_capacity_tokens, "max_concurrency": self.max_concurrency,
            "max_context_tokens": self.max_context_tokens, "replicas": self.replicas,
            "linear_state_bytes_per_sequence": self.linear_state_bytes_per_sequence,
            "checkpoint_bytes": self.checkpoint_bytes,
            "devices": [d.as_dict() for d in self.devices],
        }


def _seq_bytes(dev: DeviceMemory, context: int, window: int | None) -> float:
    """KV cache and linear-attention state one sequence of `context` tokens occupies on `dev` [B]."""
    w = min(context, window) if window else 0
    return dev.kv_bytes_per_token * context + dev.kv_window_bytes_per_token * w + dev.state_bytes_per_sequence


# ------------------------------------------------------------------------------------------------
# Placement per topology
# ------------------------------------------------------------------------------------------------

def rank_layer_bytes(d: "Deployment", lb: LayerBytes, experts: float) -> float:
    """Bytes of one layer on one tensor-parallel rank with `experts` routed experts [B]: attention heads
    split over the attention TP group (TP / DP-attention), GQA k/v over min(TP, kv_heads), MLA's
    down-projections whole on every rank where the engine replicates them, norms and the router on
    every rank, MLPs and experts split over TP (EP places whole experts: the same bytes per rank).
    The one placement rule of memory (experts held) and decode (experts read)."""
    attn_tp = d.tp // d.dp
    down = lb.attn_down if d.engine.mla_replicated_under_tp else lb.attn_down / attn_tp
    return (lb.attn_heads / attn_tp + lb.attn_kv / min(attn_tp, d.model.num_kv_heads) + down + lb.norms
            + lb.router + (lb.dense + lb.shared + lb.routed_per_expert * min(experts, lb.n_routed)) / d.tp)


def _activation_bytes(m: ModelArch, chunk_tokens: int, sampler_seqs: int) -> int:
    """Activation peak of one prefill chunk plus sampler buffers [B] (estimate; see engines.py)."""
    return int(chunk_tokens * m.hidden_size * ACTIVATION_BYTES_PER_HIDDEN_PER_TOKEN
               + sampler_seqs * m.vocab_size * SAMPLER_BYTES_PER_VOCAB_PER_SEQ)


def _usable(d: Deployment, capacity: int) -> int:
    """Bytes of one device the engine may fill [B]: engine fraction, macOS wired limit or OS share."""
    fraction = d.memory_fraction if d.memory_fraction is not None else d.engine.memory_fraction
    usable = capacity if fraction is None else int(capacity * fraction)
    if d.topology == "unified" and d.device is not None:
        usable = min(usable, unified_limit_bytes(d.device, capacity, d.wired_limit_bytes))
    return usable


def unified_limit_bytes(device: Hardware, capacity: int, wired_limit_bytes: int | None = None) -> int:
    """Memory of a unified-memory system its GPU may use, whatever the engine asks for [B].

    Parameters
    ----------
    device : the system (a Mac: the macOS wired-memory limit; any other: capacity less the OS share)
    capacity : its memory [B]
    wired_limit_bytes : a raised macOS limit (``iogpu.wired_limit_mb``) [B]; None = the macOS default

    References: the fractions and their sources are in engines.py (MAC_WIRED_FRACTION_*,
    UNIFIED_OS_RESERVE_FRACTION).
    """
    if device.vendor.lower() == "apple":
        default = MAC_WIRED_FRACTION_LARGE if capacity >= MAC_LARGE_THRESHOLD_BYTES else MAC_WIRED_FRACTION_SMALL
        return wired_limit_bytes if wired_limit_bytes is not None else int(capacity * default)
    return int(capacity * (1 - UNIFIED_OS_RESERVE_FRACTION))


def ram_usable_bytes(ram_bytes: int) -> int:
    """System RAM left for the model after the OS share (assumption in engines.py) [B]."""
    return max(0, ram_bytes - max(RAM_OS_RESERVE_MIN_BYTES, int(ram_bytes * RAM_OS_RESERVE_FRACTION)))


def ram_needed_bytes(model_bytes: int) -> int:
    """Installed RAM such that `model_bytes` fit beside the OS share: the inverse of ram_usable_bytes [B]."""
    return max(model_bytes + RAM_OS_RESERVE_MIN_BYTES, math.ceil(model_bytes / (1 - RAM_OS_RESERVE_FRACTION)))


def device_label(d: Deployment, index: int) -> str:
    """The name of device `index` of a deployment, as every table shows it: 'GPU 3 (NVIDIA H200 ...)'."""
    word = "GPU" if d.topology in ("gpu", "hybrid") else "System"
    return f"{word} {index} ({d.device.name})"


def ram_label(d: Deployment) -> str:
    """The name of a host's system RAM, as every table shows it: 'System RAM (2x Intel Xeon ...)'."""
    return f"System RAM ({d.sockets}x {d.cpu.name})" if d.cpu else "System RAM"


def _server_devices(d: Deployment) -> list[DeviceMemory]:
    """GPU servers and unified-memory systems: TP x PP devices of one replica."""
    m, s, e = d.model, d.scheme, d.engine
    groups = weights_by_group(m, s)
    attn_tp = d.tp // d.dp
    kv_heads_per_rank = max(1, m.num_kv_heads // min(attn_tp, m.num_kv_heads))
    kv_b = kv_element_bytes(d.kv_dtype)
    capacity = d.device.memory_bytes
    usable = _usable(d, capacity)
    multi = d.tp * d.pp * d.replicas > 1
    devices = []
    stages = pipeline_stages(m.num_layers, d.pp)
    for stage_index, layers in enumerate(stages):
        w = 0.0
        kv_tok = 0.0
        for i in layers:
            lb = layer_bytes(m, s, i)
            w += rank_layer_bytes(d, lb, lb.n_routed)
        if stage_index == 0:
            w += groups["embeddings"] / d.tp
        if stage_index == len(stages) - 1:
            w += groups["lm_head"] / d.tp + m.hidden_size * s.format_of("norms").bytes_per_weight
            w += (mtp_bytes(m, s) if m.load_mtp else 0) / d.tp
        share = len(layers) / m.num_layers
        state = linear_state_bytes_per_sequence(m, d.engine.id) * share / attn_tp  # linear heads split like attention heads
        if m.attention == "mla":
            kv_tok = kv_bytes_per_token(m, d.kv_dtype) * share / d.dcp
            if not e.mla_replicated_under_tp:
                kv_tok /= d.tp
            win = 0.0
        else:
            per_layer_head = 2 * m.head_dim * kv_b * kv_heads_per_rank
            kv_tok = (m.num_layers - m.linear_layers - m.sliding_layers) * share * per_layer_head / d.dcp
            win = m.sliding_layers * share * per_layer_head
        last = stage_index == len(stages) - 1
        act = _activation_bytes(m, e.chunk_tokens(capacity), e.max_seqs(capacity) if last else 0)
        overhead = e.runtime_bytes_multi if multi else e.runtime_bytes_single
        for rank in range(d.tp):
            index = stage_index * d.tp + rank
            devices.append(DeviceMemory(
                name=device_label(d, index), kind="gpu" if d.topology == "gpu" else "unified",
                capacity_bytes=capacity, usable_bytes=usable, weights_bytes=round(w),
                activation_bytes=act, overhead_bytes=overhead, kv_bytes_per_token=kv_tok,
                kv_window_bytes_per_token=win, seq_groups=d.dp, state_bytes_per_sequence=state,
            ))
    if not e.fraction_covers_activations and e.memory_fraction is not None:
        # SGLang: the static pool (fraction x total) holds weights + KV; activations use the rest.
        for dev in devices:
            dev.usable_bytes = capacity if d.topology == "gpu" else dev.usable_bytes
            static = int(capacity * (d.memory_fraction or e.memory_fraction))
            dev.kv_pool_bytes = min(static - dev.weights_bytes,
                                    dev.usable_bytes - dev.weights_bytes - dev.activation_bytes - dev.overhead_bytes)
    return devices


def _hybrid_devices(d: Deployment) -> list[DeviceMemory]:
    """GPUs + system RAM: routed experts (or, for dense models, the layers that do not fit) in RAM."""
    m, s, e = d.model, d.scheme, d.engine
    groups = weights_by_group(m, s)
    layers = all_layer_bytes(m, s)
    n = d.count
    capacity = d.device.memory_bytes
    usable = _usable(d, capacity)
    act = _activation_bytes(m, e.chunk_tokens(capacity), e.max_seqs(capacity))
    overhead = e.runtime_bytes_multi if n > 1 else e.runtime_bytes_single
    fixed = groups["embeddings"] + groups["lm_head"] + m.hidden_size * s.format_of("norms").bytes_per_weight
    kv_total = kv_bytes_per_token(m, d.kv_dtype)
    win_total = kv_window_bytes_per_token(m, d.kv_dtype)
    state_total = linear_state_bytes_per_sequence(m, d.engine.id)
    if m.load_mtp:  # the MTP layers stay beside the other non-expert weights on the GPUs
        fixed += mtp_bytes(m, s)
    if m.is_moe:
        gpu_layers = m.num_layers
        non_expert = sum(lb.non_routed for lb in layers)
        gpu_w = fixed + non_expert + sum(lb.routed_per_expert * min(d.gpu_experts, lb.n_routed) for lb in layers)
        ram_w = sum(lb.routed_per_expert * max(0, lb.n_routed - d.gpu_experts) for lb in layers)
    else:
        # llama.cpp -ngl: whole layers on the GPUs while they fit with their KV; the rest in RAM.
        seqs = d.concurrency
        per_layer_kv = ((kv_total + win_total) / m.num_layers * d.context_tokens * seqs
                        + state_total / m.num_layers * seqs)
        room = n * usable - fixed - n * (act + overhead)
        totals = layer_totals(m, s)  # this runs for every trial load of a binary search: no per-layer objects
        gpu_layers = 0
        for total in totals:
            if room - total - per_layer_kv < 0:
                break
            room -= total + per_layer_kv
            gpu_layers += 1
        gpu_w = fixed + sum(totals[:gpu_layers])
        ram_w = sum(totals[gpu_layers:])
    gpu_share = gpu_layers / m.num_layers
    replicate_kv = m.attention == "mla" and e.mla_replicated_under_tp
    kv_tok = kv_total * gpu_share / (1 if replicate_kv else n)
    win = win_total * gpu_share / (1 if replicate_kv else n)
    devices = [DeviceMemory(
        name=device_label(d, i), kind="gpu", capacity_bytes=capacity, usable_bytes=usable,
        weights_bytes=round(gpu_w / n), activation_bytes=act, overhead_bytes=overhead,
        kv_bytes_per_token=kv_tok, kv_window_bytes_per_token=win, state_bytes_per_sequence=state_total * gpu_share / n,
    ) for i in range(n)]
    if not e.fraction_covers_activations and e.memory_fraction is not None:
        static = int(capacity * (d.memory_fraction or e.memory_fraction))
        for dev in devices:
            dev.usable_bytes = capacity
            dev.kv_pool_bytes = min(static - dev.weights_bytes,
                                    capacity - dev.weights_bytes - dev.activation_bytes - dev.overhead_bytes)
    devices.append(_ram_device(d, round(ram_w), kv_total * (1 - gpu_share), win_total * (1 - gpu_share), act=0,
                               state=state_total * (1 - gpu_share)))
    return devices


def _ram_device(d: Deployment, weights: int, kv_tok: float, win: float, act: int, state: float = 0.0) -> DeviceMemory:
    return DeviceMemory(
        name=ram_label(d), kind="ram", capacity_bytes=d.ram_bytes, usable_bytes=ram_usable_bytes(d.ram_bytes),
        weights_bytes=weights, activation_bytes=act, overhead_bytes=0,
        kv_bytes_per_token=kv_tok, kv_window_bytes_per_token=win, state_bytes_per_sequence=state,
    )


def _cpu_devices(d: Deployment) -> list[DeviceMemory]:
    """CPU only: everything in system RAM (llama.cpp)."""
    m, e = d.model, d.engine
    dev = _ram_device(d, sum(weights_by_group(m, d.scheme).values()), kv_bytes_per_token(m, d.kv_dtype),
                      kv_window_bytes_per_token(m, d.kv_dtype),
                      act=_activation_bytes(m, e.chunk_tokens_small, e.max_seqs_small),
                      state=linear_state_bytes_per_sequence(m, d.engine.id))
    dev.overhead_bytes = e.runtime_bytes_single
    return [dev]


# ------------------------------------------------------------------------------------------------
# Capacity, concurrency and the verdict
# ------------------------------------------------------------------------------------------------

def _block_floor(tokens: float, block: int) -> int:
    return int(tokens // block * block)


def estimate_memory(d: Deployment, limits: bool = True) -> MemoryEstimate:
    """Place weights, KV, activations and overhead on every device and decide whether it fits.

    Returns per-device bytes, ``kv_capacity_tokens`` (one replica), ``max_concurrency`` (sequences of
    ``context_tokens`` the whole deployment holds), ``max_context_tokens`` (longest context at
    ``concurrency``), and ``fits`` with the reasons when it does not.

    A dense model on a hybrid box is split by whole layers according to the load (as llama.cpp's
    ``-ngl`` is chosen for a context), so there the three limits are found by re-placing the model at
    each trial load instead of being read off one placement. ``limits=False`` skips those searches (the
    verdict, devices and bytes are the same; the three limits are then those of this one placement): for
    callers that only read ``fits`` or the RAM-side bytes, such as the planner's RAM sizing.
    """
    est = _estimate_placed(d)
    if limits and placement_depends_on_load(d):
        est.max_concurrency = _largest(lambda n: _estimate_placed(replace(d, concurrency=n)).fits)
        est.max_context_tokens = _largest(lambda c: _estimate_placed(replace(d, context_tokens=c)).fits)
        est.kv_capacity_tokens = _largest(
            lambda c: _estimate_placed(replace(d, context_tokens=c, concurrency=1)).fits)
    return est


def placement_depends_on_load(d: Deployment) -> bool:
    """True when where the weights go depends on the context and concurrency (a dense model on a
    hybrid box, split by whole layers like llama.cpp's -ngl); elsewhere one placement serves any load."""
    return d.topology == "hybrid" and not d.model.is_moe


def _largest(fits: Callable[[int], bool], limit: int = 10**9) -> int:
    """Largest n >= 1 with fits(n), assuming fits is monotone (0 if even 1 does not fit)."""
    if not fits(1):
        return 0
    low, high = 1, 2
    while high < limit and fits(high):
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def _estimate_placed(d: Deployment) -> MemoryEstimate:
    """One placement of `d` and the limits read off it."""
    m = d.model
    builder = {"gpu": _server_devices, "unified": _server_devices, "hybrid": _hybrid_devices, "cpu": _cpu_devices}
    devices = builder[d.topology](d)
    window = m.sliding_window
    seqs_per_replica = math.ceil(d.concurrency / d.replicas)
    reasons: list[str] = []
    for dev in devices:
        static_pool = dev.kv_pool_bytes if dev.kv_pool_bytes else None
        pool = dev.usable_bytes - dev.weights_bytes - dev.activation_bytes - dev.overhead_bytes
        dev.kv_pool_bytes = max(0, min(pool, static_pool) if static_pool is not None else pool)
        seqs_here = math.ceil(seqs_per_replica / dev.seq_groups)
        dev.kv_bytes = round(seqs_here * _seq_bytes(dev, d.context_tokens, window))
        if (pool < 0 or (static_pool is not None and static_pool < 0)) and not reasons:
            need = dev.weights_bytes + dev.activation_bytes + dev.overhead_bytes
            reasons.append(f"{dev.name}{_others(devices, dev)}: weights, activations and runtime need "
                           f"{format_device_bytes(need)} but {format_device_bytes(dev.usable_bytes)} of "
                           f"{format_device_bytes(dev.capacity_bytes)} is usable")
    kv_devices = [dev for dev in devices
                  if dev.kv_bytes_per_token or dev.kv_window_bytes_per_token or dev.state_bytes_per_sequence]
    if not reasons:
        for dev in kv_devices:
            if dev.kv_bytes > dev.kv_pool_bytes:
                reasons.append(
                    f"{dev.name}{_others(devices, dev)}: KV cache for {d.concurrency} x {d.context_tokens:,} tokens needs "
                    f"{format_device_bytes(dev.kv_bytes)}, only {format_device_bytes(dev.kv_pool_bytes)} left after weights")
                break
    block = d.engine.kv_block_tokens
    capacity_tokens = min(
        (_block_floor(max(0, dev.kv_pool_bytes - dev.state_bytes_per_sequence) / dev.kv_bytes_per_token, block)
         * dev.seq_groups for dev in kv_devices if dev.kv_bytes_per_token), default=0)
    max_seqs = min((int(dev.kv_pool_bytes // _seq_bytes(dev, d.context_tokens, window)) * dev.seq_groups
                    for dev in kv_devices), default=0)
    max_context = min((_max_context(dev, seqs_per_replica, window) for dev in kv_devices), default=0)
    warnings = []
    if d.context_tokens > m.max_context_tokens:
        warnings.append(f"context {d.context_tokens:,} tokens exceeds {m.name}'s maximum of "
                        f"{m.max_context_tokens:,}; the estimate is extrapolated")
    groups = weights_by_group(m, d.scheme)
    return MemoryEstimate(
        fits=not reasons, reasons=reasons, warnings=warnings,
        weights_bytes=sum(groups.values()), weights_by_group_bytes=groups,
        kv_bytes_per_token=round(kv_bytes_per_token(m, d.kv_dtype)),
        kv_window_bytes_per_sequence=round(kv_window_bytes_per_token(m, d.kv_dtype) * (window or 0)),
        kv_capacity_tokens=capacity_tokens, max_concurrency=max_seqs * d.replicas,
        max_context_tokens=max_context, replicas=d.replicas, devices=devices,
        linear_state_bytes_per_sequence=round(linear_state_bytes_per_sequence(m, d.engine.id)),
        checkpoint_bytes=checkpoint_bytes(m, d.scheme),
    )


def _others(devices: list[DeviceMemory], dev: DeviceMemory) -> str:
    """' (and N more like it)' when other devices carry the same load as `dev`."""
    same = sum(1 for o in devices if o is not dev and o.kind == dev.kind and o.weights_bytes == dev.weights_bytes)
    return f" (and {same} more like it)" if same else ""


def _max_context(dev: DeviceMemory, seqs_per_replica: int, window: int | None) -> int:
    """Longest context [tokens] such that this device's share of `seqs_per_replica` sequences fits."""
    seqs = math.ceil(seqs_per_replica / dev.seq_groups)
    budget = dev.kv_pool_bytes / seqs - dev.state_bytes_per_sequence
    if budget <= 0:
        return 0
    a, s, w = dev.kv_bytes_per_token, dev.kv_window_bytes_per_token, window or 0
    if (a + s) * w >= budget:
        return int(budget / (a + s))
    return int((budget - s * w) / a) if a else 10**9


__all__ = ["Deployment", "DeviceMemory", "MemoryEstimate", "KV_DTYPES", "estimate_memory",
           "weights_by_group", "kv_bytes_per_token", "placement_depends_on_load", "kv_window_bytes_per_token",
           "layer_bytes", "pipeline_stages", "ram_usable_bytes", "ram_needed_bytes", "unified_limit_bytes",
           "device_label", "ram_label", "rank_layer_bytes"]
