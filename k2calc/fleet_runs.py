"""The published disaggregated runs, predicted by the large-EP pool model (:mod:`k2calc.fleet_ep`).

``data/measurements.csv`` holds the numbers (``serving=disaggregated``); ``data/fleet_runs.csv`` says
how each was set up where the measurement columns cannot: which pool (prefill or decode) a figure
measures, its size (EP), the prompt tokens per GPU of a prefill forward or the sequences per GPU in
decode, EPLB's redundant experts, and for the figures not compared, why. Every published figure is per
8-GPU node; the prediction is 8 x the pool's per-GPU throughput. No class correction is fitted on these
rows (the pool's constants come from microbenchmarks and DeepSeek's own profile), so their
cross-validated and in-sample predictions are the physics alone.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .fleet_ep import decode_step_pool, make_pool, prefill_batch_pool
from .fleet_speculative import Speculation, acceptance_from_length
from .hardware import get_hardware
from .loader import DATA_DIR, load_csv
from .measurements import Measurement
from .models import get_model
from .performance.calibration import platform_of
from .scenario import Scenario
from .units import GPUS_PER_NODE

FLEET_RUNS_PATH = DATA_DIR / "fleet_runs.csv"


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"), kw_only=True)
class FleetRun:
    """How one disaggregated measurement was set up (a row of data/fleet_runs.csv)."""

    measurement_id: str
    role: Literal["prefill", "decode", "not-compared"]
    pool_gpus: int = Field(ge=0, le=1024)        # GPUs of the measured pool (its EP size)
    tokens_per_gpu: int = Field(ge=0)            # prefill: prompt tokens per GPU per forward; decode: sequences per GPU
    redundant_experts: int = Field(ge=0)         # EPLB's extra expert copies per MoE layer
    eplb: bool
    reason: str
    draft_tokens: int = Field(0, ge=0, le=16)         # speculative decoding: draft tokens per step (0 = none)
    acceptance_length: float | None = Field(None, ge=1)  # published mean tokens kept per step
    per_gpus: int = Field(8, ge=1)                    # GPUs the published figure covers (8 = per node, 1 = per GPU)


@lru_cache(maxsize=1)
def load_fleet_runs() -> dict[str, FleetRun]:
    """data/fleet_runs.csv by measurement id."""
    return {r.measurement_id: r for r in load_csv(FLEET_RUNS_PATH, FleetRun, key="measurement_id")}


def run_of(m: Measurement) -> FleetRun | None:
    """The set-up of a disaggregated measurement, or None when data/fleet_runs.csv does not describe it."""
    return load_fleet_runs().get(m.id)


def predict_run(m: Measurement, run: FleetRun) -> float:
    """The pool model's figure for a measurement, per 8-GPU node [tok/s]."""
    context = (m.input_tokens or 2000) + (m.output_tokens or 100)
    pool = make_pool(m.model_id, m.hardware_id, run.pool_gpus, m.quant or "native", context=max(context, 4096),
                     redundant_experts=run.redundant_experts, eplb=run.eplb)
    if run.role == "prefill":
        return run.per_gpus * prefill_batch_pool(pool, run.tokens_per_gpu, m.input_tokens).tokens_per_s_per_gpu
    seq_len = m.input_tokens + (m.output_tokens or 0) / 2
    step = decode_step_pool(pool, run.tokens_per_gpu, seq_len, *_speculation(m, run))
    return run.per_gpus * step.tokens_per_s_per_gpu(run.tokens_per_gpu)


def _speculation(m: Measurement, run: FleetRun) -> tuple:
    """(Speculation, acceptance) of a run with speculative decoding (the acceptance that gives its
    published mean acceptance length), or () without."""
    if not run.draft_tokens:
        return ()
    spec = Speculation.of(get_model(m.model_id), "mtp" if get_model(m.model_id).mtp_layers else "eagle3",
                          run.draft_tokens)
    return spec, acceptance_from_length(run.acceptance_length, run.draft_tokens)


def run_scenario(m: Measurement, run: FleetRun) -> Scenario:
    """A scenario describing the measured pool (for the report's scenario line)."""
    return Scenario(model=m.model_id, hardware=m.hardware_id, count=run.pool_gpus,
                    nodes=max(1, run.pool_gpus // GPUS_PER_NODE), engine="sglang", dp_attention=True,
                    input_tokens=m.input_tokens, output_tokens=m.output_tokens or 1,
                    context=max(4096, m.input_tokens + (m.output_tokens or 1)),
                    concurrency=run.tokens_per_gpu * run.pool_gpus if run.role == "decode" else 1)


def run_class(m: Measurement) -> str:
    """The calibration class of a disaggregated row: 'disaggregated/<platform>'."""
    return f"disaggregated/{platform_of(get_hardware(m.hardware_id)).name}"


__all__ = ["FleetRun", "load_fleet_runs", "run_of", "predict_run", "run_scenario", "run_class", "FLEET_RUNS_PATH"]
