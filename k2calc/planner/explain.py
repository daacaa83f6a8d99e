"""Explain the choice: the planner's options as a cost-against-speed table with the Pareto front marked,
and what would change the winner: the top two options re-estimated (by :func:`k2calc.estimate.estimate`)
as the first option's hardware price (the runner-up's as catalogued), the electricity tariff and the
utilisation move, and the first value at which the runner-up becomes cheaper per 1M output tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import K2CalcError
from ..estimate import estimate
from ..scenario import Catalogs, Workload
from ..sweeps import HARDWARE_CLASSES
from ..units import format_usd
from .plan import Option, PlanResult, option_scenario

# The moves tried, each a multiple of the option's own figure (price: the device's catalog price, or its
# $/hour when rented; electricity: the tariff) or a utilisation; wide enough to cover the catalog's stated
# price uncertainty (+-20-40%, data/hardware.csv price_source) and a cheap or dear tariff.
PRICE_FACTORS = (0.5, 0.7, 1.0, 1.3, 1.5, 2.0)
ELECTRICITY_FACTORS = (0.25, 0.5, 1.0, 2.0, 3.0)
UTILISATIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Move:
    """One assumption moved for the top two options [USD per 1M output tokens]."""

    assumption: str
    labels: tuple[str, ...]
    first_usd: tuple[float | None, ...]
    second_usd: tuple[float | None, ...]
    flips_at: str | None     # the first setting at which the runner-up is cheaper, or None


def options_frame(options: list[Option], catalogs: Catalogs | None = None) -> pd.DataFrame:
    """The options in the columns :func:`k2calc.charts.hardware_scatter` draws (cost against speed,
    the Pareto front joined)."""
    hw = (catalogs or Catalogs()).hardware_catalog()

    def klass(o: Option) -> str:
        h = hw[o.hardware]
        return HARDWARE_CLASSES["hybrid" if o.cpu else "cpu" if h.is_cpu else "unified" if h.is_system else "gpu"]

    return pd.DataFrame([{
        "label": f"{o.label} {o.mode}", "klass": klass(o), "fits": True, "per_user_tok_s": o.tokens_per_s_per_user,
        "total_tok_s": o.tokens_per_s_total, "usd_per_mtok_output": o.usd_per_million_output_tokens,
        "capex_usd": o.capex_usd, "power_w": o.power_watts, "pareto": o.pareto} for o in options])


def _cost(o: Option, w: Workload, change: dict, catalogs: Catalogs | None) -> float | None:
    """$ per 1M output tokens of option `o` with `change` applied to its scenario, or None."""
    try:
        e = estimate(option_scenario(o, w, catalogs).model_copy(update=change), catalogs)
    except K2CalcError:
        return None
    if e.cost is None:
        return None
    return e.cost.cloud_usd_per_million_output_tokens if o.mode == "rent" else e.cost.usd_per_million_output_tokens


def _price_change(o: Option, factor: float, catalogs: Catalogs | None) -> dict:
    h = (catalogs or Catalogs()).hardware_catalog()[o.hardware]
    if o.mode == "rent":
        return {"cloud_usd_per_hour": h.cloud_usd_per_hour * factor} if h.cloud_usd_per_hour else {}
    return {"hardware_price_usd": h.price_usd * factor} if h.price_usd else {}


def what_changes_the_winner(result: PlanResult, w: Workload, catalogs: Catalogs | None = None) -> list[Move]:
    """For the top two options, $ per 1M output tokens as each assumption moves (everything else as
    planned), and where the runner-up overtakes; [] with fewer than two options."""
    if len(result.options) < 2:
        return []
    first, second = result.options[:2]
    moves = [  # the winner's own hardware dearer or cheaper, the runner-up's as catalogued
        ("price of the first option's hardware (buy) or its $/hour (rent)", [f"x{f:g}" for f in PRICE_FACTORS],
         [(_price_change(first, f, catalogs), {}) for f in PRICE_FACTORS]),
    ]
    base = estimate(option_scenario(first, w, catalogs), catalogs).cost
    if base is not None:
        tariff = base.assumptions["electricity_usd_per_kwh"]
        moves.append(("electricity", [f"{format_usd(tariff * f, 3)}/kWh" for f in ELECTRICITY_FACTORS],
                      [({"electricity_usd_per_kwh": tariff * f},) * 2 for f in ELECTRICITY_FACTORS]))
    moves.append(("utilisation", [f"{u:.0%}" for u in UTILISATIONS],
                  [({"utilisation": u},) * 2 for u in UTILISATIONS]))
    out = []
    for name, labels, changes in moves:
        a = tuple(_cost(first, w, c1, catalogs) for c1, _ in changes)
        b = tuple(_cost(second, w, c2, catalogs) for _, c2 in changes)
        flip = next((label for label, x, y in zip(labels, a, b) if x is not None and y is not None and y < x), None)
        out.append(Move(name, tuple(labels), a, b, flip))
    return out


__all__ = ["Move", "options_frame", "what_changes_the_winner", "PRICE_FACTORS", "ELECTRICITY_FACTORS", "UTILISATIONS"]
