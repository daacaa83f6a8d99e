"""Ways to make a deployment that does not fit fit: each a complete scenario with a one-line label.

Tried in this order, each changing one thing: more devices (the smallest count that fits, engine
default parallelism), more system RAM (the smallest standard build; hybrid and CPU-only boxes), a smaller quantization the engine runs (the
largest of those that fits), a smaller KV-cache dtype, a shorter context (the longest that fits and
still holds prompt + answer) and fewer users (the most that fit). :func:`k2calc.estimate.estimate`
prices them and puts the cheapest first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .deployment import ram_needed, resolve, standard_ram_gib, with_count
from .engines import engine_quants
from .errors import K2CalcError
from .memory import (
    KV_DTYPES,
    Deployment,
    MemoryEstimate,
    estimate_memory,
    weights_by_group,
)
from .quant import resolve_scheme
from .scenario import Catalogs, Scenario
from .units import GiB

CONTEXT_STEP = 1024  # a shorter context is offered in whole multiples of 1,024 tokens where it can be


@dataclass(frozen=True)
class Fix:
    """One way to make it fit: what changes (``kind``: devices, ram, quant, kv_dtype, context, users),
    a label a person reads, and the whole scenario with the change."""

    kind: str
    label: str
    scenario: Scenario


def _fits(s: Scenario, catalogs: Catalogs | None) -> bool:
    try:
        return estimate_memory(resolve(s, catalogs), limits=False).fits
    except K2CalcError:
        return False


def _more_ram(s: Scenario, d: Deployment, mem: MemoryEstimate, catalogs: Catalogs | None) -> list[Fix]:
    """The smallest standard RAM build that holds the RAM-side load, when it is more than installed."""
    if d.topology not in ("hybrid", "cpu"):
        return []
    ram = standard_ram_gib(ram_needed(mem))
    if ram is None or ram * GiB <= d.ram_bytes:
        return []
    trial = s.model_copy(update={"ram_gb": float(ram)})
    return [Fix("ram", f"{ram:,} GiB of system RAM", trial)] if _fits(trial, catalogs) else []


def _more_devices(s: Scenario, d: Deployment, smallest: dict[str, Any]) -> list[Fix]:
    """More devices, from the smallest-fitting search."""
    count = smallest.get("count")
    if not count or d.device is None:
        return []
    nodes = smallest.get("nodes") or 1
    if d.topology == "unified":
        where = f" ({count} machines)" if count > 1 else ""
    elif d.topology == "gpu":
        where = f" in {nodes} nodes" if nodes > 1 else ""
    else:
        where = f" with {d.sockets} x {d.cpu.name}" if d.cpu else ""
    return [Fix("devices", f"{count} x {d.device.name}{where}", with_count(s, count, nodes))]


def _smaller_quant(s: Scenario, d: Deployment, catalogs: Catalogs | None) -> list[Fix]:
    """The largest quantization the engine runs that is smaller than the current one and fits."""
    current = sum(weights_by_group(d.model, d.scheme).values())
    sizes = []
    for quant in engine_quants(d.engine.id):
        try:
            scheme = resolve_scheme(quant, d.model)
        except K2CalcError:
            continue
        size = sum(weights_by_group(d.model, scheme).values())
        if size < current:
            sizes.append((size, quant, scheme.label))
    for _, quant, label in sorted(sizes, reverse=True):
        trial = s.model_copy(update={"quant": quant, "bits_per_weight": None})
        if _fits(trial, catalogs):
            return [Fix("quant", f"quantization {label}", trial)]
    return []


def _smaller_kv(s: Scenario, d: Deployment) -> list[Fix]:
    """An 8-bit KV cache (q8_0 under llama.cpp/ollama, FP8 elsewhere) when the cache is larger."""
    kv = "q8_0" if d.engine.id in ("llama.cpp", "ollama") else "fp8"
    if KV_DTYPES[kv] >= KV_DTYPES[s.kv_dtype]:
        return []
    d8 = replace(d, kv_dtype=kv)
    if not estimate_memory(d8, limits=False).fits:
        return []
    return [Fix("kv_dtype", f"{kv.upper() if kv == 'fp8' else kv} KV cache", s.model_copy(update={"kv_dtype": kv}))]


def _less_load(s: Scenario, mem: MemoryEstimate) -> list[Fix]:
    """The longest context that fits (holding prompt + answer), and the most users that fit: the memory
    estimate's own longest context at these users and most users at this context."""
    out = []
    request = s.input_tokens + s.output_tokens
    context = min(mem.max_context_tokens, s.context - 1)
    if context >= request:
        rounded = context // CONTEXT_STEP * CONTEXT_STEP
        context = rounded if rounded >= request else context
        out.append(Fix("context", f"context {context:,} tokens", s.model_copy(update={"context": context})))
    users = min(mem.max_concurrency, s.concurrency - 1)
    if users >= 1:
        out.append(Fix("users", f"{users:,} user(s) at once", s.model_copy(update={"concurrency": users})))
    return out


def fixes(s: Scenario, d: Deployment, mem: MemoryEstimate, smallest: dict[str, Any],
          catalogs: Catalogs | None = None) -> list[Fix]:
    """Every single change that makes `s` fit (none when it already does), unordered."""
    if mem.fits:
        return []
    return [*_more_devices(s, d, smallest), *_more_ram(s, d, mem, catalogs), *_smaller_quant(s, d, catalogs), *_smaller_kv(s, d),
            *_less_load(s, mem)]


__all__ = ["Fix", "fixes"]
