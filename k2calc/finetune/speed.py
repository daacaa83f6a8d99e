"""Fine-tuning speed: FLOPs per training token and the seconds each route spends on them.

FLOPs (forward + backward, per token of training data):

* A frozen weight costs 2 FLOP per parameter per token forward and 2 more for the activation gradient
  (no weight gradient): 2x the forward. Gradient checkpointing recomputes the forward once: 3x.
  Trained weights (full fine-tuning) add the weight gradient: 3x, 4x with checkpointing. Attention's
  dot products (no weights): forward + 2x backward (+1 recompute). LoRA adapters: 6 FLOP per active
  adapter parameter (+2 recompute). lm_head is outside the checkpointed layers (never recomputed).

Time per token:

* **gpu / unified**: max(FLOPs / (N x BF16 peak x ``gpu_mfu``), weight bytes read per pass / achievable
  memory bandwidth). Communication (ZeRO-3 gathers, expert all-to-all) is inside the MFU assumption.
* **hybrid**: the CPU part (routed experts, or a dense model's overflow layers) and the GPU part run one
  after the other: layer l+1 needs layer l's expert output, and the backward needs the expert input
  gradient before the GPU can continue. CPU part = max(FLOPs / (sockets x BF16 peak x
  ``cpu_sft_efficiency``), expert bytes streamed / achievable DDR bandwidth); GPU part = FLOPs / (one
  GPU's BF16 peak x :data:`HYBRID_GPU_EFFICIENCY`): the GPUs hold different layers and take turns.
* **cpu**: max(FLOPs / (sockets x BF16 peak x ``cpu_sft_efficiency``), bytes / DDR bandwidth).
* Frozen weights in swap are paged in on every pass at ``swap_read_bytes_per_s``.
* The roofline (every FLOP at 100% of the BF16 peak of every device at once) bounds every prediction.

The efficiencies are rows of ``data/finetune_efficiencies.csv`` with their sources; the CPU one is fitted
on the published runs in ``data/finetune_runs.csv`` (:func:`k2calc.finetune.calibration.calibration`).

References
----------
* Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv 2001.08361, section 2.1
  (2 FLOP per parameter per token forward, 4 backward).
* kvcache-ai/ktransformers doc/en/SFT/KTransformers-Fine-Tuning_Developer-Technical-Notes.md (CPU experts
  in the backward, no overlap with the GPU part).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import K2CalcError
from ..hardware import Hardware
from ..memory import Deployment
from ..models import ModelArch, all_layer_params, param_counts
from ..performance import (
    achievable_bandwidth_bytes_per_s,
    experts_touched,
    kernel_efficiency,
)
from .adapters import active_adapter_params
from .data import efficiency
from .memory import TrainingJob, decoder_layers_bytes
from .spec import FinetuneSpec

CPU_SFT_EFFICIENCY = efficiency("cpu_sft_efficiency")
GPU_MFU = efficiency("gpu_mfu")
CPU_STREAM_BANDWIDTH_EFFICIENCY = efficiency("cpu_stream_bandwidth_efficiency")
SWAP_READ_BYTES_PER_S = efficiency("swap_read_bytes_per_s")
# The GPU side of a KTransformers hybrid box runs like its prefill: the inference calibration's value.
HYBRID_GPU_EFFICIENCY = kernel_efficiency("prefill", "ktransformers", "nvidia-gddr")


@dataclass(frozen=True)
class TrainFlops:
    """FLOP per training token, forward + backward (+ recompute), split by where they can run [FLOP]."""

    routed: float        # routed-expert matrices (the CPU's share on the hybrid route)
    layers_other: float  # attention projections, shared experts, dense MLP, router
    attention: float     # attention dot products (no weights)
    lm_head: float
    adapters: float
    adapters_experts: float  # adapters on routed experts (run where the experts run)

    @property
    def total(self) -> float:
        return self.routed + self.layers_other + self.attention + self.lm_head + self.adapters + self.adapters_experts


def weight_passes(trainable: bool, checkpointing: bool) -> int:
    """Matrix multiplications per weight and token, in units of the forward [1]: forward 1 + activation
    gradient 1 (+ weight gradient 1 when trained) (+ recompute 1 with checkpointing)."""
    return 2 + int(trainable) + int(checkpointing)


def train_flops_per_token(m: ModelArch, spec: FinetuneSpec, by_target: Mapping[str, int]) -> TrainFlops:
    """FLOP per token of one training step [FLOP] (multipliers in the module docstring)."""
    ckpt, trained = spec.gradient_checkpointing, spec.full
    p = weight_passes(trained, ckpt)
    other = 0.0
    for lp in all_layer_params(m):
        other += lp.attention_sharded + lp.attention_replicated + lp.dense_mlp + lp.shared + lp.router
    lm = 2 * m.vocab_size * m.hidden_size * (3 if trained else 2)
    adapter_mult = 0 if trained else 6 + 2 * int(ckpt)
    expert_adapters = by_target.get("experts", 0) * (m.experts_per_tok / m.n_routed_experts if m.is_moe else 0)
    other_adapters = active_adapter_params(m, {k: v for k, v in by_target.items() if k != "experts"})
    return TrainFlops(
        routed=2 * param_counts(m).active_routed * p, layers_other=2 * other * p,
        attention=attention_flops_per_token(m, spec.seq_len) * (3 + int(ckpt)), lm_head=lm,
        adapters=other_adapters * adapter_mult, adapters_experts=expert_adapters * adapter_mult,
    )


def attention_flops_per_token(m: ModelArch, seq_len: int) -> float:
    """Forward attention dot products of one token in a causal sequence of `seq_len` tokens [FLOP]:
    heads x (qk + v) x context per layer (the causal average L/2 times 2 FLOP), sliding layers over at
    most their window."""
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim if m.attention == "mla" else m.head_dim
    v = m.v_head_dim if m.attention == "mla" else m.head_dim
    full_layers = m.num_layers - m.sliding_layers
    window = min(seq_len, m.sliding_window or seq_len)
    return m.num_heads * (qk + v) * (full_layers * seq_len + m.sliding_layers * window)


def touched_weight_bytes(m: ModelArch, weights: Mapping[str, float], tokens: int) -> float:
    """Weight bytes one pass over a micro-batch of `tokens` tokens reads [B]: every non-expert weight
    once and the expected distinct routed experts E(1-(1-k/E)^T) of each MoE layer."""
    routed = weights.get("routed_experts", 0.0)
    rest = sum(v for g, v in weights.items() if g not in ("routed_experts", "embeddings"))
    if m.is_moe and routed:
        routed *= experts_touched(m.n_routed_experts, m.experts_per_tok, tokens) / m.n_routed_experts
    return routed + rest


def bf16_peak_flops_per_s(hw: Hardware) -> float:
    """Dense BF16 peak of one device or socket [FLOP/s] (hardware catalog); training needs it."""
    peak = hw.peak_flops_per_s("bf16")
    if not peak:
        raise K2CalcError(f"{hw.name} has no BF16 peak in the catalog; cannot estimate training speed")
    return peak


@dataclass
class Timing:
    """One route's speed: seconds per token by cause, their sum or max, what limits it, and the peak
    of all devices together [s/token, s/token, -, FLOP/s]."""

    times: dict[str, float]
    per_token_s: float
    bottleneck: str
    peak_flops_per_s: float

    @property
    def tokens_per_s(self) -> float:
        return 1.0 / self.per_token_s


def timing(job: TrainingJob, flops: TrainFlops, d: Deployment, cpu_share: float) -> Timing:
    """Seconds per training token of `job` on `d` (`cpu_share`: a hybrid dense model's CPU layers [1])."""
    if d.topology == "cpu":
        return _cpu_timing(job, flops, d)
    if d.topology == "hybrid":
        return _hybrid_timing(job, flops, d, cpu_share)
    return _data_parallel_timing(job, flops, d)


def _passes(job: TrainingJob) -> int:
    return weight_passes(job.full, job.spec.gradient_checkpointing)


def _data_parallel_timing(job: TrainingJob, flops: TrainFlops, d: Deployment) -> Timing:
    """GPU servers / unified systems: compute at the MFU, or each device reading the (gathered) weights
    its micro-batch touches once per pass, whichever is slower."""
    device, n = d.device, d.count
    peak = bf16_peak_flops_per_s(device)
    compute_s = flops.total / (peak * n * GPU_MFU)
    bw = achievable_bandwidth_bytes_per_s(device)
    bytes_s = _passes(job) * touched_weight_bytes(job.m, job.weights, job.tokens) / bw / (n * job.tokens)
    times = {"gpu_compute": compute_s, "gpu_memory_bandwidth": bytes_s}
    return Timing(times, max(compute_s, bytes_s),
                  "gpu-compute" if compute_s >= bytes_s else "gpu-memory-bandwidth", peak * n)


def _cpu_rates(d: Deployment) -> tuple[float, float]:
    """(BF16 peak of all sockets [FLOP/s], achievable streaming bandwidth [B/s])."""
    return (bf16_peak_flops_per_s(d.cpu) * d.sockets,
            d.cpu.memory_bandwidth_bytes_per_s * d.sockets * CPU_STREAM_BANDWIDTH_EFFICIENCY)


def _cpu_timing(job: TrainingJob, flops: TrainFlops, d: Deployment) -> Timing:
    """CPU only: every FLOP on the sockets, every weight streamed from DDR."""
    peak, bw = _cpu_rates(d)
    compute_s = flops.total / (peak * CPU_SFT_EFFICIENCY)
    bytes_s = _passes(job) * touched_weight_bytes(job.m, job.weights, job.tokens) / bw / job.tokens
    times = {"cpu_compute": compute_s, "cpu_memory_bandwidth": bytes_s}
    return Timing(times, max(compute_s, bytes_s),
                  "cpu-compute" if compute_s >= bytes_s else "cpu-memory-bandwidth", peak)


def _hybrid_timing(job: TrainingJob, flops: TrainFlops, d: Deployment, cpu_share: float) -> Timing:
    """GPUs + CPU: the CPU part (routed experts, or a dense model's overflow layers) then the GPU part."""
    m, f = job.m, flops
    if m.is_moe:
        cpu_flops = f.routed + f.adapters_experts
        cpu_read = touched_weight_bytes(m, {"routed_experts": job.weights["routed_experts"]}, job.tokens)
    else:
        cpu_flops = (f.layers_other + f.attention + f.adapters) * cpu_share
        cpu_read = decoder_layers_bytes(m, job.weights) * cpu_share
    cpu_peak, cpu_bw = _cpu_rates(d)
    gpu_peak = bf16_peak_flops_per_s(d.device)
    times = {"cpu_compute": cpu_flops / (cpu_peak * CPU_SFT_EFFICIENCY),
             "cpu_memory_bandwidth": _passes(job) * cpu_read / cpu_bw / job.tokens,
             "gpu_compute": (f.total - cpu_flops) / (gpu_peak * HYBRID_GPU_EFFICIENCY)}
    per_token = max(times["cpu_compute"], times["cpu_memory_bandwidth"]) + times["gpu_compute"]
    return Timing(times, per_token, max(times, key=times.get).replace("_", "-"), cpu_peak + gpu_peak * d.count)


def add_swap_reads(t: Timing, job: TrainingJob, swapped_bytes: int) -> float:
    """Charge the page-ins of `swapped_bytes` frozen weights in swap to `t`: every pass touches all
    experts at training batch sizes, so swapped weights are read on every pass. Returns the added
    time [s/token]."""
    if swapped_bytes <= 0:
        return 0.0
    swap_s = _passes(job) * swapped_bytes / SWAP_READ_BYTES_PER_S / job.tokens
    t.times["swap_reads"] = swap_s
    t.per_token_s += swap_s
    if swap_s >= max(t.times.values()):
        t.bottleneck = "swap"
    return swap_s


__all__ = ["TrainFlops", "Timing", "train_flops_per_token", "attention_flops_per_token", "weight_passes",
           "touched_weight_bytes", "bf16_peak_flops_per_s", "timing", "add_swap_reads", "CPU_SFT_EFFICIENCY",
           "GPU_MFU", "HYBRID_GPU_EFFICIENCY", "CPU_STREAM_BANDWIDTH_EFFICIENCY", "SWAP_READ_BYTES_PER_S"]
