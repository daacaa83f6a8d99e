"""Fine-tuning (LoRA, QLoRA, full SFT) as a workload on the same deployment as inference.

``estimate_finetune(spec, catalogs)`` resolves the spec's model and hardware with
:func:`k2calc.scenario.resolve` (so custom devices and imported models work as in the Calculator), then:

* :mod:`.spec`: the inputs (:class:`FinetuneSpec`), their checks, the training deployment;
* :mod:`.adapters`: LoRA parameters per target group;
* :mod:`.memory`: weights, adapters, gradients, optimizer state and activations per device;
* :mod:`.speed`: FLOPs per token and time per token on each route, with efficiencies from
  ``data/finetune_efficiencies.csv`` (:mod:`.data` loads it and ``data/finetune_runs.csv``);
* :mod:`.estimate`: the assembly, run time, energy and cost (None when it does not fit);
* :mod:`.fixes`: what would make a run that does not fit fit;
* :mod:`.calibration`: the published runs against the model;
* :mod:`.cli`: ``python -m k2calc finetune`` (arguments and text report).
"""

from .adapters import adapter_params, target_matrices
from .assumptions import assumptions
from .calibration import calibration, deepseek_v2_lite
from .cli import add_parser, format_text, run, spec_from_args
from .estimate import FinetuneEstimate, estimate_finetune, fits
from .fixes import Fix
from .memory import (
    NF4_DQ_BITS,
    TrainingDeviceMemory,
    layer_activation_bytes,
    logits_bytes,
)
from .spec import DEFAULT_TARGETS, METHODS, TARGETS, FinetuneSpec, training_deployment
from .speed import (
    CPU_SFT_EFFICIENCY,
    GPU_MFU,
    HYBRID_GPU_EFFICIENCY,
    train_flops_per_token,
)

__all__ = [
    "FinetuneSpec", "FinetuneEstimate", "TrainingDeviceMemory", "Fix", "estimate_finetune", "fits",
    "training_deployment", "adapter_params", "target_matrices", "train_flops_per_token", "layer_activation_bytes",
    "logits_bytes", "calibration", "add_parser", "run", "spec_from_args", "format_text", "assumptions",
    "deepseek_v2_lite", "METHODS", "TARGETS", "DEFAULT_TARGETS", "CPU_SFT_EFFICIENCY", "GPU_MFU",
    "HYBRID_GPU_EFFICIENCY", "NF4_DQ_BITS",
]
