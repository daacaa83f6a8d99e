"""Budget planner: the cheapest deployments that serve a workload within a buyer's constraints
(:mod:`.space`: the constraints and the configurations; :mod:`.vector`: every load of a configuration
evaluated at once; :mod:`.facility`: what a deployment asks of the site; :mod:`.plan`: ranking and
rejections)."""

from __future__ import annotations

from ..errors import validated
from ..quant import resolve_scheme
from ..scenario import Workload
from .plan import Current, Option, PlanResult, option_scenario, plan
from .space import Constraints

# What the planner serves when not told: 50 users at 20 tok/s each (the CLI's and the Plan page's defaults).
PLAN_DEFAULTS = {"users": 50, "tokens_per_s_per_user": 20.0}


def build_workload(names=None, **values) -> Workload:
    """The workload to plan for (:class:`k2calc.scenario.Workload`, the calculator's type), with
    :data:`PLAN_DEFAULTS` for what is not given; raises K2CalcError in one line (fields named as
    `names` maps them, e.g. to command-line flags)."""
    given = {k: v for k, v in values.items() if v is not None}
    return Workload.build(names=names, **{**PLAN_DEFAULTS, **given})


def build_constraints(names=None, **values) -> Constraints:
    """The planner's constraints (None = default); raises K2CalcError in one line (fields named as
    `names` maps them, e.g. to command-line flags)."""
    return validated(Constraints, names=names, **{k: v for k, v in values.items() if v is not None})


__all__ = ["Workload", "Constraints", "Option", "PlanResult", "Current", "plan", "build_workload",
           "build_constraints", "option_scenario", "resolve_scheme", "PLAN_DEFAULTS"]
