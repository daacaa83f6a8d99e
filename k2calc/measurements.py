"""Published benchmark measurements, mapped onto k2calc's catalog ids.

``data/measurements.csv`` holds one row per published number (engine docs and recipes, model cards, blog
posts, issues, and the SGLang cookbook's benchmark blocks; ``source`` names the file and commit or the
URL), with model, quantization, hardware, CPU and engine mapped to catalog ids and every value converted
to one normalised metric. Rows are kept even when they fit no catalog id (then the id is
empty and ``notes`` says why); ``notes`` also keeps the published number whenever it was converted.

Metrics (as SGLang's and vLLM's ``bench_serving`` scripts report them):

* ``decode_tokens_per_s_per_user`` [tok/s]: decode speed one user sees. From SGLang/vLLM benchmarks it is
  1000 / ``mean_tpot`` [ms] (or 1000 / ``mean_itl``); from single-request tools it is their decode rate.
* ``decode_tokens_per_s_total`` [tok/s]: aggregate decode throughput summed over concurrent users
  (per node or per cluster, as the row's ``count`` says).
* ``output_tokens_per_s_total`` [tok/s]: the benchmark scripts' "output throughput" = generated tokens /
  wall time *including* time to first token; lower than decode throughput, never mixed with it.
* ``total_tokens_per_s`` [tok/s]: (input + output tokens) / wall time.
* ``prefill_tokens_per_s`` [tok/s]: prompt processing, single request or aggregate (``notes`` says which).
* ``ttft_s`` [s]: mean time to first token.
* ``lora_sft_tokens_per_s`` [tok/s], ``step_time_s`` [s]: LoRA fine-tuning throughput and step time.
* ``peak_memory_gb`` [GB = 1e9 bytes], ``peak_power_w`` [W], ``usd_per_million_output_tokens`` [USD].

Quantization ids are catalog ids (``native`` = the model's shipped format) or ``bpw:X`` for a custom
average of X bits per weight. An empty CSV cell means "not stated by the source".
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from k2calc.loader import DATA_DIR, load_csv
from k2calc.quant import QUANT_IDS

DEFAULT_PATH = DATA_DIR / "measurements.csv"

Metric = Literal[
    "decode_tokens_per_s_per_user", "decode_tokens_per_s_total", "output_tokens_per_s_total",
    "total_tokens_per_s", "prefill_tokens_per_s", "ttft_s", "lora_sft_tokens_per_s", "step_time_s",
    "peak_memory_gb", "peak_power_w", "usd_per_million_output_tokens",
]
METRICS: tuple[str, ...] = get_args(Metric)
UNITS: dict[str, str] = {
    "decode_tokens_per_s_per_user": "tok/s", "decode_tokens_per_s_total": "tok/s",
    "output_tokens_per_s_total": "tok/s", "total_tokens_per_s": "tok/s", "prefill_tokens_per_s": "tok/s",
    "ttft_s": "s", "lora_sft_tokens_per_s": "tok/s", "step_time_s": "s", "peak_memory_gb": "GB",
    "peak_power_w": "W", "usd_per_million_output_tokens": "USD/1M tok",
}
Engine = Literal["vllm", "sglang", "ktransformers", "llama.cpp", "ollama", "mlx-lm", "exo"]
ENGINES: tuple[str, ...] = get_args(Engine)
QUANTS = QUANT_IDS  # the catalog's quantizations (k2calc.quant)


class Measurement(BaseModel):
    """One published number, with the scenario it was measured in."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    model_id: str | None = None  # catalog model id; None when the model is not in the catalog
    model_name: str  # as published
    quant: str | None = None  # catalog quant id or "bpw:X" (average bits per weight)
    hardware_id: str | None = None  # catalog GPU / system id
    count: int | None = Field(default=None, ge=1)  # GPUs or systems; None when the source does not say
    nodes: int = Field(default=1, ge=1)
    cpu_id: str | None = None  # host CPU for hybrid CPU+GPU rows
    sockets: int | None = Field(default=None, ge=1)
    ram_gb: int | None = Field(default=None, ge=1)  # system RAM [GB]
    engine: Engine
    tp: int | None = Field(default=None, ge=1)  # tensor-parallel size
    ep: int | None = Field(default=None, ge=1)  # expert-parallel size
    dp_attention: bool = False
    gpu_experts: int | None = Field(default=None, ge=0)  # routed experts kept on GPU (ktransformers)
    kt_prefill: Literal["cpu", "gpu"] | None = None  # ktransformers prefill path, where the source says
    arrival: Literal["steady", "burst"] | None = None  # burst: all concurrent requests sent at once
    # disaggregated: separate prefill and decode pools (e.g. SGLang PD with large-scale EP)
    serving: Literal["aggregated", "disaggregated"] = "aggregated"

    input_tokens: int | None = Field(default=None, ge=1)  # prompt length [tokens]
    output_tokens: int | None = Field(default=None, ge=1)  # generated length [tokens]
    concurrency: int | None = Field(default=None, ge=1)  # concurrent requests / batch size
    metric: Metric
    value: float = Field(ge=0)  # in `unit`
    unit: str
    source: str = Field(min_length=1)
    notes: str = ""

    @field_validator("quant")
    @classmethod
    def _quant_known(cls, q: str | None) -> str | None:
        if q is None or q in QUANTS:
            return q
        if q.startswith("bpw:"):
            try:
                bits = float(q[4:])
            except ValueError:
                bits = 0.0
            if 1.0 <= bits <= 32.0:
                return q
        raise ValueError(f"unknown quant '{q}'; expected one of {', '.join(QUANTS)} or bpw:X")

    @field_validator("unit")
    @classmethod
    def _unit_matches_metric(cls, unit: str, info) -> str:
        metric = info.data.get("metric")
        if metric is not None and UNITS[metric] != unit:
            raise ValueError(f"unit '{unit}' does not match metric {metric} (expected '{UNITS[metric]}')")
        return unit


COLUMNS = tuple(Measurement.model_fields)


@lru_cache(maxsize=8)
def _load(path: Path) -> tuple[Measurement, ...]:
    return tuple(load_csv(path, Measurement, key="id"))


def load_measurements(path: str | Path | None = None) -> list[Measurement]:
    """All measurements in ``path`` (default ``<repo>/data/measurements.csv``), parsed once and cached.

    Raises :class:`~k2calc.errors.CatalogError` naming the file, CSV line and column of the first bad cell.
    """
    return list(_load(Path(path).resolve() if path is not None else DEFAULT_PATH))
