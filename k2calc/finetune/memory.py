"""Fine-tuning memory: base weights, LoRA adapters, gradients, optimizer state and activations, placed
on the devices of a resolved :class:`~k2calc.memory.Deployment`.

Per route (the deployment's topology):

* **gpu / unified**: ZeRO-3 / FSDP data parallel: weights, gradients and optimizer state sharded over
  the N devices, each device holding its own micro-batch's activations.
* **hybrid** (KTransformers + LLaMA-Factory, ``USE_KT=1``): routed experts and the embedding table in
  system RAM, computed by the CPU; attention, shared experts, dense MLPs, router and lm_head on the
  GPUs, layer by layer. A dense model keeps as many whole decoder layers on the GPUs as fit.
* **cpu**: everything in system RAM.

RAM that cannot hold its share spills frozen weights into swap (:func:`spill_to_swap`).

Bytes per parameter: frozen base weights BF16 (KTransformers converts FP8/INT4 checkpoints to BF16
before SFT), or NF4 with double quantization for QLoRA; adapters 2 + 2 + 12 B (BF16 weight and gradient,
AdamW's FP32 master and two moments); full fine-tuning the same 16 B for every parameter.

References
----------
* Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
  arXiv 2205.05198, section 4: 34 sbh bytes of activations per layer (without the 5as/h score term:
  flash attention keeps no T x T matrix).
* Dettmers et al. 2023, "QLoRA", arXiv 2305.14314: NF4 + double quantization, 0.127 bit of constants
  per parameter.
* Rajbhandari et al. 2020, "ZeRO", arXiv 1910.02054: 2 + 2 + 12 bytes per parameter for mixed-precision
  Adam.
* kvcache-ai/ktransformers doc/en/SFT/KTransformers-Fine-Tuning_Developer-Technical-Notes.md: placement
  ("placement strategy instead of DataParallel"), CPU experts caching their projections for the backward.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..memory import (
    Deployment,
    DeviceMemory,
    device_label,
    ram_label,
    ram_usable_bytes,
    unified_limit_bytes,
)
from ..models import ModelArch, all_layer_params, param_counts
from ..units import GiB, format_device_bytes
from .spec import FinetuneSpec

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

GPU_RUNTIME_BYTES = 1 * GiB          # CUDA context, cuBLAS workspace, allocator slack per GPU (estimate)
ZERO3_LIVE_PARAMS = 10**9            # DeepSpeed stage3_max_live_parameters default: gathered params

LINEAR_GROUPS = ("routed_experts", "shared_experts", "attention", "dense_mlp")


# ------------------------------------------------------------------------------------------------
# One quantity per function
# ------------------------------------------------------------------------------------------------


def base_weight_bytes(m: ModelArch, method: str) -> dict[str, float]:
    """Frozen (or, for full fine-tuning, trained) base weights per tensor group as held in memory [B]:
    BF16, or for QLoRA NF4 with double quantization on the linear groups."""
    out = {}
    for g, n in param_counts(m).as_dict().items():
        out[g] = n * NF4_DQ_BITS / 8 if method == "qlora" and g in LINEAR_GROUPS else n * BF16_BYTES
    return out


def layer_activation_bytes(m: ModelArch, tokens: int, checkpointing: bool) -> tuple[int, int]:
    """(stored across all layers [B], one layer's full activations [B]) for `tokens` tokens [tokens].

    Without checkpointing every layer keeps 34 x hidden bytes per token (the second term is then 0);
    with it, every layer keeps its BF16 input and one layer at a time is recomputed in full."""
    h, L = m.hidden_size, m.num_layers
    full = ACTIVATION_BYTES_PER_HIDDEN * h * tokens
    if checkpointing:
        return CHECKPOINT_BYTES_PER_HIDDEN * h * tokens * L, full
    return full * L, 0


def logits_bytes(m: ModelArch, tokens: int) -> int:
    """Logits for the loss of `tokens` tokens: BF16 plus the FP32 upcast, per vocabulary entry [B]."""
    return LOGITS_BYTES_PER_VOCAB * m.vocab_size * tokens


def expert_cache_bytes(m: ModelArch, tokens: int, checkpointing: bool) -> int:
    """CPU expert kernels' cached inputs and projections for the backward (hybrid route) [B]:
    tokens x (hidden + k x 3 x moe_intermediate) x 2 B per MoE layer, one layer with checkpointing."""
    if not m.is_moe:
        return 0
    per_layer = tokens * (m.hidden_size + m.experts_per_tok * 3 * m.moe_intermediate_size) * EXPERT_CACHE_BYTES
    return per_layer * (1 if checkpointing else m.moe_layers)


def decoder_layers_bytes(m: ModelArch, weights: dict[str, float]) -> float:
    """Weights of a dense model's decoder layers as held (attention, MLP, their norms; not the final
    norm) [B]: what the hybrid route moves to the CPU layer by layer."""
    return weights["attention"] + weights["dense_mlp"] + weights["norms"] - m.hidden_size * BF16_BYTES


def training_usable_bytes(d: Deployment) -> int:
    """Memory training may fill on one accelerator of `d` [B]: all of a GPU (the runtime is counted
    apart), or a unified system's limit (macOS wired limit, or capacity less the OS share)."""
    capacity = d.device.memory_bytes
    return unified_limit_bytes(d.device, capacity, d.wired_limit_bytes) if d.topology == "unified" else capacity


# ------------------------------------------------------------------------------------------------
# The job and the devices
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingJob:
    """The memory side of one run, computed once from the spec and the model."""

    spec: FinetuneSpec
    m: ModelArch
    weights: dict[str, float]      # base weights per tensor group as held [B]
    by_target: dict[str, int]      # adapter parameters per target [elements]
    stacked: int                   # activations kept across layers [B]
    one_layer: int                 # one layer's full activations (checkpointing) [B]
    logits: int                    # logits for the loss [B]

    @property
    def tokens(self) -> int:
        """Tokens per micro-batch [tokens]."""
        return self.spec.micro_batch_tokens

    @property
    def full(self) -> bool:
        return self.spec.full

    @property
    def n_adapters(self) -> int:
        """Adapter parameters [elements]."""
        return sum(self.by_target.values())

    @property
    def expert_adapters(self) -> int:
        """Adapter parameters on routed experts [elements]."""
        return self.by_target.get("experts", 0)


def training_job(spec: FinetuneSpec, m: ModelArch, by_target: dict[str, int]) -> TrainingJob:
    """Weights, adapters and activations of `spec` on model `m`."""
    stacked, one_layer = layer_activation_bytes(m, spec.micro_batch_tokens, spec.gradient_checkpointing)
    return TrainingJob(spec, m, base_weight_bytes(m, spec.method), by_target, stacked, one_layer,
                       logits_bytes(m, spec.micro_batch_tokens))


@dataclass
class TrainingDeviceMemory(DeviceMemory):
    """One device's memory during training: :class:`~k2calc.memory.DeviceMemory` (capacity, usable,
    weights, activations, runtime overhead) plus the trained state [B]. ``kind`` is "gpu", "unified",
    "ram" or "swap"; ``slow`` marks swap."""

    adapter_bytes: int = 0
    optimizer_bytes: int = 0
    gradient_bytes: int = 0
    slow: bool = False

    @property
    def used_bytes(self) -> int:
        """Everything placed on the device [B]."""
        return (self.weights_bytes + self.adapter_bytes + self.optimizer_bytes + self.gradient_bytes
                + self.activation_bytes + self.overhead_bytes)

    @property
    def free_bytes(self) -> int:
        """Usable less used [B]; negative when it does not fit."""
        return self.usable_bytes - self.used_bytes

    def as_dict(self) -> dict:
        """The inference breakdown (without the KV cache) plus the trained state and the total [B]."""
        out = {k: v for k, v in super().as_dict().items() if not k.startswith("kv_")}
        return {**out, "adapter_bytes": self.adapter_bytes, "optimizer_bytes": self.optimizer_bytes,
                "gradient_bytes": self.gradient_bytes, "used_bytes": self.used_bytes, "slow": self.slow}


def _part(name: str, kind: str, capacity: int, usable: int, **placed: int) -> TrainingDeviceMemory:
    values = {"weights_bytes": 0, "activation_bytes": 0, "overhead_bytes": 0, **placed}
    return TrainingDeviceMemory(name=name, kind=kind, capacity_bytes=capacity, usable_bytes=usable, **values)


def _accelerators(d: Deployment, overhead: int) -> list[TrainingDeviceMemory]:
    """The deployment's GPUs or systems, empty but for the runtime `overhead` [B]."""
    kind = "unified" if d.topology == "unified" else "gpu"
    return [_part(device_label(d, i), kind, d.device.memory_bytes, training_usable_bytes(d), overhead_bytes=overhead)
            for i in range(d.count)]


def _ram(d: Deployment) -> TrainingDeviceMemory:
    """The host's system RAM, usable after the OS share."""
    return _part(ram_label(d), "ram", d.ram_bytes, ram_usable_bytes(d.ram_bytes))


def _hold(part: TrainingDeviceMemory, job: TrainingJob, params: float, weight_bytes: float, adapters: float) -> None:
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


# ------------------------------------------------------------------------------------------------
# Placement per route
# ------------------------------------------------------------------------------------------------


@dataclass
class Placement:
    """Where everything lives: the devices, and the share of decoder layers a hybrid box runs on its
    CPU (a dense model's overflow; 0 elsewhere) [1]."""

    devices: list[TrainingDeviceMemory]
    cpu_share: float = 0.0


def place(job: TrainingJob, d: Deployment) -> Placement:
    """Place `job` on the devices of `d` by its topology."""
    if d.topology == "cpu":
        return _place_cpu(job, d)
    if d.topology == "hybrid":
        return _place_hybrid(job, d)
    return _place_data_parallel(job, d)


def _place_data_parallel(job: TrainingJob, d: Deployment) -> Placement:
    """GPU servers / unified systems: ZeRO-3 shards of everything, one micro-batch per device; with
    several devices the largest gathered layer (at most stage3_max_live_parameters) is live at once."""
    n, c = d.count, param_counts(job.m)
    biggest_layer = max(lp.attention_sharded + lp.attention_replicated + lp.dense_mlp + lp.shared + lp.routed
                        + lp.router for lp in all_layer_params(job.m))
    live = min(ZERO3_LIVE_PARAMS, biggest_layer) * BF16_BYTES if n > 1 else 0
    devices = _accelerators(d, GPU_RUNTIME_BYTES + live)
    for part in devices:
        part.activation_bytes = job.stacked + job.one_layer + job.logits
        _hold(part, job, c.total / n, sum(job.weights.values()) / n, job.n_adapters / n)
    return Placement(devices)


def _place_cpu(job: TrainingJob, d: Deployment) -> Placement:
    """CPU only: everything in RAM."""
    ram = _ram(d)
    _hold(ram, job, param_counts(job.m).total, sum(job.weights.values()), job.n_adapters)
    ram.activation_bytes = job.stacked + job.one_layer + job.logits
    return Placement([ram])


def _place_hybrid(job: TrainingJob, d: Deployment) -> Placement:
    """GPUs + RAM: a MoE model's routed experts and embeddings in RAM (with the expert kernels' backward
    cache); a dense model's embeddings and the decoder layers the GPUs cannot hold. The rest is split
    evenly over the GPUs."""
    m, c, w, n = job.m, param_counts(job.m), job.weights, d.count
    gpus, ram = _accelerators(d, GPU_RUNTIME_BYTES), _ram(d)
    if m.is_moe:
        cpu_share = 0.0
        ram_params, ram_w = c.routed_experts + c.embeddings, w["routed_experts"] + w["embeddings"]
        ram.activation_bytes = expert_cache_bytes(m, job.tokens, job.spec.gradient_checkpointing)
    else:
        cpu_share = _dense_cpu_layers(job, gpus) / m.num_layers
        layer_p = c.attention + c.dense_mlp + c.norms - m.hidden_size
        ram_params = c.embeddings + layer_p * cpu_share
        ram_w = w["embeddings"] + decoder_layers_bytes(m, w) * cpu_share
        ram.activation_bytes = round(job.stacked * cpu_share) + (job.one_layer if cpu_share else 0)
    gpu_adapters = job.n_adapters - job.expert_adapters
    for g in gpus:
        _hold(g, job, (c.total - ram_params) / n, (sum(w.values()) - ram_w) / n, gpu_adapters / n)
        g.activation_bytes = round(job.stacked * (1 - cpu_share) / n) + job.one_layer + job.logits
    _hold(ram, job, ram_params, ram_w, job.expert_adapters)
    return Placement([*gpus, ram], cpu_share)


def _dense_cpu_layers(job: TrainingJob, gpus: list[TrainingDeviceMemory]) -> int:
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


def spill_to_swap(devices: list[TrainingDeviceMemory], swap_bytes: int) -> int:
    """Move frozen weights RAM cannot hold into a swap device (appended to `devices` when there is RAM
    and swap); returns the bytes moved [B]."""
    ram = next((d for d in devices if d.kind == "ram"), None)
    if ram is None or swap_bytes <= 0:
        return 0
    moved = min(max(0, ram.used_bytes - ram.usable_bytes), swap_bytes, ram.weights_bytes)
    ram.weights_bytes -= moved
    devices.append(_part("Swap", "swap", swap_bytes, swap_bytes, weights_bytes=moved, slow=True))
    return moved


def fit_reasons(spec: FinetuneSpec, devices: list[TrainingDeviceMemory]) -> list[str]:
    """One sentence per device that is over its usable memory; identical accelerators share one."""
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


__all__ = ["TrainingJob", "TrainingDeviceMemory", "Placement", "training_job", "place", "spill_to_swap",
           "fit_reasons", "base_weight_bytes", "layer_activation_bytes", "logits_bytes", "expert_cache_bytes",
           "decoder_layers_bytes", "training_usable_bytes", "NF4_DQ_BITS"]
