"""The vectorized evaluator: every candidate load of one deployment configuration at once.

A configuration (model x quantization x device x count x engine x parallelism x KV dtype, see
:mod:`k2calc.planner.space`) is resolved, placed and priced once by the scalar code (:func:`resolve`,
:func:`estimate_memory`, the class corrections, :func:`estimate_cost`'s capex, power and annual cost):
these are its invariants. What depends on the load (users per replica, hence the replica count) is
evaluated for all candidate loads in one call of the same functions the scalar
:func:`k2calc.estimate.estimate` runs (:func:`k2calc.performance.estimate.serve`, the decode step, the
prefill time, :func:`k2calc.cost.usd_per_million_output_tokens`), with numpy arrays in place of numbers.

The candidate loads: with U users and r replicas, each replica serves ceil(U / r) users; only the
distinct values of ceil(U / r) for r = 1 .. U (about 2 sqrt(U) of them) are different deployments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from ..cost import (
    CostAssumptions,
    estimate_cost,
    rental_usd_per_million_output_tokens,
    usd_per_million_output_tokens,
)
from ..deployment import resolve
from ..errors import K2CalcError
from ..memory import (
    Deployment,
    MemoryEstimate,
    estimate_memory,
    placement_depends_on_load,
)
from ..performance.bands import ClassCalibration, calibration_class, class_calibration
from ..performance.estimate import serve
from ..performance.prefill import prefill_time
from ..scenario import Catalogs, Scenario, Workload
from ..units import HOURS_PER_MONTH
from .space import ram_for

MAX_REPLICAS = 256
# estimate_cost's capex, power, annual and TCO figures do not depend on the speed; they are read with
# this placeholder speed, and the speed-dependent $ per 1M tokens is computed per candidate below.
_ANY_SPEED = SimpleNamespace(output_tokens_per_s_total=1.0, prefill_tokens_per_s=1.0, decode_tokens_per_s_per_user=1.0)


@dataclass(frozen=True)
class Invariants:
    """What the scalar code says about one configuration once, whatever its load."""

    scenario: Scenario          # concurrency 1
    deployment: Deployment
    memory: MemoryEstimate      # placement at one sequence (its max_concurrency bounds the load)
    decode: ClassCalibration
    prefill: ClassCalibration
    capex_usd: float            # one replica [USD]
    power_watts: float          # under load, one replica [W]
    peak_power_watts: float     # one replica [W]
    annual_usd: float           # capital + running costs, one replica [USD/year]
    annual_opex_usd: float      # [USD/year]
    tco_usd: float              # one replica over the amortisation years [USD]
    cloud_usd_per_hour: float | None
    cost_error: str | None      # why the configuration has no price (then it cannot be bought)
    prompt: tuple[float, float]  # prefill_time of one prompt of the workload, and its roofline [s]


def invariants(values: dict, a: CostAssumptions, catalogs: Catalogs) -> Invariants | str:
    """The invariants of a configuration (scenario values at concurrency 1), or the reason it cannot
    run (its RAM, the engine's rules, the memory)."""
    if not catalogs.models and not catalogs.hardware:
        return _cached(tuple(sorted(values.items())), a)
    return _invariants(values, a, catalogs)


@lru_cache(maxsize=8192)
def _cached(items: tuple, a: CostAssumptions) -> Invariants | str:
    return _invariants(dict(items), a, Catalogs())


def clear_cache() -> None:
    """Forget the cached invariants (a cold start, for the benchmark)."""
    _cached.cache_clear()


def _invariants(values: dict, a: CostAssumptions, catalogs: Catalogs) -> Invariants | str:
    try:
        h = catalogs.hardware_catalog()[values["hardware"]]
        if (values.get("cpu") or h.is_cpu) and values.get("ram_gb") is None:  # the smallest RAM that fits
            ram = ram_for(values, catalogs)
            if ram is None:
                return "does not fit even with the largest standard RAM"
            values = {**values, "ram_gb": ram}
        s = Scenario.build(**values)
        d = resolve(s, catalogs)
        mem = estimate_memory(d, limits=not placement_depends_on_load(d))
    except K2CalcError as exc:
        return str(exc)
    if not mem.fits:
        return f"does not fit: {mem.reasons[0] if mem.reasons else 'no room'}"
    klass = calibration_class(d)
    cost_error, capex = None, math.nan
    power = peak = annual = opex = tco = math.nan
    cloud = None
    try:
        cost = estimate_cost(d, _ANY_SPEED, s.input_tokens, s.output_tokens, a)
        capex, power, peak = cost.capex_usd, cost.power_watts, cost.peak_power_watts
        annual, opex, tco = cost.annual_capital_usd + cost.annual_opex_usd, cost.annual_opex_usd, cost.tco_usd
        cloud = cost.cloud_usd_per_hour
    except K2CalcError as exc:
        cost_error = str(exc)
    return Invariants(s, d, mem, class_calibration(klass, "decode"), class_calibration(klass, "prefill/ttft"),
                      capex, power, peak, annual, opex, tco, cloud, cost_error, prefill_time(d, mem, s.input_tokens))


@lru_cache(maxsize=64)
def candidate_loads(users: int) -> tuple[np.ndarray, np.ndarray]:
    """(users per replica, replicas) of every distinct way to split `users` over at most
    :data:`MAX_REPLICAS` replicas, most users per replica first.

    >>> [a.tolist() for a in candidate_loads(5)]
    [[5, 3, 2, 1], [1, 2, 3, 5]]

    Cached: the arrays are shared, read-only.
    """
    r = np.arange(1, min(users, MAX_REPLICAS) + 1)
    served = np.unique(-(-users // r))[::-1]
    replicas = -(-users // served)
    served.setflags(write=False)
    replicas.setflags(write=False)
    return served, replicas


@dataclass
class Loads:
    """Every candidate load of one configuration: arrays of one entry per load."""

    served: np.ndarray                # users per replica [count]
    replicas: np.ndarray              # [count]
    fits: np.ndarray                  # the KV cache of `served` sequences fits [bool]
    tokens_per_s_per_user: np.ndarray
    ttft_s: np.ndarray
    output_tokens_per_s_total: np.ndarray   # one replica, TTFT included [tok/s]
    usd_per_million_buy: np.ndarray
    usd_per_million_rent: np.ndarray        # NaN where the device is not rented


def evaluate(inv: Invariants, w: Workload, a: CostAssumptions, catalogs: Catalogs,
             served: np.ndarray, replicas: np.ndarray) -> Loads:
    """Speeds and money of `inv`'s configuration at each load in `served` (users per replica)."""
    d, mem = inv.deployment, inv.memory
    if placement_depends_on_load(d):  # a dense model on a hybrid box: the layers move with the load
        rows = [_placed_load(inv, w, int(n), catalogs) for n in served]
        fits = np.array([r[0] for r in rows])
        per_user, ttft, tps = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    else:
        fits = served <= mem.max_concurrency
        v = serve(d, mem, w.input_tokens, w.output_tokens, served.astype(float), inv.decode, inv.prefill, inv.prompt)
        per_user, ttft, tps = v.decode_tokens_per_s_per_user, v.ttft_s, v.output_tokens_per_s_total
    buy = usd_per_million_output_tokens(inv.annual_usd, tps, a.utilisation)
    rent = (rental_usd_per_million_output_tokens(inv.cloud_usd_per_hour, tps) if inv.cloud_usd_per_hour is not None
            else np.full(len(served), np.nan))
    return Loads(served, replicas, fits, per_user, ttft, tps, buy, rent)


def _placed_load(inv: Invariants, w: Workload, n: int, catalogs: Catalogs) -> tuple[bool, float, float, float]:
    """(fits, tok/s per user, TTFT, output tok/s) at `n` users of a configuration whose placement
    depends on the load, by the scalar placement at that load."""
    if n == inv.scenario.concurrency:
        d, mem = inv.deployment, inv.memory
    else:
        d = resolve(inv.scenario.model_copy(update={"concurrency": n}), catalogs)
        mem = estimate_memory(d, limits=False)
    if not mem.fits:
        return False, 0.0, math.inf, 0.0
    v = serve(d, mem, w.input_tokens, w.output_tokens, n, inv.decode, inv.prefill)
    return True, v.decode_tokens_per_s_per_user, v.ttft_s, v.output_tokens_per_s_total


def monthly_usd(inv: Invariants, a: CostAssumptions, mode: str) -> float:
    """Running costs (buy) or rental at the utilisation (rent) of one replica [USD/month]."""
    if mode == "rent":
        return inv.cloud_usd_per_hour * HOURS_PER_MONTH * a.utilisation if inv.cloud_usd_per_hour else math.nan
    return inv.annual_opex_usd / 12


__all__ = ["Invariants", "Loads", "invariants", "evaluate", "candidate_loads", "monthly_usd", "MAX_REPLICAS",
           "clear_cache"]
