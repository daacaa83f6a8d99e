"""The planner's search space: the constraints a buyer gives, and every deployment configuration
(model x quantization x device x count and nodes x engine x parallelism x KV dtype; hybrid boxes with
their CPUs, experts kept on the GPUs and the smallest standard RAM that fits; CPU-only boxes) that the
vectorized evaluator then loads with every number of users per replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..deployment import (
    RAM_SIZES_GIB,
    TP_ENGINES,
    ram_needed,
    resolve,
    standard_ram_gib,
)
from ..engines import engine_quants
from ..errors import K2CalcError
from ..memory import estimate_memory, weights_by_group
from ..models import ModelArch, get_model
from ..quant import resolve_scheme
from ..scenario import Catalogs, Scenario, Workload
from ..units import GiB, nodes_for_gpus

GPU_COUNTS = (1, 2, 4, 8, 16, 24, 32)
SYSTEM_COUNTS = (1, 2, 3, 4)
HYBRID_GPU_COUNTS = (1, 2, 4, 8)
# Routed experts per MoE layer kept on the GPUs of a hybrid box (ktransformers --gpu-experts): none, or a
# few of them where the cards have room.
HYBRID_GPU_EXPERTS = (0, 8)
# PCIe cards (below this memory) are also offered as the GPUs of a hybrid GPU + CPU box.
HYBRID_CARD_MAX_BYTES = 110 * GiB
NOISE_CLASSES = ("office", "lab", "datacentre")  # quietest first


class Constraints(BaseModel):
    """Limits on the answer. None = no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    models: tuple[str, ...] = Field(("kimi-k2-thinking",), min_length=1, max_length=50)
    budget_usd: float | None = Field(None, gt=0, le=1e12, description="capex, all replicas [USD]")
    monthly_budget_usd: float | None = Field(None, gt=0, le=1e11, description="running cost or rental [USD/month]")
    power_limit_watts: float | None = Field(None, gt=0, le=1e9, description="power under load, all replicas [W]")
    rack_kw: float | None = Field(None, gt=0, le=1000, description="peak power of one server or box [kW]")
    rack_units: float | None = Field(None, gt=0, le=100_000, description="rack units, all replicas [U]")
    noise: Literal["office", "lab", "datacentre"] | None = Field(None, description="loudest class allowed")
    cooling: Literal["air", "liquid"] | None = Field(None, description="the cooling the site has")
    include_unverified: bool = False
    where: Literal["any", "on-prem", "cloud"] = "any"
    engines: tuple[str, ...] | None = None
    quants: tuple[str, ...] | None = None
    hardware: tuple[str, ...] | None = None
    kv_dtypes: tuple[str, ...] = ("bf16", "fp8")
    server_engines: tuple[str, ...] = ("vllm", "sglang")
    rank_by: Literal["tco", "usd_per_mtok"] = "usd_per_mtok"


def _server_splits(m: ModelArch, count: int, engine: str) -> Iterator[dict]:
    """Parallelism of a GPU server replica: the engine's default (TP within a node, PP across nodes),
    expert parallelism over the TP ranks for a MoE model, and SGLang's DP-attention for MLA."""
    yield {}
    tp = count // nodes_for_gpus(count) if engine in TP_ENGINES else 1
    if tp > 1 and m.is_moe and m.n_routed_experts % tp == 0:
        yield {"ep": tp}
    if tp > 1 and engine == "sglang" and m.attention == "mla":
        yield {"dp_attention": True}


def _device_configs(c: Constraints, m: ModelArch, catalogs: Catalogs) -> Iterator[dict]:
    """Scenario values of every device configuration for model `m` (quantization and KV dtype apart)."""
    catalog = catalogs.hardware_catalog()
    cpus = [x for x in catalog.values() if x.is_cpu]
    for h in catalog.values():
        if c.hardware and h.id not in c.hardware:
            continue
        if h.is_gpu:
            for engine in c.server_engines:
                for count in GPU_COUNTS:
                    for split in _server_splits(m, count, engine):
                        yield {"hardware": h.id, "count": count, "nodes": nodes_for_gpus(count), "engine": engine, **split}
            if h.memory_bytes < HYBRID_CARD_MAX_BYTES:
                engine = "ktransformers" if m.is_moe else "llama.cpp"
                for cpu in cpus:
                    for count in HYBRID_GPU_COUNTS:
                        for experts in HYBRID_GPU_EXPERTS if m.is_moe else (0,):
                            yield {"hardware": h.id, "count": count, "cpu": cpu.id, "sockets": 2, "engine": engine,
                                   "gpu_experts": experts}
        elif h.is_system:
            apple = h.vendor.lower() == "apple"
            for count in SYSTEM_COUNTS:
                for engine in (("mlx-lm",) if apple else ("llama.cpp", "vllm")):
                    yield {"hardware": h.id, "count": count, "engine": engine}
        else:
            yield {"hardware": h.id, "sockets": 2, "engine": "llama.cpp"}


def _quants(c: Constraints, m: ModelArch, engine: str) -> list[str]:
    """Quantizations to try on `engine`: the user's, or every one the engine runs that is no larger
    than the model as shipped (never up-cast)."""
    return list(c.quants) if c.quants else list(_engine_quants_no_upcast(m, engine))


@lru_cache(maxsize=256)
def _engine_quants_no_upcast(m: ModelArch, engine: str) -> tuple[str, ...]:
    native = sum(weights_by_group(m, resolve_scheme("native", m)).values())
    out = []
    for quant in engine_quants(engine):
        try:
            if quant == "native" or sum(weights_by_group(m, resolve_scheme(quant, m)).values()) <= native:
                out.append(quant)
        except K2CalcError:
            continue
    return tuple(out)


def weights_fit(values: dict, m: ModelArch, catalogs: Catalogs) -> bool:
    """Cheap pre-check: one copy of the weights is no larger than all the devices' memory."""
    h = catalogs.hardware_catalog()[values["hardware"]]
    if h.is_cpu or values.get("cpu"):
        return True
    return sum(weights_by_group(m, resolve_scheme(values["quant"], m)).values()) <= values["count"] * h.memory_bytes


def ram_for(values: dict, catalogs: Catalogs) -> int | None:
    """Smallest standard RAM [GiB] with which a hybrid/CPU configuration's RAM-side load fits (one
    sequence of the workload's context); None when even the largest build is too small."""
    mem = estimate_memory(resolve(Scenario.build(**{**values, "ram_gb": RAM_SIZES_GIB[-1]}), catalogs), limits=False)
    return standard_ram_gib(ram_needed(mem))


def configurations(w: Workload, c: Constraints, catalogs: Catalogs) -> Iterator[dict]:
    """Scenario values (concurrency 1) of every configuration the planner considers, in catalog order.
    Configurations whose weights cannot fit the devices at all are yielded too, marked
    ``{"_skip": reason}``, so that the planner can say why a class failed."""
    for model in c.models:
        m = get_model(model, catalogs.models)
        base = dict(model=model, context=w.context_tokens, input_tokens=w.input_tokens,
                    output_tokens=w.output_tokens, concurrency=1)
        for device in _device_configs(c, m, catalogs):
            if c.engines and device["engine"] not in c.engines:
                continue
            for quant in _quants(c, m, device["engine"]):
                values = {**base, **device, "quant": quant}
                if not weights_fit(values, m, catalogs):
                    yield {**values, "_skip": f"{values['count']} x: the weights alone ({quant}) exceed the memory"}
                    continue
                for kv in c.kv_dtypes:
                    yield {**values, "kv_dtype": kv}


__all__ = ["Constraints", "configurations", "ram_for", "weights_fit", "NOISE_CLASSES", "HYBRID_CARD_MAX_BYTES",
           "HYBRID_GPU_COUNTS"]
