"""Cost model: purchase, power, hosting, years of use, cloud rental, $ per million tokens, API break-even.

Every assumption is data (``data/cost_assumptions.csv``, ``data/api_prices.csv``, prices per device in
``data/hardware.csv``), carries a date and a source, and can be overridden.

Definitions (all in USD, watts, tokens):

* **capex**: devices + host (8-GPU server chassis and installation per node, or a workstation chassis with
  its CPUs and DRAM) + cluster network when there are several nodes + links between unified-memory boxes.
* **power under load**: each device's typical draw under LLM load (or 80% of its TDP where no typical
  figure is known) + the host; average power = load x utilisation + idle share x load x (1 - utilisation).
* **annual opex**: energy (average kW x 8,760 h x PUE x tariff) + hosting (peak kW x $/kW-month x 12) +
  maintenance (% of capex).
* **annual cost** = capex x (1 - residual) / amortisation years + annual opex; **TCO** over the horizon =
  capex - residual + opex x years.
* **$ per 1M output tokens**: annual cost / output tokens served in a year (the workload's prompts ride
  along, as an API bills them too); output tokens per year = benchmark-style output throughput (TTFT
  included) x hours x utilisation.
* **API, same workload**: input (cache-hit share at the cached price) + output charges, per 1M output
  tokens.
* **break-even** (months): capex / (monthly API bill - monthly opex) for a monthly output volume; the
  same against renting the GPUs by the hour. None when owning never catches up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .arrays import is_array
from .errors import CatalogError, K2CalcError, first_error, validated
from .loader import DATA_DIR, DATE_PATTERN, YEAR_OR_DATE_PATTERN, Rows, load_csv
from .memory import Deployment
from .performance import PerformanceEstimate, platform_of
from .units import (
    HOURS_PER_MONTH,
    HOURS_PER_YEAR,
    SECONDS_PER_HOUR,
    GiB,
    nodes_for_gpus,
)

DATA = DATA_DIR
# Load power of a device with no measured typical draw: a share of its TDP (decode rarely pins a GPU
# at its power limit); an assumption.
LOAD_SHARE_OF_TDP = 0.8


# Lower bounds that keep $ per token finite: a machine busy 0.1% of the year (9 hours) and a purchase
# written off over five weeks are already far outside any business case.
MIN_UTILISATION = 0.001
MIN_AMORTISATION_YEARS = 0.1


class CostAssumptions(BaseModel):
    """Every money and power assumption; defaults from data/cost_assumptions.csv (dated, sourced)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    electricity_usd_per_kwh: float = Field(ge=0, le=10)
    pue: float = Field(ge=1, le=5)
    hosting_usd_per_kw_month: float = Field(ge=0, le=10000)
    maintenance_pct_per_year: float = Field(ge=0, le=100)
    amortisation_years: float = Field(ge=MIN_AMORTISATION_YEARS, le=30)
    residual_value_pct: float = Field(ge=0, le=100)
    utilisation: float = Field(ge=MIN_UTILISATION, le=1)
    gpu_server_chassis_usd: float = Field(ge=0)
    gpu_server_install_usd: float = Field(ge=0)
    gpu_server_base_watts: float = Field(ge=0)
    cluster_network_usd_per_node: float = Field(ge=0)
    workstation_chassis_usd: float = Field(ge=0)
    pcie_server_chassis_usd: float = Field(ge=0)
    pcie_server_base_watts: float = Field(ge=0)
    workstation_base_watts: float = Field(ge=0)
    dram_usd_per_gib: float = Field(ge=0)
    unified_link_usd: float = Field(ge=0)
    idle_power_share: float = Field(ge=0, le=1)
    cache_hit_rate: float = Field(ge=0, le=1)

    def with_overrides(self, **values: float | None) -> "CostAssumptions":
        """A copy with the user's values (None = keep the default); bad values raise K2CalcError."""
        changes = {k: v for k, v in values.items() if v is not None}
        return validated(CostAssumptions, **{**self.model_dump(), **changes})


_ROW = ConfigDict(extra="forbid", allow_inf_nan=False)


@pydantic_dataclass(frozen=True, config=_ROW, kw_only=True)
class Assumption:
    """Where a default comes from: one row of data/cost_assumptions.csv."""

    key: str
    value: float
    unit: str
    date: str = Field(pattern=YEAR_OR_DATE_PATTERN)
    status: str
    source: str


@lru_cache(maxsize=1)
def _assumption_rows() -> Rows[Assumption]:
    return load_csv(DATA / "cost_assumptions.csv", Assumption, key="key")


@lru_cache(maxsize=1)
def assumption_sources() -> dict[str, Assumption]:
    """data/cost_assumptions.csv keyed by assumption name."""
    return {a.key: a for a in _assumption_rows()}


@lru_cache(maxsize=1)
def default_assumptions() -> CostAssumptions:
    """The dated defaults; a value out of range names its line and column in cost_assumptions.csv."""
    rows = _assumption_rows()
    try:
        return CostAssumptions(**{a.key: a.value for a in rows})
    except ValidationError as exc:
        key, message, _ = first_error(exc)
        keys = [a.key for a in rows]
        if key not in keys:
            raise CatalogError(f"{rows.source}: no row for key '{key}' ({message})") from None
        i = keys.index(key)
        column = "value" if key in CostAssumptions.model_fields else "key"  # an unknown key: its name is wrong
        raise rows.error(i, column, f"{key}: {message} (got {getattr(rows[i], column)!r})") from None


@pydantic_dataclass(frozen=True, config=_ROW, kw_only=True)
class ApiPrice:
    """One provider's price for a model [USD per 1M tokens]: one row of data/api_prices.csv."""

    model_id: str
    provider: str
    input_usd_per_mtok: float = Field(ge=0)
    cached_input_usd_per_mtok: float | None = Field(None, ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    context_tokens: int | None = Field(None, ge=1)
    date: str = Field(pattern=DATE_PATTERN)
    status: str
    source: str


@lru_cache(maxsize=1)
def load_api_prices() -> tuple[ApiPrice, ...]:
    """data/api_prices.csv; a bad cell raises CatalogError naming its line and column."""
    return tuple(load_csv(DATA / "api_prices.csv", ApiPrice, key=("model_id", "provider")))


def api_price(model_id: str, provider: str | None = None) -> ApiPrice | None:
    """The model's API price: the named provider, else the first listed (the model's own vendor)."""
    for p in load_api_prices():
        if p.model_id == model_id and (provider is None or p.provider.lower() == provider.lower()):
            return p
    return None


def price_with_overrides(price: ApiPrice | None, model_id: str, input_usd_per_mtok: float | None,
                         output_usd_per_mtok: float | None) -> ApiPrice | None:
    """The list price with the user's own input and/or output price [USD per 1M tokens] in place of the
    provider's; a price the user leaves out stays the list price (0 where the model has none)."""
    if input_usd_per_mtok is None and output_usd_per_mtok is None:
        return price
    if price is None:
        return ApiPrice(model_id=model_id, provider="your price", input_usd_per_mtok=input_usd_per_mtok or 0.0,
                        output_usd_per_mtok=output_usd_per_mtok or 0.0, date="2026-12", status="user",
                        source="the user's own price")
    return dataclasses.replace(
        price, provider=f"{price.provider} at your price",
        input_usd_per_mtok=price.input_usd_per_mtok if input_usd_per_mtok is None else input_usd_per_mtok,
        output_usd_per_mtok=price.output_usd_per_mtok if output_usd_per_mtok is None else output_usd_per_mtok,
        source=f"{price.source}; overridden by the user")


def api_usd_per_million_output(price: ApiPrice, input_tokens: int, output_tokens: int, cache_hit_rate: float) -> float:
    """API bill for a workload of `input_tokens` in / `output_tokens` out per request, per 1M output
    tokens [USD]: (input x (miss x input price + hit x cached price) + output x output price) / output."""
    cached = price.cached_input_usd_per_mtok if price.cached_input_usd_per_mtok is not None else price.input_usd_per_mtok
    per_input = (1 - cache_hit_rate) * price.input_usd_per_mtok + cache_hit_rate * cached
    return price.output_usd_per_mtok + per_input * input_tokens / output_tokens


# ------------------------------------------------------------------------------------------------
# Capex and power
# ------------------------------------------------------------------------------------------------


def _nodes(d: Deployment) -> int:
    return max(d.nodes, nodes_for_gpus(d.count))


def _is_server_gpu(d: Deployment) -> bool:
    return d.device is not None and platform_of(d.device).name in ("nvidia-hopper", "nvidia-blackwell", "nvidia-ampere", "amd-hbm")


def capex_breakdown(d: Deployment, a: CostAssumptions, device_price_usd: float | None = None) -> dict[str, float]:
    """Purchase cost by item [USD]. Raises K2CalcError when a needed price is unknown."""
    out: dict[str, float] = {}
    if d.device is not None:
        price = device_price_usd if device_price_usd is not None else d.device.price_usd
        if price is None:
            raise K2CalcError(f"{d.device.name} has no price in the catalog; give --hardware-price-usd")
        out["devices"] = d.count * price
    if d.topology == "gpu":
        nodes = _nodes(d)
        if _is_server_gpu(d):
            out["servers (chassis, CPUs, RAM)"] = nodes * a.gpu_server_chassis_usd
            out["installation"] = nodes * a.gpu_server_install_usd
        elif d.count > 2:
            out["PCIe GPU servers (chassis, CPUs, RAM)"] = nodes * a.pcie_server_chassis_usd
        else:
            out["host workstation"] = nodes * a.workstation_chassis_usd
        if nodes > 1:
            out["cluster network"] = nodes * a.cluster_network_usd_per_node
    elif d.topology == "unified" and d.count > 1:
        out["links between systems"] = (d.count - 1) * a.unified_link_usd
    elif d.topology in ("hybrid", "cpu"):
        cpu_price = device_price_usd if d.device is None and device_price_usd is not None else d.cpu.price_usd
        if cpu_price is None:
            raise K2CalcError(f"{d.cpu.name} has no price in the catalog; give --hardware-price-usd")
        out["CPUs"] = d.sockets * cpu_price
        out["DRAM"] = d.ram_bytes / GiB * a.dram_usd_per_gib
        out["workstation chassis"] = a.workstation_chassis_usd
    return out


def _load_watts(h) -> float:
    return h.typical_watts or LOAD_SHARE_OF_TDP * (h.tdp_watts or 0)


def power_breakdown(d: Deployment, a: CostAssumptions) -> tuple[dict[str, float], float]:
    """(power under load by item [W], peak power [W])."""
    load: dict[str, float] = {}
    peak = 0.0
    if d.device is not None:
        load["devices"] = d.count * _load_watts(d.device)
        peak += d.count * (d.device.tdp_watts or _load_watts(d.device))
    if d.topology == "gpu":
        base = (a.gpu_server_base_watts if _is_server_gpu(d)
                else a.pcie_server_base_watts if d.count > 2 else a.workstation_base_watts)
        load["hosts"] = _nodes(d) * base
        peak += _nodes(d) * base
    elif d.topology in ("hybrid", "cpu"):
        cpu_w = d.sockets * (d.cpu.tdp_watts or 0)
        load["CPUs"] = LOAD_SHARE_OF_TDP * cpu_w
        load["workstation"] = a.workstation_base_watts
        peak += cpu_w + a.workstation_base_watts
    return load, peak


# ------------------------------------------------------------------------------------------------
# The estimate
# ------------------------------------------------------------------------------------------------


@dataclass
class CostEstimate:
    """Money for one scenario. USD, W, tokens, months."""

    capex_usd: float
    capex_breakdown_usd: dict[str, float]
    power_watts: float
    peak_power_watts: float
    average_power_watts: float
    annual_energy_kwh: float
    annual_energy_usd: float
    annual_hosting_usd: float
    annual_maintenance_usd: float
    annual_opex_usd: float
    annual_capital_usd: float
    tco_usd: float
    years: float
    output_tokens_per_year: float
    usd_per_million_output_tokens: float
    usd_per_million_input_tokens: float
    usd_per_million_output_tokens_at_saturation: float
    cloud_usd_per_hour: float | None
    cloud_usd_per_million_output_tokens: float | None
    api_provider: str | None
    api_usd_per_million_output_tokens: float | None
    monthly_output_tokens: float
    monthly_api_usd: float | None
    monthly_own_usd: float
    monthly_cloud_usd: float | None
    breakeven_months: float | None
    breakeven_vs_cloud_months: float | None
    assumptions: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _cloud(d: Deployment, tokens_per_s: float, usd_per_device_hour: float | None,
           notes: list[str]) -> tuple[float | None, float | None]:
    """(rental of the same GPUs [USD/hour], rental per 1M output tokens [USD]) at the user's or the
    catalog's $/device-hour; (None, None) with a note where no rental exists."""
    rate = usd_per_device_hour if usd_per_device_hour is not None else (d.device.cloud_usd_per_hour if d.device else None)
    if d.topology != "gpu":
        notes.append("cloud rental: not offered for this kind of machine")
        return None, None
    if rate is None:
        notes.append(f"cloud rental: no $/hour for {d.device.name} in the catalog (give --cloud-usd-per-hour)")
        return None, None
    hour = d.count * rate
    return hour, rental_usd_per_million_output_tokens(hour, tokens_per_s)


def usd_per_million_output_tokens(annual_usd: float, tokens_per_s, utilisation: float):
    """Owning: the annual cost [USD] over the output tokens served in a year at `tokens_per_s` [tok/s]
    busy `utilisation` of the hours [USD per 1M output tokens]; a number or a numpy array of speeds."""
    tokens_year = tokens_per_s * SECONDS_PER_HOUR * HOURS_PER_YEAR * utilisation
    if is_array(tokens_year):
        return annual_usd / np.where(tokens_year > 0, tokens_year, np.nan) * 1e6
    return annual_usd / tokens_year * 1e6 if tokens_year else math.inf


def rental_usd_per_million_output_tokens(usd_per_hour: float, tokens_per_s):
    """Renting by the hour [USD/h] at `tokens_per_s` [tok/s] [USD per 1M output tokens]; a number or an
    array of speeds."""
    if is_array(tokens_per_s):
        return usd_per_hour / (np.where(tokens_per_s > 0, tokens_per_s, np.nan) * SECONDS_PER_HOUR) * 1e6
    return usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * 1e6 if tokens_per_s else math.inf


def estimate_cost(d: Deployment, perf: PerformanceEstimate, input_tokens: int, output_tokens: int,
                  a: CostAssumptions | None = None, *, device_price_usd: float | None = None,
                  cloud_usd_per_hour: float | None = None, monthly_output_tokens: float | None = None,
                  api_provider: str | None = None, api_input_usd_per_mtok: float | None = None,
                  api_output_usd_per_mtok: float | None = None) -> CostEstimate:
    """All money figures for a deployment serving `perf`'s throughput (see the module docstring).
    `api_input_usd_per_mtok` / `api_output_usd_per_mtok` replace the provider's list prices [USD per 1M]."""
    a = a or default_assumptions()
    notes: list[str] = []
    capex_items = capex_breakdown(d, a, device_price_usd)
    capex = sum(capex_items.values())
    load_items, peak_w = power_breakdown(d, a)
    load_w = sum(load_items.values())
    avg_w = load_w * (a.utilisation + a.idle_power_share * (1 - a.utilisation))
    energy_kwh = avg_w / 1000 * HOURS_PER_YEAR * a.pue
    energy_usd = energy_kwh * a.electricity_usd_per_kwh
    hosting_usd = peak_w / 1000 * a.hosting_usd_per_kw_month * 12
    maintenance_usd = capex * a.maintenance_pct_per_year / 100
    opex = energy_usd + hosting_usd + maintenance_usd
    residual = capex * a.residual_value_pct / 100
    capital = (capex - residual) / a.amortisation_years
    annual = capital + opex
    tps = perf.output_tokens_per_s_total
    tokens_year = tps * SECONDS_PER_HOUR * HOURS_PER_YEAR * a.utilisation
    per_m_out = usd_per_million_output_tokens(annual, tps, a.utilisation)
    # Time share of prefill in serving one request: its prompt at the prefill rate against the whole.
    t_prefill = input_tokens / perf.prefill_tokens_per_s
    t_decode = output_tokens / perf.decode_tokens_per_s_per_user
    prefill_share = t_prefill / (t_prefill + t_decode)
    input_year = tokens_year * input_tokens / output_tokens
    per_m_in = annual * prefill_share / input_year * 1e6 if input_year else math.inf
    # Saturation: busy every hour of the year at the same concurrency (energy at full load).
    annual_full = capital + load_w / 1000 * HOURS_PER_YEAR * a.pue * a.electricity_usd_per_kwh + hosting_usd + maintenance_usd
    per_m_full = annual_full / (tps * SECONDS_PER_HOUR * HOURS_PER_YEAR) * 1e6 if tps else math.inf

    cloud_hour, cloud_per_m = _cloud(d, tps, cloud_usd_per_hour, notes)
    price = price_with_overrides(api_price(d.model.id, api_provider), d.model.id, api_input_usd_per_mtok,
                                 api_output_usd_per_mtok)
    api_per_m = None
    if price is None:
        notes.append(f"API: no price for {d.model.name}{' from ' + api_provider if api_provider else ''} in data/api_prices.csv")
    else:
        api_per_m = api_usd_per_million_output(price, input_tokens, output_tokens, a.cache_hit_rate)

    capacity_month = tps * SECONDS_PER_HOUR * HOURS_PER_MONTH  # output tokens at full utilisation
    monthly = monthly_output_tokens if monthly_output_tokens is not None else capacity_month * a.utilisation
    if monthly_output_tokens is not None and monthly > capacity_month:
        notes.append(f"{monthly:,.0f} output tokens a month is more than this deployment's "
                     f"{capacity_month:,.0f} at full use: {math.ceil(monthly / capacity_month)} replicas needed")
    used = min(1.0, monthly / capacity_month) if capacity_month else 1.0
    month_energy = load_w * (used + a.idle_power_share * (1 - used)) / 1000 * HOURS_PER_MONTH * a.pue * a.electricity_usd_per_kwh
    monthly_own = month_energy + (hosting_usd + maintenance_usd) / 12
    monthly_api = monthly / 1e6 * api_per_m if api_per_m is not None else None
    monthly_cloud = cloud_hour * monthly / (tps * SECONDS_PER_HOUR) if cloud_hour is not None and tps else None
    return CostEstimate(
        capex_usd=capex, capex_breakdown_usd=capex_items, power_watts=load_w, peak_power_watts=peak_w,
        average_power_watts=avg_w, annual_energy_kwh=energy_kwh, annual_energy_usd=energy_usd,
        annual_hosting_usd=hosting_usd, annual_maintenance_usd=maintenance_usd, annual_opex_usd=opex,
        annual_capital_usd=capital, tco_usd=capex - residual + opex * a.amortisation_years,
        years=a.amortisation_years, output_tokens_per_year=tokens_year,
        usd_per_million_output_tokens=per_m_out, usd_per_million_input_tokens=per_m_in,
        usd_per_million_output_tokens_at_saturation=per_m_full, cloud_usd_per_hour=cloud_hour,
        cloud_usd_per_million_output_tokens=cloud_per_m, api_provider=price.provider if price else None,
        api_usd_per_million_output_tokens=api_per_m, monthly_output_tokens=monthly,
        monthly_api_usd=monthly_api, monthly_own_usd=monthly_own, monthly_cloud_usd=monthly_cloud,
        breakeven_months=breakeven_months(capex, monthly_api, monthly_own),
        breakeven_vs_cloud_months=breakeven_months(capex, monthly_cloud, monthly_own),
        assumptions=a.model_dump(), notes=notes,
    )


def breakeven_months(capex_usd: float, monthly_alternative_usd: float | None, monthly_own_usd: float) -> float | None:
    """Months until buying (capex, then `monthly_own_usd` a month) costs less than the alternative's
    monthly bill; None when the alternative is unknown or never dearer than running costs alone."""
    if monthly_alternative_usd is None:
        return None
    saving = monthly_alternative_usd - monthly_own_usd
    return capex_usd / saving if saving > 0 else None
