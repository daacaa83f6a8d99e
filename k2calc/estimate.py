"""The one pipeline: :func:`estimate` runs ``scenario -> workload -> deployment -> memory -> performance
-> cost`` and returns one typed :class:`Estimate`.

Each stage reports its own failure in its own field, never as a string in another stage's list:

* the scenario or the deployment is impossible (unknown id, impossible split, a context that cannot
  hold prompt + answer): :class:`~k2calc.errors.K2CalcError` with one line, nothing computed;
* memory: ``memory.fits`` and ``memory.reasons``; when it does not fit, no speed or cost is computed
  (``performance`` and ``cost`` are None) and ``fixes`` lists complete scenarios that would fit,
  cheapest first;
* cost: a price that cannot be read leaves ``cost`` None and says why in ``cost_error``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from .cost import CostEstimate, estimate_cost
from .deployment import resolve, smallest_fitting
from .errors import K2CalcError
from .fixes import Fix, fixes
from .links import to_query
from .memory import Deployment, MemoryEstimate, estimate_memory
from .models import param_counts
from .performance import PerformanceEstimate, estimate_performance
from .scenario import COST_FIELDS, Catalogs, Scenario, Workload


class PricedFix(BaseModel):
    """A :class:`~k2calc.fixes.Fix` with what the fixed scenario costs [USD, USD per 1M output tokens]."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    fix: Fix
    capex_usd: float | None
    usd_per_million_output_tokens: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.fix.kind, "label": self.fix.label, "query": to_query(self.fix.scenario),
                "scenario": self.fix.scenario.model_dump(), "capex_usd": self.capex_usd,
                "usd_per_million_output_tokens": self.usd_per_million_output_tokens}


class Estimate(BaseModel):
    """All outputs of one scenario (the ``--json`` object)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    scenario: Scenario
    workload: Workload
    deployment: Deployment
    memory: MemoryEstimate
    performance: PerformanceEstimate | None  # None when it does not fit
    cost: CostEstimate | None  # None when it does not fit or cannot be priced (then cost_error says why)
    cost_error: str | None = None
    smallest: dict[str, Any]
    fixes: list[PricedFix] = []

    @property
    def fits(self) -> bool:
        return self.memory.fits

    @property
    def no_cost_reason(self) -> str | None:
        """Why there is no cost (does not fit, or the cost stage failed), or None when there is one."""
        if not self.fits:
            return "it does not fit, so nothing runs to be priced"
        return f"cost not computed: {self.cost_error}" if self.cost is None else None

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object (the contract in README.md, "Command line"); every number finite (inf/NaN become null)."""
        d, m = self.deployment, self.deployment.model
        counts = param_counts(m)
        return finite_json({
            "fits": self.memory.fits,
            "reasons": self.memory.reasons,
            "warnings": self.memory.warnings,
            "cost_error": self.cost_error,
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
            "performance": self.performance.as_dict() if self.performance else None,
            "cost": self.cost.as_dict() if self.cost else None,
            "smallest_fitting": self.smallest,
            "fixes": [f.as_dict() for f in self.fixes],
        })


def finite_json(x: Any) -> Any:
    """`x` with every non-finite float (an infinite $/1M when nothing is served) as None: strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_json(v) for v in x]
    return x


def run_cost(s: Scenario, d: Deployment, perf: PerformanceEstimate) -> tuple[CostEstimate | None, str | None]:
    """(cost, None), or (None, why) when the prices or assumptions cannot be read."""
    try:
        return estimate_cost(d, perf, s.input_tokens, s.output_tokens, s.cost_assumptions(),
                             device_price_usd=s.hardware_price_usd, cloud_usd_per_hour=s.cloud_usd_per_hour,
                             monthly_output_tokens=s.monthly_output_tokens, api_provider=s.api_provider,
                             api_input_usd_per_mtok=s.api_input_usd_per_mtok,
                             api_output_usd_per_mtok=s.api_output_usd_per_mtok), None
    except K2CalcError as exc:
        return None, str(exc)


def estimate(s: Scenario, catalogs: Catalogs | None = None) -> Estimate:
    """Run the pipeline on a scenario (see the module docstring); raises K2CalcError (one line) when
    the scenario cannot be resolved."""
    w = s.workload
    d = resolve(s, catalogs)
    mem = estimate_memory(d)
    speculation = speculation_of(s, d)
    if speculation is not None and mem.fits:
        from .fleet_speculative import with_draft
        d, mem = with_draft(d, mem, speculation)
        if not mem.fits:  # it fits without the draft: that is the way to fit (no search for others)
            return Estimate(scenario=s, workload=w, deployment=d, memory=mem, performance=None, cost=None,
                            smallest={"count": None, "nodes": None, "reason": mem.reasons[-1]})
    if not mem.fits:
        smallest = smallest_fitting(s, catalogs)
        return Estimate(scenario=s, workload=w, deployment=d, memory=mem, performance=None, cost=None,
                        smallest=smallest, fixes=_priced(fixes(s, d, mem, smallest, catalogs), catalogs))
    perf = estimate_performance(d, mem, w.input_tokens, w.output_tokens, w.users, speculation=speculation)
    cost, cost_error = run_cost(s, d, perf)
    return Estimate(scenario=s, workload=w, deployment=d, memory=mem, performance=perf, cost=cost,
                    cost_error=cost_error, smallest={"count": d.count, "nodes": d.nodes, "reason": ""})


def speculation_of(s: Scenario, d: Deployment):
    """The scenario's speculative-decoding setting (k2calc.fleet_speculative.Speculation), or None."""
    if s.spec_method == "none":
        return None
    from .fleet_speculative import Speculation
    return Speculation.of(d.model, s.spec_method, s.spec_draft_tokens, s.spec_acceptance)


def reprice(e: Estimate, s: Scenario, catalogs: Catalogs | None = None) -> Estimate:
    """`e` with the cost of scenario `s`, which differs from ``e.scenario`` only in cost fields
    (:data:`~k2calc.scenario.COST_FIELDS`): the deployment, memory and speed are reused, so a what-if on
    a price or an assumption costs no physics. Equal to ``estimate(s)``. A setup that does not fit is run
    again (its fixes are priced with the new assumptions); so is one whose physics differ."""
    same = {k: v for k, v in s.model_dump().items() if k not in COST_FIELDS}
    if not e.fits or same != {k: v for k, v in e.scenario.model_dump().items() if k not in COST_FIELDS}:
        return estimate(s, catalogs)
    cost, cost_error = run_cost(s, e.deployment, e.performance)
    return e.model_copy(update={"scenario": s, "workload": s.workload, "cost": cost, "cost_error": cost_error})


def _priced(candidates: list[Fix], catalogs: Catalogs | None) -> list[PricedFix]:
    """Each fix with its capex and $/1M output tokens, cheapest capex first (then cheapest per token)."""
    out = []
    for fix in candidates:
        e = estimate(fix.scenario, catalogs)
        if not e.fits:  # a fix is only offered when the pipeline agrees it fits
            continue
        c = e.cost
        out.append(PricedFix(fix=fix, capex_usd=c.capex_usd if c else None,
                             usd_per_million_output_tokens=c.usd_per_million_output_tokens if c else None))
    inf = float("inf")
    return sorted(out, key=lambda f: (inf if f.capex_usd is None else f.capex_usd,
                                      inf if f.usd_per_million_output_tokens is None else
                                      f.usd_per_million_output_tokens))


__all__ = ["Estimate", "PricedFix", "estimate", "finite_json", "reprice", "run_cost"]
