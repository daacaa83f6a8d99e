"""Budget planner: the cheapest deployments that serve a workload, and why the others do not.

:func:`plan` walks every configuration of :func:`k2calc.planner.space.configurations`, evaluates each at
every way of splitting the users over replicas at once (:mod:`k2calc.planner.vector`), and keeps the
loads that fit, meet the service level (tokens/s per user) and every constraint, bought or rented. The
cheapest per configuration (by $ per 1M output tokens or total cost of ownership) are ranked; the top
ones are re-evaluated by the scalar :func:`k2calc.estimate.estimate` path, so what is shown is what the
calculator says. Each hardware class that never qualifies is reported with the first constraint its
closest attempt failed. Devices whose catalog row is unverified or rarely shipped are planned apart.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..cost import (
    CostAssumptions,
    api_price,
    api_usd_per_million_output,
    default_assumptions,
    estimate_cost,
)
from ..deployment import resolve
from ..memory import estimate_memory
from ..performance import estimate_performance
from ..scenario import Catalogs, Scenario, Workload
from ..units import format_usd, nodes_for_gpus
from .facility import Site, site, site_rejection
from .space import Constraints, configurations
from .vector import Invariants, candidate_loads, evaluate, invariants, monthly_usd

# The checks every candidate load passes in this order; a rejection names the first one failed.
# The site's cooling and noise come before them all (site_rejection).
CHECKS = ("fit", "speed", "power", "rack power", "rack units", "capex budget", "monthly budget")


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
    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp_attention: bool = False
    gpu_experts: int = 0
    nodes: int = 1
    peak_power_watts: float = 0.0
    rack_units: float | None = None
    noise_class: str | None = None
    cooling: str | None = None
    apart: str | None = None     # why it is listed apart (unverified or rarely shipped), else None
    pareto: bool = False

    @property
    def label(self) -> str:
        host = f" + {self.sockets}x {self.cpu}, {self.ram_gb} GiB" if self.cpu else ""
        split = "".join([f", EP{self.ep}" if self.ep > 1 else "", ", DP-attn" if self.dp_attention else "",
                         f", {self.gpu_experts} experts on GPU" if self.gpu_experts else ""])
        return f"{self.replicas} x ({self.count} x {self.hardware}{host}{split})"


@dataclass
class Current:
    """Where the buyer's current hardware ranks for the workload."""

    label: str
    option: Option | None    # its cheapest way to serve the workload (with replicas), or None
    rank: int | None         # 1 = as cheap as the best option; None when it does not qualify
    reason: str | None       # why it does not qualify


@dataclass
class PlanResult:
    options: list[Option]
    rejected: dict[str, str]
    candidates: int
    seconds: float
    api_usd_per_million_output_tokens: dict[str, float | None] = field(default_factory=dict)
    apart: list[Option] = field(default_factory=list)   # unverified or rarely shipped devices' best options
    configurations: int = 0
    current: Current | None = None

    def as_dict(self) -> dict:
        row = lambda o: {**asdict(o), "label": o.label}  # noqa: E731
        return {"options": [row(o) for o in self.options], "rejected": self.rejected,
                "apart": [row(o) for o in self.apart], "candidates_evaluated": self.candidates,
                "configurations": self.configurations, "seconds": self.seconds,
                "api_usd_per_million_output_tokens": self.api_usd_per_million_output_tokens,
                "current": None if self.current is None else {
                    "label": self.current.label, "rank": self.current.rank, "reason": self.current.reason,
                    "option": None if self.current.option is None else row(self.current.option)}}


@dataclass
class _Best:
    """The cheapest qualifying load of one configuration in one mode."""

    key: float
    inv: Invariants
    site: Site
    served: int
    replicas: int
    mode: str


class _Rejections:
    """Per hardware class, the closest attempt: the one that passed the most checks (the highest rank;
    shared with the fine-tuning planner)."""

    def __init__(self) -> None:
        self.by_class: dict[str, tuple[float, str]] = {}

    def add(self, key: str, rank: float, reason: str) -> None:
        if key not in self.by_class or rank > self.by_class[key][0]:
            self.by_class[key] = (rank, reason)


def _class_key(values: dict) -> str:
    return values["hardware"] + (" + CPU (hybrid)" if values.get("cpu") else "")


def _evaluate_config(values, w, c, a, catalogs, reject: _Rejections, best: dict, counter: list) -> None:
    """Evaluate every load of one configuration; record its cheapest qualifying load per mode in
    `best` (keyed by configuration) and its closest failure in `reject`."""
    hw_key = _class_key(values)
    where = site(values, catalogs.hardware_catalog())
    why = site_rejection(where, c)
    if why:  # the site cannot take it: nothing else matters
        reject.add(hw_key, 0, why)
        return
    if "_skip" in values:
        reject.add(hw_key, 0.5, values["_skip"])
        return
    inv = invariants(values, a, catalogs)
    if isinstance(inv, str):
        reject.add(hw_key, 1, inv)
        return
    served, replicas = candidate_loads(w.users)
    loads = evaluate(inv, w, a, catalogs, served, replicas)
    counter[0] += len(served) * 2
    for mode in ("buy", "rent"):
        if c.where == "cloud" and mode == "buy" or c.where == "on-prem" and mode == "rent":
            continue
        if mode == "buy" and inv.cost_error:
            reject.add(hw_key, 3, inv.cost_error)
            continue
        if mode == "rent" and inv.cloud_usd_per_hour is None:
            continue
        n = replicas.astype(float)
        passes, capex, monthly = _checks(inv, where, loads, n, w, c, a, mode)
        ok = passes.all(axis=0)
        if ok.any():
            per_m = loads.usd_per_million_buy if mode == "buy" else loads.usd_per_million_rent
            tco = inv.tco_usd * n if mode == "buy" else monthly * 12 * a.amortisation_years
            key = np.where(ok, tco if c.rank_by == "tco" else per_m, np.inf)
            i = int(np.argmin(key))
            best[(tuple(sorted(values.items())), mode)] = _Best(float(key[i]), inv, where, int(served[i]),
                                                                 int(replicas[i]), mode)
            continue
        passed = np.argmin(np.vstack([passes, np.zeros(len(n), bool)]), axis=0)  # first failed check per load
        i = int(np.lexsort((-loads.tokens_per_s_per_user, -passed))[0])
        reject.add(hw_key, 2 + passed[i] + min(loads.tokens_per_s_per_user[i], 1e8) / 1e9,
                   _reason(CHECKS[passed[i]], inv, where, loads, i, w, c, mode, capex[i], monthly[i]))


def _checks(inv: Invariants, where: Site, loads, n: np.ndarray, w: Workload, c: Constraints, a: CostAssumptions,
            mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pass or fail of each of :data:`CHECKS` (rows) at each load (columns), capex [USD], monthly cost
    [USD/month]) of a configuration's loads with `n` replicas each, bought or rented. Renting asks
    nothing of the site's power and racks."""
    buy, ones = mode == "buy", np.ones(len(n), bool)
    capex = inv.capex_usd * n if buy else np.zeros(len(n))
    monthly = monthly_usd(inv, a, mode) * n
    rack_kw_ok = not buy or c.rack_kw is None or inv.peak_power_watts / where.boxes <= c.rack_kw * 1e3
    units_ok = ones if not buy or c.rack_units is None else (
        (where.rack_units is not None) & ((where.rack_units or 0) * n <= c.rack_units))
    passes = np.stack([
        loads.fits,
        loads.tokens_per_s_per_user >= (w.tokens_per_s_per_user or 0.0),
        inv.power_watts * n <= (c.power_limit_watts or math.inf) if buy else ones,
        ones & rack_kw_ok,
        units_ok,
        capex <= (c.budget_usd or math.inf),
        monthly <= (c.monthly_budget_usd or math.inf),
    ])
    return passes, capex, monthly


def _reason(check: str, inv: Invariants, where: Site, loads, i: int, w: Workload, c: Constraints, mode: str,
            capex: float, monthly: float) -> str:
    """One line: the constraint the closest attempt failed, with its figure."""
    s, n = inv.scenario, int(loads.replicas[i])
    what = f"{n} x {s.count} x {s.hardware}" if inv.deployment.device else f"{n} x {s.hardware}"
    if check == "fit":
        return (f"does not fit: the KV cache holds {inv.memory.max_concurrency:,} sequences of "
                f"{s.context:,} tokens per replica")
    if check == "speed":
        where_ = f"{s.count} x, " if inv.deployment.device else ""
        return (f"{loads.tokens_per_s_per_user[i]:,.1f} tok/s per user at best ({where_}{s.quant}, "
                f"{int(loads.served[i])} user(s) per replica), below the {w.tokens_per_s_per_user:g} required")
    if check == "power":
        return f"over the power limit: {inv.power_watts * n:,.0f} W under load for {what}"
    if check == "rack power":
        return f"one server or box peaks at {inv.peak_power_watts / where.boxes / 1e3:,.1f} kW, over {c.rack_kw:g} kW per rack"
    if check == "rack units":
        if where.rack_units is None:
            return "rack units unknown for this deployment (no sourced figure in data/hardware.csv)"
        return f"needs {where.rack_units * n:g} U of rack for {what}, over the {c.rack_units:g} U available"
    if check == "capex budget":
        return f"over budget: {format_usd(capex, digits=0)} for {what}"
    return f"over the monthly budget: {format_usd(monthly, digits=0)} a month to {mode} {what}"


def _option(b: _Best, w: Workload, a: CostAssumptions, catalogs: Catalogs) -> Option | None:
    """The option of a qualifying load, every figure re-evaluated by the scalar estimate path."""
    s = b.inv.scenario.model_copy(update={"concurrency": b.served})
    d = resolve(s, catalogs)
    mem = estimate_memory(d, limits=False)  # the verdict and the placement; the limits are not shown
    if not mem.fits:
        return None
    perf = estimate_performance(d, mem, w.input_tokens, w.output_tokens, b.served)
    monthly_tokens = (w.monthly_output_tokens / b.replicas) if w.monthly_output_tokens else None
    cost = estimate_cost(d, perf, w.input_tokens, w.output_tokens, a, monthly_output_tokens=monthly_tokens)
    n = b.replicas
    if b.mode == "rent":
        monthly = cost.cloud_usd_per_hour * 730 * a.utilisation * n
        capex, tco, per_m, breakeven = 0.0, monthly * 12 * a.amortisation_years, cost.cloud_usd_per_million_output_tokens, None
    else:
        capex, monthly, tco = cost.capex_usd * n, cost.annual_opex_usd / 12 * n, cost.tco_usd * n
        per_m, breakeven = cost.usd_per_million_output_tokens, cost.breakeven_months
    return Option(
        model=s.model, quant=s.quant, hardware=s.hardware, hardware_name=d.device.name if d.device else d.cpu.name,
        count=s.count if d.device else 0, replicas=n, engine=d.engine.id, kv_dtype=s.kv_dtype, mode=b.mode,
        cpu=d.cpu.id if d.cpu else None, sockets=d.sockets if d.cpu else None,
        ram_gb=int(s.ram_gb) if s.ram_gb else None, tokens_per_s_per_user=perf.decode_tokens_per_s_per_user,
        tokens_per_s_total=perf.decode_tokens_per_s_per_user * w.users, ttft_s=perf.ttft_s, capex_usd=capex,
        monthly_usd=monthly, tco_usd=tco, usd_per_million_output_tokens=per_m, breakeven_months=breakeven,
        power_watts=cost.power_watts * n, tp=d.tp, pp=d.pp, ep=d.ep, dp_attention=d.dp_attention,
        gpu_experts=d.gpu_experts, nodes=d.nodes, peak_power_watts=cost.peak_power_watts * n,
        rack_units=None if b.site.rack_units is None else b.site.rack_units * n, noise_class=b.site.noise_class,
        cooling=b.site.cooling, apart=b.site.apart,
    )


def _ranked(best: dict, w, a, catalogs, top: int, apart: bool) -> list[Option]:
    """The `top` options (deduplicated) among `best`, those apart or not, cheapest first."""
    out, seen = [], set()
    for b in sorted((b for b in best.values() if (b.site.apart is not None) == apart), key=lambda b: b.key):
        o = _option(b, w, a, catalogs)
        if o is None:
            continue
        dedupe = (o.model, o.hardware, o.cpu, o.count, o.replicas, o.mode)
        if dedupe in seen:
            continue
        seen.add(dedupe)
        out.append(o)
        if len(out) >= top:
            break
    return out


def plan(w: Workload, c: Constraints, a: CostAssumptions | None = None, top: int = 10,
         catalogs: Catalogs | None = None, current: Scenario | None = None) -> PlanResult:
    """Rank the deployments that serve `w` within `c` (see the module docstring); `catalogs` adds a
    session's imported models and custom devices; `current` (a scenario: the buyer's hardware) is
    ranked among them."""
    catalogs = catalogs or Catalogs()
    start = time.perf_counter()
    a = a or default_assumptions()
    reject, best, counter, configs = _Rejections(), {}, [0], 0
    for values in configurations(w, c, catalogs):
        configs += 1
        _evaluate_config(values, w, c, a, catalogs, reject, best, counter)
    options = _ranked(best, w, a, catalogs, top, apart=False)
    apart = _ranked(best, w, a, catalogs, top, apart=True)
    if c.include_unverified:
        options = sorted(options + apart, key=_rank_key(c))[:top]
        apart = []
    _mark_pareto(options)
    qualified = {_class_key(dict(items)) for items, _ in best}
    apis = {}
    for model in c.models:
        price = api_price(model)
        apis[model] = api_usd_per_million_output(price, w.input_tokens, w.output_tokens, a.cache_hit_rate) if price else None
    return PlanResult(
        options=options, apart=apart,
        rejected={k: v[1] for k, v in sorted(reject.by_class.items()) if k not in qualified},
        candidates=counter[0], configurations=configs, seconds=time.perf_counter() - start,
        api_usd_per_million_output_tokens=apis,
        current=None if current is None else _current(current, w, c, a, catalogs, options),
    )


def _rank_key(c: Constraints):
    return (lambda o: o.tco_usd) if c.rank_by == "tco" else (lambda o: o.usd_per_million_output_tokens)


def _current(s: Scenario, w: Workload, c: Constraints, a: CostAssumptions, catalogs: Catalogs,
             options: list[Option]) -> Current:
    """Plan the buyer's hardware `s` alone (its model, device, count and engine; the workload's load)
    and say where its best option would rank among `options`."""
    values = {k: v for k, v in s.model_dump().items() if v is not None}
    values.update(context=w.context_tokens, input_tokens=w.input_tokens, output_tokens=w.output_tokens, concurrency=1)
    reject, best = _Rejections(), {}
    mine = c.model_copy(update={"include_unverified": True, "rack_kw": None, "rack_units": None,
                                "noise": None, "cooling": None, "budget_usd": None, "monthly_budget_usd": None})
    _evaluate_config(values, w, mine, a, catalogs, reject, best, [0])
    label = f"{s.count} x {s.hardware}" + (f" + {s.sockets}x {s.cpu}" if s.cpu else "")
    found = _ranked(best, w, a, catalogs, 1, apart=False) + _ranked(best, w, a, catalogs, 1, apart=True)
    if not found:
        return Current(label, None, None, next(iter(reject.by_class.values()), (0, "does not qualify"))[1])
    o = min(found, key=_rank_key(c))
    rank = 1 + sum(1 for x in options if _rank_key(c)(x) < _rank_key(c)(o))
    return Current(label, o, rank, None)


def option_scenario(o: Option, w: Workload, catalogs: Catalogs | None = None) -> Scenario:
    """The scenario of one replica of a planner option, at the users each replica really serves
    (load it into the calculator, or re-check the option by hand)."""
    h = (catalogs or Catalogs()).hardware_catalog()[o.hardware]
    values = dict(model=o.model, quant=o.quant, hardware=o.hardware, engine=o.engine, kv_dtype=o.kv_dtype,
                  concurrency=math.ceil(w.users / o.replicas), input_tokens=w.input_tokens,
                  output_tokens=w.output_tokens, context=w.context_tokens)
    if o.cpu:
        values.update(count=o.count, cpu=o.cpu, sockets=o.sockets, ram_gb=o.ram_gb, gpu_experts=o.gpu_experts)
    elif h.is_cpu:
        values.update(sockets=o.sockets or 2, ram_gb=o.ram_gb)
    else:
        values.update(count=o.count, nodes=nodes_for_gpus(o.count) if h.is_gpu else 1)
        if o.ep > 1:
            values["ep"] = o.ep
        if o.dp_attention:
            values["dp_attention"] = True
    return Scenario.build(**values)


def _mark_pareto(options: list[Option]) -> None:
    """Mark options no other beats on both $/1M output tokens and tokens/s per user."""
    for o in options:
        o.pareto = not any(
            p.usd_per_million_output_tokens <= o.usd_per_million_output_tokens
            and p.tokens_per_s_per_user >= o.tokens_per_s_per_user
            and (p.usd_per_million_output_tokens < o.usd_per_million_output_tokens
                 or p.tokens_per_s_per_user > o.tokens_per_s_per_user)
            for p in options)


__all__ = ["Option", "PlanResult", "Current", "plan", "option_scenario", "CHECKS"]
