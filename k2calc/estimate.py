"""The one pipeline: :func:`estimate` runs ``scenario -> deployment -> memory -> performance -> cost``
and returns one typed :class:`Estimate`.

Each stage reports its own failure in its own field: a scenario or deployment error raises
:class:`~k2calc.errors.K2CalcError` (one line); memory says ``fits`` and why not; when it does not
fit, no speed or cost is computed (``performance`` and ``cost`` are None) and :attr:`Estimate.fixes`
lists the cheapest complete scenarios that would fit; a cost that cannot be computed leaves ``cost``
None with the reason in ``cost_error``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .cost import CostEstimate, estimate_cost
from .deployment import resolve, smallest_fitting
from .errors import K2CalcError
from .memory import Deployment, MemoryEstimate, estimate_memory
from .models import param_counts
from .performance import PerformanceEstimate, estimate_performance
from .scenario import Catalogs, Scenario, Workload


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
