"""Scenario (every input, as ids and numbers) -> Estimate (every output).

A :class:`Scenario` is what a user chooses; it is plain data (ids, counts, token lengths) so that it
round-trips through JSON, the command line and, later, a URL. :func:`resolve` looks the ids up,
picks the topology and the engine's default parallelism, and rejects impossible combinations with one
clear message; :func:`estimate` runs the models and assembles the :class:`Estimate`.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .cost import CostAssumptions, CostEstimate, default_assumptions, estimate_cost
from .engines import ENGINES, default_engine, get_engine
from .errors import K2CalcError, validation_message
from .hardware import Hardware, get_hardware, load_hardware
from .memory import (
    KV_DTYPES,
    Deployment,
    MemoryEstimate,
    estimate_memory,
    ram_needed_bytes,
)
from .models import ModelArch, get_model, param_counts
from .performance import PerformanceEstimate, estimate_performance
from .quant import Scheme, resolve_scheme
from .units import GPUS_PER_NODE, GiB  # noqa: F401  (GPUS_PER_NODE: sweeps imports it from here)

# Engines that split one replica with tensor parallelism by default; the others split layers
# (llama.cpp --split-mode layer, mlx-lm / exo pipeline).
TP_ENGINES = frozenset({"vllm", "sglang", "ktransformers"})
MAX_COUNT = 1024


class Scenario(BaseModel):
    """Every input of one estimate. Token counts in tokens, memory in the unit its name says.

    ``ram_gb`` and ``wired_limit_gb`` are binary gigabytes (GiB): DIMMs and Apple's unified memory are
    built in powers of two, so a "64 GB" DIMM and a "512 GB" Mac Studio hold 64 GiB and 512 GiB.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = "kimi-k2-thinking"
    quant: str = "native"
    bits_per_weight: float | None = Field(None, ge=1, le=32)
    hardware: str | None = "h200-sxm"
    count: int = Field(8, ge=1, le=MAX_COUNT)
    nodes: int = Field(1, ge=1, le=128)
    cpu: str | None = None
    sockets: int = Field(2, ge=1, le=8)
    ram_gb: float | None = Field(None, gt=0, le=65536)
    engine: str | None = None
    tp: int | None = Field(None, ge=1, le=MAX_COUNT)
    pp: int | None = Field(None, ge=1, le=256)
    ep: int | None = Field(None, ge=1, le=MAX_COUNT)
    dp_attention: bool = False
    dcp: int = Field(1, ge=1, le=64)
    gpu_experts: int = Field(0, ge=0, le=4096)
    kt_prefill: Literal["auto", "cpu", "gpu"] = "auto"
    kv_dtype: str = "bf16"
    context: int = Field(32768, ge=1, le=10_000_000)
    input_tokens: int = Field(8192, ge=1, le=10_000_000)
    output_tokens: int = Field(1024, ge=1, le=10_000_000)
    concurrency: int = Field(1, ge=1, le=1_000_000)
    memory_fraction: float | None = Field(None, gt=0, le=1)
    wired_limit_gb: float | None = Field(None, gt=0, le=65536)
    # Cost assumptions: None = the dated default in data/cost_assumptions.csv.
    electricity_usd_per_kwh: float | None = Field(None, ge=0, le=10)
    pue: float | None = Field(None, ge=1, le=5)
    hosting_usd_per_kw_month: float | None = Field(None, ge=0, le=10000)
    maintenance_pct_per_year: float | None = Field(None, ge=0, le=100)
    amortisation_years: float | None = Field(None, gt=0, le=30)
    residual_value_pct: float | None = Field(None, ge=0, le=100)
    utilisation: float | None = Field(None, gt=0, le=1)
    cache_hit_rate: float | None = Field(None, ge=0, le=1)
    hardware_price_usd: float | None = Field(None, ge=0, le=1e8)
    cloud_usd_per_hour: float | None = Field(None, ge=0, le=10000)
    monthly_output_tokens: float | None = Field(None, gt=0, le=1e15)
    api_provider: str | None = None

    def cost_overrides(self) -> dict[str, Any]:
        """The cost settings this scenario sets (the rest stay at their dated defaults)."""
        names = ("electricity_usd_per_kwh", "pue", "hosting_usd_per_kw_month", "maintenance_pct_per_year",
                 "amortisation_years", "residual_value_pct", "utilisation", "cache_hit_rate",
                 "hardware_price_usd", "cloud_usd_per_hour", "monthly_output_tokens", "api_provider")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def cost_assumptions(self) -> CostAssumptions:
        """The default assumptions with this scenario's overrides."""
        overrides = self.cost_overrides()
        return default_assumptions().with_overrides(
            **{k: v for k, v in overrides.items() if k in CostAssumptions.model_fields})

    @classmethod
    def build(cls, **values: Any) -> "Scenario":
        """Validate user values; a bad one raises :class:`K2CalcError` naming the field."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise K2CalcError(validation_message(exc)) from None


# ------------------------------------------------------------------------------------------------
# URL round trip: a scenario is a link
# ------------------------------------------------------------------------------------------------

NONE_TOKEN = "none"
CUSTOM_PARAM = "custom"  # query parameter carrying imported models and custom devices (Catalogs.to_param)


def to_query(s: Scenario) -> dict[str, str]:
    """The scenario as URL query parameters: only the fields that differ from the defaults, each as
    text that :func:`from_query` reads back to the identical value (floats via repr)."""
    defaults = Scenario()
    out: dict[str, str] = {}
    for name in Scenario.model_fields:
        value = getattr(s, name)
        if value == getattr(defaults, name):
            continue
        if value is None:
            out[name] = NONE_TOKEN
        elif isinstance(value, bool):
            out[name] = "1" if value else "0"
        else:
            out[name] = repr(value) if isinstance(value, float) else str(value)
    return out


def from_query(params: Mapping[str, str | Sequence[str]], catalogs: "Catalogs | None" = None) -> tuple[Scenario, list[str]]:
    """A scenario from URL query parameters, never raising: unknown names, values that fail validation
    and ids not in the catalogs are left out (the defaults stand) and named in the returned list."""
    catalogs = catalogs or Catalogs()
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for name, raw in params.items():
        text = raw[-1] if isinstance(raw, (list, tuple)) else raw
        if name == CUSTOM_PARAM:
            continue
        if name not in Scenario.model_fields:
            ignored.append(f"'{name}' (not a scenario setting)")
            continue
        values[name] = None if text == NONE_TOKEN else text
    id_checks = {"model": lambda v: get_model(v, catalogs.models),
                 "hardware": lambda v: v is None or get_hardware(v, catalogs.hardware_catalog()),
                 "cpu": lambda v: v is None or get_hardware(v, catalogs.hardware_catalog()),
                 "engine": lambda v: v is None or get_engine(v)}
    for name, check in id_checks.items():
        if name in values:
            try:
                check(values[name])
            except K2CalcError as exc:
                ignored.append(f"{name}={values.pop(name)!r} ({exc})")
    while True:
        try:
            return Scenario(**values), ignored
        except ValidationError as exc:
            err = exc.errors()[0]
            name = err["loc"][0] if err["loc"] else None
            if name not in values:  # not attributable to one parameter: drop them all
                ignored.extend(f"{k}={v!r}" for k, v in values.items())
                return Scenario(), ignored
            ignored.append(f"{name}={values.pop(name)!r} ({err['msg']})")


def share_query(s: Scenario, catalogs: "Catalogs | None" = None) -> dict[str, str]:
    """Everything a link needs: the scenario's non-default fields and the session's custom models and
    devices (one compressed parameter)."""
    query = to_query(s)
    custom = catalogs.to_param() if catalogs else None
    if custom:
        query[CUSTOM_PARAM] = custom
    return query


class Catalogs(BaseModel):
    """Session additions to the catalogs (imported models, custom devices)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    models: dict[str, ModelArch] = {}
    hardware: dict[str, Hardware] = {}

    def hardware_catalog(self) -> dict[str, Hardware]:
        return {**load_hardware(), **self.hardware}

    def to_param(self) -> str | None:
        """The additions as one URL-safe text (compressed JSON), or None when there are none."""
        if not self.models and not self.hardware:
            return None
        payload = {"models": [m.model_dump(mode="json") for m in self.models.values()],
                   "hardware": [h.model_dump(mode="json") for h in self.hardware.values()]}
        raw = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 9)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_param(cls, text: str | None) -> "Catalogs":
        """Inverse of :meth:`to_param`; a damaged text raises K2CalcError (one line)."""
        if not text:
            return cls()
        try:
            raw = zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            payload = json.loads(raw)
            models = [ModelArch.model_validate(m) for m in payload.get("models", [])]
            hardware = [Hardware.model_validate(h) for h in payload.get("hardware", [])]
        except (ValueError, TypeError, zlib.error, AttributeError) as exc:
            raise K2CalcError(f"the link's custom models/devices could not be read ({type(exc).__name__})") from None
        return cls(models={m.id: m for m in models}, hardware={h.id: h for h in hardware})


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


def smallest_fitting(s: Scenario, catalogs: Catalogs | None = None) -> dict[str, Any]:
    """The smallest count of the chosen hardware that fits the scenario, with the engine's default
    parallelism (nodes of 8 GPUs, pipeline across nodes); or the reason none does.

    Returns ``{"count": N | None, "nodes": n, "reason": str}``; for CPU-only deployments the count is
    the RAM instead: ``{"ram_gb": GiB needed}``.
    """
    d = resolve(s, catalogs)
    if d.topology == "cpu":
        mem = estimate_memory(d)
        ram = mem.devices[0]
        need = ram.weights_bytes + ram.kv_bytes + ram.activation_bytes + ram.overhead_bytes
        return {"count": None, "ram_gb": math.ceil(ram_needed_bytes(need) / GiB),
                "reason": "CPU-only: the RAM is what scales; this is the system RAM needed"}
    last_reason = ""
    for count in candidate_counts(d.topology):
        nodes = max(1, math.ceil(count / GPUS_PER_NODE)) if d.topology == "gpu" else 1
        trial = s.model_copy(update={"count": count, "nodes": nodes, "tp": None, "pp": None, "ep": None,
                                     "dcp": 1 if count % max(s.dcp, 1) else s.dcp})
        try:
            mem = estimate_memory(resolve(trial, catalogs))
        except K2CalcError as exc:
            last_reason = str(exc)
            continue
        if mem.fits:
            return {"count": count, "nodes": nodes, "reason": ""}
        last_reason = mem.reasons[0]
    largest = candidate_counts(d.topology)[-1]
    return {"count": None, "nodes": None,
            "reason": f"does not fit even with {largest} x {d.device.name}: {last_reason}"}


class Estimate(BaseModel):
    """All outputs of one scenario (the ``--json`` object)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    scenario: Scenario
    deployment: Deployment
    memory: MemoryEstimate
    performance: PerformanceEstimate
    cost: CostEstimate | None
    smallest: dict[str, Any]

    @property
    def fits(self) -> bool:
        return self.memory.fits

    def as_dict(self) -> dict[str, Any]:
        d, m = self.deployment, self.deployment.model
        counts = param_counts(m)
        return {
            "fits": self.memory.fits,
            "reasons": self.memory.reasons,
            "warnings": self.memory.warnings,
            "scenario": self.scenario.model_dump(),
            "model": {"id": m.id, "name": m.name, "total_params": counts.total, "active_params": counts.active,
                      "active_params_excluding_embeddings": counts.active_excluding_embeddings,
                      "max_context_tokens": m.max_context_tokens},
            "quant": {"id": d.scheme.id, "label": d.scheme.label,
                      "formats": {g: f.id for g, f in d.scheme.formats.items()}},
            "deployment": {"topology": d.topology, "engine": d.engine.id,
                           "hardware": d.device.id if d.device else None, "count": d.count,
                           "nodes": d.nodes, "cpu": d.cpu.id if d.cpu else None,
                           "sockets": d.sockets if d.cpu else None, "ram_bytes": d.ram_bytes or None,
                           "tp": d.tp, "pp": d.pp, "ep": d.ep, "dp_attention": d.dp_attention,
                           "dcp": d.dcp, "replicas": d.replicas, "gpu_experts": d.gpu_experts,
                           "kv_dtype": d.kv_dtype},
            "memory": self.memory.as_dict(),
            "performance": self.performance.as_dict(),
            "cost": self.cost.as_dict() if self.cost else None,
            "smallest_fitting": self.smallest,
        }


def estimate(s: Scenario, catalogs: Catalogs | None = None) -> Estimate:
    """Run every model on a scenario."""
    d = resolve(s, catalogs)
    mem = estimate_memory(d)
    perf = estimate_performance(d, mem, s.input_tokens, s.output_tokens, s.concurrency)
    try:
        cost = estimate_cost(d, perf, s.input_tokens, s.output_tokens, s.cost_assumptions(),
                             device_price_usd=s.hardware_price_usd, cloud_usd_per_hour=s.cloud_usd_per_hour,
                             monthly_output_tokens=s.monthly_output_tokens, api_provider=s.api_provider)
    except K2CalcError as exc:
        mem.warnings.append(f"cost not computed: {exc}")
        cost = None
    smallest = {"count": d.count, "nodes": d.nodes, "reason": ""} if mem.fits else smallest_fitting(s, catalogs)
    return Estimate(scenario=s, deployment=d, memory=mem, performance=perf, cost=cost, smallest=smallest)
