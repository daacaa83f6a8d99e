"""Budget planner: the cheapest deployments that serve a workload, and why the others do not.

:func:`plan` enumerates deployments across the catalog (hardware x count x engine x quantization x KV
dtype; hybrid GPU + CPU boxes with the smallest standard RAM that fits; CPU-only boxes), keeps those
that fit and meet the service level (tokens/s per user at the users' concurrency), adds replicas when
one copy is not enough, prices each (buy, or rent where the catalog has a $/hour) and ranks them by
total cost of ownership or $ per 1M output tokens. Classes of hardware that never qualify are reported
with the reason of their closest attempt. The Pareto front of cost against speed is marked.

Replicas split the users evenly; each replica is the same deployment (capex, power and opex scale
with the replica count).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .cost import (
    CostAssumptions,
    api_price,
    api_usd_per_million_output,
    default_assumptions,
    estimate_cost,
)
from .deployment import (
    RAM_SIZES_GIB,
    ram_needed,
    resolve,
    standard_ram_gib,
)
from .engines import engine_quants
from .errors import K2CalcError, validated
from .memory import estimate_memory, weights_by_group
from .models import get_model
from .performance import estimate_performance
from .quant import resolve_scheme
from .scenario import Catalogs, Scenario, Workload
from .units import GiB, format_usd, nodes_for_gpus

GPU_COUNTS = (1, 2, 4, 8, 16, 24, 32)
SYSTEM_COUNTS = (1, 2, 3, 4)
HYBRID_GPU_COUNTS = (1, 2, 4, 8)
MAX_REPLICAS = 256


class Constraints(BaseModel):
    """Limits on the answer. None = no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    models: tuple[str, ...] = ("kimi-k2-thinking",)
    budget_usd: float | None = Field(None, gt=0)
    power_limit_watts: float | None = Field(None, gt=0)
    where: Literal["any", "on-prem", "cloud"] = "any"
    engines: tuple[str, ...] | None = None
    quants: tuple[str, ...] | None = None
    hardware: tuple[str, ...] | None = None
    kv_dtypes: tuple[str, ...] = ("bf16", "fp8")
    server_engines: tuple[str, ...] = ("vllm",)
    rank_by: Literal["tco", "usd_per_mtok"] = "usd_per_mtok"


@dataclass
class Option:
    """One deployment that serves the workload."""

    model: str
    quant: str
    hardware: str
    hardware_name: str
    count: int
    replicas: int
    engine: str
    kv_dtype: str
    mode: str  # "buy" | "rent"
    cpu: str | None
    sockets: int | None
    ram_gb: int | None
    tokens_per_s_per_user: float
    tokens_per_s_total: float
    ttft_s: float
    capex_usd: float
    monthly_usd: float
    tco_usd: float
    usd_per_million_output_tokens: float
    breakeven_months: float | None
    power_watts: float
    pareto: bool = False

    @property
    def label(self) -> str:
        host = f" + {self.sockets}x {self.cpu}, {self.ram_gb} GiB" if self.cpu else ""
        return f"{self.replicas} x ({self.count} x {self.hardware}{host})"


@dataclass
class PlanResult:
    options: list[Option]
    rejected: dict[str, str]
    candidates: int
    seconds: float
    api_usd_per_million_output_tokens: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"options": [{**asdict(o), "label": o.label} for o in self.options], "rejected": self.rejected,
                "candidates_evaluated": self.candidates, "seconds": self.seconds,
                "api_usd_per_million_output_tokens": self.api_usd_per_million_output_tokens}


def _candidates(w: Workload, c: Constraints, catalogs: Catalogs) -> list[dict]:
    """Scenario values to try, cheapest-looking first within each hardware class."""
    out = []
    catalog = catalogs.hardware_catalog()
    allowed_hw = set(c.hardware) if c.hardware else None
    for model in c.models:
        m = get_model(model, catalogs.models)
        for h in catalog.values():
            if allowed_hw and h.id not in allowed_hw:
                continue
            base = dict(model=model, context=w.context_tokens, input_tokens=w.input_tokens,
                        output_tokens=w.output_tokens, concurrency=1)
            if h.is_gpu:
                for engine in c.server_engines:
                    for count in GPU_COUNTS:
                        out.append({**base, "hardware": h.id, "count": count,
                                    "nodes": nodes_for_gpus(count), "engine": engine})
                if h.memory_bytes and h.memory_bytes < 110 * GiB:  # PCIe cards: also as a hybrid box
                    for cpu in (x for x in catalog.values() if x.is_cpu):
                        for count in HYBRID_GPU_COUNTS:
                            out.append({**base, "hardware": h.id, "count": count, "cpu": cpu.id, "sockets": 2,
                                        "engine": "ktransformers" if m.is_moe else "llama.cpp"})
            elif h.is_system:
                apple = h.vendor.lower() == "apple"
                for count in SYSTEM_COUNTS:
                    for engine in (("mlx-lm",) if apple else ("llama.cpp", "vllm")):
                        out.append({**base, "hardware": h.id, "count": count, "engine": engine})
            else:
                out.append({**base, "hardware": h.id, "sockets": 2, "engine": "llama.cpp"})
    if c.engines:
        out = [x for x in out if x["engine"] in c.engines]
    return out


def _ram_for(values: dict, catalogs: Catalogs) -> int | None:
    """Smallest standard RAM size [GiB] with which a hybrid/CPU candidate's RAM-side load fits."""
    mem = estimate_memory(resolve(Scenario.build(**{**values, "ram_gb": RAM_SIZES_GIB[-1]}), catalogs))
    return standard_ram_gib(ram_needed(mem))


def _weights_can_fit(values: dict, quant: str, catalogs: Catalogs) -> bool:
    """Cheap pre-check: one copy of the weights is no larger than all the devices' memory."""
    h = catalogs.hardware_catalog()[values["hardware"]]
    if h.is_cpu or values.get("cpu"):
        return True
    m = get_model(values["model"], catalogs.models)
    return sum(weights_by_group(m, resolve_scheme(quant, m)).values()) <= values.get("count", 1) * h.memory_bytes


def _best_batch(s: Scenario, slo: float, users: int, catalogs: Catalogs) -> tuple[int, object, object] | None:
    """Largest sequences per replica (<= users) that fit in memory and keep every user at >= `slo`
    tok/s, with that deployment and its performance; None if even one sequence cannot."""
    d1 = resolve(s.model_copy(update={"concurrency": 1}), catalogs)
    mem1 = estimate_memory(d1)
    if not mem1.fits:
        return None
    limit = min(users, max(1, mem1.max_concurrency // d1.replicas))

    def ok(b: int):
        d = resolve(s.model_copy(update={"concurrency": b}), catalogs)
        perf = estimate_performance(d, mem1, s.input_tokens, s.output_tokens, b)
        return perf.decode_tokens_per_s_per_user >= slo, d, perf

    good, d, perf = ok(1)
    if not good:
        return None
    low, best = 1, (1, d, perf)
    high = limit
    while low < high:
        mid = (low + high + 1) // 2
        good, d, perf = ok(mid)
        if good:
            low, best = mid, (mid, d, perf)
        else:
            high = mid - 1
    return best


def plan(w: Workload, c: Constraints, a: CostAssumptions | None = None, top: int = 10,
         catalogs: Catalogs | None = None) -> PlanResult:
    """Rank the deployments that serve `w` within `c` (see the module docstring); `catalogs` adds a
    session's imported models and custom devices."""
    catalogs = catalogs or Catalogs()
    start = time.perf_counter()
    a = a or default_assumptions()
    options: list[Option] = []
    rejected: dict[str, tuple[float, str]] = {}  # hardware class -> (closeness rank, reason)
    best_speed: dict[str, float] = {}
    evaluated = 0

    def reject(key: str, rank: float, reason: str) -> None:
        if key not in rejected or rank > rejected[key][0]:
            rejected[key] = (rank, reason)

    for values in _candidates(w, c, catalogs):
        hw_key = values["hardware"] + (" + CPU (hybrid)" if values.get("cpu") else "")
        m = get_model(values["model"], catalogs.models)
        quants = c.quants or engine_quants(values["engine"])
        native_bytes = sum(weights_by_group(m, resolve_scheme("native", m)).values())
        for quant in quants:
            try:
                if quant != "native" and not c.quants and \
                        sum(weights_by_group(m, resolve_scheme(quant, m)).values()) > native_bytes:
                    continue  # never up-cast a model beyond its shipped precision
            except K2CalcError:
                continue
            if not _weights_can_fit(values, quant, catalogs):
                reject(hw_key, 0, f"{values['count']} x: the weights alone ({quant}) exceed the memory")
                continue
            for kv in c.kv_dtypes:
                evaluated += 1
                v = {**values, "quant": quant, "kv_dtype": kv}
                try:
                    if v.get("cpu") or catalogs.hardware_catalog()[v["hardware"]].is_cpu:
                        ram = _ram_for(v, catalogs)
                        if ram is None:
                            reject(hw_key, 1, f"does not fit even with {RAM_SIZES_GIB[-1]:,} GiB of RAM")
                            continue
                        v["ram_gb"] = ram
                    s = Scenario.build(**v)
                    found = _best_batch(s, w.tokens_per_s_per_user or 0.0, w.users, catalogs)
                except K2CalcError:
                    continue
                if found is None:
                    d = resolve(s, catalogs)
                    mem = estimate_memory(d)
                    if not mem.fits:
                        reject(hw_key, 1, f"does not fit: {mem.reasons[0] if mem.reasons else 'no room'}")
                    else:
                        perf = estimate_performance(d, mem, w.input_tokens, w.output_tokens, 1)
                        speed = perf.decode_tokens_per_s_per_user
                        if speed > best_speed.get(hw_key, 0):
                            best_speed[hw_key] = speed
                            where = f"{s.count} x, " if d.device else ""
                            reject(hw_key, 2 + speed / 1e9, f"{speed:,.1f} tok/s per user at best ({where}{quant}, one "
                                                            f"user), below the {w.tokens_per_s_per_user:g} required")
                    continue
                batch, d, perf = found
                replicas_per = d.replicas
                replicas = math.ceil(w.users / (batch * replicas_per))
                if replicas > MAX_REPLICAS:
                    reject(hw_key, 2, f"needs more than {MAX_REPLICAS} replicas")
                    continue
                # Price and time each replica at the users it really serves, not at its maximum.
                served = math.ceil(w.users / replicas)
                if served != batch * replicas_per:
                    s = s.model_copy(update={"concurrency": served})
                    d = resolve(s, catalogs)
                    perf = estimate_performance(d, estimate_memory(d), w.input_tokens, w.output_tokens, served)
                total_perf = perf
                for mode in ("buy", "rent"):
                    if c.where == "cloud" and mode == "buy" or c.where == "on-prem" and mode == "rent":
                        continue
                    option = _price(w, c, a, s, d, total_perf, batch, replicas, mode, reject, hw_key)
                    if option:
                        options.append(option)
    key = (lambda o: o.tco_usd) if c.rank_by == "tco" else (lambda o: o.usd_per_million_output_tokens)
    options.sort(key=key)
    _mark_pareto(options)
    qualified = {o.hardware + (" + CPU (hybrid)" if o.cpu else "") for o in options}
    apis = {}
    for model in c.models:
        price = api_price(model)
        apis[model] = api_usd_per_million_output(price, w.input_tokens, w.output_tokens, a.cache_hit_rate) if price else None
    return PlanResult(
        options=_dedupe(options)[:top],
        rejected={k: v[1] for k, v in sorted(rejected.items()) if k not in qualified},
        candidates=evaluated, seconds=time.perf_counter() - start, api_usd_per_million_output_tokens=apis,
    )


def _price(w, c, a, s, d, perf, batch, replicas, mode, reject, hw_key) -> Option | None:
    try:
        cost = estimate_cost(d, perf, w.input_tokens, w.output_tokens, a,
                             monthly_output_tokens=(w.monthly_output_tokens / replicas) if w.monthly_output_tokens else None)
    except K2CalcError as exc:
        reject(hw_key, 3, str(exc))
        return None
    if mode == "rent":
        if cost.cloud_usd_per_hour is None:
            return None
        monthly = cost.cloud_usd_per_hour * 730 * a.utilisation * replicas
        per_m = cost.cloud_usd_per_million_output_tokens
        capex, tco = 0.0, monthly * 12 * a.amortisation_years
        breakeven = None
    else:
        capex = cost.capex_usd * replicas
        monthly = (cost.annual_opex_usd / 12) * replicas
        per_m = cost.usd_per_million_output_tokens
        tco = cost.tco_usd * replicas
        breakeven = cost.breakeven_months
        if c.budget_usd is not None and capex > c.budget_usd:
            # the cheapest over-budget attempt of a class is the one worth reporting
            reject(hw_key, 3 + 1 / capex, f"over budget: {format_usd(capex, digits=0)} for {replicas} x {s.count} x {s.hardware}")
            return None
        if c.power_limit_watts is not None and cost.power_watts * replicas > c.power_limit_watts:
            reject(hw_key, 3, f"over the power limit: {cost.power_watts * replicas:,.0f} W")
            return None
    return Option(
        model=s.model, quant=s.quant, hardware=s.hardware, hardware_name=d.device.name if d.device else d.cpu.name,
        count=s.count if d.device else 0, replicas=replicas, engine=d.engine.id, kv_dtype=s.kv_dtype,
        mode=mode, cpu=d.cpu.id if d.cpu else None, sockets=d.sockets if d.cpu else None,
        ram_gb=int(s.ram_gb) if s.ram_gb else None, tokens_per_s_per_user=perf.decode_tokens_per_s_per_user,
        tokens_per_s_total=perf.decode_tokens_per_s_per_user * w.users, ttft_s=perf.ttft_s,
        capex_usd=capex, monthly_usd=monthly, tco_usd=tco, usd_per_million_output_tokens=per_m,
        breakeven_months=breakeven, power_watts=cost.power_watts * replicas,
    )


def option_scenario(o: Option, w: Workload, catalogs: Catalogs | None = None) -> Scenario:
    """The scenario of one replica of a planner option, at the users each replica really serves
    (load it into the calculator, or re-check the option by hand)."""
    h = (catalogs or Catalogs()).hardware_catalog()[o.hardware]
    values = dict(model=o.model, quant=o.quant, hardware=o.hardware, engine=o.engine, kv_dtype=o.kv_dtype,
                  concurrency=math.ceil(w.users / o.replicas), input_tokens=w.input_tokens,
                  output_tokens=w.output_tokens, context=w.context_tokens)
    if o.cpu:
        values.update(count=o.count, cpu=o.cpu, sockets=o.sockets, ram_gb=o.ram_gb)
    elif h.is_cpu:
        values.update(sockets=o.sockets or 2, ram_gb=o.ram_gb)
    else:
        values.update(count=o.count, nodes=nodes_for_gpus(o.count))
    return Scenario.build(**values)


def _dedupe(options: list[Option]) -> list[Option]:
    """Keep the best option per (hardware, cpu, count, replicas, mode): the rest are near-copies."""
    seen, out = set(), []
    for o in options:
        key = (o.model, o.hardware, o.cpu, o.count, o.replicas, o.mode)
        if key not in seen:
            seen.add(key)
            out.append(o)
    return out


def _mark_pareto(options: list[Option]) -> None:
    """Mark options no other beats on both $/1M output tokens and tokens/s per user."""
    for o in options:
        o.pareto = not any(
            p.usd_per_million_output_tokens <= o.usd_per_million_output_tokens
            and p.tokens_per_s_per_user >= o.tokens_per_s_per_user
            and (p.usd_per_million_output_tokens < o.usd_per_million_output_tokens
                 or p.tokens_per_s_per_user > o.tokens_per_s_per_user)
            for p in options)


# What the planner serves when not told: 50 users at 20 tok/s each (the CLI's and the Plan page's defaults).
PLAN_DEFAULTS = {"users": 50, "tokens_per_s_per_user": 20.0}


def build_workload(**values) -> Workload:
    """The workload to plan for (:class:`k2calc.scenario.Workload`, the calculator's type), with
    :data:`PLAN_DEFAULTS` for what is not given; raises K2CalcError in one line."""
    given = {k: v for k, v in values.items() if v is not None}
    return Workload.build(**{**PLAN_DEFAULTS, **given})


def build_constraints(**values) -> Constraints:
    """The planner's constraints (None = default); raises K2CalcError in one line."""
    return validated(Constraints, **{k: v for k, v in values.items() if v is not None})


__all__ = ["Workload", "Constraints", "Option", "PlanResult", "plan", "build_workload", "build_constraints",
           "resolve_scheme"]
