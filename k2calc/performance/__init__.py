"""Performance model: decode and prefill speed, time to first token, bottleneck, roofline and bands.

* :mod:`.calibration`: the parameters, read from ``data/`` with the rows or microbenchmarks behind them
* :mod:`.decode`: one decode step (bytes, FLOPs, communication, fixed latencies) per topology
* :mod:`.prefill`: prompt processing time
* :mod:`.bands`: calibration classes and their uncertainty bands
* :mod:`.estimate`: :func:`estimate_performance`, which puts them together
"""

from .bands import (
    CORRECTIONS_PATH,
    FAR_BAND,
    FEW_SOURCES_BAND,
    Band,
    ClassCalibration,
    Corrections,
    calibration_class,
    class_calibration,
    load_corrections,
    write_corrections,
)
from .calibration import (
    ENGINE_FAMILY,
    achievable_bandwidth_bytes_per_s,
    kernel_efficiency,
    platform_of,
)
from .decode import StepCost, decode_step, experts_touched, gemm_efficiency
from .estimate import PerformanceEstimate, corrected_prefill, estimate_performance
from .prefill import prefill_flops, prefill_time

__all__ = [
    "CORRECTIONS_PATH", "FAR_BAND", "FEW_SOURCES_BAND", "Band", "ClassCalibration", "Corrections",
    "calibration_class", "class_calibration", "load_corrections", "write_corrections", "ENGINE_FAMILY",
    "achievable_bandwidth_bytes_per_s", "kernel_efficiency", "platform_of", "StepCost", "decode_step",
    "experts_touched", "gemm_efficiency", "PerformanceEstimate", "corrected_prefill", "estimate_performance",
    "prefill_flops", "prefill_time",
]
