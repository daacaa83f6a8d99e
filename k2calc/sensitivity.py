"""Sensitivity: how $ per 1M output tokens and the API break-even move when one assumption moves.

For a scenario, each assumption is set to a low and a high value (the ranges below, stated so a buyer
can argue with them), everything else held; the rows come back sorted by how much they move the cost:
the data of a tornado chart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from .deployment import resolve
from .errors import K2CalcError
from .estimate import estimate
from .scenario import Catalogs, Scenario
from .units import format_usd


@dataclass(frozen=True)
class Swing:
    """One assumption's range and what it does [USD per 1M output tokens, months]."""

    assumption: str
    low_label: str
    high_label: str
    usd_per_mtok_low: float | None
    usd_per_mtok_high: float | None
    breakeven_low: float | None
    breakeven_high: float | None

    @property
    def span(self) -> float:
        values = [v for v in (self.usd_per_mtok_low, self.usd_per_mtok_high) if v is not None]
        return max(values) - min(values) if len(values) == 2 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "span_usd_per_mtok": self.span}


def _ranges(s: Scenario) -> list[tuple[str, str, dict, str, dict]]:
    """(name, low label, low change, high label, high change) for every assumption varied."""
    a = s.cost_assumptions()
    u = a.utilisation
    price = _price(s)
    return [
        ("utilisation", f"{u / 2:.0%}", {"utilisation": u / 2}, f"{min(1.0, u * 1.5):.0%}",
         {"utilisation": min(1.0, u * 1.5)}),
        ("electricity", f"{format_usd(a.electricity_usd_per_kwh / 2, 3)}/kWh", {"electricity_usd_per_kwh": a.electricity_usd_per_kwh / 2},
         f"{format_usd(a.electricity_usd_per_kwh * 1.5, 3)}/kWh", {"electricity_usd_per_kwh": a.electricity_usd_per_kwh * 1.5}),
        ("hardware price", "-30%", {"hardware_price_usd": price * 0.7} if price else {}, "+30%",
         {"hardware_price_usd": price * 1.3} if price else {}),
        ("amortisation", "2 years", {"amortisation_years": 2.0}, "6 years", {"amortisation_years": 6.0}),
        ("hosting", "$0/kW-month (own room)", {"hosting_usd_per_kw_month": 0.0},
         f"{format_usd(a.hosting_usd_per_kw_month * 2, 0)}/kW-month", {"hosting_usd_per_kw_month": a.hosting_usd_per_kw_month * 2}),
        ("context", f"{max(1, s.context // 2):,} tokens", {"context": max(1, s.context // 2)},
         f"{s.context * 2:,} tokens", {"context": s.context * 2}),
        ("concurrency", f"{max(1, s.concurrency // 2)} users", {"concurrency": max(1, s.concurrency // 2)},
         f"{s.concurrency * 2} users", {"concurrency": s.concurrency * 2}),
        ("KV cache dtype", "bf16", {"kv_dtype": "bf16"}, "fp8", {"kv_dtype": "fp8"}),
    ]


def _price(s: Scenario) -> float | None:
    """Price per device the scenario uses [USD]."""
    if s.hardware_price_usd is not None:
        return s.hardware_price_usd
    d = resolve(s)
    return d.device.price_usd if d.device else None


def sensitivity(s: Scenario, catalogs: Catalogs | None = None) -> list[Swing]:
    """Every assumption's swing, largest effect on $ per 1M output tokens first."""
    def run(change: dict) -> tuple[float | None, float | None]:
        try:
            e = estimate(s.model_copy(update=change), catalogs)
        except K2CalcError:
            return None, None
        if e.cost is None:
            return None, None
        return e.cost.usd_per_million_output_tokens, e.cost.breakeven_months

    rows = []
    for name, low_label, low, high_label, high in _ranges(s):
        lo, hi = run(low), run(high)
        rows.append(Swing(name, low_label, high_label, lo[0], hi[0], lo[1], hi[1]))
    key: Callable[[Swing], float] = lambda r: r.span  # noqa: E731
    return sorted(rows, key=key, reverse=True)
