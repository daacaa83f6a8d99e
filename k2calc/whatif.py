"""What-if exploration, independent of any widget: the scales a person reads (powers of two, round money
steps), the limits a scenario allows on each (so a slider never offers a value that can only produce an
error), and the comparison of an estimate against a pinned baseline (key figures, their changes, and
which change is an improvement).

The app's sliders (app.py) and the report's baseline section (k2calc.report_content) both read from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .deployment import resolve
from .errors import K2CalcError
from .memory import estimate_memory
from .models import get_model
from .scenario import MAX_COUNT, Catalogs, Scenario
from .units import format_usd

# Fallback cap on the users scale when the setup cannot be resolved or holds nothing [users].
USERS_FALLBACK_CAP = 1024
MAX_USERS = 1_000_000  # Scenario.concurrency's bound
MIN_TOKENS_STEP = 16  # smallest prompt or answer on the scale [tokens]
MIN_CONTEXT_STEP = 1024  # smallest power-of-two context on the scale [tokens]
# Round money mantissas: every step reads as a price a person would quote.
ROUND_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


# ------------------------------------------------------------------------------------------------
# Scales
# ------------------------------------------------------------------------------------------------


def powers_of_two(lo: int, hi: int, include_hi: bool = True) -> tuple[int, ...]:
    """Powers of two in [lo, hi], and `hi` itself when it is not one (so the largest value is reachable).

    >>> powers_of_two(1, 22)
    (1, 2, 4, 8, 16, 22)
    >>> powers_of_two(1000, 4096)
    (1024, 2048, 4096)
    >>> powers_of_two(5, 3)
    ()
    """
    if hi < lo or hi < 1:
        return ()
    out, p = [], 1
    while p <= hi:
        if p >= lo:
            out.append(p)
        p *= 2
    if include_hi and (not out or out[-1] != hi):
        out.append(hi)
    return tuple(out)


def round_steps(lo: float, hi: float) -> tuple[float, ...]:
    """Round money steps (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k) in [lo, hi] [USD].

    >>> round_steps(100, 1000)
    (100.0, 120.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 600.0, 800.0, 1000.0)
    """
    out = []
    for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in ROUND_MANTISSAS:
            v = round(m * 10.0 ** k, 6)
            if lo <= v <= hi:
                out.append(v)
    return tuple(out)


def linear_steps(lo: float, hi: float, step: float) -> tuple[float, ...]:
    """lo, lo + step, ... hi, each rounded to the step's decimals (no 0.30000000000000004).

    >>> linear_steps(0, 0.2, 0.05)
    (0.0, 0.05, 0.1, 0.15, 0.2)
    """
    decimals = max(0, -math.floor(math.log10(step)) + 1)
    n = round((hi - lo) / step)
    return tuple(round(lo + i * step, decimals) for i in range(n + 1))


def nearest_step(steps: Sequence[float], value: float | None) -> float | None:
    """The step closest to `value`: on a log scale when the steps and the value are positive (8 is
    nearer 6 than 12 on a powers-of-two scale), linearly otherwise. None when there are no steps.

    >>> nearest_step((1, 2, 4, 8, 16), 6)
    8
    >>> nearest_step((1, 2, 4, 8, 16), 5)
    4
    >>> nearest_step((0.0, 0.05, 0.1), 0.07)
    0.05
    """
    if not steps:
        return None
    if value is None:
        return steps[0]
    if value > 0 and all(s > 0 for s in steps):
        return min(steps, key=lambda s: (abs(math.log(s / value)), s))
    return min(steps, key=lambda s: (abs(s - value), s))


# ------------------------------------------------------------------------------------------------
# Limits: what each what-if quantity may take in a scenario
# ------------------------------------------------------------------------------------------------


def max_users(s: Scenario, catalogs: Catalogs | None = None) -> int:
    """The most users the deployment could ever hold at once [sequences]: ``max_concurrency`` at the
    smallest context that holds one request (prompt + answer). :data:`USERS_FALLBACK_CAP` when the
    setup cannot be resolved or holds nothing (the verdict then says why)."""
    try:
        small = s.model_copy(update={"context": s.input_tokens + s.output_tokens, "concurrency": 1})
        most = estimate_memory(resolve(small, catalogs)).max_concurrency
    except K2CalcError:
        return USERS_FALLBACK_CAP
    return min(MAX_USERS, most) if most > 0 else USERS_FALLBACK_CAP


def device_counts(s: Scenario, catalogs: Catalogs | None = None) -> tuple[int, ...]:
    """Powers of two from 1 to :data:`~k2calc.scenario.MAX_COUNT` [devices] that resolve with the rest
    of the scenario (a count that cannot split the attention heads, or fewer GPUs than nodes, is left
    out). Empty for a CPU-only setup (no devices to count)."""
    device = (catalogs or Catalogs()).hardware_catalog().get(s.hardware) if s.hardware else None
    if device is None or device.is_cpu:
        return ()
    out = []
    for c in powers_of_two(1, MAX_COUNT, include_hi=False):
        try:
            resolve(s.model_copy(update={"count": c}), catalogs)
        except K2CalcError:
            continue
        out.append(c)
    return tuple(out)


def workload_scales(s: Scenario, catalogs: Catalogs | None = None) -> dict[str, tuple[int, ...]]:
    """Slider steps for the request and the deployment size, each a tuple of allowed values:

    * ``context`` [tokens]: powers of two from the first that holds prompt + answer up to the model's
      ``max_context_tokens`` (which is included);
    * ``input_tokens`` / ``output_tokens`` [tokens]: powers of two from 16 up to what the context leaves
      beside the answer / the prompt (that remainder included);
    * ``concurrency`` [users]: powers of two up to :func:`max_users` (included);
    * ``count`` [devices]: :func:`device_counts`.

    A quantity whose scale would be empty keeps the scenario's own value as its only step.
    """
    try:
        max_context = get_model(s.model, catalogs.models if catalogs else None).max_context_tokens
    except K2CalcError:
        max_context = s.context
    request = s.input_tokens + s.output_tokens
    scales = {
        "context": powers_of_two(max(MIN_CONTEXT_STEP, request), max_context),
        "input_tokens": powers_of_two(MIN_TOKENS_STEP, s.context - s.output_tokens),
        "output_tokens": powers_of_two(MIN_TOKENS_STEP, s.context - s.input_tokens),
        "concurrency": powers_of_two(1, max_users(s, catalogs)),
        "count": device_counts(s, catalogs),
    }
    return {k: v or (getattr(s, k),) for k, v in scales.items()}


# Cost scales [unit in the name]; the Scenario's own bounds hold for every step.
COST_SCALES: dict[str, tuple[float, ...]] = {
    "utilisation": linear_steps(0.05, 1.0, 0.05),  # share of the year
    "electricity_usd_per_kwh": linear_steps(0.0, 0.30, 0.01) + (0.35, 0.4, 0.45, 0.5, 0.6, 0.8, 1.0),
    "hardware_price_usd": round_steps(100, 5_000_000),  # per device
    "amortisation_years": linear_steps(0.5, 10, 0.5) + (12.0, 15.0, 20.0, 25.0, 30.0),
    "cache_hit_rate": linear_steps(0.0, 1.0, 0.05),  # share of prompt tokens billed at the cached price
    "api_input_usd_per_mtok": (0.0, *round_steps(0.01, 100)),   # USD per 1M input tokens
    "api_output_usd_per_mtok": (0.0, *round_steps(0.01, 200)),  # USD per 1M output tokens
}


# ------------------------------------------------------------------------------------------------
# Against a baseline
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyFigure:
    """One figure compared against the baseline: where it lives in an Estimate, its label and unit,
    and which direction is better ('higher', 'lower')."""

    key: str
    label: str
    unit: str
    better: str
    digits: int

    def round(self, x: float) -> float:
        """`x` at the figure's display precision."""
        return round(x, self.digits)

    def format(self, x: float | None, signed: bool = False) -> str:
        """The value in the figure's unit: '$1,234', '+$0.42', '12.5 tok/s', '3 sequences'.

        >>> KEY_FIGURES_BY_KEY["usd_per_million_output_tokens"].format(-0.4219, signed=True)
        '-$0.42'
        >>> KEY_FIGURES_BY_KEY["decode_tokens_per_s_per_user"].format(12.46)
        '12.5 tok/s'
        """
        if x is None:
            return "n/a"
        sign = ("+" if x > 0 else "-" if x < 0 else "") if signed else ("-" if x < 0 else "")
        if self.unit.startswith("USD"):
            money = format_usd(abs(x), None if abs(x) >= 1000 else self.digits)
            return sign + money + (f"/{self.unit.split('/', 1)[1]}" if "/" in self.unit else "")
        number = f"{abs(x):,.{self.digits}f}"
        return f"{sign}{number} {self.unit}"


KEY_FIGURES = (
    KeyFigure("decode_tokens_per_s_per_user", "decode per user", "tok/s", "higher", 1),
    KeyFigure("decode_tokens_per_s_total", "decode, all users", "tok/s", "higher", 0),
    KeyFigure("ttft_s", "time to first token", "s", "lower", 2),
    KeyFigure("max_concurrency", "max concurrency", "sequences", "higher", 0),
    KeyFigure("kv_capacity_tokens", "KV capacity", "tokens", "higher", 0),
    KeyFigure("capex_usd", "purchase (capex)", "USD", "lower", 0),
    KeyFigure("power_watts", "power under load", "W", "lower", 0),
    KeyFigure("annual_opex_usd", "running cost (opex)", "USD/year", "lower", 0),
    KeyFigure("usd_per_million_output_tokens", "own cost per 1M output tokens", "USD", "lower", 2),
    KeyFigure("api_usd_per_million_output_tokens", "API per 1M output tokens", "USD", "lower", 2),
    KeyFigure("breakeven_months", "break-even against the API", "months", "lower", 1),
)
KEY_FIGURES_BY_KEY = {f.key: f for f in KEY_FIGURES}


def key_figures(e) -> dict[str, float | None]:
    """The :data:`KEY_FIGURES` of an Estimate (None where it has none: no speed when it does not fit, no
    API price, break-even never)."""
    out: dict[str, float | None] = {
        "max_concurrency": e.memory.max_concurrency, "kv_capacity_tokens": e.memory.kv_capacity_tokens}
    perf, cost = e.performance, e.cost
    if perf is not None:
        bands = perf.bands()
        for k in ("decode_tokens_per_s_per_user", "decode_tokens_per_s_total", "ttft_s"):
            out[k] = bands[k].value
    for k in ("capex_usd", "power_watts", "annual_opex_usd", "usd_per_million_output_tokens",
              "api_usd_per_million_output_tokens", "breakeven_months"):
        out[k] = getattr(cost, k) if cost is not None else None
    return {f.key: _finite_or_none(out.get(f.key)) for f in KEY_FIGURES}


def _finite_or_none(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


@dataclass(frozen=True)
class Delta:
    """A key figure now and in the baseline, in the figure's unit; ``change`` = current - baseline
    (None when either is missing); ``improved`` True/False/None (no change or nothing to compare)."""

    figure: KeyFigure
    baseline: float | None
    current: float | None

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def relative(self) -> float | None:
        """change / baseline [ratio]; None when the baseline is zero or missing."""
        c = self.change
        return c / self.baseline if c is not None and self.baseline else None

    @property
    def improved(self) -> bool | None:
        c = self.change
        if c is None or self.figure.round(c) == 0:
            return None
        return (c > 0) == (self.figure.better == "higher")

    def text(self) -> str:
        """The change as plain text with its unit, e.g. '+12.5 tok/s (+8%)', '-$0.42 (-3%)',
        'no change', 'n/a'."""
        c = self.change
        if c is None:
            return "n/a"
        if self.figure.round(c) == 0:
            return "no change"
        rel = self.relative
        pct = f" ({rel:+.0%})" if rel is not None and abs(rel) < 100 else ""
        return f"{self.figure.format(c, signed=True)}{pct}"


def compare(current, baseline) -> list[Delta]:
    """Each key figure of `current` against `baseline` (both Estimates)."""
    now, then = key_figures(current), key_figures(baseline)
    return [Delta(f, then[f.key], now[f.key]) for f in KEY_FIGURES]


def changed_settings(current: Scenario, baseline: Scenario) -> list[tuple[str, Any, Any]]:
    """(field, baseline value, current value) for every Scenario field that differs, in field order."""
    a, b = baseline.model_dump(), current.model_dump()
    return [(k, a[k], b[k]) for k in Scenario.model_fields if a[k] != b[k]]


__all__ = ["powers_of_two", "round_steps", "linear_steps", "nearest_step", "max_users", "device_counts",
           "workload_scales", "COST_SCALES", "KeyFigure", "KEY_FIGURES", "KEY_FIGURES_BY_KEY", "key_figures",
           "Delta", "compare", "changed_settings"]
