"""Fine-tuning: LoRA, QLoRA and full SFT memory, throughput, run time and cost.

Entry point: :func:`estimate_finetune` takes a :class:`FinetuneSpec` (all inputs) and returns a
:class:`FinetuneEstimate` (all outputs). :func:`add_parser` and :func:`run` are the command-line glue
for ``python -m k2calc finetune``.

Three routes, decided by the hardware as in :mod:`k2calc.scenario`:

* **gpu**: GPU servers (or unified-memory systems), N devices, ZeRO-3/FSDP data parallel: weights,
  gradients and optimizer state sharded over the N devices, each device runs its own micro-batch.
* **hybrid**: GPUs + a CPU with system RAM, the KTransformers + LLaMA-Factory route (``USE_KT=1``).
  Routed experts (and the embedding table) live in RAM and are computed by the CPU (AMX); attention,
  shared experts, dense MLP layers, router and lm_head live on the GPUs, placed layer by layer
  (model parallel, not data parallel: KTransformers "placement strategy instead of DataParallel").
  A dense model is split by whole layers: as many as fit on the GPUs, the rest on the CPU.
  RAM that does not hold everything spills to swap, which is flagged as slow.
* **cpu**: CPU only, everything in RAM.

Memory (bytes; every constant below is named and stated in :func:`assumptions`):

* Frozen base weights: BF16 (2 B) for ``lora`` and ``full`` (KTransformers converts the FP8/INT4
  checkpoint to BF16 before SFT); ``qlora`` stores every linear weight in NF4 with double quantization,
  4 + 8/64 + 32/(64 x 256) = 4.127 bit, and keeps embeddings, lm_head, router and norms in BF16.
* LoRA adapters: r x (d_in + d_out) parameters per target matrix, per layer, per expert when routed
  experts are targeted. Per adapter parameter 16 B: BF16 weight 2 + BF16 gradient 2 + AdamW state 12
  (FP32 master copy 4 + two FP32 moments 4 + 4). LLaMA-Factory upcasts trainable LoRA weights to FP32
  (FP32 weight 4 + FP32 gradient 4 + moments 8): also 16 B.
* Full fine-tuning: 2 B BF16 weight + 2 B BF16 gradient + 12 B AdamW state per parameter, divided by N
  (ZeRO-3 / FSDP full sharding); on the hybrid route the routed experts' share lives in RAM (ZeRO-Offload).
* Activations for micro_batch x seq_len tokens, flash attention assumed (no T x T score matrix):
  without gradient checkpointing 34 x hidden bytes per token per layer (Korthikanti et al. 2022,
  "Reducing Activation Recomputation in Large Transformer Models", eq. 1 without the 5as/h score term);
  with checkpointing the layer inputs only (hidden x 2 B per token per layer) plus one layer's full
  activations, recomputed in the backward pass. Plus the logits for the loss: vocab x 6 B per token
  (BF16 logits and their FP32 upcast). On the hybrid route the CPU expert kernels cache their
  intermediate projections for the backward (KTransformers developer notes): tokens x (hidden +
  k x 3 x moe_intermediate) x 2 B per MoE layer in RAM (one layer with checkpointing, all without).

Throughput (tokens per second of training data, forward + backward):

* A frozen weight costs 2 FLOP per parameter per token forward and 2 more for the activation gradient
  (no weight gradient): 2x the forward. Gradient checkpointing recomputes the forward once: 3x.
  Trainable weights (full fine-tuning) add the weight gradient: 3x, 4x with checkpointing. Attention's
  dot products (no weights): forward + 2x backward (+1 recompute). LoRA adapters: 6 FLOP per active
  adapter parameter (+2 recompute). lm_head is outside the checkpointed layers (never recomputed).
* Hybrid: per token, the CPU part (routed experts) and the GPU part run one after the other: layer l+1
  needs layer l's expert output, and in the backward the expert input gradient is needed before the
  GPU can continue. No overlap is assumed. CPU part = max(FLOPs / (sockets x BF16 peak x
  :data:`CPU_SFT_EFFICIENCY`), expert bytes streamed / achievable DDR bandwidth); GPU part = FLOPs /
  (one GPU's BF16 peak x :data:`HYBRID_GPU_EFFICIENCY`): the GPUs hold different layers and take turns.
* GPU servers: max(FLOPs / (N x BF16 peak x :data:`GPU_MFU`), weight bytes read per pass / achievable
  HBM bandwidth). Communication (ZeRO-3 gathers, expert all-to-all) is not modelled separately: it is
  inside the MFU assumption.
* The roofline (all FLOPs at 100% of the BF16 peak of every device at once) bounds every prediction.

Calibration of :data:`CPU_SFT_EFFICIENCY` (the one fitted constant; :func:`calibration` recomputes it):
published KTransformers + LLaMA-Factory LoRA SFT throughputs on RTX 4090 + Xeon Platinum 8488C
(2 sockets assumed, 2 x 98.3 = 196.6 TFLOPS AMX BF16 peak): Kimi K2 46.55 tok/s (cutoff_len 2048,
kimik2_lora_sft_kt.yaml), DeepSeek-V3 40.35 tok/s (qlen 512, GAS 16) and DeepSeek-V2-Lite 530.38 tok/s
(qlen 512 assumed). Routed forward FLOPs per token 42.3 / 40.9 / 2.70 GFLOP, x3 with checkpointing:
the CPUs achieve 5.9 / 4.9 / 4.3 TFLOPS, and once the GPU part's time (5-8% of the total) is taken out
each point alone implies 3.2% / 2.7% / 2.3% of peak. Their geometric mean, 2.75%, predicts 40.2 / 40.5
/ 614 tok/s: measured / predicted = 1.16 / 1.00 / 0.86. (The low share is end-to-end: the developer
notes measure 17.6-18.4 TFLOPS inside the MoE kernels, ~9% of peak, and MoE time is about a quarter of
the step; the rest is PyTorch-side work folded into this one figure. The K2 run also used
``cpu_infer: 32`` threads of 96 cores.)

Known gaps: the same developer notes give V2-Lite 227.6 tok/s at qlen 512 x GAS 16 (8192 tokens in
36 s) beside the 530.38 of their backend comparison; calibration.csv keeps 530.38, and the 227.6 point
is 2.7x below this model. The notes' ~70 GB of GPU memory for V3 (summed over the GPUs) is about twice
what is placed here (~35 GiB): KTransformers' GPU-side buffers are not itemised in any source found.

References
----------
* Korthikanti et al. 2022, arXiv 2205.05198, section 4 (34 sbh bytes of activations per layer).
* Dettmers et al. 2023, "QLoRA", arXiv 2305.14314 (NF4, double quantization: 0.127 bit per parameter).
* Rajbhandari et al. 2020, "ZeRO", arXiv 1910.02054 (2 + 2 + 12 bytes per parameter, mixed precision Adam).
* kvcache-ai/ktransformers: doc/en/SFT/KTransformers-Fine-Tuning_User-Guide.md and
  KTransformers-Fine-Tuning_Developer-Technical-Notes.md (placement, CPU backward, 40.35 / 530.38 tok/s,
  "~1.2-1.3 TB host memory" for V3, "~30 GB" for V2-Lite); moonshotai/Kimi-K2-Thinking
  docs/deploy_guidance.md (46.55 tok/s, 1.97 TB RAM + 200 GB swap); SFT_Installation_Guide_KimiK2.md
  (kimik2_lora_sft_kt.yaml: lora_rank 8, lora_target all, cutoff_len 2048, batch 1, GAS 8).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .cost import default_assumptions
from .engines import (
    MAC_LARGE_THRESHOLD_BYTES,
    MAC_WIRED_FRACTION_LARGE,
    MAC_WIRED_FRACTION_SMALL,
    RAM_OS_RESERVE_FRACTION,
    RAM_OS_RESERVE_MIN_BYTES,
    UNIFIED_OS_RESERVE_FRACTION,
)
from .errors import K2CalcError, validation_message
from .hardware import Hardware, get_hardware
from .memory import ram_usable_bytes
from .models import ModelArch, all_layer_params, get_model, param_counts
from .performance import experts_touched, kernel_efficiency, platform_of
from .units import GiB, format_count, format_device_bytes

# ------------------------------------------------------------------------------------------------
# Constants (each one an assumption shown to users through assumptions())
# ------------------------------------------------------------------------------------------------

METHODS = ("lora", "qlora", "full")
TARGETS = ("attention", "experts", "shared_experts", "dense_mlp")
# LLaMA-Factory's ``lora_target: all`` (used by every published KTransformers SFT recipe) puts LoRA on
# every nn.Linear; under KTransformers the routed experts are one opaque CPU operator, so "all" reaches
# attention, shared experts and dense MLPs. For a dense model these three are "all linear layers".
DEFAULT_TARGETS: tuple[str, ...] = ("attention", "shared_experts", "dense_mlp")

BF16_BYTES = 2
# NF4 with double quantization (QLoRA): 4 bit + an 8-bit absmax per 64 weights + an FP32 scale per
# 256 absmax blocks = 4 + 0.125 + 0.00195 = 4.127 bit per weight.
NF4_DQ_BITS = 4 + 8 / 64 + 32 / (64 * 256)
ADAPTER_WEIGHT_BYTES = 2       # BF16 adapter weight [B/param]
ADAPTER_GRADIENT_BYTES = 2     # BF16 adapter gradient [B/param]
OPTIMIZER_BYTES = 12           # AdamW: FP32 master 4 + FP32 first moment 4 + FP32 second moment 4 [B/param]
FULL_WEIGHT_BYTES = 2          # full fine-tuning: BF16 weight [B/param]
FULL_GRADIENT_BYTES = 2        # full fine-tuning: BF16 gradient [B/param]

ACTIVATION_BYTES_PER_HIDDEN = 34     # Korthikanti et al. 2022: 34 sbh per layer (flash attention)
CHECKPOINT_BYTES_PER_HIDDEN = 2      # BF16 layer input kept per layer with gradient checkpointing
LOGITS_BYTES_PER_VOCAB = 6           # BF16 logits + FP32 upcast for the cross-entropy, per token
EXPERT_CACHE_BYTES = 2               # BF16 expert projections cached by the CPU kernels for backward

GPU_RUNTIME_BYTES = 1 * GiB          # CUDA context, cuBLAS workspace, allocator slack per GPU
ZERO3_LIVE_PARAMS = 10**9            # DeepSpeed stage3_max_live_parameters default: gathered params

CPU_SFT_EFFICIENCY = 0.0275          # fitted, see the module docstring and calibration()
HYBRID_GPU_EFFICIENCY = kernel_efficiency("prefill", "ktransformers", "nvidia-gddr")
GPU_MFU = 0.35                       # model FLOPs utilisation of SFT on GPU servers (an assumption)
CPU_STREAM_BANDWIDTH_EFFICIENCY = 0.6  # facts.md C: 60-80% of theoretical DDR5, NUMA-aware kernels
SWAP_READ_BYTES_PER_S = 2e9          # page-in rate from an NVMe swap file (4 KiB pages) [B/s]


def default_usd_per_kwh() -> float:
    """Electricity tariff [USD/kWh]: the cost model's dated default (data/cost_assumptions.csv)."""
    return default_assumptions().electricity_usd_per_kwh


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------


class FinetuneSpec(BaseModel):
    """All inputs of a fine-tuning estimate.

    Ranges are checked by :func:`estimate_finetune` (one clear :class:`K2CalcError` each), not here, so
    a spec can be built from any user input and the error still reads as one line.

    Attributes
    ----------
    model, hardware : catalog ids; hardware is a GPU, a unified-memory system or a CPU
    count : GPUs or systems [count]
    cpu, sockets : host CPU id (with a GPU in ``hardware``: the hybrid route) and its sockets [count]
    ram_gb, swap_gb : system RAM as sold and swap space, binary gigabytes [GiB]
    method : "lora", "qlora" (NF4 base weights) or "full"
    rank, alpha : LoRA rank [1] and scaling alpha (changes the update scale, not memory or speed)
    targets : tensor groups that get adapters
    seq_len, micro_batch : tokens per sequence and sequences per device per forward [tokens, count]
    gradient_checkpointing : recompute each layer in the backward instead of storing its activations
    tokens, epochs : dataset size [tokens] and passes over it [1]
    usd_per_kwh : electricity tariff [USD/kWh]; None = data/cost_assumptions.csv
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = "kimi-k2-instruct"
    hardware: str = "rtx-4090"
    count: int = 1
    cpu: str | None = None
    sockets: int = 2
    ram_gb: float | None = None
    swap_gb: float = 0.0
    method: str = "lora"
    rank: int = 8
    alpha: float = 32.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    seq_len: int = 2048
    micro_batch: int = 1
    gradient_checkpointing: bool = True
    tokens: int = 10_000_000
    epochs: float = 1.0
    usd_per_kwh: float | None = None

    @classmethod
    def build(cls, **values: Any) -> "FinetuneSpec":
        """Construct from loose input; a wrong type becomes one K2CalcError line."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise K2CalcError(f"finetune: {validation_message(exc)}") from None


# ------------------------------------------------------------------------------------------------
# Adapters
# ------------------------------------------------------------------------------------------------


def target_matrices(m: ModelArch, target: str) -> list[tuple[int, int, int]]:
    """Linear layers a target group adds adapters to: (d_in, d_out, how many in the model).

    attention: MLA q_a, q_b (or q), kv_a (with the rope part), kv_b, o; GQA q, k, v, o.
    dense_mlp: gate, up, down of every dense layer. shared_experts: gate, up, down of the shared MLP of
    every MoE layer (Hugging Face fuses the shared experts into one MLP n_shared x moe_intermediate wide).
    experts: gate, up, down of every routed expert of every MoE layer.
    """
    h, L = m.hidden_size, m.num_layers
    if target == "attention":
        if m.attention == "mla":
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            q = ([(h, m.q_lora_rank, L), (m.q_lora_rank, m.num_heads * qk, L)] if m.q_lora_rank
                 else [(h, m.num_heads * qk, L)])
            return q + [(h, m.kv_lora_rank + m.qk_rope_head_dim, L),
                        (m.kv_lora_rank, m.num_heads * (m.qk_nope_head_dim + m.v_head_dim), L),
                        (m.num_heads * m.v_head_dim, h, L)]
        q, kv = m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim
        return [(h, q, L), (h, kv, L), (h, kv, L), (q, h, L)]
    if target == "dense_mlp":
        i, n = m.dense_intermediate_size, m.dense_layers
        return [(h, i, n), (h, i, n), (i, h, n)] if i and n else []
    if target == "shared_experts":
        w, n = m.n_shared_experts * m.moe_intermediate_size, m.moe_layers
        return [(h, w, n), (h, w, n), (w, h, n)] if w and n else []
    if target == "experts":
        i, n = m.moe_intermediate_size, m.moe_layers * m.n_routed_experts
        return [(h, i, n), (h, i, n), (i, h, n)] if i and n else []
    raise K2CalcError(f"unknown LoRA target '{target}'; choose from {', '.join(TARGETS)}")


def adapter_params(m: ModelArch, rank: int, targets: tuple[str, ...]) -> dict[str, int]:
    """LoRA parameters per target group: rank x (d_in + d_out) per matrix [elements]."""
    return {t: sum(rank * (din + dout) * n for din, dout, n in target_matrices(m, t)) for t in targets}


def active_adapter_params(m: ModelArch, by_target: Mapping[str, int]) -> float:
    """Adapter parameters a token passes through: routed-expert adapters only for its k experts [elements]."""
    total = 0.0
    for t, n in by_target.items():
        total += n * (m.experts_per_tok / m.n_routed_experts if t == "experts" and m.n_routed_experts else 1)
    return total


# ------------------------------------------------------------------------------------------------
# Weights, activations, FLOPs
# ------------------------------------------------------------------------------------------------

LINEAR_GROUPS = ("routed_experts", "shared_experts", "attention", "dense_mlp")


def base_weight_bytes(m: ModelArch, method: str) -> dict[str, float]:
    """Frozen (or, for full, trained) base weights per tensor group as held in memory [B]."""
    counts = param_counts(m).as_dict()
    out = {}
    for g, n in counts.items():
        if method == "qlora" and g in LINEAR_GROUPS:
            out[g] = n * NF4_DQ_BITS / 8
        else:
            out[g] = n * BF16_BYTES
    return out


def layer_activation_bytes(m: ModelArch, tokens: int, checkpointing: bool) -> tuple[int, int]:
    """(stored across all layers, one layer's full activations) for `tokens` tokens [B].

    Without checkpointing every layer keeps 34 x hidden bytes per token (the second term is then 0);
    with it, every layer keeps its BF16 input and one layer at a time is recomputed in full."""
    h, L = m.hidden_size, m.num_layers
    full = ACTIVATION_BYTES_PER_HIDDEN * h * tokens
    if checkpointing:
        return CHECKPOINT_BYTES_PER_HIDDEN * h * tokens * L, full
    return full * L, 0


def logits_bytes(m: ModelArch, tokens: int) -> int:
    """Logits for the loss: BF16 plus the FP32 upcast, per vocabulary entry and token [B]."""
    return LOGITS_BYTES_PER_VOCAB * m.vocab_size * tokens


def expert_cache_bytes(m: ModelArch, tokens: int, checkpointing: bool) -> int:
    """CPU expert kernels' cached inputs and projections for the backward (hybrid route) [B]."""
    if not m.is_moe:
        return 0
    per_layer = tokens * (m.hidden_size + m.experts_per_tok * 3 * m.moe_intermediate_size) * EXPERT_CACHE_BYTES
    return per_layer * (1 if checkpointing else m.moe_layers)


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
    """Matrix multiplications per weight and token, in units of the forward: forward 1 + activation
    gradient 1 (+ weight gradient 1 when trained) (+ recompute 1 with checkpointing)."""
    return 2 + int(trainable) + int(checkpointing)


def train_flops_per_token(m: ModelArch, spec: FinetuneSpec, by_target: Mapping[str, int]) -> TrainFlops:
    """FLOP per token of one training step (see the module docstring for the multipliers)."""
    ckpt = spec.gradient_checkpointing
    trained = spec.method == "full"
    p = weight_passes(trained, ckpt)
    c = param_counts(m)
    other = 0.0
    for lp in all_layer_params(m):
        other += lp.attention_sharded + lp.attention_replicated + lp.dense_mlp + lp.shared + lp.router
    # attention dot products: heads x L x (qk + v) per token and layer (causal average L/2, 2 FLOP)
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim if m.attention == "mla" else m.head_dim
    v = m.v_head_dim if m.attention == "mla" else m.head_dim
    full_layers = m.num_layers - m.sliding_layers
    window = min(spec.seq_len, m.sliding_window or spec.seq_len)
    attn_fwd = m.num_heads * (qk + v) * (full_layers * spec.seq_len + m.sliding_layers * window)
    lm = 2 * m.vocab_size * m.hidden_size * (3 if trained else 2)
    adapter_mult = 0 if trained else 6 + 2 * int(ckpt)
    expert_adapters = by_target.get("experts", 0) * (m.experts_per_tok / m.n_routed_experts if m.is_moe else 0)
    other_adapters = active_adapter_params(m, {k: v for k, v in by_target.items() if k != "experts"})
    return TrainFlops(
        routed=2 * c.active_routed * p, layers_other=2 * other * p,
        attention=attn_fwd * (3 + int(ckpt)), lm_head=lm,
        adapters=other_adapters * adapter_mult, adapters_experts=expert_adapters * adapter_mult,
    )


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


@dataclass
class DevicePart:
    """Memory of one device (a GPU, a unified-memory system, system RAM or swap) [B]."""

    name: str
    kind: str  # "gpu" | "ram" | "swap"
    capacity_bytes: int
    usable_bytes: int
    weights_bytes: int = 0
    adapter_bytes: int = 0
    optimizer_bytes: int = 0
    gradient_bytes: int = 0
    activation_bytes: int = 0
    overhead_bytes: int = 0
    slow: bool = False

    @property
    def used_bytes(self) -> int:
        return (self.weights_bytes + self.adapter_bytes + self.optimizer_bytes + self.gradient_bytes
                + self.activation_bytes + self.overhead_bytes)

    @property
    def free_bytes(self) -> int:
        return self.usable_bytes - self.used_bytes

    def as_dict(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "capacity_bytes": self.capacity_bytes,
            "usable_bytes": self.usable_bytes, "weights_bytes": self.weights_bytes,
            "adapter_bytes": self.adapter_bytes, "optimizer_bytes": self.optimizer_bytes,
            "gradient_bytes": self.gradient_bytes, "activation_bytes": self.activation_bytes,
            "overhead_bytes": self.overhead_bytes, "used_bytes": self.used_bytes,
            "free_bytes": self.free_bytes, "slow": self.slow,
        }


@dataclass
class FinetuneEstimate:
    """Everything :func:`estimate_finetune` says. Bytes, tokens/s, hours, kWh, USD, W."""

    spec: FinetuneSpec
    model_name: str
    route: str                 # "gpu" | "hybrid" | "cpu"
    fits: bool
    reasons: list[str]
    warnings: list[str]
    devices: list[DevicePart]
    trainable_params: int
    adapter_params_by_target: dict[str, int]
    tokens_per_s: float
    roofline_tokens_per_s: float
    flops_per_token: float
    time_per_token_s: dict[str, float]
    bottleneck: str
    hours: float
    power_watts: float
    energy_kwh: float
    usd_per_kwh: float
    cost_usd: float
    cloud_cost_usd: float | None
    cloud_note: str
    assumptions: list[str] = field(default_factory=list)

    @property
    def slow(self) -> bool:
        """True when part of the working set lives in swap."""
        return any(d.slow and d.used_bytes > 0 for d in self.devices)

    def memory_breakdown(self) -> list[dict]:
        return [d.as_dict() for d in self.devices]

    def as_dict(self) -> dict:
        return {
            "spec": self.spec.model_dump(mode="json"), "model": self.model_name, "route": self.route,
            "fits": self.fits, "slow": self.slow, "reasons": list(self.reasons), "warnings": list(self.warnings),
            "memory": {
                "devices": self.memory_breakdown(),
                "trainable_params": self.trainable_params,
                "adapter_params_by_target": dict(self.adapter_params_by_target),
                "total_used_bytes": sum(d.used_bytes for d in self.devices),
            },
            "performance": {
                "tokens_per_s": self.tokens_per_s, "roofline_tokens_per_s": self.roofline_tokens_per_s,
                "flops_per_token": self.flops_per_token, "time_per_token_s": dict(self.time_per_token_s),
                "bottleneck": self.bottleneck,
            },
            "cost": {
                "hours": self.hours, "power_watts": self.power_watts, "energy_kwh": self.energy_kwh,
                "usd_per_kwh": self.usd_per_kwh, "cost_usd": self.cost_usd,
                "cloud_cost_usd": self.cloud_cost_usd, "cloud_note": self.cloud_note,
            },
            "assumptions": list(self.assumptions),
        }


# ------------------------------------------------------------------------------------------------
# Validation and resolution
# ------------------------------------------------------------------------------------------------


def _check(spec: FinetuneSpec, m: ModelArch) -> None:
    """Ranges and combinations; each failure is one K2CalcError line."""
    if spec.method not in METHODS:
        raise K2CalcError(f"unknown fine-tuning method '{spec.method}'; choose from {', '.join(METHODS)}")
    if spec.method != "full":
        if spec.rank <= 0:
            raise K2CalcError(f"LoRA rank must be a positive integer, got {spec.rank}")
        if not spec.targets:
            raise K2CalcError(f"choose at least one LoRA target from {', '.join(TARGETS)}")
        for t in spec.targets:
            if t not in TARGETS:
                raise K2CalcError(f"unknown LoRA target '{t}'; choose from {', '.join(TARGETS)}")
    if spec.alpha <= 0:
        raise K2CalcError(f"LoRA alpha must be positive, got {spec.alpha:g}")
    if spec.seq_len <= 0:
        raise K2CalcError(f"sequence length must be at least 1 token, got {spec.seq_len}")
    if spec.seq_len > m.max_context_tokens:
        raise K2CalcError(f"sequence length {spec.seq_len:,} exceeds {m.name}'s maximum context of "
                          f"{m.max_context_tokens:,} tokens")
    if spec.micro_batch <= 0:
        raise K2CalcError(f"micro-batch must be at least 1 sequence, got {spec.micro_batch}")
    if spec.tokens <= 0:
        raise K2CalcError(f"dataset must have at least 1 token, got {spec.tokens}")
    if spec.epochs <= 0:
        raise K2CalcError(f"epochs must be positive, got {spec.epochs:g}")
    if spec.count <= 0:
        raise K2CalcError(f"device count must be at least 1, got {spec.count}")
    if spec.sockets <= 0:
        raise K2CalcError(f"sockets must be at least 1, got {spec.sockets}")
    if spec.ram_gb is not None and spec.ram_gb <= 0:
        raise K2CalcError(f"RAM must be positive, got {spec.ram_gb:g} GB")
    if spec.swap_gb < 0:
        raise K2CalcError(f"swap must be zero or positive, got {spec.swap_gb:g} GB")
    if spec.usd_per_kwh is not None and spec.usd_per_kwh < 0:
        raise K2CalcError(f"electricity price must be zero or positive, got {spec.usd_per_kwh:g} USD/kWh")


def _resolve(spec: FinetuneSpec) -> tuple[str, Hardware | None, Hardware | None]:
    """(route, accelerator, cpu) from the hardware and cpu ids."""
    device = get_hardware(spec.hardware)
    cpu = get_hardware(spec.cpu) if spec.cpu else None
    if cpu is not None and not cpu.is_cpu:
        raise K2CalcError(f"--cpu '{cpu.id}' is a {cpu.kind}, not a CPU; put it in --hardware")
    if device.is_cpu:
        if cpu is not None:
            raise K2CalcError("--hardware is already a CPU; drop --cpu or put a GPU in --hardware")
        cpu, device, route = device, None, "cpu"
    elif device.is_system:
        if cpu is not None:
            raise K2CalcError(f"{device.name} is a whole system with its own CPU; drop --cpu")
        route = "gpu"
    else:
        route = "hybrid" if cpu is not None else "gpu"
    if route in ("hybrid", "cpu"):
        if spec.ram_gb is None:
            raise K2CalcError("the CPU route needs the installed system RAM: add --ram-gb (GiB as sold)")
        if cpu.max_sockets and spec.sockets > cpu.max_sockets:
            raise K2CalcError(f"{cpu.name} supports at most {cpu.max_sockets} sockets, got {spec.sockets}")
    return route, device, cpu


def _device_usable(device: Hardware) -> int:
    """Memory training may fill on one GPU (all of it; runtime counted apart) or system [B]."""
    cap = device.memory_bytes
    if device.is_system:
        if device.vendor.lower() == "apple":
            frac = MAC_WIRED_FRACTION_LARGE if cap >= MAC_LARGE_THRESHOLD_BYTES else MAC_WIRED_FRACTION_SMALL
        else:
            frac = 1 - UNIFIED_OS_RESERVE_FRACTION
        return int(cap * frac)
    return cap


def _peak(hw: Hardware) -> float:
    peak = hw.peak_flops_per_s("bf16")
    if not peak:
        raise K2CalcError(f"{hw.name} has no BF16 peak in the catalog; cannot estimate training speed")
    return peak


# ------------------------------------------------------------------------------------------------
# The estimate
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What every route needs, computed once from the spec and the model."""

    spec: FinetuneSpec
    m: ModelArch
    tokens: int                    # tokens per micro-batch [tokens]
    full: bool
    weights: dict[str, float]      # base weights per tensor group as held [B]
    by_target: dict[str, int]      # adapter parameters per target [elements]
    flops: TrainFlops
    stacked: int                   # activations kept across layers [B]
    one_layer: int                 # one layer's full activations (checkpointing) [B]
    logits: int                    # logits for the loss [B]

    @property
    def n_adapters(self) -> int:
        return sum(self.by_target.values())

    @property
    def expert_adapters(self) -> int:
        return self.by_target.get("experts", 0)

    @property
    def passes(self) -> int:
        return weight_passes(self.full, self.spec.gradient_checkpointing)


@dataclass
class _Timing:
    """One route's answer: devices, seconds per token by cause, the compute peak and the power [s, FLOP/s, W]."""

    devices: list[DevicePart]
    times: dict[str, float]
    per_token_s: float
    bottleneck: str
    peak_flops_per_s: float
    power_watts: float


def _hold(part: DevicePart, job: _Job, params: float, weight_bytes: float, adapters: float) -> None:
    """Put base weights (`params` elements, `weight_bytes` as stored) and `adapters` adapter parameters,
    with their gradients and optimizer state, on `part`; full fine-tuning trains `params` instead."""
    if job.full:
        part.weights_bytes += round(params * FULL_WEIGHT_BYTES)
        part.gradient_bytes += round(params * FULL_GRADIENT_BYTES)
        part.optimizer_bytes += round(params * OPTIMIZER_BYTES)
    else:
        part.weights_bytes += round(weight_bytes)
        part.adapter_bytes += round(adapters * ADAPTER_WEIGHT_BYTES)
        part.gradient_bytes += round(adapters * ADAPTER_GRADIENT_BYTES)
        part.optimizer_bytes += round(adapters * OPTIMIZER_BYTES)


def _gpu_route(job: _Job, device: Hardware, n: int) -> _Timing:
    """GPU servers / unified systems: ZeRO-3 data parallel, each device one micro-batch."""
    m, c = job.m, param_counts(job.m)
    biggest_layer = max(lp.attention_sharded + lp.attention_replicated + lp.dense_mlp + lp.shared + lp.routed
                        + lp.router for lp in all_layer_params(m))
    live = min(ZERO3_LIVE_PARAMS, biggest_layer) * BF16_BYTES if n > 1 else 0
    word = "System" if device.is_system else "GPU"
    devices = []
    for i in range(n):
        part = DevicePart(f"{word} {i} ({device.name})", "gpu", device.memory_bytes, _device_usable(device),
                          overhead_bytes=GPU_RUNTIME_BYTES + live,
                          activation_bytes=job.stacked + job.one_layer + job.logits)
        _hold(part, job, c.total / n, sum(job.weights.values()) / n, job.n_adapters / n)
        devices.append(part)
    peak = _peak(device)
    compute_s = job.flops.total / (peak * n * GPU_MFU)
    # each device reads the (gathered) weights its micro-batch touches once per pass
    bw = device.memory_bandwidth_bytes_per_s * platform_of(device).bandwidth_fraction
    bytes_s = job.passes * _touched_weight_bytes(m, job.weights, job.tokens) / bw / (n * job.tokens)
    times = {"gpu_compute": compute_s, "gpu_memory_bandwidth": bytes_s}
    return _Timing(devices, times, max(compute_s, bytes_s),
                   "gpu-compute" if compute_s >= bytes_s else "gpu-memory-bandwidth",
                   peak * n, n * (device.typical_watts or device.tdp_watts or 0))


def _ram_part(spec: FinetuneSpec, cpu: Hardware) -> DevicePart:
    ram_bytes = int(spec.ram_gb * GiB)
    return DevicePart(f"System RAM ({spec.sockets}x {cpu.name})", "ram", ram_bytes, ram_usable_bytes(ram_bytes))


def _cpu_rates(spec: FinetuneSpec, cpu: Hardware) -> tuple[float, float]:
    """(BF16 peak of all sockets [FLOP/s], achievable streaming bandwidth [B/s])."""
    return (_peak(cpu) * spec.sockets,
            cpu.memory_bandwidth_bytes_per_s * spec.sockets * CPU_STREAM_BANDWIDTH_EFFICIENCY)


def _cpu_route(job: _Job, cpu: Hardware) -> _Timing:
    """CPU only: everything in RAM, every FLOP on the sockets."""
    spec, c = job.spec, param_counts(job.m)
    ram = _ram_part(spec, cpu)
    _hold(ram, job, c.total, sum(job.weights.values()), job.n_adapters)
    ram.activation_bytes = job.stacked + job.one_layer + job.logits
    peak, bw = _cpu_rates(spec, cpu)
    compute_s = job.flops.total / (peak * CPU_SFT_EFFICIENCY)
    bytes_s = job.passes * _touched_weight_bytes(job.m, job.weights, job.tokens) / bw / job.tokens
    times = {"cpu_compute": compute_s, "cpu_memory_bandwidth": bytes_s}
    return _Timing([ram], times, max(compute_s, bytes_s),
                   "cpu-compute" if compute_s >= bytes_s else "cpu-memory-bandwidth",
                   peak, spec.sockets * (cpu.tdp_watts or 0))


def _hybrid_route(job: _Job, device: Hardware, cpu: Hardware, n: int) -> _Timing:
    """GPUs + CPU (KTransformers): MoE routed experts (or, for dense models, the layers the GPUs cannot
    hold) in RAM on the CPU; the rest on the GPUs, layer by layer; CPU and GPU parts in sequence."""
    spec, m, c, w, f = job.spec, job.m, param_counts(job.m), job.weights, job.flops
    gpus = [DevicePart(f"GPU {i} ({device.name})", "gpu", device.memory_bytes, device.memory_bytes,
                       overhead_bytes=GPU_RUNTIME_BYTES) for i in range(n)]
    ram = _ram_part(spec, cpu)
    if m.is_moe:
        ram_params, ram_w = c.routed_experts + c.embeddings, w["routed_experts"] + w["embeddings"]
        cpu_share = 0.0  # share of decoder layers computed on the CPU
        cpu_flops = f.routed + f.adapters_experts
        cpu_read = _touched_weight_bytes(m, {"routed_experts": w["routed_experts"]}, job.tokens)
        ram.activation_bytes = expert_cache_bytes(m, job.tokens, spec.gradient_checkpointing)
    else:
        cpu_share = _dense_cpu_layers(job, gpus) / m.num_layers
        layer_p = c.attention + c.dense_mlp + c.norms - m.hidden_size
        layer_w = w["attention"] + w["dense_mlp"] + w["norms"] - m.hidden_size * BF16_BYTES
        ram_params, ram_w = c.embeddings + layer_p * cpu_share, w["embeddings"] + layer_w * cpu_share
        cpu_flops = (f.layers_other + f.attention + f.adapters) * cpu_share
        cpu_read = layer_w * cpu_share
        ram.activation_bytes = round(job.stacked * cpu_share) + (job.one_layer if cpu_share else 0)
    gpu_adapters = job.n_adapters - job.expert_adapters
    for g in gpus:
        _hold(g, job, (c.total - ram_params) / n, (sum(w.values()) - ram_w) / n, gpu_adapters / n)
        g.activation_bytes = round(job.stacked * (1 - cpu_share) / n) + job.one_layer + job.logits
    _hold(ram, job, ram_params, ram_w, job.expert_adapters)
    cpu_peak, cpu_bw = _cpu_rates(spec, cpu)
    gpu_peak = _peak(device)
    times = {"cpu_compute": cpu_flops / (cpu_peak * CPU_SFT_EFFICIENCY),
             "cpu_memory_bandwidth": job.passes * cpu_read / cpu_bw / job.tokens,
             "gpu_compute": (f.total - cpu_flops) / (gpu_peak * HYBRID_GPU_EFFICIENCY)}
    per_token = max(times["cpu_compute"], times["cpu_memory_bandwidth"]) + times["gpu_compute"]
    power = n * (device.typical_watts or device.tdp_watts or 0) + spec.sockets * (cpu.tdp_watts or 0)
    return _Timing([*gpus, ram], times, per_token, max(times, key=times.get).replace("_", "-"),
                   cpu_peak + gpu_peak * n, power)


def _spill_to_swap(job: _Job, timing: _Timing, warnings: list[str]) -> None:
    """Move what RAM cannot hold into swap (frozen weights first) and charge the page-ins."""
    swap_bytes = int(job.spec.swap_gb * GiB)
    ram = next((d for d in timing.devices if d.kind == "ram"), None)
    if ram is None or swap_bytes <= 0:
        return
    moved = min(max(0, ram.used_bytes - ram.usable_bytes), swap_bytes, ram.weights_bytes)
    ram.weights_bytes -= moved
    timing.devices.append(DevicePart("Swap", "swap", swap_bytes, swap_bytes, weights_bytes=moved, slow=True))
    if moved <= 0:
        return
    # every pass touches all experts at training batch sizes: swapped weights are paged in each pass
    swap_s = job.passes * moved / SWAP_READ_BYTES_PER_S / job.tokens
    timing.times["swap_reads"] = swap_s
    timing.per_token_s += swap_s
    if swap_s >= max(timing.times.values()):
        timing.bottleneck = "swap"
    warnings.append(f"{format_device_bytes(moved)} of frozen weights live in swap: SLOW (paged in from disk "
                    f"every pass, about {swap_s * 1e3:,.1f} ms per token at {SWAP_READ_BYTES_PER_S / 1e9:g} GB/s); "
                    "more RAM removes this")


def _fit_reasons(spec: FinetuneSpec, devices: list[DevicePart]) -> list[str]:
    """One sentence per device that is over capacity; identical GPUs share one sentence."""
    over = [d for d in devices if d.free_bytes < 0]
    gpus = [d for d in over if d.kind != "ram"]
    if len(gpus) > 1 and len({(g.used_bytes, g.usable_bytes) for g in gpus}) == 1:
        word, rest = gpus[0].name.split(" ", 1)
        gpus = [replace(gpus[0], name=f"each of {len(gpus)} {word}s {rest.split(' ', 1)[1]}")]
    reasons = [f"{d.name}: needs {format_device_bytes(d.used_bytes)} (weights {format_device_bytes(d.weights_bytes)}, "
               f"optimizer {format_device_bytes(d.optimizer_bytes)}, activations "
               f"{format_device_bytes(d.activation_bytes)}) but has {format_device_bytes(d.usable_bytes)}"
               for d in gpus]
    for d in (d for d in over if d.kind == "ram"):
        swap = f" (+ {spec.swap_gb:g} GiB swap, already full)" if spec.swap_gb else ""
        reasons.append(
            f"system RAM too small: needs {format_device_bytes(d.used_bytes)} (weights "
            f"{format_device_bytes(d.weights_bytes)}, adapters/optimizer/activations "
            f"{format_device_bytes(d.used_bytes - d.weights_bytes)}) but {format_device_bytes(d.usable_bytes)} "
            f"of the {spec.ram_gb:g} GiB RAM is usable after the OS share{swap}")
    return reasons


def estimate_finetune(spec: FinetuneSpec, extra_models: Mapping[str, ModelArch] | None = None,
                      model: ModelArch | None = None) -> FinetuneEstimate:
    """Memory per device, tokens/s, run time, energy and cost of one fine-tuning run.

    Parameters
    ----------
    spec : all inputs
    extra_models : models outside the catalog, by id (e.g. from :func:`k2calc.models.from_hf_config`)
    model : a ModelArch to use instead of looking up ``spec.model``

    Raises
    ------
    K2CalcError : bad input (one line), UnknownIdError (a K2CalcError) for unknown ids
    """
    m = model if model is not None else get_model(spec.model, dict(extra_models or {}))
    _check(spec, m)
    route, device, cpu = _resolve(spec)
    n = spec.count if route != "cpu" else 1
    full = spec.method == "full"
    by_target = {} if full else adapter_params(m, spec.rank, tuple(dict.fromkeys(spec.targets)))
    if not full and sum(by_target.values()) == 0:
        raise K2CalcError(f"none of the LoRA targets {', '.join(spec.targets)} exist in {m.name}; "
                          f"choose from {', '.join(TARGETS)}")
    tokens = spec.micro_batch * spec.seq_len
    stacked, one_layer = layer_activation_bytes(m, tokens, spec.gradient_checkpointing)
    job = _Job(spec, m, tokens, full, base_weight_bytes(m, spec.method), by_target,
               train_flops_per_token(m, spec, by_target), stacked, one_layer, logits_bytes(m, tokens))

    warnings: list[str] = []
    if route == "gpu":
        timing = _gpu_route(job, device, n)
    elif route == "cpu":
        timing = _cpu_route(job, cpu)
    else:
        timing = _hybrid_route(job, device, cpu, n)
    _spill_to_swap(job, timing, warnings)
    reasons = _fit_reasons(spec, timing.devices)

    tokens_per_s = 1.0 / timing.per_token_s
    hours = spec.tokens * spec.epochs / tokens_per_s / 3600
    usd_per_kwh = spec.usd_per_kwh if spec.usd_per_kwh is not None else default_usd_per_kwh()
    energy = timing.power_watts * hours / 1000
    cloud, cloud_note = _cloud(route, device, n, hours)
    return FinetuneEstimate(
        spec=spec, model_name=m.name, route=route, fits=not reasons, reasons=reasons, warnings=warnings,
        devices=timing.devices, trainable_params=param_counts(m).total if full else job.n_adapters,
        adapter_params_by_target=by_target, tokens_per_s=tokens_per_s,
        roofline_tokens_per_s=timing.peak_flops_per_s / job.flops.total, flops_per_token=job.flops.total,
        time_per_token_s=timing.times, bottleneck=timing.bottleneck, hours=hours,
        power_watts=timing.power_watts, energy_kwh=energy, usd_per_kwh=usd_per_kwh,
        cost_usd=energy * usd_per_kwh, cloud_cost_usd=cloud, cloud_note=cloud_note,
        assumptions=assumptions(spec, route, m),
    )


def _touched_weight_bytes(m: ModelArch, weights: Mapping[str, float], tokens: int) -> float:
    """Weight bytes one pass over a micro-batch of `tokens` reads: every non-expert weight once and the
    expected distinct routed experts E(1-(1-k/E)^T) of each MoE layer [B]."""
    routed = weights.get("routed_experts", 0.0)
    rest = sum(v for g, v in weights.items() if g not in ("routed_experts", "embeddings"))
    if m.is_moe and routed:
        routed *= experts_touched(m.n_routed_experts, m.experts_per_tok, tokens) / m.n_routed_experts
    return routed + rest


def _dense_cpu_layers(job: _Job, gpus: list[DevicePart]) -> int:
    """Hybrid route, dense model: decoder layers that do not fit on the GPUs and run on the CPU [count]."""
    m, w, n = job.m, job.weights, len(gpus)
    per_layer = (w["attention"] + w["dense_mlp"] + w["norms"]) / m.num_layers
    if job.full:
        per_layer = per_layer / BF16_BYTES * (FULL_WEIGHT_BYTES + FULL_GRADIENT_BYTES + OPTIMIZER_BYTES)
    per_layer += job.stacked / m.num_layers
    state = ADAPTER_WEIGHT_BYTES + ADAPTER_GRADIENT_BYTES + OPTIMIZER_BYTES
    fixed = w["lm_head"] + job.n_adapters * state + n * (GPU_RUNTIME_BYTES + job.one_layer + job.logits)
    room = sum(g.usable_bytes for g in gpus) - fixed
    on_gpu = max(0, min(m.num_layers, int(room // per_layer)))
    return m.num_layers - on_gpu


def _cloud(route: str, device: Hardware | None, n: int, hours: float) -> tuple[float | None, str]:
    """Rental cost of the same run on rented devices, where the catalog has a price [USD]."""
    if route == "cpu" or device is None:
        return None, "no cloud price: the catalog prices GPUs per hour, not CPU-only hosts"
    if device.cloud_usd_per_hour is None:
        extra = " (and the catalog prices no CPU+GPU host by the hour)" if route == "hybrid" else ""
        return None, f"no cloud price for {device.name} in the hardware catalog{extra}"
    note = (f"{n} x {device.name} at ${device.cloud_usd_per_hour:,.2f}/GPU-hour "
            f"({device.cloud_date}, {device.cloud_source})")
    if route == "hybrid":
        note += "; GPU rental only: a host with this CPU and RAM costs extra"
    return device.cloud_usd_per_hour * n * hours, note


def assumptions(spec: FinetuneSpec, route: str, m: ModelArch) -> list[str]:
    """Every constant and modelling choice behind an estimate, as sentences shown to users."""
    out = []
    if spec.method == "qlora":
        out.append(f"QLoRA: linear base weights in NF4 with double quantization, {NF4_DQ_BITS:.3f} bit/weight "
                   "(4 + 8/64 + 32/(64x256)); embeddings, lm_head, router and norms BF16; dequantisation "
                   "overhead not modelled")
    elif spec.method == "lora":
        out.append("LoRA: frozen base weights in BF16 (2 B/param); KTransformers converts FP8/INT4 checkpoints "
                   "to BF16 before SFT")
    if spec.method == "full":
        out.append("full fine-tuning: 2 B BF16 weight + 2 B BF16 gradient + 12 B AdamW state (FP32 master, "
                   "two FP32 moments) per parameter, sharded ZeRO-3/FSDP style over the devices")
    else:
        out.append("adapters: r x (d_in + d_out) per target matrix; 16 B per adapter parameter = BF16 weight 2 "
                   "+ BF16 gradient 2 + AdamW 12 (FP32 master 4 + two FP32 moments 4 + 4); "
                   f"alpha {spec.alpha:g} scales the update and changes neither memory nor speed")
        if set(spec.targets) == set(DEFAULT_TARGETS):
            out.append("default targets attention + shared experts + dense MLP: what LLaMA-Factory's "
                       "'lora_target: all' reaches under KTransformers (routed experts are one CPU operator)")
    ckpt = spec.gradient_checkpointing
    out.append("activations (flash attention): " + (
        "gradient checkpointing keeps each layer's BF16 input (2 x hidden B/token) plus one layer's full "
        "activations (34 x hidden B/token)" if ckpt else
        "no checkpointing: 34 x hidden B per token per layer (Korthikanti et al. 2022)")
        + f"; logits {LOGITS_BYTES_PER_VOCAB} B per vocabulary entry per token")
    out.append(f"FLOPs per token: frozen weights {weight_passes(False, ckpt)}x the forward (forward + "
               f"activation gradient{' + recompute' if ckpt else ''}), trained weights "
               f"{weight_passes(True, ckpt)}x; attention dot products {3 + int(ckpt)}x")
    if route == "gpu":
        out.append(f"GPU servers: {GPU_MFU:.0%} of the BF16 dense peak (MFU, an assumption) or the weights "
                   "read per pass at the platform's achievable bandwidth, whichever is slower; data parallel "
                   "with ZeRO-3/FSDP sharding, each device runs its own micro-batch; communication inside the MFU")
    else:
        out.append(f"CPU: {CPU_SFT_EFFICIENCY:.2%} of the sockets' BF16 (AMX) peak, fitted on three published "
                   "KTransformers LoRA SFT runs (K2 46.55, DeepSeek-V3 40.35, V2-Lite 530 tok/s); streamed "
                   f"weights at {CPU_STREAM_BANDWIDTH_EFFICIENCY:.0%} of theoretical DDR bandwidth")
        cpu = get_hardware(spec.cpu or spec.hardware)
        if cpu.matrix_isa != "amx":
            out.append(f"{cpu.name} has no AMX: the CPU efficiency, fitted on AMX Xeons, is applied to its "
                       "BF16 peak unchanged (uncalibrated for this CPU)")
        out.append(f"system RAM: {RAM_OS_RESERVE_FRACTION:.0%} (at least {RAM_OS_RESERVE_MIN_BYTES / GiB:g} GiB) "
                   "kept for the OS; RAM and swap in GiB as sold")
        if spec.swap_gb:
            out.append(f"swap: frozen weights that do not fit in RAM are paged in at "
                       f"{SWAP_READ_BYTES_PER_S / 1e9:g} GB/s on every pass (slow)")
    if route == "hybrid":
        placement = ("routed experts and the embedding table in RAM, computed by the CPU; attention, shared "
                     "experts, dense MLP, router and lm_head on the GPUs" if m.is_moe else
                     "dense model: whole decoder layers on the GPUs while they fit, the rest in RAM on the CPU")
        out.append(f"hybrid (KTransformers + LLaMA-Factory): {placement}; GPUs hold different layers (model "
                   f"parallel) at {HYBRID_GPU_EFFICIENCY:.0%} of one GPU's BF16 peak; CPU and GPU parts of a "
                   "layer run one after the other (no overlap)")
    out.append("energy: GPUs at typical or TDP watts, CPUs at TDP x sockets; cost on owned hardware is "
               "electricity only (no purchase, hosting or staff) at the stated tariff")
    return out


# ------------------------------------------------------------------------------------------------
# Calibration
# ------------------------------------------------------------------------------------------------

DEEPSEEK_V2_LITE_CONFIG: dict[str, Any] = {
    "architectures": ["DeepseekV2ForCausalLM"], "num_hidden_layers": 27, "hidden_size": 2048,
    "num_attention_heads": 16, "num_key_value_heads": 16, "q_lora_rank": None, "kv_lora_rank": 512,
    "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 64,
    "num_experts_per_tok": 6, "n_shared_experts": 2, "moe_intermediate_size": 1408,
    "intermediate_size": 10944, "first_k_dense_replace": 1, "vocab_size": 102400,
    "max_position_embeddings": 163840,
}
"""DeepSeek-V2-Lite's config.json fields (deepseek-ai/DeepSeek-V2-Lite on Hugging Face)."""

_SEED = dict(hardware="rtx-4090", cpu="xeon-platinum-8488c", sockets=2, method="lora", rank=8,
             micro_batch=1, gradient_checkpointing=True)
CALIBRATION_POINTS: tuple[tuple[str, dict[str, Any], float], ...] = (
    ("kimi-k2-instruct", dict(_SEED, count=2, ram_gb=2017, swap_gb=200, seq_len=2048), 46.55),
    ("deepseek-v3", dict(_SEED, hardware="rtx-4090-48gb", count=2, ram_gb=1536, seq_len=512), 40.35),
    ("deepseek-v2-lite", dict(_SEED, count=1, ram_gb=256, seq_len=512), 530.38),
)
"""(model id, spec fields, measured tok/s) of the published KTransformers + LLaMA-Factory LoRA runs."""


def deepseek_v2_lite() -> ModelArch:
    from .models import from_hf_config
    return from_hf_config(DEEPSEEK_V2_LITE_CONFIG, "deepseek-v2-lite", "DeepSeek-V2-Lite")


def calibration() -> list[dict[str, Any]]:
    """The calibration points: measured vs predicted tok/s, and the CPU efficiency each implies alone."""
    extra = {"deepseek-v2-lite": deepseek_v2_lite()}
    rows = []
    for model_id, fields, measured in CALIBRATION_POINTS:
        est = estimate_finetune(FinetuneSpec(model=model_id, **fields), extra_models=extra)
        t = est.time_per_token_s
        cpu_s = 1 / measured - t["gpu_compute"] - t.get("swap_reads", 0.0)
        implied = CPU_SFT_EFFICIENCY * t["cpu_compute"] / cpu_s
        rows.append({"model": model_id, "measured_tokens_per_s": measured,
                     "predicted_tokens_per_s": est.tokens_per_s,
                     "ratio_measured_over_predicted": measured / est.tokens_per_s,
                     "implied_cpu_efficiency": implied})
    return rows


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``finetune`` subcommand to an argparse subparsers object and return its parser."""
    d = FinetuneSpec()
    p = subparsers.add_parser("finetune", help="LoRA / QLoRA / full SFT: memory per device, tokens/s, hours, cost")
    p.add_argument("--model", default=d.model, help="model id (see 'models')")
    p.add_argument("--hardware", default=d.hardware, help="GPU, unified-memory system or CPU id (see 'hardware')")
    p.add_argument("--count", type=int, default=d.count, help="GPUs or systems")
    p.add_argument("--cpu", help="host CPU id: with a GPU in --hardware this is the hybrid KTransformers route")
    p.add_argument("--sockets", type=int, default=d.sockets, help="CPU sockets")
    p.add_argument("--ram-gb", type=float, help="system RAM in GB as sold (GiB)")
    p.add_argument("--swap-gb", type=float, default=d.swap_gb,
                   help="swap space in GB (GiB); used, slowly, when RAM is short")
    p.add_argument("--method", choices=METHODS, default=d.method, help="lora, qlora (NF4 base) or full fine-tuning")
    p.add_argument("--rank", type=int, default=d.rank, help="LoRA rank r")
    p.add_argument("--alpha", type=float, default=d.alpha, help="LoRA alpha (scaling only)")
    p.add_argument("--targets", default=",".join(d.targets),
                   help=f"comma list of LoRA targets from {','.join(TARGETS)}")
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="tokens per training sequence")
    p.add_argument("--micro-batch", type=int, default=d.micro_batch, help="sequences per device per forward")
    p.add_argument("--no-checkpointing", action="store_true", help="disable gradient checkpointing")
    p.add_argument("--tokens", type=int, default=d.tokens, help="dataset size in tokens")
    p.add_argument("--epochs", type=float, default=d.epochs, help="passes over the dataset")
    p.add_argument("--usd-per-kwh", type=float,
                   help=f"electricity tariff (default {default_usd_per_kwh():g} from data/cost_assumptions.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def spec_from_args(args: argparse.Namespace) -> FinetuneSpec:
    """A :class:`FinetuneSpec` from parsed ``finetune`` arguments."""
    targets = tuple(t.strip() for t in (args.targets or "").split(",") if t.strip())
    return FinetuneSpec.build(
        model=args.model, hardware=args.hardware, count=args.count, cpu=args.cpu, sockets=args.sockets,
        ram_gb=args.ram_gb, swap_gb=args.swap_gb, method=args.method, rank=args.rank, alpha=args.alpha,
        targets=targets, seq_len=args.seq_len, micro_batch=args.micro_batch,
        gradient_checkpointing=not args.no_checkpointing, tokens=args.tokens, epochs=args.epochs,
        usd_per_kwh=args.usd_per_kwh,
    )


def run(args: argparse.Namespace) -> str:
    """The text (or, with --json, the JSON object) ``python -m k2calc finetune`` prints."""
    est = estimate_finetune(spec_from_args(args))
    if getattr(args, "json", False):
        return json.dumps(est.as_dict(), indent=2)
    return format_text(est)


def format_text(est: FinetuneEstimate) -> str:
    """A plain-text report of one estimate."""
    s = est.spec
    verdict = "FITS" if est.fits else "DOES NOT FIT"
    if est.fits and est.slow:
        verdict = "FITS (SLOW: uses swap)"
    swap = f" + {s.swap_gb:g} GiB swap" if s.swap_gb else ""
    if est.route == "gpu":
        where = f"{s.count} x {s.hardware}"
    elif est.route == "hybrid":
        where = f"{s.count} x {s.hardware} + {s.sockets} x {s.cpu} with {s.ram_gb:g} GiB RAM{swap}"
    else:
        where = f"{s.sockets} x {s.hardware} with {s.ram_gb:g} GiB RAM{swap}"
    what = s.method.upper() if s.method != "full" else "full fine-tuning"
    if s.method != "full":
        what += f" r={s.rank} on {', '.join(s.targets)}"
    lines = [
        f"{est.model_name} {what} on {where}, {s.micro_batch} x {s.seq_len:,} tokens per micro-batch, "
        f"checkpointing {'on' if s.gradient_checkpointing else 'off'}: {verdict}",
        *(f"  why: {r}" for r in est.reasons),
        *(f"  warning: {w}" for w in est.warnings),
        f"  trainable parameters: {format_count(est.trainable_params)}",
        "",
        f"  {'device':44s} {'capacity':>10s} {'weights':>10s} {'adapters':>10s} {'optimizer':>10s} "
        f"{'grads':>10s} {'activ.':>10s} {'free':>10s}",
    ]
    rows: list[list] = []  # [name, cells, slow, how many identical consecutive devices]
    for d in est.devices:
        cells = (d.capacity_bytes, d.weights_bytes, d.adapter_bytes, d.optimizer_bytes, d.gradient_bytes,
                 d.activation_bytes, d.free_bytes)
        if rows and d.kind == "gpu" and rows[-1][1] == cells and rows[-1][0].split(" ")[0] == d.name.split(" ")[0]:
            rows[-1][3] += 1
        else:
            rows.append([d.name, cells, d.slow, 1])
    for name, cells, slow, count in rows:
        if count > 1:
            word, rest = name.split(" ", 1)
            index, label = rest.split(" ", 1)
            name = f"{word} {index}-{int(index) + count - 1} x{count} {label}"
        lines.append(f"  {name[:44]:44s} " + " ".join(f"{format_device_bytes(c):>10s}" for c in cells)
                     + ("  SLOW" if slow else ""))
    cloud = (f"${est.cloud_cost_usd:,.0f} rented ({est.cloud_note})" if est.cloud_cost_usd is not None
             else est.cloud_note)
    lines += [
        "",
        f"  speed: {est.tokens_per_s:,.1f} tokens/s (roofline {est.roofline_tokens_per_s:,.0f}); "
        f"{est.flops_per_token / 1e9:,.1f} GFLOP per token; limited by {est.bottleneck}",
        f"  run: {s.tokens:,} tokens x {s.epochs:g} epoch(s) = {est.hours:,.1f} h; "
        f"{est.power_watts:,.0f} W -> {est.energy_kwh:,.1f} kWh",
        f"  cost: ${est.cost_usd:,.2f} electricity on owned hardware at ${est.usd_per_kwh:g}/kWh "
        f"(electricity only); cloud: {cloud}",
        "",
        *(f"  assumption: {a}" for a in est.assumptions),
    ]
    return "\n".join(lines)


__all__ = [
    "FinetuneSpec", "FinetuneEstimate", "DevicePart", "estimate_finetune", "adapter_params", "target_matrices",
    "train_flops_per_token", "layer_activation_bytes", "logits_bytes", "calibration", "add_parser", "run",
    "spec_from_args", "format_text", "assumptions", "deepseek_v2_lite", "METHODS", "TARGETS", "DEFAULT_TARGETS",
    "CPU_SFT_EFFICIENCY", "GPU_MFU", "HYBRID_GPU_EFFICIENCY", "NF4_DQ_BITS",
]
