"""Fine-tuning in the planner: the cheapest hardware that finishes a LoRA, QLoRA or full SFT job (its
tokens, epochs and sequence length) before a deadline, bought or rented, on the same catalog and under
the same site constraints as serving.

Each candidate (device x count, hybrid cards with each CPU and the smallest standard RAM that fits,
unified-memory systems, CPUs alone) is estimated by :func:`k2calc.finetune.estimate_finetune` (memory
per device, tokens/s, hours, energy, rental); buying costs the capex of :func:`k2calc.cost.capex_breakdown`
plus the run's electricity, renting the catalog's $/device-hour for the run's hours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from ..cost import CostAssumptions, capex_breakdown, default_assumptions
from ..deployment import RAM_SIZES_GIB
from ..errors import K2CalcError
from ..finetune import FinetuneSpec, estimate_finetune
from ..scenario import Catalogs
from ..units import format_usd
from .facility import site, site_rejection
from .plan import _Rejections
from .space import HYBRID_CARD_MAX_BYTES, HYBRID_GPU_COUNTS, Constraints

TRAIN_GPU_COUNTS = (1, 2, 4, 8, 16, 32)
TRAIN_SYSTEM_COUNTS = (1, 2, 4)


@dataclass
class FinetuneOption:
    """One way to run the job before the deadline."""

    hardware: str
    count: int
    cpu: str | None
    ram_gb: float | None
    mode: str             # "buy" | "rent"
    hours: float
    tokens_per_s: float
    cost_usd: float       # buy: capex + the run's electricity; rent: the rental for the run's hours
    capex_usd: float
    energy_usd: float
    apart: str | None = None

    @property
    def label(self) -> str:
        host = f" + 2x {self.cpu}, {self.ram_gb:g} GiB" if self.cpu else ""
        return f"{self.count} x {self.hardware}{host}"


@dataclass
class FinetunePlan:
    options: list[FinetuneOption]
    apart: list[FinetuneOption]
    rejected: dict[str, str]
    candidates: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        row = lambda o: {**asdict(o), "label": o.label}  # noqa: E731
        return {"options": [row(o) for o in self.options], "apart": [row(o) for o in self.apart],
                "rejected": self.rejected, "candidates_evaluated": self.candidates, "seconds": self.seconds}


def _placements(job: FinetuneSpec, c: Constraints, catalogs: Catalogs) -> Iterator[dict]:
    """Device configurations to try (spec values over the job's)."""
    catalog = catalogs.hardware_catalog()
    cpus = [h for h in catalog.values() if h.is_cpu]
    for h in catalog.values():
        if c.hardware and h.id not in c.hardware:
            continue
        if h.is_gpu:
            for n in TRAIN_GPU_COUNTS:
                yield {"hardware": h.id, "count": n, "cpu": None, "ram_gb": None}
            if h.memory_bytes < HYBRID_CARD_MAX_BYTES:
                for cpu in cpus:
                    for n in HYBRID_GPU_COUNTS:
                        yield {"hardware": h.id, "count": n, "cpu": cpu.id, "ram_gb": "smallest"}
        elif h.is_system:
            for n in TRAIN_SYSTEM_COUNTS:
                yield {"hardware": h.id, "count": n, "cpu": None, "ram_gb": None}
        else:
            yield {"hardware": h.id, "count": 1, "cpu": None, "ram_gb": "smallest"}


def _estimate(job: FinetuneSpec, values: dict, catalogs: Catalogs):
    """The estimate of `job` on `values`; with the smallest standard RAM that fits for hybrid and CPU
    boxes (a bisection over the standard sizes)."""
    if values["ram_gb"] != "smallest":
        return estimate_finetune(job.model_copy(update=values), catalogs)
    def at(ram: int):
        return estimate_finetune(job.model_copy(update={**values, "ram_gb": float(ram)}), catalogs)

    largest = at(RAM_SIZES_GIB[-1])
    if not largest.fits:
        return largest
    low, high, best = 0, len(RAM_SIZES_GIB) - 1, largest  # more RAM never stops a run from fitting
    while low < high:
        mid = (low + high) // 2
        e = at(RAM_SIZES_GIB[mid])
        low, high, best = (low, mid, e) if e.fits else (mid + 1, high, best)
    return best


def plan_finetune(job: FinetuneSpec, deadline_hours: float, c: Constraints, a: CostAssumptions | None = None,
                  top: int = 10, catalogs: Catalogs | None = None) -> FinetunePlan:
    """The cheapest placements that finish `job` within `deadline_hours` [h] under `c` (site, budget,
    buy or rent), cheapest first; devices whose catalog row is unverified are listed apart."""
    start = time.perf_counter()
    catalogs, a = catalogs or Catalogs(), a or default_assumptions()
    tariff = job.usd_per_kwh if job.usd_per_kwh is not None else a.electricity_usd_per_kwh
    found, reject, candidates = [], _Rejections(), 0
    for values in _placements(job, c, catalogs):
        key = values["hardware"] + (" + CPU (hybrid)" if values["cpu"] else "")
        where = site({**values, "count": values["count"]}, catalogs.hardware_catalog())
        why = site_rejection(where, c)
        if why:
            reject.add(key, 0, why)
            continue
        candidates += 1
        try:
            e = _estimate(job, values, catalogs)
        except K2CalcError as exc:
            reject.add(key, 0.5, str(exc))
            continue
        if not e.fits:
            reject.add(key, 1, f"does not fit: {e.reasons[0] if e.reasons else 'no room'}")
            continue
        if e.hours > deadline_hours:  # the fastest attempt of a class is the one worth reporting
            reject.add(key, 2 + 1 / (1 + e.hours), f"{e.hours:,.1f} h at best ({values['count']} x), past the "
                                                   f"{deadline_hours:g} h deadline")
            continue
        energy = e.energy_kwh * tariff
        for mode in ("buy", "rent"):
            if c.where == "cloud" and mode == "buy" or c.where == "on-prem" and mode == "rent":
                continue
            if mode == "rent":
                if e.cloud_cost_usd is None:
                    continue
                cost, capex = e.cloud_cost_usd, 0.0
            else:
                try:
                    capex = sum(capex_breakdown(e.deployment, a).values())
                except K2CalcError as exc:
                    reject.add(key, 3, str(exc))
                    continue
                if c.budget_usd is not None and capex > c.budget_usd:
                    reject.add(key, 3 + 1 / capex, f"over budget: {format_usd(capex, digits=0)} for {values['count']} x")
                    continue
                cost = capex + energy
            found.append(FinetuneOption(values["hardware"], values["count"], values["cpu"],
                                        e.deployment.ram_bytes / 2**30 if values["cpu"] or not e.deployment.device else None,
                                        mode, e.hours, e.tokens_per_s, cost, capex, energy if mode == "buy" else 0.0,
                                        where.apart))
    found.sort(key=lambda o: o.cost_usd)
    qualified = {o.hardware + (" + CPU (hybrid)" if o.cpu else "") for o in found}
    main = [o for o in found if c.include_unverified or o.apart is None]
    apart = [] if c.include_unverified else [o for o in found if o.apart is not None]
    return FinetunePlan(main[:top], apart[:top],
                        {k: v[1] for k, v in sorted(reject.by_class.items()) if k not in qualified},
                        candidates, time.perf_counter() - start)


__all__ = ["FinetuneOption", "FinetunePlan", "plan_finetune"]
