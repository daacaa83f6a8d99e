"""Calibration parameters of the speed model, read from ``data/``: one row per device class, kernel or
engine family, each with the published rows or the microbenchmark that set it (its ``basis``).

* ``data/platforms.csv``: per class of device (:class:`Platform`): the share of the datasheet memory
  bandwidth a streaming kernel reaches (used for devices that ``data/bandwidth.csv`` does not list),
  fixed per-layer and per-step latencies, the small-message collective latency, the GEMM tile size.
* ``data/bandwidth.csv``: achievable memory bandwidth per catalog device, from published STREAM-class
  microbenchmarks (BabelStream, nvbench, likwid, MLC), never fitted on LLM runs.
* ``data/kernel_efficiency.csv``: achieved share of the dtype's dense peak, per decode kernel and platform
  and per prefill engine family and platform.
* ``data/class_corrections.csv``: the per-class residual correction and band that ``python -m k2calc
  validate --write-calibration`` fits on the published measurements (see :mod:`k2calc.validate`).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from ..errors import CatalogError
from ..hardware import Hardware
from ..loader import DATA_DIR, load_csv

PLATFORMS_PATH = DATA_DIR / "platforms.csv"
BANDWIDTH_PATH = DATA_DIR / "bandwidth.csv"
KERNEL_EFFICIENCY_PATH = DATA_DIR / "kernel_efficiency.csv"

ENGINE_FAMILY = {"vllm": "server", "sglang": "server", "ktransformers": "ktransformers",
                 "llama.cpp": "llama.cpp", "ollama": "ollama", "mlx-lm": "mlx", "exo": "mlx"}
# Which peak a kernel runs at: W4A16 dequantises to BF16 tensor cores; GGUF MMQ uses INT8 MMA.
KERNEL_PEAK_DTYPE = {"w4a16": "bf16", "fp8": "fp8", "fp4": "fp4", "bf16": "bf16", "gguf": "int8", "mlx": "bf16"}
ANY = "*"


class Platform(BaseModel):
    """Achievable fractions and fixed latencies of one class of device (a row of data/platforms.csv).

    bandwidth_fraction : achieved / datasheet memory bandwidth of a streaming kernel [1] (devices
        without their own row in data/bandwidth.csv)
    layer_latency_mla_s, layer_latency_gqa_s : fixed time per decoder layer and step, whatever the bytes:
        kernel launches and many small kernels (MLA + MoE layers run about twice as many) [s]
    step_overhead_s : per decode step: scheduling, sampling, CPU-side bookkeeping [s]
    collective_latency_s : one all-reduce or all-to-all of a small message over the scale-up link [s]
    gemm_half_rows : tokens a weight matrix must see for its GEMM to reach half the kernel's best
        efficiency (tensor-core tiles are 64-128 rows; Apple's 8x8 simdgroup tiles waste little) [tokens]
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    platform: str
    bandwidth_fraction: float = Field(gt=0, le=1)
    layer_latency_mla_s: float = Field(ge=0)
    layer_latency_gqa_s: float = Field(ge=0)
    step_overhead_s: float = Field(ge=0)
    collective_latency_s: float = Field(ge=0)
    gemm_half_rows: float = Field(gt=0)
    basis: str

    @property
    def name(self) -> str:
        return self.platform


class DeviceBandwidth(BaseModel):
    """Achievable memory bandwidth of one catalog device (a row of data/bandwidth.csv) [GB/s]."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    hardware_id: str
    achievable_gb_per_s: float = Field(gt=0)
    peak_gb_per_s: float = Field(gt=0)
    basis: str
    benchmark: str
    source: str


class KernelEfficiency(BaseModel):
    """Achieved share of a dtype's dense peak (a row of data/kernel_efficiency.csv) [1]."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    phase: str
    kernel: str  # decode: kernel id; prefill: engine family; '*' = any
    platform: str
    efficiency: float = Field(gt=0, le=1)
    basis: str


@lru_cache(maxsize=1)
def platforms() -> dict[str, Platform]:
    return {p.platform: p for p in load_csv(PLATFORMS_PATH, Platform, key="platform")}


@lru_cache(maxsize=1)
def device_bandwidths() -> dict[str, DeviceBandwidth]:
    return {b.hardware_id: b for b in load_csv(BANDWIDTH_PATH, DeviceBandwidth, key="hardware_id")}


@lru_cache(maxsize=1)
def _efficiencies() -> dict[tuple[str, str, str], float]:
    return {(e.phase, e.kernel, e.platform): e.efficiency for e in load_csv(KERNEL_EFFICIENCY_PATH, KernelEfficiency, key=("phase", "kernel", "platform"))}


def kernel_efficiency(phase: str, kernel: str, platform: str, fallback: str | None = None) -> float:
    """Achieved share of the dtype's peak for `kernel` (decode) or engine family (prefill, optionally
    'family:kernel') on `platform`; falls back to `fallback` on the platform, then to the platform's
    default, then to the phase's default [1]."""
    table = _efficiencies()
    keys = [(phase, kernel, platform), (phase, kernel, ANY)]
    if fallback:
        keys.append((phase, fallback, platform))
    for key in (*keys, (phase, ANY, platform), (phase, ANY, ANY)):
        if key in table:
            return table[key]
    raise CatalogError(f"kernel_efficiency.csv: no {phase} row for {kernel} on {platform} and no default")


# Where no published run speaks for a decode kernel on a platform, the physically nearest platform's
# row stands in: the same vendor's previous or next tensor-core generation.
NEAREST_PLATFORM = {"nvidia-blackwell": "nvidia-hopper", "nvidia-hopper": "nvidia-blackwell",
                    "nvidia-ampere": "nvidia-hopper"}


def decode_kernel_evidence(kernel: str, platform: str) -> tuple[float, str]:
    """(efficiency [1], where it comes from) of a decode MoE kernel on a platform: its own row of
    data/kernel_efficiency.csv ("measured"), else the nearest platform's row for the same kernel
    ("borrowed from <platform>"), else the platform's default ("platform default")."""
    table = _efficiencies()
    if ("decode", kernel, platform) in table:
        return table[("decode", kernel, platform)], "measured"
    near = NEAREST_PLATFORM.get(platform)
    if near and ("decode", kernel, near) in table:
        return table[("decode", kernel, near)], f"borrowed from {near}"
    return kernel_efficiency("decode", kernel, platform), "platform default"


def platform_of(device: Hardware) -> Platform:
    """The calibration class of a GPU or unified-memory system."""
    vendor, memory = device.vendor.lower(), (device.memory_type or "").lower()
    table = platforms()
    if vendor == "apple":
        return table["apple"]
    if vendor == "amd":
        return table["amd-hbm"]
    if "hbm" in memory:
        if device.id.startswith(("b100", "b200", "b300", "gb")):
            return table["nvidia-blackwell"]
        return table["nvidia-ampere" if device.id.startswith("a100") else "nvidia-hopper"]
    if "lpddr" in memory:
        return table["nvidia-lpddr"]
    return table["nvidia-gddr"]


# STREAM triad share of a CPU socket's DIMM peak where data/bandwidth.csv has no row: Sapphire Rapids
# 233 of 307 GB/s (RRZE-HPC/likwid issue 664), Xeon 6980P 512 of 614 (ik_llama.cpp PR 534): about 0.76.
CPU_STREAM_FRACTION = 0.76


def achievable_bandwidth_bytes_per_s(device: Hardware) -> float:
    """Memory bandwidth a streaming kernel reaches on `device` [B/s]: the published microbenchmark of
    data/bandwidth.csv where the device has one, else the datasheet figure x its platform's fraction.
    For a CPU: one socket."""
    row = device_bandwidths().get(device.id)
    if row is not None and abs(row.peak_gb_per_s * 1e9 - device.memory_bandwidth_bytes_per_s) < 1e6:
        return row.achievable_gb_per_s * 1e9
    if device.kind == "cpu":
        return device.memory_bandwidth_bytes_per_s * CPU_STREAM_FRACTION
    return device.memory_bandwidth_bytes_per_s * platform_of(device).bandwidth_fraction

