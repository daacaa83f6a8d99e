"""Units, constants (one per physical fact used in several modules) and the one byte and money formatters.

Everything inside k2calc is SI base units: bytes (int), seconds, FLOP, bytes/s, watts, USD.
The unit is part of every name (``weights_bytes``, ``bandwidth_bytes_per_s``).

GB versus GiB is decided here and nowhere else:

* **GB (10^9 bytes)** for datasheet-like figures: checkpoint sizes, HBM capacities as vendors
  quote them, memory bandwidth (GB/s), weights of a model.
* **GiB (2^30 bytes)** for the memory of a device and everything placed on it (the per-device
  breakdown, KV pools, fit messages): engines report GiB (vLLM "Available KV cache memory: 46.80 GiB",
  nvidia-smi MiB), and DRAM modules and unified memory are built in binary sizes: a "64 GB" DIMM and a
  "512 GB" Mac Studio hold 64 GiB and 512 GiB. :func:`format_device_bytes` is that choice.

References
----------
IEC 80000-13 (binary prefixes); humanize ``naturalsize`` for the single-formatter idea.
"""

from __future__ import annotations

import math

MB = 10**6
GB = 10**9
TB = 10**12
KiB = 2**10
MiB = 2**20
GiB = 2**30

TERA = 10**12
"""FLOP/s per TFLOPS."""

SECONDS_PER_HOUR = 3600
HOURS_PER_YEAR = 8760.0
"""365 x 24 h: a year of continuous service (the cost model's year)."""
HOURS_PER_MONTH = HOURS_PER_YEAR / 12

# ------------------------------------------------------------------------------------------------
# Physical facts used in more than one module: one constant each, with its source.
# ------------------------------------------------------------------------------------------------

GPUS_PER_NODE = 8
"""GPUs in one HGX/DGX server, the NVLink domain k2calc fills before adding a node.

References: NVIDIA DGX H100/H200 user guide ("8x NVIDIA H100/H200 Tensor Core GPUs",
https://docs.nvidia.com/dgx/dgxh100-user-guide/introduction-to-dgxh100.html); HGX B200 (8 GPUs,
https://www.nvidia.com/en-us/data-center/hgx/); AMD Instinct MI300X platform (8 OAM GPUs).
"""

DRAM_BYTES_PER_TRANSFER = 8
"""Data bytes one DDR4/DDR5 channel moves per transfer: a 64-bit channel (DDR5: two 32-bit subchannels),
so peak bandwidth per socket [B/s] = channels x MT/s x 10^6 x 8.

References: JEDEC JESD79-5 (DDR5 SDRAM); e.g. 8 channels of DDR5-4800 = 307.2 GB/s per socket.
"""


def nodes_for_gpus(count: int) -> int:
    """Servers needed for ``count`` GPUs [count], :data:`GPUS_PER_NODE` to a server, at least one.

    >>> nodes_for_gpus(8), nodes_for_gpus(9), nodes_for_gpus(32)
    (1, 2, 4)
    """
    return max(1, -(-count // GPUS_PER_NODE))


def format_bytes(n_bytes: float, binary: bool = False, digits: int = 1) -> str:
    """Format a byte count with its unit; the only byte formatter in the project.

    Parameters
    ----------
    n_bytes : bytes [B]
    binary : True for KiB/MiB/GiB/TiB (powers of 1024), False for kB/MB/GB/TB (powers of 1000)
    digits : digits after the decimal point

    >>> format_bytes(594.2e9)
    '594.2 GB'
    >>> format_bytes(46.80 * 2**30, binary=True, digits=2)
    '46.80 GiB'
    >>> format_bytes(70272)
    '70.3 kB'
    >>> format_bytes(-3 * 10**9)
    '-3.0 GB'
    >>> format_bytes(512)
    '512 B'
    """
    base = 1024 if binary else 1000
    suffixes = ("KiB", "MiB", "GiB", "TiB", "PiB") if binary else ("kB", "MB", "GB", "TB", "PB")
    value = float(n_bytes)
    if abs(value) < base:
        return f"{int(value)} B"
    for suffix in suffixes:
        value /= base
        if abs(value) < base or suffix == suffixes[-1]:
            return f"{value:.{digits}f} {suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_gb(n_bytes: float, digits: int = 1) -> str:
    """Weights and checkpoint sizes in decimal GB with thousands separators (datasheet style).

    >>> format_gb(1_029_173_196_976)
    '1,029.2 GB'
    """
    return f"{n_bytes / GB:,.{digits}f} GB"


def format_device_bytes(n_bytes: float, digits: int = 1) -> str:
    """Memory on a device, in GiB-based units (see the module docstring).

    >>> format_device_bytes(150_754_820_096)
    '140.4 GiB'
    """
    return format_bytes(n_bytes, binary=True, digits=digits)


def format_count(n: float, digits: int = 1) -> str:
    """Format a large count (parameters, tokens) with K/M/B/T suffixes.

    >>> format_count(1026.4e9)
    '1026.4B'
    >>> format_count(715072, digits=0)
    '715K'
    >>> format_count(12)
    '12'
    """
    value = float(n)
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold and not (suffix == "T" and abs(value) < 1e13):
            return f"{value / threshold:.{digits}f}{suffix}"
    return f"{value:.0f}"


def format_usd(x: float | None, digits: int | None = None) -> str:
    """Money [USD] as shown everywhere: two decimals below $1,000 unless told, thousands separators.

    >>> format_usd(388_900), format_usd(93.6), format_usd(1234.5, digits=2), format_usd(None)
    ('$388,900', '$93.60', '$1,234.50', 'n/a')
    >>> format_usd(float("inf"))
    'n/a'
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    if digits is None:
        digits = 2 if abs(x) < 1000 else 0
    return f"${x:,.{digits}f}"
