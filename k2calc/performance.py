"""Performance model: decode and prefill speed, time to first token, bottleneck and roofline.

Physics (architecture.md section 3, facts.md F):

* **Decode** (one step = one token for each of the B sequences a replica serves): every device reads
  its share of the weights touched this step (active weights once for the whole batch; for MoE layers
  the expected distinct experts E(1-(1-k/E)^B)) and each sequence's KV cache, and does 2 FLOP per
  active parameter per token plus attention's dot products. Step time per pipeline stage =
  per-layer fixed latency (kernel launches, small kernels) + bytes / achievable bandwidth + FLOPs /
  achievable compute + communication (two tensor-parallel all-reduces per layer, expert-parallel
  all-to-all, pipeline hops); plus a fixed per-step engine overhead (scheduling, sampling).
* **Hybrid CPU+GPU** (ktransformers, llama.cpp with experts on the CPU): per layer the GPU part
  (attention, shared experts, dense layers, GPU-resident experts) and the CPU part (routed experts read
  from DDR5 at the sockets' achievable bandwidth) run side by side; the slower side sets the pace.
* **Prefill**: about 2 x active parameters FLOP per token plus the quadratic attention term, at an
  achievable fraction of the dense peak for the kernel's dtype, plus reading the weights once per
  chunk; hybrid ktransformers prefills long prompts on the GPU, streaming the CPU-resident experts over
  PCIe layer by layer.
* **TTFT** at concurrency C: in steady serving a new prompt is prefilled in chunks between the other
  users' decode steps (``ttft_s``); when all C prompts arrive together they queue, on average behind
  (C + 1) / 2 of them (``ttft_burst_s``).
* **Roofline**: the same bytes and FLOPs at 100% of peak bandwidth and compute, no fixed latency, no
  communication: an upper bound no prediction may exceed.

Efficiencies and latencies are calibration parameters (:data:`PLATFORMS`, :data:`DECODE_COMPUTE`,
:data:`PREFILL_COMPUTE`), fitted by hand on ``data/measurements.csv`` as documented in
``k2calc/calibration.py``; each carries the rows it rests on.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from .hardware import Hardware
from .memory import Deployment, MemoryEstimate, layer_bytes, pipeline_stages
from .models import ModelArch, all_layer_params, layer_params, param_counts

# ------------------------------------------------------------------------------------------------
# Calibration parameters
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """Achievable fractions and fixed latencies of one class of device.

    bandwidth_efficiency : achieved / theoretical memory bandwidth in decode [1]
    layer_latency_mla_s, layer_latency_gqa_s : fixed time per decoder layer and step, whatever the bytes:
        kernel launches and many small kernels (MLA + MoE layers run about twice as many) [s]
    step_overhead_s : per decode step: scheduling, sampling, CPU-side bookkeeping [s]
    collective_latency_s : one all-reduce or all-to-all of a small message over the scale-up link [s]
    gemm_half_rows : tokens a weight matrix must see for its GEMM to reach half the kernel's best
        efficiency (tensor-core tiles are 64-128 rows; Apple's 8x8 simdgroup tiles waste little) [tokens]
    """

    name: str
    bandwidth_efficiency: float
    layer_latency_mla_s: float
    layer_latency_gqa_s: float
    step_overhead_s: float
    collective_latency_s: float
    basis: str
    gemm_half_rows: float = 32.0


PLATFORMS: dict[str, Platform] = {p.name: p for p in (
    # K2.5 INT4 8x H200 TPOT 9.22 ms at batch 1 (61 MLA+MoE layers). 0.8 bandwidth:
    # ai-dynamo/aiconfigurator systems/h200_sxm.yaml (empirical factor).
    Platform("nvidia-hopper", 0.80, 40e-6, 80e-6, 0.5e-3, 8e-6, "k25-h200x8 c1/c16 at 1K and 8K, k2i-h200x16 c16"),
    # A100 (Ampere, HBM2e): Llama 3.1 70B BF16 on 8x A100 (SGLang cookbook), decode and TTFT.
    Platform("nvidia-ampere", 0.80, 80e-6, 80e-6, 0.5e-3, 10e-6, "l31-70b-a100x8"),
    # DeepSeek R1 FP8 8x B200 TPOT 9.16 ms (61 MLA+MoE layers), gpt-oss-120b 2.31 ms (36 GQA+MoE layers).
    Platform("nvidia-blackwell", 0.80, 100e-6, 80e-6, 0.5e-3, 8e-6,
             "dsr1-b200x8 c1, goss120-b200x8 c1, qwen3-235b-b200x8 c1, glm46-b200x8 c1"),
    # MiniMax M2 FP8 4x MI300X TPOT 22.2 ms at batch 1 (62 GQA+MoE layers): ROCm kernels carry far
    # more fixed latency per layer than CUDA graphs on NVIDIA.
    Platform("amd-hbm", 0.65, 330e-6, 300e-6, 1.0e-3, 15e-6, "mm2-mi300x4 c1, dsv3-mi300x8"),
    # RTX 4090 / 5090 / PRO 6000 / L20: gpt-oss-20b 205-215 tok/s under Ollama.
    Platform("nvidia-gddr", 0.80, 90e-6, 60e-6, 0.4e-3, 25e-6, "goss20-5090, goss20-pro6000"),
    # DGX Spark (GB10, LPDDR5x 273 GB/s): Llama 3.1 8B/70B FP8 20.5 / 2.7 tok/s (SGLang).
    Platform("nvidia-lpddr", 0.68, 90e-6, 60e-6, 0.5e-3, 30e-6, "l31-8b-spark, l31-70b-spark"),
    # Mac Studio M3 Ultra: Kimi K2.6 MLX 3.3 bit 21.4 tok/s, DeepSeek R1 Q4_K_M Ollama 19.9 tok/s,
    # gpt-oss-20b 115 tok/s. Thunderbolt 5 RDMA: tens of microseconds per hop (facts.md F).
    Platform("apple", 0.62, 120e-6, 80e-6, 0.5e-3, 50e-6, "k26-m3u512 mlx, dsr1-m3u512, goss20-m3u512",
             gemm_half_rows=2.0),
)}

# CPU side (hybrid and CPU-only): achieved share of one socket's theoretical DDR5 bandwidth when
# decoding (kt-kernel / llama.cpp expert kernels at batch 1), and what each further socket adds through
# NUMA-aware placement. DeepSeek V3 Q4_K_M: EPYC 9654 one socket 14 tok/s (0.43); 2x Xeon 6454S
# 13.5 tok/s and MiniMax M2.1 on 2x 8488C 21.8 tok/s (about 0.29 of both sockets' sum).
CPU_SOCKET_BANDWIDTH_EFFICIENCY = 0.43
CPU_EXTRA_SOCKET_GAIN = 0.35
# Per-layer hand-off between GPU and CPU in hybrid decode (launch, PCIe round trip, synchronisation).
HYBRID_LAYER_SYNC_S = 60e-6
# Achieved PCIe bandwidth when ktransformers streams CPU-resident experts to the GPU for prefill, as a
# share of the link's theoretical per-direction figure: K2 Thinking prefill on a 4090 48 GB spends
# ~37 s moving 571 GB of experts over PCIe 4.0 x16 (32 GB/s): ~0.48.
PCIE_STREAM_EFFICIENCY = 0.48

# Decode compute: achieved fraction of the kernel dtype's dense peak for the small-batch GEMMs of a
# decode step (a few tokens per expert). Strongly kernel-dependent (facts.md F): INT4 W4A16 MoE on
# Hopper saturates (Kimi K2.5 8x H200: ~255 tok/s from 16 to 100 users), FP8 on Blackwell keeps scaling.
DECODE_COMPUTE: dict[tuple[str, str], float] = {
    ("w4a16", "nvidia-hopper"): 0.0022,   # k25-h200x8 c16: TPOT 53 ms (c1: 9.2 ms)
    ("fp8", "nvidia-hopper"): 0.004,      # k2i-h200x16 vLLM c16: TPOT 58 ms
    ("fp8", "nvidia-blackwell"): 0.012,   # dsr1-b200x8 c16, c100
    ("fp4", "nvidia-blackwell"): 0.0013,  # goss120-b200x8 c100: TPOT 14.3 ms
    ("fp8", "amd-hbm"): 0.003,            # dsv3-mi300x8 c100 (EAGLE speculative decoding in that run)
    ("fp8", "nvidia-lpddr"): 0.05,        # l31-8b-spark c32
}
# Where no row speaks for a kernel: the platform's default. Unified-memory GPUs and CPUs run decode
# GEMVs close to their modest peaks; tensor-core GPUs waste most of a tile at small batch.
DECODE_COMPUTE_BY_PLATFORM = {"nvidia-hopper": 0.01, "nvidia-blackwell": 0.01, "nvidia-ampere": 0.01, "amd-hbm": 0.006,
                              "nvidia-gddr": 0.05, "nvidia-lpddr": 0.05, "apple": 0.5}
CPU_DECODE_COMPUTE = 0.15  # share of AMX / AVX-512 peak in CPU expert kernels at small batch

# Prefill compute: achieved fraction of the dense peak for long prompts, by engine family and platform.
PREFILL_COMPUTE: dict[tuple[str, str], float] = {
    ("server", "nvidia-hopper"): 0.40,
    ("server", "nvidia-blackwell"): 0.40,
    ("server", "nvidia-ampere"): 0.50,       # l31-70b-a100x8 TTFT at 1K and 8K prompts
    ("server", "amd-hbm"): 0.20,
    ("server", "nvidia-lpddr"): 0.45,    # l31-8b / l31-70b Spark prefill 7,991 / 803 tok/s
    ("llama.cpp", "nvidia-gddr"): 0.06,  # goss20-pro6000 / 5090 Ollama prefill (INT8 MMQ path)
    ("llama.cpp", "nvidia-lpddr"): 0.06,  # goss20-spark Ollama prefill 2,053 tok/s
    ("llama.cpp", "apple"): 0.35,
    ("mlx", "apple"): 0.60,               # k26-m3u512 mlx prefill 224 tok/s at 1K
    ("ktransformers", "nvidia-gddr"): 0.30,  # k2t-4090-48gb prefill 30K: ~47 TFLOPS on the GPU
}
PREFILL_COMPUTE_DEFAULT = 0.30

ENGINE_FAMILY = {"vllm": "server", "sglang": "server", "ktransformers": "ktransformers",
                 "llama.cpp": "llama.cpp", "ollama": "llama.cpp", "mlx-lm": "mlx", "exo": "mlx"}
# Which peak a kernel runs at: W4A16 dequantises to BF16 tensor cores; GGUF MMQ uses INT8 MMA.
KERNEL_PEAK_DTYPE = {"w4a16": "bf16", "fp8": "fp8", "fp4": "fp4", "bf16": "bf16", "gguf": "int8", "mlx": "bf16"}


def decode_compute_efficiency(kernel: str, p: Platform) -> float:
    """Achieved share of the kernel dtype's peak in decode GEMMs on platform `p` [1]."""
    return DECODE_COMPUTE.get((kernel, p.name), DECODE_COMPUTE_BY_PLATFORM[p.name])


def platform_of(device: Hardware) -> Platform:
    """The calibration class of a GPU or unified-memory system."""
    vendor, memory = device.vendor.lower(), (device.memory_type or "").lower()
    if vendor == "apple":
        return PLATFORMS["apple"]
    if vendor == "amd":
        return PLATFORMS["amd-hbm"]
    if "hbm" in memory:
        if device.id.startswith(("b100", "b200", "b300", "gb")):
            return PLATFORMS["nvidia-blackwell"]
        return PLATFORMS["nvidia-ampere" if device.id.startswith("a100") else "nvidia-hopper"]
    if "lpddr" in memory:
        return PLATFORMS["nvidia-lpddr"]
    return PLATFORMS["nvidia-gddr"]


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


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
    roofline_s: float = 0.0
    bytes_read: float = 0.0
    flops: float = 0.0

    @property
    def total_s(self) -> float:
        return (self.fixed_s + self.weights_s + self.kv_s + self.attention_s + self.compute_s
                + self.communication_s + self.cpu_s)

    def bottleneck(self) -> str:
        parts = {"gpu-memory-bandwidth": self.weights_s + self.kv_s, "compute": self.compute_s,
                 "attention-kernel": self.attention_s,
                 "interconnect": self.communication_s, "kernel-latency": self.fixed_s, "cpu-memory-bandwidth": self.cpu_s}
        return max(parts, key=parts.get)


UNCERTAINTY_PATH = Path(__file__).resolve().parent.parent / "data" / "uncertainty.csv"
DEFAULT_BAND = 1.5   # band factor of a class with fewer than three published rows
FAR_BAND = 2.0       # band factor where no published row shares the engine family and platform


def calibration_class(d: Deployment) -> str:
    """Engine family / platform class of a deployment, e.g. 'server/nvidia-hopper' or
    'ktransformers/nvidia-gddr+cpu': the unit the uncertainty bands are computed for."""
    platform = platform_of(d.device).name if d.device else "cpu"
    return f"{ENGINE_FAMILY[d.engine.id]}/{platform}{'+cpu' if d.topology == 'hybrid' else ''}"


@lru_cache(maxsize=1)
def load_bands() -> dict[tuple[str, str], tuple[float, int]]:
    """(class, 'decode' | 'prefill/ttft') -> (band factor, rows), from data/uncertainty.csv, which
    ``python -m k2calc validate --write-bands`` regenerates from the published measurements."""
    if not UNCERTAINTY_PATH.exists():
        return {}
    with UNCERTAINTY_PATH.open(newline="") as f:
        return {(r["class"], r["kind"]): (float(r["band_factor"]), int(r["rows"])) for r in csv.DictReader(f)}


def band(klass: str, kind: str) -> tuple[float, int]:
    """(factor, rows): a speed v has the band [v / factor, v x factor]."""
    return load_bands().get((klass, kind), (FAR_BAND, 0))


@dataclass
class Band:
    """A speed and its uncertainty band (same unit as the speed)."""

    value: float
    low: float
    high: float


@dataclass
class PerformanceEstimate:
    """Speeds for a scenario; every speed in tokens/s, times in seconds."""

    decode_tokens_per_s_per_user: float
    decode_tokens_per_s_total: float
    prefill_tokens_per_s: float
    ttft_s: float          # steady serving: users come and go, a new prompt joins the running batch
    ttft_burst_s: float    # all `concurrency` prompts arrive together and queue
    bottleneck: str
    roofline_decode_tokens_per_s_per_user: float
    roofline_decode_tokens_per_s_total: float
    roofline_prefill_tokens_per_s: float
    output_tokens_per_s_total: float
    step: StepCost
    batch_per_replica: int
    sequence_tokens: int
    calibration_class: str = ""
    decode_band_factor: float = FAR_BAND
    prefill_band_factor: float = FAR_BAND
    supporting_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def bands(self) -> dict[str, Band]:
        """low/high of every speed: the calibration spread of its class (TTFT: time, so inverted)."""
        fd, fp = self.decode_band_factor, self.prefill_band_factor
        out = {}
        for name, f in (("decode_tokens_per_s_per_user", fd), ("decode_tokens_per_s_total", fd),
                        ("output_tokens_per_s_total", fd), ("prefill_tokens_per_s", fp)):
            v = getattr(self, name)
            out[name] = Band(v, v / f, v * f)
        out["ttft_s"] = Band(self.ttft_s, self.ttft_s / fp, self.ttft_s * fp)
        return out

    def as_dict(self) -> dict:
        d = asdict(self)
        d["step"] = {**asdict(self.step), "total_s": self.step.total_s}
        for name, b in self.bands().items():
            d[f"{name}_low"], d[f"{name}_high"] = b.low, b.high
        return d


# ------------------------------------------------------------------------------------------------
# Decode
# ------------------------------------------------------------------------------------------------


def experts_touched(n_experts: int, top_k: int, batch: float) -> float:
    """Expected distinct experts a MoE layer reads for `batch` tokens: E(1 - (1 - k/E)^B) [count]."""
    if n_experts == 0:
        return 0.0
    return n_experts * (1.0 - (1.0 - top_k / n_experts) ** batch)


def _attention_flops_per_token(m: ModelArch, seq_len: float) -> float:
    """Attention dot products for one decoded token over `seq_len` cached tokens, whole model [FLOP].

    MLA (weights absorbed): 2 x heads x L x (kv_lora + rope) for scores + 2 x heads x L x kv_lora for
    values; GQA: 4 x heads x head_dim x L, sliding layers over at most the window."""
    if m.attention == "mla":
        per_layer = 2 * m.num_heads * seq_len * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
        return m.num_layers * per_layer
    full = (m.num_layers - m.sliding_layers) * 4 * m.num_heads * m.head_dim * seq_len
    window = min(seq_len, m.sliding_window or 0)
    return full + m.sliding_layers * 4 * m.num_heads * m.head_dim * window


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


# Attention kernels over the KV cache reach a good share of the BF16 peak even at small batch (they
# stream the cache); an assumption.
ATTENTION_EFFICIENCY = 0.3


# Dense GEMMs of a decode step (attention projections, dense and shared MLPs): the best share of the
# peak a GEMM reaches, scaled by tile occupancy for the batch's rows (gemm_efficiency). Fitted on
# Llama 3.1 70B BF16 on 8x A100 at 16-100 users and Llama 3.1 8B FP8 on DGX Spark at 32 users.
DECODE_GEMM_EFFICIENCY = 0.3
DECODE_GEMM_HALF_ROWS = 64


def _compute_s(f: DecodeFlops, device: Hardware, p: Platform, scheme, is_moe: bool, devices: int = 1,
               batch: float = 1) -> float:
    """Time for `f` on `devices` devices of a platform [s]: dense GEMMs at a tile-occupancy dependent
    efficiency for `batch` rows, attention at its kernel's, routed experts at the MoE kernel's
    calibrated small-batch efficiency."""
    expert_kernel = scheme.expert_kernel
    other_kernel = scheme.format_of("attention").kernel
    half = DECODE_GEMM_HALF_ROWS if p.gemm_half_rows >= 8 else p.gemm_half_rows
    gemm = DECODE_GEMM_EFFICIENCY * gemm_efficiency(batch, half)
    t = f.other / (_peak(device, other_kernel) * devices * gemm)
    t += f.attention / (_peak(device, "bf16") * devices * ATTENTION_EFFICIENCY)
    if is_moe:
        t += f.routed / (_peak(device, expert_kernel) * devices * decode_compute_efficiency(expert_kernel, p))
    return t


def _peak(device: Hardware, kernel: str) -> float:
    """Dense peak of `device` for the dtype `kernel` computes in [FLOP/s] (BF16 when unknown)."""
    return device.peak_flops_per_s(KERNEL_PEAK_DTYPE.get(kernel, "bf16")) or device.peak_flops_per_s("bf16") or 1e12


def _collective_s(p: Platform, device: Hardware, message_bytes: float, ranks: int) -> float:
    """One ring all-reduce of `message_bytes` over `ranks` devices [s]."""
    if ranks <= 1:
        return 0.0
    link = device.link_bytes_per_s or 25e9
    return p.collective_latency_s + 2 * (ranks - 1) / ranks * message_bytes / link


# Between servers: 400 Gb/s InfiniBand or RoCE per GPU (50 GB/s) and its latency; an assumption for
# HGX-class clusters.
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
        p = replace(p, collective_latency_s=INTERNODE_LATENCY_S)
    link = INTERNODE_BYTES_PER_S if spans_nodes else (dev.link_bytes_per_s or 25e9)
    allreduce = 0.0 if d.tp <= 1 else p.collective_latency_s + 2 * (d.tp - 1) / d.tp * message / link
    total = 0.0
    for i in layers:
        moe = layer_params(m, i).n_routed > 0
        if moe and d.ep > 1:
            dispatch = p.collective_latency_s + message * m.experts_per_tok * (d.ep - 1) / d.ep / link
            total += allreduce + 2 * dispatch
        else:
            total += 2 * allreduce
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


def _kv_read_rate(d: Deployment, p: Platform, bandwidth: float, seqs: int, heads: int, seq_len: float) -> float:
    """Bytes/s at which one GPU reads its sequences' KV cache in a decode step [B/s]."""
    rate = bandwidth * p.bandwidth_efficiency
    if d.model.attention == "mla" and p.name in MLA_SLOW_PLATFORMS and d.engine.id in MLA_SLOW_ENGINES:
        work = max(1, seqs * heads) * max(1.0, seq_len / MLA_SPLIT_TOKENS)
        rate = min(rate, MLA_SMALL_WORK_BYTES_PER_S * work ** MLA_WORK_EXPONENT)
    return rate


def _layer_latency(m: ModelArch, p: Platform) -> float:
    """Fixed time per decoder layer and decode step [s]: the platform's figure for a MoE layer with 8
    experts per token, half of it for a dense MLP, in between for fewer experts (each routed expert adds
    work to the grouped-GEMM, top-k and combine kernels). Fitted: Qwen3-235B and GLM-4.6 (k = 8) and
    gpt-oss-120b (k = 4) on 8x B200, DeepSeek R1 on 8x B200, K2.5 on 8x H200."""
    base = p.layer_latency_mla_s if m.attention == "mla" else p.layer_latency_gqa_s
    return base * (0.5 + 0.5 * min(m.experts_per_tok, 8) / 8)


# Prefill runs outside CUDA graphs and with more kernels per layer than decode: its fixed time per layer
# and chunk is this multiple of the decode figure (fitted on 1,000-token TTFTs of K2.5 on H200,
# GLM-4.6 and Qwen3-235B on B200).
PREFILL_LATENCY_FACTOR = 10.0


def _lm_head_bytes(m: ModelArch, scheme) -> float:
    return scheme.format_of("lm_head").bytes_per_weight * m.vocab_size * m.hidden_size


def _server_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float) -> StepCost:
    """Decode step of a GPU server or unified-memory system replica (TP x PP)."""
    m, s, dev = d.model, d.scheme, d.device
    p = platform_of(dev)
    bw = dev.memory_bandwidth_bytes_per_s
    attn_tp = d.tp // d.dp
    touched = experts_touched(m.n_routed_experts, m.experts_per_tok, batch)
    cost = StepCost(fixed_s=p.step_overhead_s)
    for stage, layers in enumerate(pipeline_stages(m.num_layers, d.pp)):
        weights = 0.0
        for i in layers:
            lb = layer_bytes(m, s, i)
            down = lb.attn_down if d.engine.mla_replicated_under_tp else lb.attn_down / attn_tp
            weights += (lb.attn_heads / attn_tp + lb.attn_kv / min(attn_tp, m.num_kv_heads) + down + lb.norms
                        + lb.router + (lb.dense + lb.shared + lb.routed_per_expert * min(touched, lb.n_routed)) / d.tp)
        if stage == d.pp - 1:
            weights += _lm_head_bytes(m, s) / d.tp
        rank = mem.devices[stage * d.tp]
        window = min(seq_len, m.sliding_window or 0)
        kv = math.ceil(batch / rank.seq_groups) * (rank.kv_bytes_per_token * seq_len
                                                    + rank.kv_window_bytes_per_token * window)
        flops = decode_flops(m, layers, batch, seq_len).scaled(1 / d.tp)
        comm = _step_communication_s(d, p, layers, batch)
        if stage > 0:  # hand the activations to the next pipeline stage (another node if there are several)
            latency, link = _hop(d, p, dev)
            comm += latency + batch * m.hidden_size * 2 / link
        cost.fixed_s += len(layers) * _layer_latency(m, p)
        cost.weights_s += weights / (bw * p.bandwidth_efficiency)
        at_bandwidth = kv / (bw * p.bandwidth_efficiency)
        kv_time = kv / _kv_read_rate(d, p, bw, math.ceil(batch / rank.seq_groups), m.num_heads // attn_tp, seq_len)
        cost.kv_s += at_bandwidth
        cost.attention_s += kv_time - at_bandwidth
        cost.compute_s += _compute_s(flops, dev, p, s, m.is_moe, batch=batch)
        cost.communication_s += comm
        cost.roofline_s += max((weights + kv) / bw, flops.total / _peak(dev, s.expert_kernel))
        cost.bytes_read += weights + kv
        cost.flops += flops.total
    return cost


def cpu_bandwidth_bytes_per_s(cpu: Hardware, sockets: int) -> float:
    """Achievable decode bandwidth of `sockets` sockets: one socket at its efficiency, each further
    socket adding a NUMA-limited share (see CPU_EXTRA_SOCKET_GAIN) [B/s]."""
    return cpu.memory_bandwidth_bytes_per_s * CPU_SOCKET_BANDWIDTH_EFFICIENCY * (1 + (sockets - 1) * CPU_EXTRA_SOCKET_GAIN)


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
    gpu_bytes = cpu_bytes = 0.0
    for i in range(m.num_layers):
        lb = layer_bytes(m, s, i)
        routed = lb.routed_per_expert * min(touched, lb.n_routed)
        gpu_bytes += lb.total - lb.routed_per_expert * lb.n_routed + routed * gpu_share
        cpu_bytes += routed * (1 - gpu_share)
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
    kv = batch * mem.devices[0].kv_bytes_per_token * seq_len * (1 if replicated_kv else n)
    gpu_time = (gpu_bytes / n + kv / n) / (gpu.memory_bandwidth_bytes_per_s * p.bandwidth_efficiency) \
        + _compute_s(gpu_flops, gpu, p, s, m.is_moe, devices=n, batch=batch)
    cpu_time = cpu_bytes / cpu_bandwidth_bytes_per_s(cpu, d.sockets) + cpu_flops / (_cpu_peak(cpu, d.sockets) * CPU_DECODE_COMPUTE)
    comm = m.num_layers * 2 * _collective_s(p, gpu, batch * m.hidden_size * 2, n)
    cost = StepCost(fixed_s=p.step_overhead_s + m.num_layers * (_layer_latency(m, p) + HYBRID_LAYER_SYNC_S),
                    communication_s=comm, bytes_read=gpu_bytes + cpu_bytes + kv, flops=flops.total)
    if cpu_time >= gpu_time:
        cost.cpu_s = cpu_time
    else:
        cost.weights_s = gpu_time
    roof_gpu = max((gpu_bytes + kv) / n / gpu.memory_bandwidth_bytes_per_s, gpu_flops.total / (_peak(gpu, s.expert_kernel) * n))
    roof_cpu = max(cpu_bytes / (cpu.memory_bandwidth_bytes_per_s * d.sockets), cpu_flops / _cpu_peak(cpu, d.sockets))
    cost.roofline_s = max(roof_gpu, roof_cpu)
    return cost


def _cpu_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float) -> StepCost:
    """Decode step on CPUs alone: every byte from DDR5."""
    m, s, cpu = d.model, d.scheme, d.cpu
    touched = experts_touched(m.n_routed_experts, m.experts_per_tok, batch)
    weights = _lm_head_bytes(m, s)
    for i in range(m.num_layers):
        lb = layer_bytes(m, s, i)
        weights += lb.total - lb.routed_per_expert * lb.n_routed + lb.routed_per_expert * min(touched, lb.n_routed)
    kv = batch * mem.devices[0].kv_bytes_per_token * seq_len
    flops = decode_flops(m, range(m.num_layers), batch, seq_len).total
    peak = _cpu_peak(cpu, d.sockets)
    cost = StepCost(fixed_s=m.num_layers * CPU_LAYER_LATENCY_S + CPU_STEP_OVERHEAD_S,
                    cpu_s=(weights + kv) / cpu_bandwidth_bytes_per_s(cpu, d.sockets),
                    compute_s=flops / (peak * CPU_DECODE_COMPUTE), bytes_read=weights + kv, flops=flops)
    cost.roofline_s = max((weights + kv) / (cpu.memory_bandwidth_bytes_per_s * d.sockets), flops / peak)
    return cost


# CPU-only decode: per-layer thread synchronisation and per-step overhead (llama.cpp); assumptions.
CPU_LAYER_LATENCY_S = 20e-6
CPU_STEP_OVERHEAD_S = 0.5e-3


def decode_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float) -> StepCost:
    """Cost of one decode step for `batch` sequences of `seq_len` cached tokens in one replica."""
    builder = {"gpu": _server_step, "unified": _server_step, "hybrid": _hybrid_step, "cpu": _cpu_step}
    return builder[d.topology](d, mem, batch, seq_len)


# ------------------------------------------------------------------------------------------------
# Prefill
# ------------------------------------------------------------------------------------------------


def prefill_flops(m: ModelArch, tokens: int) -> tuple[float, float, float]:
    """(routed-expert, other, lm_head) FLOP to prefill one prompt of `tokens`: 2 FLOP per active matrix
    parameter per token plus causal attention (MLA N^2 x heads x (qk + v dims), GQA N^2 x heads x 2 x
    head_dim per layer, sliding layers N x window); the lm_head runs once, for the last token."""
    routed = 2 * param_counts(m).active_routed * tokens
    params = _matrix_params_per_token(m, range(m.num_layers))
    other = 2 * params * tokens - routed
    if m.attention == "mla":
        other += m.num_layers * tokens ** 2 * m.num_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
    else:
        other += (m.num_layers - m.sliding_layers) * tokens ** 2 * m.num_heads * 2 * m.head_dim
        other += m.sliding_layers * tokens * min(tokens, m.sliding_window or 0) * m.num_heads * 4 * m.head_dim
    return routed, other, 2.0 * m.vocab_size * m.hidden_size


def gemm_efficiency(rows: float, half_rows: float = 32.0) -> float:
    """Share of a GEMM kernel's best efficiency reached when a weight matrix sees `rows` tokens [1]:
    rows / (rows + half_rows). The default 32 rows for tensor-core GPUs is an assumption checked
    against K2.5's 1,000-token TTFT on 8x H200."""
    return rows / (rows + half_rows)


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
REQUEST_OVERHEAD_S = {"server": 0.02, "ktransformers": 0.05, "llama.cpp": 0.01, "mlx": 0.01}


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


def _prompt_work(m: ModelArch, mem: MemoryEstimate, tokens: int) -> _PromptWork:
    routed, other, lm_head = prefill_flops(m, tokens)
    groups = mem.weights_by_group_bytes
    if m.is_moe:
        touched = experts_touched(m.n_routed_experts, m.experts_per_tok, tokens)
        rows, share = tokens * m.experts_per_tok / touched, touched / m.n_routed_experts
    else:
        rows, share = tokens, 1.0
    return _PromptWork(routed, other, lm_head, rows, share, groups["routed_experts"],
                       mem.weights_bytes - groups["routed_experts"])


def prefill_time(d: Deployment, mem: MemoryEstimate, tokens: int) -> tuple[float, float]:
    """(predicted, roofline) seconds to prefill `tokens` prompt tokens in one replica.

    Weights are read once per chunk, the routed experts only as far as the prompt touches them
    (E(1-(1-k/E)^N) experts per layer); each GEMM runs at its kernel's efficiency scaled by how many
    tokens its weight matrix sees."""
    m, s = d.model, d.scheme
    w = _prompt_work(m, mem, tokens)
    flops = w.routed + w.other + w.lm_head
    touched_bytes = w.other_bytes + w.routed_bytes * w.routed_share
    family = ENGINE_FAMILY[d.engine.id]
    cpu_eta = CPU_PREFILL_GGUF if s.expert_kernel == "gguf" else CPU_PREFILL_AMX
    if d.topology == "cpu":
        peak = _cpu_peak(d.cpu, d.sockets, s.expert_kernel)
        compute = (w.routed / gemm_efficiency(w.expert_rows, CPU_GEMM_HALF_ROWS)
                   + w.other / gemm_efficiency(tokens, CPU_GEMM_HALF_ROWS) + w.lm_head) / (peak * cpu_eta)
        t = max(compute, touched_bytes / cpu_bandwidth_bytes_per_s(d.cpu, d.sockets))
        return t, max(flops / peak, touched_bytes / (d.cpu.memory_bandwidth_bytes_per_s * d.sockets))
    dev = d.device
    p = platform_of(dev)
    kernel = s.expert_kernel if m.is_moe else s.format_of("dense_mlp").kernel
    n_gpu = d.count if d.topology == "hybrid" else d.tp
    peak = _peak(dev, kernel) * n_gpu
    eta = PREFILL_COMPUTE.get((family, p.name), PREFILL_COMPUTE_DEFAULT)
    gpu_compute = (w.other / gemm_efficiency(tokens, p.gemm_half_rows) + w.lm_head) / (peak * eta)
    expert_compute = w.routed / (peak * eta * gemm_efficiency(w.expert_rows, p.gemm_half_rows))
    latency = m.num_layers * _layer_latency(m, p) * PREFILL_LATENCY_FACTOR
    if d.topology == "hybrid":
        ram = mem.devices[-1]
        gpu_bw = dev.memory_bandwidth_bytes_per_s * n_gpu
        gpu_weights = (mem.weights_bytes - ram.weights_bytes) / (gpu_bw * p.bandwidth_efficiency)
        ram_touched = ram.weights_bytes * (w.routed_share if m.is_moe else 1.0)
        fixed = latency + m.num_layers * HYBRID_LAYER_SYNC_S
        cpu_share = ram.weights_bytes / max(1, w.routed_bytes) if m.is_moe else 0.0
        if m.is_moe and (d.kt_prefill == "cpu" or tokens < STREAM_MIN_TOKENS):
            # Routed experts in RAM are computed where they live, with AMX (or llamafile for GGUF).
            cpu_peak = _cpu_peak(d.cpu, d.sockets, s.expert_kernel)
            cpu_compute = w.routed * cpu_share / (cpu_peak * cpu_eta * gemm_efficiency(w.expert_rows, CPU_GEMM_HALF_ROWS))
            cpu_read = ram_touched / cpu_bandwidth_bytes_per_s(d.cpu, d.sockets)
            # The CPU streams its experts from DDR5 while it computes: the slower of the two counts.
            t = gpu_compute + expert_compute * (1 - cpu_share) + max(cpu_compute, cpu_read) + gpu_weights + fixed
            roof = max(flops / (peak + cpu_peak), ram_touched / (d.cpu.memory_bandwidth_bytes_per_s * d.sockets))
            return t, roof
        # Long prompts: the GPU computes every layer, the RAM-resident weights streamed over PCIe.
        link = (dev.link_bytes_per_s or 32e9) * n_gpu
        t = ram_touched / (link * PCIE_STREAM_EFFICIENCY) + gpu_weights + gpu_compute + expert_compute + fixed
        return t, max(ram_touched / link, flops / peak)
    # Pipeline stages run one after another on a prompt; tensor-parallel ranks share each stage's work.
    # Every chunk of `chunk_tokens` reads the weights it touches once.
    bw = dev.memory_bandwidth_bytes_per_s * d.tp
    chunks = math.ceil(tokens / max(1, d.engine.chunk_tokens(dev.memory_bytes)))
    comm = m.num_layers * 2 * _collective_s(p, dev, tokens * m.hidden_size * 2, d.tp)
    t = gpu_compute + expert_compute + chunks * (touched_bytes / (bw * p.bandwidth_efficiency) + latency) + comm
    return t, max(flops / peak, touched_bytes / bw)


# ------------------------------------------------------------------------------------------------
# Putting it together
# ------------------------------------------------------------------------------------------------


def estimate_performance(d: Deployment, mem: MemoryEstimate, input_tokens: int, output_tokens: int,
                         concurrency: int) -> PerformanceEstimate:
    """Decode speed per user and in total, prefill speed and TTFT for `concurrency` users sending
    `input_tokens` prompts and reading `output_tokens` answers. Sequence length during decode is the
    prompt plus half the answer (the average a step sees)."""
    batch = max(1, math.ceil(concurrency / d.replicas))
    seq_len = input_tokens + output_tokens / 2
    step = decode_step(d, mem, batch, seq_len)
    per_user = 1.0 / step.total_s
    total = per_user * min(concurrency, batch * d.replicas)
    roof_user = 1.0 / step.roofline_s
    t_prefill, roof_prefill = prefill_time(d, mem, input_tokens)
    overhead = REQUEST_OVERHEAD_S[ENGINE_FAMILY[d.engine.id]]
    # Steady serving: a new prompt is prefilled in chunks between the other users' decode steps; it
    # waits on average half a step to join, then each chunk shares a step with them.
    chunks = math.ceil(input_tokens / max(1, d.engine.chunk_tokens(d.device.memory_bytes if d.device else 0)))
    others = step.total_s if batch > 1 else 0.0
    ttft = overhead + t_prefill + (chunks + 0.5) * others + step.total_s
    # All users at once (a burst): prompts queue, on average behind (C + 1) / 2 of them.
    queue = math.ceil((batch + 1) / 2)
    ttft_burst = overhead + (prefill_time(d, mem, input_tokens * queue)[0] if queue > 1 else t_prefill) + step.total_s
    duration = ttft + (output_tokens - 1) * step.total_s
    notes = []
    if d.topology == "hybrid":
        notes.append("hybrid: routed experts decoded on the CPU; long prompts prefilled on the GPU "
                     "with the CPU-resident experts streamed over PCIe")
    klass = calibration_class(d)
    decode_band, decode_rows = band(klass, "decode")
    prefill_band, prefill_rows = band(klass, "prefill/ttft")
    if decode_rows + prefill_rows == 0:
        notes.append(f"no published measurement for {klass}: the band is widened to x{FAR_BAND:g}")
    return PerformanceEstimate(
        decode_tokens_per_s_per_user=per_user, decode_tokens_per_s_total=total,
        prefill_tokens_per_s=input_tokens / t_prefill, ttft_s=ttft, ttft_burst_s=ttft_burst, bottleneck=step.bottleneck(),
        roofline_decode_tokens_per_s_per_user=roof_user,
        roofline_decode_tokens_per_s_total=roof_user * min(concurrency, batch * d.replicas),
        roofline_prefill_tokens_per_s=input_tokens / roof_prefill,
        output_tokens_per_s_total=concurrency * output_tokens / duration,
        step=step, batch_per_replica=batch, sequence_tokens=int(seq_len), calibration_class=klass,
        decode_band_factor=decode_band, prefill_band_factor=prefill_band,
        supporting_rows=decode_rows + prefill_rows, notes=notes,
    )
