"""Every constant and modelling choice behind a fine-tuning estimate, as sentences shown to users."""

from __future__ import annotations

from ..engines import RAM_OS_RESERVE_FRACTION, RAM_OS_RESERVE_MIN_BYTES
from ..memory import Deployment
from ..units import GiB
from .memory import LOGITS_BYTES_PER_VOCAB, NF4_DQ_BITS
from .spec import DEFAULT_TARGETS, FinetuneSpec
from .speed import (
    CPU_SFT_EFFICIENCY,
    CPU_STREAM_BANDWIDTH_EFFICIENCY,
    GPU_MFU,
    HYBRID_GPU_EFFICIENCY,
    SWAP_READ_BYTES_PER_S,
    weight_passes,
)


def assumptions(spec: FinetuneSpec, d: Deployment) -> list[str]:
    """The assumptions of `spec` trained on `d`, memory first, then speed and energy."""
    return [*_memory_assumptions(spec), *_speed_assumptions(spec, d)]


def _memory_assumptions(spec: FinetuneSpec) -> list[str]:
    out = []
    if spec.method == "qlora":
        out.append(f"QLoRA: linear base weights in NF4 with double quantization, {NF4_DQ_BITS:.3f} bit/weight "
                   "(4 + 8/64 + 32/(64x256)); embeddings, lm_head, router and norms BF16; dequantisation "
                   "overhead not modelled")
    elif spec.method == "lora":
        out.append("LoRA: frozen base weights in BF16 (2 B/param); KTransformers converts FP8/INT4 checkpoints "
                   "to BF16 before SFT")
    if spec.full:
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
    return out


def _speed_assumptions(spec: FinetuneSpec, d: Deployment) -> list[str]:
    ckpt = spec.gradient_checkpointing
    out = [f"FLOPs per token: frozen weights {weight_passes(False, ckpt)}x the forward (forward + "
           f"activation gradient{' + recompute' if ckpt else ''}), trained weights "
           f"{weight_passes(True, ckpt)}x; attention dot products {3 + int(ckpt)}x"]
    if d.topology in ("gpu", "unified"):
        out.append(f"GPU servers: {GPU_MFU:.0%} of the BF16 dense peak (MFU, an assumption) or the weights "
                   "read per pass at the platform's achievable bandwidth, whichever is slower; data parallel "
                   "with ZeRO-3/FSDP sharding, each device runs its own micro-batch; communication inside the MFU")
    else:
        out.append(f"CPU: {CPU_SFT_EFFICIENCY:.2%} of the sockets' BF16 (AMX) peak, fitted on three published "
                   "KTransformers LoRA SFT runs (K2 46.55, DeepSeek-V3 40.35, V2-Lite 530 tok/s); streamed "
                   f"weights at {CPU_STREAM_BANDWIDTH_EFFICIENCY:.0%} of theoretical DDR bandwidth")
        if d.cpu.matrix_isa != "amx":
            out.append(f"{d.cpu.name} has no AMX: the CPU efficiency, fitted on AMX Xeons, is applied to its "
                       "BF16 peak unchanged (uncalibrated for this CPU)")
        out.append(f"system RAM: {RAM_OS_RESERVE_FRACTION:.0%} (at least {RAM_OS_RESERVE_MIN_BYTES / GiB:g} GiB) "
                   "kept for the OS; RAM and swap in GiB as sold")
        if spec.swap_gb:
            out.append(f"swap: frozen weights that do not fit in RAM are paged in at "
                       f"{SWAP_READ_BYTES_PER_S / 1e9:g} GB/s on every pass (slow)")
    if d.topology == "hybrid":
        placement = ("routed experts and the embedding table in RAM, computed by the CPU; attention, shared "
                     "experts, dense MLP, router and lm_head on the GPUs" if d.model.is_moe else
                     "dense model: whole decoder layers on the GPUs while they fit, the rest in RAM on the CPU")
        out.append(f"hybrid (KTransformers + LLaMA-Factory): {placement}; GPUs hold different layers (model "
                   f"parallel) at {HYBRID_GPU_EFFICIENCY:.0%} of one GPU's BF16 peak; CPU and GPU parts of a "
                   "layer run one after the other (no overlap)")
    out.append("energy: GPUs at typical or TDP watts, CPUs at TDP x sockets; cost on owned hardware is "
               "electricity only (no purchase, hosting or staff) at the stated tariff")
    return out


__all__ = ["assumptions"]
