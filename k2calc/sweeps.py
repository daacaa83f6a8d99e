"""Sweeps and comparisons: the data behind the app's charts, as pandas DataFrames.

Every function here calls the core (:func:`k2calc.deployment.resolve`, :func:`~k2calc.memory.estimate_memory`,
:func:`~k2calc.performance.estimate_performance`, :func:`~k2calc.estimate.estimate`) and only arranges
what it returns; no physics is computed here. Units are in the column names (``_tok_s`` tokens per
second, ``_s`` seconds, ``_gb`` decimal gigabytes, ``_usd`` US dollars, ``_w`` watts,
``usd_per_mtok`` US dollars per million tokens); a missing figure is ``None``/NaN, never 0.

Speed bands: the low/high columns are the core's calibration band (:meth:`PerformanceEstimate.bands`)
with the upper edge capped at the roofline, since no deployment decodes faster than its roofline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from .deployment import resolve, smallest_fitting
from .errors import K2CalcError
from .estimate import Estimate, estimate, speculation_of
from .memory import (
    Deployment,
    MemoryEstimate,
    estimate_memory,
    placement_depends_on_load,
)
from .performance import PerformanceEstimate, calibration_class, estimate_performance
from .scenario import Catalogs, Scenario
from .sensitivity import Swing
from .units import GB, nodes_for_gpus

MAX_DEFAULT_CONCURRENCY = 512
MIN_DEFAULT_CONCURRENCY = 8  # the default sweep always shows at least 1..8 users

HARDWARE_CLASSES = {"gpu": "GPU server", "unified": "unified memory", "hybrid": "hybrid CPU+GPU", "cpu": "CPU only"}

# The side-by-side set of the "Compare hardware" page. ram_gb is binary (GiB) like Scenario.ram_gb:
# "2 TB" of DDR5 is 32 x 64 GB DIMMs = 2,048 GiB.
DEFAULT_HARDWARE_CONFIGS: list[dict[str, Any]] = [
    {"label": "8x H200", "hardware": "h200-sxm", "count": 8},
    {"label": "8x B200", "hardware": "b200", "count": 8},
    {"label": "8x B100", "hardware": "b100", "count": 8},
    {"label": "8x MI300X", "hardware": "mi300x", "count": 8},
    {"label": "2x Mac Studio 512 GB", "hardware": "mac-studio-m3-ultra-512gb", "count": 2},
    {"label": "1x Mac Studio 512 GB", "hardware": "mac-studio-m3-ultra-512gb", "count": 1},
    {"label": "hybrid 2x RTX 4090 + 2x Xeon 8488C, 2 TB", "hardware": "rtx-4090", "count": 2,
     "cpu": "xeon-platinum-8488c", "sockets": 2, "ram_gb": 2048},
    {"label": "hybrid 1x RTX PRO 6000 + 2x EPYC 9355", "hardware": "rtx-pro-6000", "count": 1,
     "cpu": "epyc-9355", "sockets": 2, "ram_gb": 1024},
    {"label": "1x DGX Spark", "hardware": "dgx-spark", "count": 1},
    {"label": "2x DGX Spark", "hardware": "dgx-spark", "count": 2},
    {"label": "CPU only 2x Xeon 6980P, 1.5 TB", "hardware": "xeon-6980p", "count": 1, "sockets": 2,
     "ram_gb": 1536},
]

# Fields that belong to one piece of hardware: reset when a comparison swaps the hardware.
_PER_HARDWARE_DEFAULTS: dict[str, Any] = {
    "tp": None, "pp": None, "ep": None, "dp_attention": False, "dcp": 1, "gpu_experts": 0,
    "kt_prefill": "auto", "memory_fraction": None, "wired_limit_gb": None, "hardware_price_usd": None,
    "cloud_usd_per_hour": None, "engine": None, "cpu": None, "sockets": 2, "ram_gb": None, "nodes": 1,
}


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


# ------------------------------------------------------------------------------------------------
# Speed against concurrency, concurrency against context
# ------------------------------------------------------------------------------------------------


def default_concurrencies(max_concurrency: int, scenario_concurrency: int = 1) -> list[int]:
    """Powers of two from 1 to 512 [users], stopping at the first one past twice what fits (so the
    chart shows where memory runs out), never below 8; the scenario's own concurrency is included.

    >>> default_concurrencies(22)
    [1, 2, 4, 8, 16, 32, 64]
    >>> default_concurrencies(0, 3)
    [1, 2, 3, 4, 8]
    """
    cap = max(MIN_DEFAULT_CONCURRENCY, scenario_concurrency, 2 * max_concurrency)
    points, c = [], 1
    while c <= MAX_DEFAULT_CONCURRENCY:
        points.append(c)
        if c >= cap:
            break
        c *= 2
    return sorted(set(points) | {scenario_concurrency})


def _resolved(x: Estimate | Scenario, catalogs: Catalogs | None) -> tuple[Scenario, Deployment, MemoryEstimate]:
    """(scenario, deployment, memory at the scenario's load): read off an Estimate (nothing resolved
    again), or resolved once from a Scenario (raises K2CalcError when it is invalid)."""
    if isinstance(x, Estimate):
        return x.scenario, x.deployment, x.memory
    d = resolve(x, catalogs)
    return x, d, estimate_memory(d)


def speed_curve(e: Estimate | Scenario, concurrencies: Sequence[int] | None = None,
                catalogs: Catalogs | None = None) -> pd.DataFrame:
    """Decode speed per user and in total against concurrent users, with bands, roofline and TTFT.

    ``e``: the page's Estimate (its deployment and memory are reused: the weights' placement does
    not depend on the load, except a dense model on a hybrid box, which is placed again per point),
    or a Scenario (resolved once).

    Columns: concurrency [users], per_user_tok_s, per_user_low_tok_s, per_user_high_tok_s,
    total_tok_s, total_low_tok_s, total_high_tok_s, roofline_per_user_tok_s, roofline_total_tok_s
    [tok/s], ttft_s, ttft_low_s, ttft_high_s [s], fits (the KV cache of that many sequences of the
    scenario's context fits: at most ``max_concurrency``). Raises K2CalcError when the scenario itself
    is invalid.
    """
    s, d, base = _resolved(e, catalogs)
    if concurrencies is None:
        concurrencies = default_concurrencies(base.max_concurrency, s.concurrency)
    rows = []
    speculation = speculation_of(s, d)
    for c in sorted({int(c) for c in concurrencies if int(c) >= 1}):
        dc = replace(d, concurrency=c)
        mem = estimate_memory(dc) if placement_depends_on_load(d) else base
        perf = estimate_performance(dc, mem, s.input_tokens, s.output_tokens, c, speculation=speculation)
        rows.append({"concurrency": c, **_speed_row(perf), "fits": c <= base.max_concurrency})
    return pd.DataFrame(rows, columns=[
        "concurrency", "per_user_tok_s", "per_user_low_tok_s", "per_user_high_tok_s", "total_tok_s",
        "total_low_tok_s", "total_high_tok_s", "roofline_per_user_tok_s", "roofline_total_tok_s", "ttft_s",
        "ttft_low_s", "ttft_high_s", "fits"])


def _speed_row(perf: PerformanceEstimate) -> dict[str, float]:
    """One point of the speed curve: the bands, their upper edges capped at the roofline."""
    b = perf.bands()
    roof_user, roof_total = perf.roofline_decode_tokens_per_s_per_user, perf.roofline_decode_tokens_per_s_total
    user, total = b["decode_tokens_per_s_per_user"], b["decode_tokens_per_s_total"]
    return {"per_user_tok_s": user.value, "per_user_low_tok_s": user.low,
            "per_user_high_tok_s": min(user.high, roof_user),
            "total_tok_s": total.value, "total_low_tok_s": total.low,
            "total_high_tok_s": min(total.high, roof_total),
            "roofline_per_user_tok_s": roof_user, "roofline_total_tok_s": roof_total,
            "ttft_s": b["ttft_s"].value, "ttft_low_s": b["ttft_s"].low, "ttft_high_s": b["ttft_s"].high}


def default_contexts(max_context_tokens: int, scenario_context: int | None = None) -> list[int]:
    """Powers of two from 1,024 tokens up to the model's maximum context (inclusive), plus the
    scenario's context [tokens].

    >>> default_contexts(10_000)
    [1024, 2048, 4096, 8192, 10000]
    """
    points, c = [], 1024
    while c < max_context_tokens:
        points.append(c)
        c *= 2
    points.append(max_context_tokens)
    if scenario_context:
        points.append(scenario_context)
    return sorted(set(points))


def context_curve(e: Estimate | Scenario, contexts: Sequence[int] | None = None,
                  catalogs: Catalogs | None = None) -> pd.DataFrame:
    """How many sequences fit against their length (the deployment of ``e`` reused, memory placed
    at each length).

    Columns: context_tokens [tokens], max_concurrency [sequences of that length the whole deployment
    holds], kv_capacity_tokens [KV tokens one replica holds], fits_at_concurrency (the scenario's
    concurrency fits at that context).
    """
    s, d, _ = _resolved(e, catalogs)
    if contexts is None:
        contexts = default_contexts(d.model.max_context_tokens, s.context)
    rows = []
    for c in sorted({int(c) for c in contexts if int(c) >= 1}):
        mem = estimate_memory(replace(d, context_tokens=c))
        rows.append({"context_tokens": c, "max_concurrency": mem.max_concurrency,
                     "kv_capacity_tokens": mem.kv_capacity_tokens, "fits_at_concurrency": bool(mem.fits)})
    return pd.DataFrame(rows, columns=["context_tokens", "max_concurrency", "kv_capacity_tokens",
                                       "fits_at_concurrency"])


# ------------------------------------------------------------------------------------------------
# Published measurements near a scenario
# ------------------------------------------------------------------------------------------------


def published_points(e: Estimate | Scenario, catalogs: Catalogs | None = None) -> pd.DataFrame:
    """Published measurements of the scenario's model that speak for it: those in the same calibration
    class (engine family / platform), and those on the same hardware id whatever the engine.

    Columns: id, metric, concurrency [users], measured, predicted (the model's prediction for that
    measurement's own scenario), unit, source, same_hardware (bool), hardware, count, engine, kind
    ('decode' or 'prefill/ttft'), scenario (readable). Empty when the scenario does not resolve.
    """
    from .validate import (  # validate imports the whole core; keep it off import time
        describe,
        model_rows,
    )

    columns = ["id", "metric", "concurrency", "measured", "predicted", "unit", "source", "same_hardware",
               "hardware", "count", "engine", "kind", "scenario"]
    if isinstance(e, Estimate):
        s, d = e.scenario, e.deployment
    else:
        s = e
        try:
            d = resolve(s, catalogs)
        except K2CalcError:
            return pd.DataFrame(columns=columns)
    klass = calibration_class(d)
    out = []
    for r in model_rows(s.model):
        m = r.measurement
        same_hw = bool(s.hardware) and r.scenario.hardware == s.hardware
        if r.klass != klass and not same_hw:
            continue
        out.append({"id": m.id, "metric": m.metric, "concurrency": r.scenario.concurrency, "measured": m.value,
                    "predicted": r.predicted, "unit": m.unit, "source": m.source, "same_hardware": same_hw,
                    "hardware": r.scenario.hardware, "count": r.scenario.count, "engine": r.scenario.engine,
                    "kind": r.kind, "scenario": describe(r.scenario)})
    return pd.DataFrame(out, columns=columns)


# ------------------------------------------------------------------------------------------------
# Compare models
# ------------------------------------------------------------------------------------------------


def _quant_for(s: Scenario, model_id: str, catalogs: Catalogs | None) -> dict[str, Any]:
    """The scenario's quantization when it applies to `model_id`, else the model's native one."""
    from .models import get_model
    from .quant import resolve_scheme

    if s.bits_per_weight is not None:
        return {"quant": "native", "bits_per_weight": s.bits_per_weight}
    if s.quant != "native":
        try:
            resolve_scheme(s.quant, get_model(model_id, (catalogs or Catalogs()).models))
            return {"quant": s.quant, "bits_per_weight": None}
        except K2CalcError:
            pass
    return {"quant": "native", "bits_per_weight": None}


def _devices_needed(s: Scenario, e: Estimate, catalogs: Catalogs | None) -> tuple[int | None, int, str]:
    """(smallest count that fits or None, nodes for it, reason when none). A CPU-only box counts as
    one device (its RAM is what scales)."""
    count_now, nodes_now = e.deployment.count, e.deployment.nodes
    try:
        small = smallest_fitting(s, catalogs)
    except K2CalcError as exc:
        return (count_now if e.fits else None), nodes_now, str(exc)
    count = small.get("count")
    if count is None:
        why = small.get("reason", "")
        if small.get("ram_gb"):
            why = f"needs about {small['ram_gb']:,} GiB of system RAM"
        return (count_now if e.fits else None), nodes_now, why
    if e.fits and count > count_now:  # the user's own parallelism fits where the default search does not
        return count_now, nodes_now, ""
    return count, small.get("nodes") or 1, ""


def compare_models(s: Scenario, model_ids: Sequence[str], catalogs: Catalogs | None = None) -> pd.DataFrame:
    """One row per model on the scenario's hardware, engine, context and concurrency.

    Quantization: the scenario's (or its bits per weight) where it applies to the model, else the
    model's native one. ``devices_needed`` is the smallest count of the hardware that fits (engine
    defaults, nodes of 8 GPUs). Speeds and $/1M tokens are for the scenario's count when the model
    fits there; when it does not, they are for ``devices_needed`` devices (``count`` says which),
    and NaN when no count fits.

    Columns: model_id, model, quant, quant_label, fits, weights_gb [GB], kv_bytes_per_token [B/token],
    devices_needed, count, per_user_tok_s, total_tok_s [tok/s], ttft_s [s], usd_per_mtok_output,
    api_usd_per_mtok_output [USD per 1M output tokens], reason.
    """
    columns = ["model_id", "model", "quant", "quant_label", "fits", "weights_gb", "kv_bytes_per_token",
               "devices_needed", "count", "per_user_tok_s", "total_tok_s", "ttft_s", "usd_per_mtok_output",
               "api_usd_per_mtok_output", "reason"]
    out = []
    for model_id in dict.fromkeys(model_ids):
        row: dict[str, Any] = {c: None for c in columns}
        row.update(model_id=model_id, model=model_id, fits=False)
        try:
            sm = s.model_copy(update={"model": model_id, **_quant_for(s, model_id, catalogs)})
            e = estimate(sm, catalogs)
            row.update(model=e.deployment.model.name, quant=e.deployment.scheme.id,
                       quant_label=e.deployment.scheme.label, fits=e.fits,
                       weights_gb=e.memory.weights_bytes / GB, kv_bytes_per_token=e.memory.kv_bytes_per_token,
                       reason="; ".join(e.memory.reasons))
            needed, nodes, why = _devices_needed(sm, e, catalogs)
            row["devices_needed"] = needed
            if not e.fits:
                row["reason"] = row["reason"] + (f"; {why}" if why else "")
                if needed is not None:
                    e = estimate(sm.model_copy(update={"count": needed, "nodes": nodes, "tp": None, "pp": None,
                                                       "ep": None, "dcp": 1}), catalogs)
            if e.fits:
                p = e.performance
                row.update(count=e.deployment.count, per_user_tok_s=p.decode_tokens_per_s_per_user,
                           total_tok_s=p.decode_tokens_per_s_total, ttft_s=p.ttft_s)
                if e.cost is not None:
                    row.update(usd_per_mtok_output=e.cost.usd_per_million_output_tokens,
                               api_usd_per_mtok_output=e.cost.api_usd_per_million_output_tokens)
        except K2CalcError as exc:
            row["reason"] = str(exc)
        out.append(row)
    df = pd.DataFrame(out, columns=columns)
    df["devices_needed"] = df["devices_needed"].astype("Int64")
    df["count"] = df["count"].astype("Int64")
    return df


# ------------------------------------------------------------------------------------------------
# Compare hardware
# ------------------------------------------------------------------------------------------------


def hardware_class(topology: str) -> str:
    """'GPU server', 'unified memory', 'hybrid CPU+GPU' or 'CPU only' for a deployment topology."""
    return HARDWARE_CLASSES[topology]


def _config_class(config: dict[str, Any], catalogs: Catalogs) -> str:
    if config.get("cpu"):
        return HARDWARE_CLASSES["hybrid"]
    h = catalogs.hardware_catalog().get(str(config.get("hardware", "")).lower())
    if h is None:
        return HARDWARE_CLASSES["gpu"]
    return HARDWARE_CLASSES["cpu" if h.is_cpu else "unified" if h.is_system else "gpu"]


def _config_scenario(s: Scenario, config: dict[str, Any], catalogs: Catalogs) -> Scenario:
    """The scenario with its hardware swapped for `config` (per-hardware settings back to defaults)."""
    values = {**_PER_HARDWARE_DEFAULTS, **{k: v for k, v in config.items() if k != "label"}}
    h = catalogs.hardware_catalog().get(str(values.get("hardware", "")).lower())
    if "nodes" not in config and h is not None and h.is_gpu and not values.get("cpu"):
        values["nodes"] = nodes_for_gpus(values.get("count", 1))
    return Scenario.build(**{**s.model_dump(), **values})


def _pareto(df: pd.DataFrame) -> pd.Series:
    """True for fitting rows no other fitting row beats on both $/1M output tokens (lower) and tokens/s
    per user (higher)."""
    ok = df["fits"].astype(bool) & df["usd_per_mtok_output"].notna() & df["per_user_tok_s"].notna()
    cost = pd.to_numeric(df["usd_per_mtok_output"], errors="coerce")
    speed = pd.to_numeric(df["per_user_tok_s"], errors="coerce")
    ok &= cost.map(math.isfinite) & speed.map(math.isfinite)
    idx = df.index[ok]
    out = pd.Series(False, index=df.index)
    for i in idx:
        out[i] = not any(cost[j] <= cost[i] and speed[j] >= speed[i] and (cost[j] < cost[i] or speed[j] > speed[i])
                         for j in idx)
    return out


def compare_hardware(s: Scenario, configs: Sequence[dict[str, Any]] | None = None,
                     catalogs: Catalogs | None = None, include_catalog: bool = False) -> pd.DataFrame:
    """The scenario's model, quantization, context, concurrency and token counts on each configuration.

    ``configs`` are dicts {label, hardware, count, cpu?, sockets?, ram_gb?, engine?, nodes?}
    (default :data:`DEFAULT_HARDWARE_CONFIGS`); settings tied to the old hardware (parallelism,
    price and rental overrides, memory fraction, wired limit) go back to their defaults.
    ``include_catalog`` adds every other catalog GPU and unified-memory system at its smallest count
    that fits (engine default). A configuration the core rejects is kept with fits False and the
    message as reason.

    Columns: label, hardware, count, klass, engine, fits, reason, per_user_tok_s, total_tok_s [tok/s],
    ttft_s [s], capex_usd [USD], usd_per_mtok_output [USD per 1M output tokens], power_w [W], pareto.
    """
    catalogs = catalogs or Catalogs()
    configs = list(DEFAULT_HARDWARE_CONFIGS if configs is None else configs)
    columns = ["label", "hardware", "count", "klass", "engine", "fits", "reason", "per_user_tok_s", "total_tok_s",
               "ttft_s", "capex_usd", "usd_per_mtok_output", "power_w", "pareto"]
    if include_catalog:
        configs += _catalog_configs(s, configs, catalogs)
    out = []
    for config in configs:
        row: dict[str, Any] = {c: None for c in columns}
        label = config.get("label") or f"{config.get('count', 1)}x {config.get('hardware')}"
        row.update(label=label, hardware=config.get("hardware"), count=config.get("count"), fits=False,
                   klass=_config_class(config, catalogs), pareto=False)
        if config.get("reason"):  # a catalog device no count of which fits
            row["reason"] = config["reason"]
            out.append(row)
            continue
        try:
            e = estimate(_config_scenario(s, config, catalogs), catalogs)
            d = e.deployment
            row.update(klass=hardware_class(d.topology), engine=d.engine.id, fits=e.fits,
                       reason="; ".join(e.memory.reasons))
            if not e.fits and e.smallest.get("count"):
                row["reason"] += f" (smallest that fits: {e.smallest['count']}x)"
            p = e.performance  # None when it does not fit: no speed or cost as if it ran
            if p is not None:
                row.update(per_user_tok_s=p.decode_tokens_per_s_per_user,
                           total_tok_s=p.decode_tokens_per_s_total, ttft_s=p.ttft_s)
            if e.cost is not None:
                row.update(capex_usd=e.cost.capex_usd, usd_per_mtok_output=e.cost.usd_per_million_output_tokens,
                           power_w=e.cost.power_watts)
            elif e.cost_error:
                row["reason"] = "; ".join(x for x in (row["reason"], f"cost not computed: {e.cost_error}") if x)
        except K2CalcError as exc:
            row["reason"] = str(exc)
        out.append(row)
    df = pd.DataFrame(out, columns=columns)
    df["count"] = df["count"].astype("Int64")
    df["pareto"] = _pareto(df)
    return df


def _catalog_configs(s: Scenario, configs: list[dict[str, Any]], catalogs: Catalogs) -> list[dict[str, Any]]:
    """Every catalog GPU / system not already in `configs`, at its smallest count that fits."""
    taken = {str(c.get("hardware")).lower() for c in configs if not c.get("cpu")}
    extra = []
    for h in catalogs.hardware_catalog().values():
        if h.is_cpu or h.id in taken:
            continue
        trial = {"hardware": h.id, "count": 1}
        try:
            small = smallest_fitting(_config_scenario(s, trial, catalogs), catalogs)
        except K2CalcError as exc:
            extra.append({**trial, "label": h.name, "reason": str(exc)})
            continue
        if small.get("count") is None:
            extra.append({**trial, "label": h.name, "reason": small.get("reason") or "no count fits"})
            continue
        count = small["count"]
        extra.append({"label": f"{count}x {h.name}", "hardware": h.id, "count": count,
                      "nodes": small.get("nodes") or 1})
    return extra


# ------------------------------------------------------------------------------------------------
# Money over time, sensitivity
# ------------------------------------------------------------------------------------------------


def cumulative_cost(e: Estimate, months: int = 60) -> pd.DataFrame:
    """Money spent by the end of each month [USD] for the estimate's monthly output volume:
    ``buy_usd`` = capex + own running cost (energy, hosting, maintenance) x month; ``rent_usd`` =
    renting the same GPUs by the hour for the same volume (only when the catalog has a rate);
    ``api_usd`` = the API bill for the same tokens (only when an API price is known).
    Only ``month`` when the estimate has no cost.
    """
    month = list(range(int(months) + 1))
    df = pd.DataFrame({"month": month})
    c = e.cost
    if c is None:
        return df
    df["buy_usd"] = [c.capex_usd + c.monthly_own_usd * m for m in month]
    if c.monthly_cloud_usd is not None:
        df["rent_usd"] = [c.monthly_cloud_usd * m for m in month]
    if c.monthly_api_usd is not None:
        df["api_usd"] = [c.monthly_api_usd * m for m in month]
    return df


# Swings whose $/1M output tokens is linear in the assumption and symmetric around the base value
# (sensitivity._ranges): the base is the midpoint of their low and high.
_LINEAR_SYMMETRIC = ("hosting", "electricity", "hardware price")


def tornado(rows: list[Swing], base_usd_per_mtok: float | None = None) -> pd.DataFrame:
    """Tornado data from :func:`k2calc.sensitivity.sensitivity`, largest swing first.

    Columns: assumption, low_label, high_label, usd_per_mtok_low, usd_per_mtok_high,
    base_usd_per_mtok [USD per 1M output tokens], breakeven_low_months, breakeven_high_months.
    ``base_usd_per_mtok``: the scenario's own figure (pass ``estimate.cost.usd_per_million_output_tokens``);
    when omitted it is recovered exactly as the midpoint of a swing that is linear and symmetric
    around the base (hosting 0 .. 2x, electricity 0.5x .. 1.5x, hardware price -30% .. +30%).
    """
    if base_usd_per_mtok is None:
        for r in rows:
            if r.assumption in _LINEAR_SYMMETRIC and r.usd_per_mtok_low is not None and r.usd_per_mtok_high is not None:
                base_usd_per_mtok = (r.usd_per_mtok_low + r.usd_per_mtok_high) / 2
                break
    out = [{"assumption": r.assumption, "low_label": r.low_label, "high_label": r.high_label,
            "usd_per_mtok_low": _nan(r.usd_per_mtok_low), "usd_per_mtok_high": _nan(r.usd_per_mtok_high),
            "base_usd_per_mtok": _nan(base_usd_per_mtok), "breakeven_low_months": _nan(r.breakeven_low),
            "breakeven_high_months": _nan(r.breakeven_high), "span": r.span}
           for r in rows]
    df = pd.DataFrame(out, columns=["assumption", "low_label", "high_label", "usd_per_mtok_low", "usd_per_mtok_high",
                                    "base_usd_per_mtok", "breakeven_low_months", "breakeven_high_months", "span"])
    return df.sort_values("span", ascending=False, kind="stable").drop(columns="span").reset_index(drop=True)


__all__ = ["DEFAULT_HARDWARE_CONFIGS", "HARDWARE_CLASSES", "speed_curve", "context_curve", "published_points",
           "compare_models", "compare_hardware", "cumulative_cost", "tornado", "hardware_class",
           "default_concurrencies", "default_contexts"]
