"""The hardware catalog: GPUs, unified-memory systems and CPU sockets, loaded from ``data/hardware.csv``.

One row per device. Units are in the column names and stay as the datasheet gives them in the CSV
(GB/s, TFLOPS, W, USD); the properties convert to SI base units for the physics (bytes/s, FLOP/s).

* ``memory_bytes`` [B]: real capacity as the OS or driver reports it (nvidia-smi MiB x 2^20), not the
  datasheet label, which is ``memory_marketing_gb``. Empty for ``cpu`` rows: their memory is the RAM the
  user configures.
* ``memory_bandwidth_gb_per_s`` [GB/s, 10^9 B/s]: theoretical peak; for ``cpu`` rows **per socket**,
  channels x MT/s x 8 B.
* ``*_dense_tflops`` / ``*_dense_tops`` [10^12 FLOP/s or OP/s]: dense peak, never the 2:4-sparse figure.
* ``link_gb_per_s`` [GB/s]: scale-up link bandwidth **per direction** per device.
* ``status``: the weakest of the row's memory, bandwidth and compute figures: verified (read in a primary
  source: datasheet, nvidia-smi), corroborated (several secondary sources agree), derived (computed from
  verified values), unverified (one secondary source: an assumption). The planner shows unverified
  devices apart unless told to rank them with the others.
* What a site must offer (the planner's constraints), each sourced in ``facility_source`` and empty where
  no source was found (unknown, never guessed): ``rack_units`` [U] of one server holding up to 8 of these
  GPUs (or of one system); ``noise_class``: office (quiet beside a desk), lab (a loud workstation, a
  closed room), datacentre (rack-mount only, a server room); ``cooling``: air, liquid or air-or-liquid, as
  sold; ``availability``: shipping or rarely-shipped (rarely shipped devices are shown apart too).

References
----------
NVIDIA Hopper/Blackwell datasheets (as summarised on glennklockwood.com), AMD Instinct MI300X/MI325X/MI355X
datasheets, ``ai-dynamo/aiconfigurator: systems/h200_sxm.yaml``, the LMSYS DGX Spark review
(``lm-sys/lm-sys.github.io: blog/2025-10-13-nvidia-dgx-spark.md``); the ``source`` and ``notes`` columns
cite each row.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from k2calc.errors import UnknownIdError
from k2calc.loader import DATA_DIR, DATE_PATTERN, load_csv, parse_csv
from k2calc.units import DRAM_BYTES_PER_TRANSFER, GB, TERA

DEFAULT_PATH = DATA_DIR / "hardware.csv"
DTYPES = ("bf16", "fp16", "fp8", "int8", "int4", "fp4")
_DTYPE_COLUMN = {"bf16": "bf16_dense_tflops", "fp16": "bf16_dense_tflops", "fp8": "fp8_dense_tflops",
                 "int8": "int8_dense_tops", "int4": "int4_dense_tops", "fp4": "fp4_dense_tflops"}
_CPU_ONLY = "required for kind 'cpu'"


# Physical limits of one device (well above anything sold by 2026): a custom device or a link beyond
# them is rejected with the range, so memory and speed stay finite.
MAX_MEMORY_BYTES = 2**45          # 32 TiB
MAX_BANDWIDTH_GB_PER_S = 1e6      # 1 PB/s
MAX_TFLOPS = 1e6                  # 1 EFLOP/s
MAX_WATTS = 1e6
MAX_LINK_GB_PER_S = 1e5
MAX_PRICE_USD = 1e8
# ... and floors: a rate far below them underflows to zero in the speed model and makes a time infinite
# (a custom device with 2.2e-308 TFLOPS did). The slowest catalog rows are 273 GB/s, 4.1 TFLOPS and a
# 9.4 GB/s link; the floors are a thousand times below any processor that could serve an LLM.
MIN_BANDWIDTH_GB_PER_S = 0.1
MIN_TFLOPS = 1e-3                 # 1 GFLOP/s
MIN_LINK_GB_PER_S = 1e-3


def _pos(description: str, le: float | None = None, ge: float | None = None):
    """An optional positive number column, at most `le` (and at least `ge` when given)."""
    return Field(None, gt=0, ge=ge, le=le, description=description)


def _rate(description: str):
    """An optional compute peak [TFLOPS or TOPS] between MIN_TFLOPS and MAX_TFLOPS."""
    return _pos(description, MAX_TFLOPS, MIN_TFLOPS)


class Hardware(BaseModel):
    """One catalog row. Field names are the CSV columns; empty cells are ``None`` (unknown or n/a)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=100, description="lowercase-dash id, e.g. 'h200-sxm'")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["gpu", "system", "cpu"] = Field(description="gpu card, unified-memory system, or cpu socket")
    vendor: str = Field(min_length=1)
    memory_bytes: int | None = _pos("real capacity as the driver reports it [B]; None for cpu", MAX_MEMORY_BYTES)
    memory_marketing_gb: float | None = _pos("datasheet label [GB], e.g. 141 for H200", MAX_MEMORY_BYTES / 1e9)
    memory_type: str | None = None
    memory_bandwidth_gb_per_s: float = Field(ge=MIN_BANDWIDTH_GB_PER_S, le=MAX_BANDWIDTH_GB_PER_S, description="theoretical peak [GB/s]; per socket for cpu")
    bf16_dense_tflops: float | None = _rate("dense BF16 peak [TFLOPS]; FP16 assumed equal")
    fp8_dense_tflops: float | None = _rate("dense FP8 peak [TFLOPS]")
    int8_dense_tops: float | None = _rate("dense INT8 peak [TOPS]")
    int4_dense_tops: float | None = _rate("dense INT4 peak [TOPS]")
    fp4_dense_tflops: float | None = _rate("dense FP4 peak [TFLOPS]")
    fp32_vector_tflops: float | None = _rate("CPU only: FP32 FMA vector peak per socket (AVX-512) [TFLOPS]")
    tdp_watts: float | None = _pos("TDP, board power or system maximum [W]", MAX_WATTS)
    typical_watts: float | None = _pos("typical draw under LLM load where measured [W]", MAX_WATTS)
    link: str | None = Field(None, description="scale-up link name, e.g. 'NVLink4', 'PCIe 5.0 x16'")
    link_gb_per_s: float | None = _pos("link bandwidth per direction per device [GB/s]", MAX_LINK_GB_PER_S, MIN_LINK_GB_PER_S)
    cores: int | None = _pos("CPU cores per socket", 4096)
    memory_channels: int | None = _pos("DRAM channels per socket", 64)
    memory_mt_per_s: int | None = _pos("DRAM transfer rate [MT/s]", 100_000)
    max_sockets: int | None = _pos("sockets per server", 16)
    matrix_isa: str | None = Field(None, description="'tensor-core', 'matrix-core', 'amx', 'avx512-bf16', 'apple-gpu'")
    price_usd: float | None = _pos("purchase price per device [USD]", MAX_PRICE_USD)
    price_date: str | None = Field(None, pattern=DATE_PATTERN, description="YYYY-MM or YYYY-MM-DD")
    price_source: str | None = None
    cloud_usd_per_hour: float | None = _pos("rental per device-hour [USD/h]", 10_000)
    cloud_date: str | None = Field(None, pattern=DATE_PATTERN)
    cloud_source: str | None = None
    status: Literal["verified", "corroborated", "derived", "unverified"]
    source: str = Field(min_length=1)
    # What the device asks of a site (the planner's constraints); empty = unknown. Sourced in facility_source.
    rack_units: float | None = _pos("rack units of one server holding up to 8 of these, or of one system [U]", 100)
    noise_class: Literal["office", "lab", "datacentre"] | None = Field(
        None, description="office (quiet beside a desk), lab (a loud workstation), datacentre (a server room only)")
    cooling: Literal["air", "liquid", "air-or-liquid"] | None = Field(None, description="cooling it is sold with")
    availability: Literal["shipping", "rarely-shipped"] | None = Field(None, description="can a buyer get it")
    facility_source: str | None = Field(None, description="where rack_units, noise_class, cooling, availability come from")
    notes: str | None = None

    # Cross-column checks: each runs on the later column, so earlier ones are in ``info.data``.
    @field_validator("memory_bytes")
    @classmethod
    def _memory_by_kind(cls, v: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if kind == "cpu" and v is not None:
            raise ValueError("must be empty for kind 'cpu' (memory comes from the configured RAM)")
        if kind in ("gpu", "system") and v is None:
            raise ValueError(f"required for kind '{kind}'")
        return v

    @field_validator("cores", "memory_channels", "memory_mt_per_s", "max_sockets")
    @classmethod
    def _cpu_needs(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is None and info.data.get("kind") == "cpu":
            raise ValueError(_CPU_ONLY)
        if info.field_name == "memory_mt_per_s" and v is not None and info.data.get("kind") == "cpu":
            channels, bw = info.data.get("memory_channels"), info.data.get("memory_bandwidth_gb_per_s")
            if channels and bw and abs(channels * v * DRAM_BYTES_PER_TRANSFER / 1000 - bw) > 0.01 * bw:
                raise ValueError(f"memory_bandwidth_gb_per_s {bw:g} should be channels x MT/s x 8 B = "
                                 f"{channels * v * DRAM_BYTES_PER_TRANSFER / 1000:g} GB/s per socket")
        return v

    @field_validator("typical_watts")
    @classmethod
    def _typical_below_tdp(cls, v: float | None, info: ValidationInfo) -> float | None:
        tdp = info.data.get("tdp_watts")
        if v is not None and tdp is not None and v > tdp:
            raise ValueError(f"typical {v:g} W exceeds tdp_watts {tdp:g} W")
        return v

    @field_validator("link_gb_per_s", "price_date", "cloud_date")
    @classmethod
    def _paired(cls, v, info: ValidationInfo):
        partner = {"link_gb_per_s": "link", "price_date": "price_usd", "cloud_date": "cloud_usd_per_hour"}
        other = partner[info.field_name]
        if info.field_name == "link_gb_per_s" and v is not None and info.data.get(other) is None:
            raise ValueError("a link bandwidth needs a link name in column 'link'")
        if info.field_name != "link_gb_per_s" and v is None and info.data.get(other) is not None:
            raise ValueError(f"required when {other} is given")
        return v

    @field_validator("facility_source")
    @classmethod
    def _facility_sourced(cls, v: str | None, info: ValidationInfo) -> str | None:
        given = [k for k in ("rack_units", "noise_class", "cooling", "availability") if info.data.get(k) is not None]
        if given and not v:
            raise ValueError(f"required when {', '.join(given)} is given (say where the figure comes from)")
        return v

    @property
    def is_gpu(self) -> bool:
        return self.kind == "gpu"

    @property
    def is_system(self) -> bool:
        return self.kind == "system"

    @property
    def is_cpu(self) -> bool:
        return self.kind == "cpu"

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        """Theoretical memory bandwidth [B/s]; per socket for cpu rows."""
        return self.memory_bandwidth_gb_per_s * GB

    @property
    def link_bytes_per_s(self) -> float | None:
        """Scale-up link bandwidth per direction [B/s], or None when unknown."""
        return None if self.link_gb_per_s is None else self.link_gb_per_s * GB

    def peak_flops_per_s(self, dtype: str) -> float | None:
        """Dense peak for ``dtype`` (bf16, fp16, fp8, int8, int4, fp4) [FLOP/s or OP/s]; None when unknown.

        FP16 is taken at the BF16 rate. Raises UnknownIdError for any other dtype.
        """
        column = _DTYPE_COLUMN.get(dtype.lower())
        if column is None:
            raise UnknownIdError("dtype", dtype, DTYPES)
        value = getattr(self, column)
        return None if value is None else value * TERA


COLUMNS: tuple[str, ...] = tuple(Hardware.model_fields)


def parse_hardware_csv(text: str | bytes, source_name: str = "hardware.csv") -> dict[str, Hardware]:
    """Parse and validate catalog CSV text; raise CatalogError naming the line (header = 1) and column."""
    return {hw.id: hw for hw in parse_csv(text, Hardware, key="id", source=source_name)}


@lru_cache(maxsize=1)
def _load_default() -> dict[str, Hardware]:
    return _load(DEFAULT_PATH)


def _load(path: Path) -> dict[str, Hardware]:
    return {hw.id: hw for hw in load_csv(path, Hardware, key="id")}


def load_hardware(path: str | Path | None = None) -> dict[str, Hardware]:
    """The catalog as {id: Hardware}; the default ``data/hardware.csv`` is read once and cached."""
    return dict(_load_default()) if path is None else _load(Path(path))


def get_hardware(hardware_id: str, catalog: dict[str, Hardware] | None = None) -> Hardware:
    """Look up one device by id (case and surrounding spaces ignored); UnknownIdError names close ids."""
    catalog = load_hardware() if catalog is None else catalog
    found = catalog.get(hardware_id.strip().lower())
    if found is None:
        raise UnknownIdError("hardware", hardware_id, catalog.keys())
    return found
