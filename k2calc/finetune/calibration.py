"""The CPU efficiency of fine-tuning against the published runs that set it (data/finetune_runs.csv).

Published KTransformers + LLaMA-Factory LoRA SFT throughputs on RTX 4090 + Xeon Platinum 8488C (2 sockets
assumed, 2 x 98.3 = 196.6 TFLOPS AMX BF16 peak): Kimi K2 46.55 tok/s (cutoff_len 2048), DeepSeek-V3
40.35 tok/s (qlen 512, GAS 16) and DeepSeek-V2-Lite 530.38 tok/s (qlen 512 assumed). Routed forward FLOPs
per token 42.3 / 40.9 / 2.70 GFLOP, x3 with checkpointing: the CPUs achieve 5.9 / 4.9 / 4.3 TFLOPS, and
once the GPU part's time (5-8% of the total) is taken out each point alone implies 3.2% / 2.7% / 2.3% of
peak. Their geometric mean, 2.75% (``cpu_sft_efficiency`` in data/finetune_efficiencies.csv), predicts
40.2 / 40.5 / 614 tok/s: measured / predicted = 1.16 / 1.00 / 0.86. The low share is end-to-end: the
developer notes measure 17.6-18.4 TFLOPS inside the MoE kernels, ~9% of peak, and MoE time is about a
quarter of the step; the rest is PyTorch-side work folded into this one figure.

Known gaps: the developer notes also give V2-Lite 227.6 tok/s at qlen 512 x GAS 16, 2.7x below this
model; their ~70 GB of GPU memory for V3 (summed over the GPUs) is about twice what is placed here
(~35 GiB): KTransformers' GPU-side buffers are not itemised in any source found.

References
----------
kvcache-ai/ktransformers doc/en/SFT/KTransformers-Fine-Tuning_User-Guide.md and
KTransformers-Fine-Tuning_Developer-Technical-Notes.md (commit 95009ea); moonshotai/Kimi-K2-Thinking
docs/deploy_guidance.md on Hugging Face.
"""

from __future__ import annotations

from typing import Any

from ..models import ModelArch, from_hf_config
from ..scenario import Catalogs
from .data import published_runs
from .estimate import estimate_finetune
from .speed import CPU_SFT_EFFICIENCY

DEEPSEEK_V2_LITE_CONFIG: dict[str, Any] = {
    "architectures": ["DeepseekV2ForCausalLM"], "num_hidden_layers": 27, "hidden_size": 2048,
    "num_attention_heads": 16, "num_key_value_heads": 16, "q_lora_rank": None, "kv_lora_rank": 512,
    "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 64,
    "num_experts_per_tok": 6, "n_shared_experts": 2, "moe_intermediate_size": 1408,
    "intermediate_size": 10944, "first_k_dense_replace": 1, "vocab_size": 102400,
    "max_position_embeddings": 163840,
}
"""DeepSeek-V2-Lite's config.json fields (deepseek-ai/DeepSeek-V2-Lite on Hugging Face): a published
run's model that is not in the catalog."""


def deepseek_v2_lite() -> ModelArch:
    """DeepSeek-V2-Lite as an imported model (id ``deepseek-v2-lite``)."""
    return from_hf_config(DEEPSEEK_V2_LITE_CONFIG, "deepseek-v2-lite", "DeepSeek-V2-Lite")


def calibration_catalogs() -> Catalogs:
    """The catalogs the published runs need beyond data/ (DeepSeek-V2-Lite)."""
    return Catalogs(models={"deepseek-v2-lite": deepseek_v2_lite()})


def calibration() -> list[dict[str, Any]]:
    """Each published run: measured and predicted tok/s, their ratio, and the CPU efficiency the run
    implies alone (the CPU time it leaves once the GPU part and swap reads are taken out) [tok/s, 1]."""
    catalogs = calibration_catalogs()
    rows = []
    for run in published_runs():
        est = estimate_finetune(run.spec(), catalogs)
        t, measured = est.time_per_token_s, run.measured_tokens_per_s
        cpu_s = 1 / measured - t["gpu_compute"] - t.get("swap_reads", 0.0)
        rows.append({"model": run.model, "measured_tokens_per_s": measured,
                     "predicted_tokens_per_s": est.tokens_per_s,
                     "ratio_measured_over_predicted": measured / est.tokens_per_s,
                     "implied_cpu_efficiency": CPU_SFT_EFFICIENCY * t["cpu_compute"] / cpu_s,
                     "source": run.source})
    return rows


__all__ = ["calibration", "calibration_catalogs", "deepseek_v2_lite", "DEEPSEEK_V2_LITE_CONFIG"]
