"""The one resolver: :func:`resolve` turns a :class:`~k2calc.scenario.Scenario` into a
:class:`Deployment` (ids looked up, topology picked, the engine's default parallelism applied,
impossible combinations rejected with one clear line); :func:`smallest_fitting` searches the smallest
count of the chosen hardware that fits.

Topologies: ``gpu`` (GPU servers, nodes of :data:`GPUS_PER_NODE`), ``unified`` (Mac Studio, DGX Spark,
alone or several machines), ``hybrid`` (GPUs + CPUs with system RAM) and ``cpu`` (CPUs alone). A new
device class starts here (:func:`_topology`) and in :mod:`k2calc.memory` (its placement).
"""

from __future__ import annotations

import math
from typing import Any

from .engines import ENGINES, default_engine, get_engine
from .errors import K2CalcError
from .hardware import Hardware, get_hardware
from .memory import (
    KV_DTYPES,
    Deployment,
    MemoryEstimate,
    estimate_memory,
    ram_needed_bytes,
)
from .models import ModelArch, get_model
from .quant import Scheme, engine_scheme, resolve_scheme
from .scenario import Catalogs, Scenario
from .units import GPUS_PER_NODE, GiB, nodes_for_gpus

# Engines that split one replica with tensor parallelism by default; the others split layers
# (llama.cpp --split-mode layer, mlx-lm / exo pipeline).
TP_ENGINES = frozenset({"vllm", "sglang", "ktransformers"})
RAM_SIZES_GIB = (128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)  # standard server RAM builds


def _topology(s: Scenario, catalogs: Catalogs) -> tuple[str, Hardware | None, Hardware | None]:
    """(topology, device, cpu) from the hardware and cpu ids."""
    hw_catalog = catalogs.hardware_catalog()
    device = get_hardware(s.hardware, hw_catalog) if s.hardware else None
    cpu = get_hardware(s.cpu, hw_catalog) if s.cpu else None
    if cpu is not None and not cpu.is_cpu:
        raise K2CalcError(f"--cpu '{cpu.id}' is a {cpu.kind}, not a CPU; put it in --hardware")
    if device is None:
        if cpu is None:
            raise K2CalcError("choose --hardware (a GPU, a unified-memory system or a CPU) or --cpu")
        return "cpu", None, cpu
    if device.is_cpu:
        if cpu is not None:
            raise K2CalcError("--hardware is already a CPU; drop --cpu or put a GPU in --hardware")
        return "cpu", None, device
    if device.is_system:
        if cpu is not None:
            raise K2CalcError(f"{device.name} is a whole system with its own CPU; drop --cpu")
        return "unified", device, None
    return ("hybrid" if cpu is not None else "gpu"), device, cpu


def _parallelism(s: Scenario, m: ModelArch, topology: str, engine_id: str) -> tuple[int, int, int]:
    """(tp, pp, ep) for one replica, from the user's values or the engine's defaults; validated."""
    count = s.count
    if topology in ("hybrid", "cpu"):
        if s.tp or s.pp or s.nodes > 1:
            raise K2CalcError("--tp, --pp and --nodes apply to GPU servers and unified-memory systems; "
                              "a hybrid box splits over its GPUs by itself (use --count)")
        tp = count if topology == "hybrid" and engine_id in TP_ENGINES else 1
        pp = 1
    else:
        if count % s.nodes:
            raise K2CalcError(f"{count} devices cannot be spread evenly over {s.nodes} nodes")
        for name, value in (("TP", s.tp), ("PP", s.pp)):
            if value and value > count:
                raise K2CalcError(f"{name} {value} is more than the {count} devices")
        tp_default = count // s.nodes if engine_id in TP_ENGINES else 1
        tp = s.tp or (count // s.pp if s.pp else tp_default)
        pp = s.pp or max(1, count // tp)
        if count % (tp * pp):
            if bool(s.tp) != bool(s.pp):  # say what the user gave, not the degree derived from it
                flag, value = ("--tp", tp) if s.tp else ("--pp", pp)
                fits = [t for t in range(1, count + 1) if count % t == 0]
                raise K2CalcError(f"{flag} {value} does not divide the {count} devices; use one of "
                                  f"{', '.join(map(str, fits))}")
            raise K2CalcError(f"TP {tp} x PP {pp} = {tp * pp} does not divide the {count} devices")
        if pp > m.num_layers:
            raise K2CalcError(f"PP {pp} is more than the model's {m.num_layers} layers")
    engine_name = ENGINES[engine_id].name
    if tp > 1 and m.num_heads % tp:
        divisors = [d for d in (1, 2, 4, 8, 16, 32, 64) if m.num_heads % d == 0]
        raise K2CalcError(f"{engine_name} cannot split {m.num_heads} attention heads over TP={tp}; "
                          f"use a TP (or count) of {', '.join(map(str, divisors))}, or --pp")
    if tp > 1 and m.attention == "gqa" and tp % m.num_kv_heads and m.num_kv_heads % tp:
        raise K2CalcError(f"{engine_name} cannot split {m.num_kv_heads} KV heads over TP={tp}")
    ep = s.ep or 1
    if ep > 1:
        if not m.is_moe:
            raise K2CalcError(f"--ep needs a mixture-of-experts model; {m.name} is dense")
        if m.n_routed_experts % ep or ep > count:
            raise K2CalcError(f"EP {ep} must divide the {m.n_routed_experts} experts and be at most the device count")
    return tp, pp, ep


def resolve(s: Scenario, catalogs: Catalogs | None = None) -> Deployment:
    """Look up every id and check the combination; raises :class:`K2CalcError` with one clear line."""
    catalogs = catalogs or Catalogs()
    m = get_model(s.model, catalogs.models)
    quant = f"bpw:{s.bits_per_weight:g}" if s.bits_per_weight is not None else s.quant
    scheme = resolve_scheme(quant, m)
    topology, device, cpu = _topology(s, catalogs)
    apple = device is not None and device.vendor.lower() == "apple"
    engine_id = s.engine or default_engine(topology, apple)
    engine = get_engine(engine_id)
    if topology not in engine.topologies:
        fitting = [e.id for e in ENGINES.values() if topology in e.topologies]
        raise K2CalcError(f"{engine.name} does not run {_TOPOLOGY_WORDS[topology]}; use {', '.join(fitting)}")
    if engine_id in ("mlx-lm", "exo") and not apple:
        raise K2CalcError(f"{engine.name} runs on Apple silicon only; use llama.cpp, vllm or sglang")
    scheme = engine_scheme(scheme, engine_id)
    if s.kv_dtype not in KV_DTYPES:
        raise K2CalcError(f"unknown KV cache dtype '{s.kv_dtype}'; choose one of {', '.join(KV_DTYPES)}")
    if topology in ("hybrid", "cpu"):
        if s.ram_gb is None:
            raise K2CalcError("hybrid CPU+GPU and CPU-only deployments need --ram-gb (system RAM)")
        if cpu.max_sockets and s.sockets > cpu.max_sockets:
            raise K2CalcError(f"{cpu.name} supports at most {cpu.max_sockets} sockets, got {s.sockets}")
    if s.gpu_experts:
        if topology != "hybrid":
            raise K2CalcError("--gpu-experts applies to hybrid CPU+GPU deployments (--cpu with a GPU)")
        if s.gpu_experts > m.n_routed_experts:
            raise K2CalcError(f"--gpu-experts {s.gpu_experts} is more than the {m.n_routed_experts} experts per layer")
    tp, pp, ep = _parallelism(s, m, topology, engine_id)
    if s.dp_attention and engine_id != "sglang":
        raise K2CalcError("--dp-attention is an SGLang option; choose --engine sglang")
    if s.dcp > 1:
        if engine_id != "vllm" or m.attention != "mla":
            raise K2CalcError("--dcp (decode context parallel) is a vLLM option for MLA models")
        if tp % s.dcp:
            raise K2CalcError(f"DCP {s.dcp} must divide TP {tp}")
    if s.wired_limit_gb is not None and not apple:
        raise K2CalcError("--wired-limit-gb applies to Macs (the macOS GPU wired-memory limit)")
    return Deployment(
        model=m, scheme=scheme, engine=engine, topology=topology, device=device,
        count=s.count if topology != "cpu" else 1, nodes=s.nodes, tp=tp, pp=pp, ep=ep,
        dp_attention=s.dp_attention, dcp=s.dcp, cpu=cpu, sockets=s.sockets,
        ram_bytes=int(s.ram_gb * GiB) if s.ram_gb else 0, gpu_experts=s.gpu_experts,
        kt_prefill=_kt_prefill(s.kt_prefill, scheme, engine_id) if topology == "hybrid" else "gpu",
        kv_dtype=s.kv_dtype, context_tokens=s.context, concurrency=s.concurrency,
        memory_fraction=s.memory_fraction,
        wired_limit_bytes=int(s.wired_limit_gb * GiB) if s.wired_limit_gb else None,
    )


def _kt_prefill(choice: str, scheme: Scheme, engine_id: str) -> str:
    """Where a hybrid box prefills. kt-kernel's CPU kernels for the native INT4 (RAWINT4) and FP8 expert
    formats have no AMX prefill path, so those prompts go to the GPU with the experts streamed over
    PCIe (kvcache-ai/ktransformers doc/en/kt-kernel/Kimi-K2-Thinking-Native.md); AMX INT8/INT4/BF16
    conversions and GGUF prefill the routed experts on the CPU. llama.cpp offloads large batches'
    CPU-resident expert matrices to the GPU (op offload, on by default)."""
    if choice != "auto":
        return choice
    if engine_id in ("llama.cpp", "ollama"):
        return "gpu"
    return "gpu" if scheme.format_of("routed_experts").id in ("int4-g32", "fp8-block") else "cpu"


_TOPOLOGY_WORDS = {"gpu": "on GPU servers", "unified": "on unified-memory systems",
                   "hybrid": "hybrid CPU+GPU", "cpu": "on CPUs alone"}


def candidate_counts(topology: str) -> list[int]:
    """Device counts the smallest-fit search tries, in order [count]."""
    if topology == "gpu":
        return [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128]
    if topology in ("unified", "hybrid"):
        return list(range(1, 9))
    return []


def ram_needed(mem: MemoryEstimate) -> int:
    """System RAM [B] a hybrid or CPU-only deployment needs for its RAM-side load, the OS's share
    included (the RAM-side placement does not depend on the RAM size)."""
    ram = mem.devices[-1]
    return ram_needed_bytes(ram.weights_bytes + ram.kv_bytes + ram.activation_bytes + ram.overhead_bytes)


def standard_ram_gib(need_bytes: int) -> int | None:
    """Smallest standard RAM build [GiB] of at least `need_bytes` [B], or None beyond the largest."""
    return next((size for size in RAM_SIZES_GIB if size * GiB >= need_bytes), None)


def with_count(s: Scenario, count: int, nodes: int = 1) -> Scenario:
    """`s` on `count` devices in `nodes` nodes with the engine's default parallelism (the user's TP,
    PP and EP belong to the old count; decode context parallelism stays where it still divides)."""
    return s.model_copy(update={"count": count, "nodes": nodes, "tp": None, "pp": None, "ep": None,
                                "dcp": 1 if count % max(s.dcp, 1) else s.dcp})


def smallest_fitting(s: Scenario, catalogs: Catalogs | None = None) -> dict[str, Any]:
    """The smallest count of the chosen hardware that fits the scenario, with the engine's default
    parallelism (nodes of 8 GPUs, pipeline across nodes); or the reason none does.

    Returns ``{"count": N | None, "nodes": n, "reason": str}``; for CPU-only deployments the count is
    the RAM instead: ``{"ram_gb": GiB needed}``.
    """
    d = resolve(s, catalogs)
    if d.topology == "cpu":
        return {"count": None, "ram_gb": math.ceil(ram_needed(estimate_memory(d, limits=False)) / GiB),
                "reason": "CPU-only: the RAM is what scales; this is the system RAM needed"}
    last_reason = ""
    for count in candidate_counts(d.topology):
        nodes = nodes_for_gpus(count) if d.topology == "gpu" else 1
        try:
            mem = estimate_memory(resolve(with_count(s, count, nodes), catalogs))
        except K2CalcError as exc:
            last_reason = str(exc)
            continue
        if mem.fits:
            return {"count": count, "nodes": nodes, "reason": ""}
        last_reason = mem.reasons[0]
    largest = candidate_counts(d.topology)[-1]
    return {"count": None, "nodes": None,
            "reason": f"does not fit even with {largest} x {d.device.name}: {last_reason}"}


__all__ = ["Deployment", "resolve", "smallest_fitting", "with_count", "ram_needed",
           "standard_ram_gib", "RAM_SIZES_GIB", "candidate_counts", "GPUS_PER_NODE", "TP_ENGINES"]
