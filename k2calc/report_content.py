"""What a report says, independent of its format: the verdict, the key figures with their units and
uncertainty, the ways to make it fit, and every assumption with its value, unit, date and source, as
a list of :class:`Block` (headings, paragraphs, lists, tables). The writers in :mod:`k2calc.report`
render the same blocks as Markdown and HTML, and reuse the row helpers for JSON and CSV; a new
format is a new writer over :func:`blocks`.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

from . import engines as _engines
from .cost import (
    ApiPrice,
    api_price,
    assumption_sources,
    default_assumptions,
    price_with_overrides,
)
from .errors import K2CalcError
from .estimate import Estimate, PricedFix
from .hardware import load_hardware
from .links import to_query
from .models import load_models
from .quant import SCHEMES
from .scenario import Scenario
from .units import format_device_bytes, format_gb, format_usd
from .whatif import changed_settings, compare

# ------------------------------------------------------------------------------------------------
# Blocks: the content, independent of the output format
# ------------------------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # "h1" | "h2" | "h3" | "p" | "list" | "table" | "verdict" | "figure"
    text: str = ""
    items: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    ok: bool = True  # verdict colour
    anchor: str = ""  # where figures of that topic go (HTML)


def _num(x: float | None, digits: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}"


def _speed(x: float) -> str:
    return _num(x, 1 if x < 1000 else 0)


def where(e: Estimate) -> str:
    """The hardware in full, as a person reads it: '8 x NVIDIA H200 SXM 141GB', '2 x NVIDIA GeForce RTX
    4090 24GB + 2 x Intel Xeon Platinum 8488C (...) with 2 TiB RAM'."""
    d = e.deployment
    parts = []
    if d.device is not None:
        parts.append(f"{d.count} x {d.device.name}" + (f" ({d.nodes} nodes)" if d.nodes > 1 else ""))
    if d.cpu is not None:
        parts.append(f"{d.sockets} x {d.cpu.name} with {format_device_bytes(d.ram_bytes, 0)} RAM")
    return " + ".join(parts)


_where = where


def scenario_words(s: Scenario) -> str:
    """A scenario in human names: 'Kimi K2 Thinking (native), 8 x NVIDIA H200 SXM 141GB, SGLang, 16 user(s),
    1,000 in / 1,000 out tokens' (ids where the catalog does not know one)."""
    models, hardware = load_models(), load_hardware()
    model = models[s.model].name if s.model in models else s.model
    quant = f"{s.bits_per_weight:g} bits per weight" if s.bits_per_weight else \
        ("native" if s.quant == "native" else SCHEMES[s.quant].label if s.quant in SCHEMES else s.quant)
    device = hardware[s.hardware].name if s.hardware in hardware else s.hardware
    where = f"{s.count} x {device}"
    if s.cpu:
        where += f" + {s.sockets} x {hardware[s.cpu].name if s.cpu in hardware else s.cpu}"
    engine = _engines.ENGINES[s.engine].name if s.engine in _engines.ENGINES else (s.engine or "default engine")
    return (f"{model} ({quant}), {where}, {engine}, {s.concurrency:,} user(s), "
            f"{s.input_tokens:,} in / {s.output_tokens:,} out tokens")


def headline(e: Estimate) -> str:
    """Model (quantization) on hardware with engine: the scenario in one line of human names."""
    d = e.deployment
    return f"{d.model.name} ({d.scheme.label}) on {where(e)}, served by {d.engine.name}"


# What limits a decode step, in a buyer's words (the keys are PerformanceEstimate.bottleneck).
BOTTLENECK_WORDS = {"gpu-memory-bandwidth": "memory", "cpu-memory-bandwidth": "CPU RAM", "compute": "compute",
                    "interconnect": "network", "kernel-latency": "latency", "kernel-efficiency": "kernel use",
                    "attention-kernel": "attention"}
BOTTLENECK_HELP = {
    "gpu-memory-bandwidth": "memory bandwidth: reading the weights and the KV cache from device memory",
    "cpu-memory-bandwidth": "the CPUs reading the routed experts from DDR5 system RAM",
    "compute": "arithmetic: the FLOPs outlast the bytes even at the kernels' best share of peak",
    "interconnect": "interconnect: GPU-to-GPU (or machine-to-machine) communication every layer",
    "kernel-latency": "kernel latency: a fixed time per layer for launching and synchronising kernels, "
                      "which batching amortises",
    "kernel-efficiency": "kernel efficiency: kernels running far below the GPU's peak at this batch (INT4 "
                         "experts dequantised per token, mostly empty tensor-core tiles); more users use them better",
    "attention-kernel": "the attention kernel reading the KV cache below the memory bandwidth (MLA with few "
                        "heads per GPU: DP attention helps)",
}


def bottleneck_text(key: str) -> str:
    """'kernel efficiency (kernels running far below ...)': what limits a decode step, in words."""
    return f"{BOTTLENECK_WORDS.get(key, key)} ({BOTTLENECK_HELP.get(key, key)})"


def longest_context(e: Estimate) -> tuple[int, bool]:
    """(longest context at the scenario's users [tokens], capped at the model's maximum; True when the
    KV cache could hold more than the model accepts, which is room for more users, not longer prompts)."""
    m = e.deployment.model
    raw = e.memory.max_context_tokens
    return min(raw, m.max_context_tokens), raw > m.max_context_tokens


def longest_context_text(e: Estimate) -> str:
    """'262,144 tokens (Kimi K2 Thinking's maximum; the KV cache has room beyond it: 22 users of 32,768)'."""
    s, mem = e.scenario, e.memory
    tokens, capped = longest_context(e)
    if tokens == 0:
        return "none: the weights, activations and runtime leave no room for a KV cache"
    if not capped:
        return f"{tokens:,} tokens"
    return (f"{tokens:,} tokens ({e.deployment.model.name}'s maximum; the KV cache holds more, which is room "
            f"for more users: {mem.max_concurrency:,} at {s.context:,} tokens)")


def api_price_used(e: Estimate) -> ApiPrice | None:
    """The API price the cost compares with: the provider's list price with the user's own input/output
    prices in its place, or None when the model has no public price."""
    s = e.scenario
    return price_with_overrides(api_price(e.deployment.model.id, s.api_provider), e.deployment.model.id,
                                s.api_input_usd_per_mtok, s.api_output_usd_per_mtok)


def api_prices_text(e: Estimate) -> str:
    """'Moonshot list prices (2025-11): input $0.60, cached input $0.15, output $2.50 per 1M tokens', or
    that no public price exists."""
    p = api_price_used(e)
    if p is None:
        return (f"No public API price for {e.deployment.model.name} in data/api_prices.csv: give your own "
                "input and output prices to compare.")
    cached = "" if p.cached_input_usd_per_mtok is None else f", cached input {format_usd(p.cached_input_usd_per_mtok)}"
    return (f"{p.provider} prices ({p.date}): input {format_usd(p.input_usd_per_mtok)}{cached}, "
            f"output {format_usd(p.output_usd_per_mtok)} per 1M tokens")


def api_formula_text(e: Estimate) -> str:
    """The blended API price of this workload per 1M output tokens with its formula: 'output $2.50 +
    8.0 x input $0.60 (8,192 prompt / 1,024 answer tokens) = $7.30 per 1M output tokens'."""
    p, s = api_price_used(e), e.scenario
    if p is None or e.cost is None or e.cost.api_usd_per_million_output_tokens is None:
        return ""
    ratio = s.input_tokens / s.output_tokens
    hit = e.cost.assumptions.get("cache_hit_rate", 0.0)
    if hit > 0 and p.cached_input_usd_per_mtok is not None:
        per_input = (f"({1 - hit:.0%} x {format_usd(p.input_usd_per_mtok)} + {hit:.0%} cached x "
                     f"{format_usd(p.cached_input_usd_per_mtok)})")
    else:
        per_input = f"input {format_usd(p.input_usd_per_mtok)}"
    return (f"output {format_usd(p.output_usd_per_mtok)} + {ratio:,.1f} x {per_input} "
            f"({s.input_tokens:,} prompt / {s.output_tokens:,} answer tokens) = "
            f"{format_usd(e.cost.api_usd_per_million_output_tokens)} per 1M output tokens")


def api_verdict_text(e: Estimate) -> str:
    """Self-host against the API in one sentence, with the break-even month; '' without a cost."""
    c = e.cost
    if c is None:
        return ""
    own = format_usd(c.usd_per_million_output_tokens)
    if c.api_usd_per_million_output_tokens is None:
        return f"Self-hosting costs {own} per 1M output tokens; no API price to compare with."
    api = format_usd(c.api_usd_per_million_output_tokens)
    volume = f"{c.monthly_output_tokens / 1e6:,.0f}M output tokens a month"
    if c.breakeven_months is None:
        return (f"The API is cheaper: {api} against {own} per 1M output tokens self-hosted; buying never pays "
                f"back at {volume} (the API bill is below the running costs alone).")
    cheaper = "Self-hosting is cheaper per token" if c.usd_per_million_output_tokens < c.api_usd_per_million_output_tokens \
        else "The API is cheaper per token once the purchase is counted"
    return (f"{cheaper} ({own} against the API's {api} per 1M output tokens); buying pays back in "
            f"{c.breakeven_months:,.1f} months at {volume}.")


def context_fill_text(e: Estimate) -> str:
    """How the speeds relate to the context: they are for the request sizes, the context sizes the KV
    cache each user keeps."""
    s = e.scenario
    used = s.input_tokens + s.output_tokens
    return (f"Speeds are for requests of {s.input_tokens:,} prompt + {s.output_tokens:,} answer tokens = "
            f"{used:,} of the {s.context:,}-token context ({used / s.context:.0%} filled); the context only "
            "sizes the KV cache kept for each user. For the speed with the context full, set the prompt to "
            f"{s.context - s.output_tokens:,} tokens.")


def blocks(e: Estimate, share_url: str | None, baseline: Estimate | None = None) -> list[Block]:
    """Everything the report says, in order: header, scenario, verdict (and fixes), the comparison with a
    pinned baseline, memory, speed, cost, and every assumption with its source."""
    m = e.deployment.model
    out: list[Block] = [
        Block("h1", f"k2calc report: {m.name} on {_where(e)}"),
        Block("p", f"Generated {_dt.date.today().isoformat()} by k2calc. Every figure below comes with its unit; "
                    "every assumption with its value, date and source (section 'Assumptions and sources')."),
    ]
    if share_url:
        out.append(Block("p", f"Share link (opens exactly this scenario): {share_url}"))
    out += _scenario_blocks(e) + _verdict_blocks(e)
    if baseline is not None:
        out += baseline_blocks(e, baseline)
    return out + _memory_blocks(e) + _speed_blocks(e) + _cost_blocks(e) + _assumption_blocks(e)


def _scenario_blocks(e: Estimate) -> list[Block]:
    """The scenario's settings as a table."""
    s, d = e.scenario, e.deployment
    m = d.model
    out: list[Block] = []
    par = f"TP {d.tp} x PP {d.pp}" + (f", EP {d.ep}" if d.ep > 1 else "") + f", {d.replicas} replica(s)"
    if d.dp_attention:
        par += ", DP attention"
    if d.dcp > 1:
        par += f", decode context parallel {d.dcp}"
    rows = [
        ["model", f"{m.name} ({m.id})"],
        ["quantization", f"{d.scheme.label} ({d.scheme.id})"],
        ["hardware", _where(e)],
        ["topology", {"gpu": "GPU server", "unified": "unified-memory system(s)", "hybrid": "hybrid CPU+GPU",
                      "cpu": "CPU only"}[d.topology]],
        ["engine", f"{d.engine.name} ({d.engine.id})"],
        ["parallelism", par],
        ["KV cache dtype", d.kv_dtype],
        ["context per sequence", f"{s.context:,} tokens"],
        ["prompt / answer per request", f"{s.input_tokens:,} / {s.output_tokens:,} tokens"],
        ["concurrent users", f"{s.concurrency:,}"],
    ]
    if d.topology == "hybrid":
        rows.append(["routed experts kept on the GPUs", f"{d.gpu_experts} per layer"])
    out += [Block("h2", "Scenario"), Block("table", header=["setting", "value"], rows=rows)]
    return out


def _verdict_blocks(e: Estimate) -> list[Block]:
    """Fits or not, the smallest that fits, the ways to make it fit, warnings."""
    s, d, mem = e.scenario, e.deployment, e.memory
    m = d.model
    out: list[Block] = []
    out.append(Block("h2", "Verdict"))
    if mem.fits:
        text = (f"FITS: {m.name} fits on {_where(e)} with {s.concurrency:,} sequence(s) of {s.context:,} tokens "
                f"({mem.max_concurrency:,} would fit).")
    else:
        text = f"Does not fit: {mem.reasons[0] if mem.reasons else 'not enough memory'}."
    out.append(Block("verdict", text, ok=mem.fits))
    if e.performance is not None:
        p = e.performance
        out.append(Block("p", f"Key numbers: {_speed(p.decode_tokens_per_s_per_user)} tok/s per user, "
                              f"{_speed(p.decode_tokens_per_s_total)} tok/s in total, first token in "
                              f"{_num(p.ttft_s, 2)} s, limited by {BOTTLENECK_WORDS.get(p.bottleneck, p.bottleneck)}"
                              + (f"; purchase {format_usd(e.cost.capex_usd)}, "
                                 f"{format_usd(e.cost.usd_per_million_output_tokens)} per 1M output tokens "
                                 "self-hosted." if e.cost is not None else ".")))
    if e.cost is not None:
        out.append(Block("p", f"Self-host or API: {api_verdict_text(e)}"))
    small = e.smallest or {}
    if not mem.fits:
        if small.get("count"):
            name = d.device.name if d.device else ""
            out.append(Block("p", f"Smallest that fits: {small['count']} x {name}"
                                   + (f" in {small['nodes']} node(s)" if small.get("nodes") else "")
                                   + " (engine default parallelism)."))
        elif small.get("ram_gb"):
            out.append(Block("p", f"Needs about {small['ram_gb']:,} GiB of system RAM."))
        elif small.get("reason"):
            out.append(Block("p", small["reason"]))
    if e.fixes:
        out.append(Block("p", "Ways to make it fit (cheapest first; each a complete scenario):"))
        out.append(Block("list", items=[_fix_line(f) for f in e.fixes]))
    if mem.warnings:
        out.append(Block("list", items=[f"Warning: {w}" for w in mem.warnings]))
    return out


def _memory_blocks(e: Estimate) -> list[Block]:
    """Weights, KV capacity and memory per device."""
    s, d, mem = e.scenario, e.deployment, e.memory
    out: list[Block] = []
    out.append(Block("h2", "Memory", anchor="memory"))
    out.append(Block("list", items=[
        f"Weights of one replica: {format_gb(mem.weights_bytes)} (as stored, scales included)",
        f"KV cache: {mem.kv_bytes_per_token:,} bytes per token of one sequence ({d.kv_dtype})",
        f"KV capacity of one replica: {mem.kv_capacity_tokens:,} tokens",
        f"Most sequences of {s.context:,} tokens at once: {mem.max_concurrency:,}",
        f"Longest context at {s.concurrency:,} user(s): {longest_context_text(e)}",
    ]))
    out.append(Block("p", "Memory per device, in GiB (2^30 bytes) as engines report it; "
                           "weights above in GB (10^9 bytes)."))
    out.append(Block("table", header=["device", "installed", "usable", "weights", "KV cache", "activations",
                                       "runtime", "free"], rows=[
        [name, *(format_device_bytes(v) for v in values)] for name, values in _device_rows(e)]))
    return out


def _cost_blocks(e: Estimate) -> list[Block]:
    """Every money figure with its unit, or why there are none."""
    cost = e.cost
    out: list[Block] = []
    out.append(Block("h2", "Cost", anchor="cost"))
    if cost is None:
        return out + [Block("p", f"Not computed: {e.no_cost_reason}.")]
    a = cost.assumptions
    rows = [["purchase (capex)", format_usd(cost.capex_usd), "USD"]]
    rows += [[f"of which {item}", format_usd(v), "USD"] for item, v in cost.capex_breakdown_usd.items()]
    rows += [
        ["power under load", _num(cost.power_watts, 0), "W"],
        ["peak power (for hosting)", _num(cost.peak_power_watts, 0), "W"],
        [f"average power at {a['utilisation']:.0%} utilisation", _num(cost.average_power_watts, 0), "W"],
        ["energy per year", format_usd(cost.annual_energy_usd), "USD/year"],
        ["hosting per year", format_usd(cost.annual_hosting_usd), "USD/year"],
        ["maintenance per year", format_usd(cost.annual_maintenance_usd), "USD/year"],
        ["running cost (opex) per year", format_usd(cost.annual_opex_usd), "USD/year"],
        [f"capital per year (over {cost.years:g} years, {a['residual_value_pct']:g}% residual)",
         format_usd(cost.annual_capital_usd), "USD/year"],
        [f"total cost of ownership over {cost.years:g} years", format_usd(cost.tco_usd), "USD"],
        ["output tokens served per year", _num(cost.output_tokens_per_year / 1e9, 2), "billion tokens"],
        ["own cost per 1M output tokens", format_usd(cost.usd_per_million_output_tokens), "USD"],
        ["own cost per 1M input tokens (prefill share)", format_usd(cost.usd_per_million_input_tokens), "USD"],
        ["own cost per 1M output tokens, busy all year", format_usd(cost.usd_per_million_output_tokens_at_saturation),
         "USD"],
    ]
    if cost.cloud_usd_per_hour is not None:
        rows += [["cloud rental of the same GPUs", format_usd(cost.cloud_usd_per_hour), "USD/hour"],
                 ["cloud rental per 1M output tokens", format_usd(cost.cloud_usd_per_million_output_tokens), "USD"]]
    price = api_price_used(e)
    if price is not None:
        rows += [[f"API list price ({price.provider}, {price.date}): input", format_usd(price.input_usd_per_mtok),
                  "USD per 1M tokens"],
                 [f"API list price ({price.provider}, {price.date}): output", format_usd(price.output_usd_per_mtok),
                  "USD per 1M tokens"]]
    if cost.api_usd_per_million_output_tokens is not None:
        rows.append([f"API ({cost.api_provider}) per 1M output tokens, this workload: {api_formula_text(e)}",
                     format_usd(cost.api_usd_per_million_output_tokens), "USD"])
    rows += [
        ["monthly output volume compared", _num(cost.monthly_output_tokens / 1e6, 1), "million tokens/month"],
        ["own running cost for that volume", format_usd(cost.monthly_own_usd), "USD/month"],
    ]
    if cost.monthly_api_usd is not None:
        rows.append(["API bill for that volume", format_usd(cost.monthly_api_usd), "USD/month"])
    if cost.monthly_cloud_usd is not None:
        rows.append(["cloud rental for that volume", format_usd(cost.monthly_cloud_usd), "USD/month"])
    rows.append(["break-even against the API", _num(cost.breakeven_months, 1) if cost.breakeven_months else
                 "never (the API costs less than running the hardware)" if cost.monthly_api_usd is not None
                 else "n/a (no API price)", "months"])
    if cost.monthly_cloud_usd is not None:
        rows.append(["break-even against renting", _num(cost.breakeven_vs_cloud_months, 1)
                     if cost.breakeven_vs_cloud_months else "never", "months"])
    out.append(Block("table", header=["item", "value", "unit"], rows=rows))
    if cost.notes:
        out.append(Block("list", items=list(cost.notes)))
    return out


def _assumption_blocks(e: Estimate) -> list[Block]:
    """Cost assumptions, prices, hardware, engine policy and speed calibration, with sources."""
    d = e.deployment
    out: list[Block] = []
    out.append(Block("h2", "Assumptions and sources"))
    out.append(Block("h3", "Cost assumptions (data/cost_assumptions.csv)"))
    out.append(Block("table", header=["assumption", "value used", "unit", "default", "date", "status", "source"],
                      rows=assumption_rows(e)))
    out.append(Block("h3", "Prices"))
    out.append(Block("table", header=["price", "value", "date", "source"], rows=price_rows(e)))
    out.append(Block("h3", "Hardware data"))
    out.append(Block("table", header=["device", "status", "source"], rows=[
        [h.name, h.status, h.source] for h in (d.device, d.cpu) if h is not None]))
    out.append(Block("h3", "Engine memory policy (k2calc/engines.py)"))
    out.append(Block("table", header=["setting", "value", "source"], rows=engine_rows(e)))
    out.append(Block("h3", "Speed calibration (data/measurements.csv, data/class_corrections.csv)"))
    out.append(Block("table", header=["item", "value"], rows=calibration_rows(e)))
    return out


def baseline_blocks(e: Estimate, baseline: Estimate) -> list[Block]:
    """Both scenarios side by side: the settings that differ, then each key figure in the baseline and
    now, its change and whether that is better (faster, more, cheaper) or worse."""
    changes = changed_settings(e.scenario, baseline.scenario)
    out = [Block("h2", "Against the pinned baseline"),
           Block("p", f"Baseline: {baseline.deployment.model.name} on {_where(baseline)}, "
                      f"{baseline.scenario.concurrency:,} x {baseline.scenario.context:,} tokens"
                      + (" (fits)." if baseline.fits else " (does not fit).")
                      + f" Baseline link parameters: {_query_text(baseline)}.")]
    if changes:
        out.append(Block("table", header=["setting", "baseline", "this scenario"], rows=[
            [name, "default" if was is None else str(was), "default" if now is None else str(now)]
            for name, was, now in changes]))
    else:
        out.append(Block("p", "No setting differs: this scenario is the baseline."))
    verdict = {True: "better", False: "worse", None: ""}
    out.append(Block("table", header=["figure", "unit", "baseline", "this scenario", "change", "better or worse"],
                     rows=[[d.figure.label, d.figure.unit, d.figure.format(d.baseline), d.figure.format(d.current),
                            d.text(), verdict[d.improved]] for d in compare(e, baseline)]))
    return out


def _query_text(e: Estimate) -> str:
    q = to_query(e.scenario)
    return "&".join(f"{k}={v}" for k, v in q.items()) if q else "all defaults"


def _speed_blocks(e: Estimate) -> list[Block]:
    """The speed table (estimate, band, roofline) and what limits decode, or why there are none."""
    s, perf = e.scenario, e.performance
    out: list[Block] = [Block("h2", "Speed", anchor="speed")]
    if perf is None:
        return out + [Block("p", "Not computed: the deployment does not fit, so nothing runs.")]
    b = perf.bands()

    def row(label: str, key: str, roof: float | None, unit: str = "tok/s", fmt=_speed) -> list[str]:
        high = b[key].high if roof is None else min(b[key].high, roof)  # never above the roofline
        return [label, fmt(b[key].value), f"{fmt(b[key].low)} - {fmt(high)}", "" if roof is None else fmt(roof), unit]

    speed_rows = [
        row("decode, per user", "decode_tokens_per_s_per_user", perf.roofline_decode_tokens_per_s_per_user),
        row(f"decode, all {s.concurrency:,} user(s)", "decode_tokens_per_s_total",
            perf.roofline_decode_tokens_per_s_total),
        row("output throughput incl. time to first token", "output_tokens_per_s_total", None),
        row(f"prefill of a {s.input_tokens:,}-token prompt", "prefill_tokens_per_s",
            perf.roofline_prefill_tokens_per_s),
        row("time to first token", "ttft_s", None, "s", lambda x: _num(x, 2)),
    ]
    out.append(Block("table", header=["figure", "estimate", "band (low - high)", "roofline", "unit"], rows=speed_rows))
    out.append(Block("list", items=[
        f"Decode is limited by {bottleneck_text(perf.bottleneck)}",
        context_fill_text(e),
        f"Band: the calibration class {perf.calibration_class} spreads x{perf.decode_band_factor:.2f} (decode) and "
        f"x{perf.prefill_band_factor:.2f} (prefill/TTFT) around published measurements; "
        f"{perf.supporting_rows} measurement(s) from {perf.supporting_sources} source(s) support it; the band "
        f"covers two thirds of them when each source is predicted without its own rows",
        "Roofline: the same bytes and FLOPs at 100% of peak bandwidth and compute; no estimate exceeds it",
        *perf.notes,
    ]))
    return out


def _fix_line(f: PricedFix) -> str:
    """'2 x NVIDIA DGX Spark (2 machines): capex $8,198, $25.94 per 1M output tokens'."""
    return (f"{f.fix.label}: capex {format_usd(f.capex_usd)}, {format_usd(f.usd_per_million_output_tokens)} per 1M output "
            f"tokens ({', '.join(f'{k}={v}' for k, v in to_query(f.fix.scenario).items()) or 'defaults'})")


def _device_rows(e: Estimate) -> list[tuple[str, list[int]]]:
    """(label, [installed, usable, weights, KV, activations, runtime, free] bytes) per device, with runs
    of identical devices merged into one row ('GPU 0 - GPU 7 (8 alike)')."""
    out: list[tuple[str, list[int]]] = []
    run_first = run_last = ""
    run_n = 0
    prev: list[int] | None = None
    for dev in e.memory.devices:
        values = [dev.capacity_bytes, dev.usable_bytes, dev.weights_bytes, dev.kv_bytes, dev.activation_bytes,
                  dev.overhead_bytes, dev.free_bytes]
        if values == prev:
            run_last, run_n = dev.name, run_n + 1
            out[-1] = (f"{run_first.split(' (')[0]} - {run_last} ({run_n} alike)", values)
            continue
        out.append((dev.name, values))
        run_first = run_last = dev.name
        run_n = 1
        prev = values
    return out


def assumption_rows(e: Estimate) -> list[list[str]]:
    defaults = default_assumptions().model_dump()
    try:
        used = e.cost.assumptions if e.cost is not None else e.scenario.cost_assumptions().model_dump()
    except K2CalcError:
        used = defaults
    rows = []
    for key, a in assumption_sources().items():
        value = used.get(key, a.value)
        mark = "" if value == defaults.get(key, a.value) else " (your value)"
        rows.append([key, f"{value:g}{mark}", a.unit, f"{a.value:g}", a.date, a.status, a.source])
    return rows


def price_rows(e: Estimate) -> list[list[str]]:
    s, d = e.scenario, e.deployment
    rows = []
    if d.device is not None:
        h = d.device
        if s.hardware_price_usd is not None:
            rows.append([f"{h.name}, per device", format_usd(s.hardware_price_usd), "", "your value"])
        else:
            rows.append([f"{h.name}, per device", format_usd(h.price_usd) if h.price_usd else "unknown",
                         h.price_date or "", h.price_source or ""])
        if d.topology == "gpu":
            if s.cloud_usd_per_hour is not None:
                rows.append([f"{h.name}, cloud rental per GPU-hour", format_usd(s.cloud_usd_per_hour), "", "your value"])
            elif h.cloud_usd_per_hour is not None:
                rows.append([f"{h.name}, cloud rental per GPU-hour", format_usd(h.cloud_usd_per_hour), h.cloud_date or "",
                             h.cloud_source or ""])
    if d.cpu is not None:
        c = d.cpu
        rows.append([f"{c.name}, per socket", format_usd(c.price_usd) if c.price_usd else "unknown", c.price_date or "",
                     c.price_source or ""])
    provider = e.cost.api_provider if e.cost is not None else s.api_provider
    p = api_price(d.model.id, provider)
    if p is not None:
        cached = "" if p.cached_input_usd_per_mtok is None else f", cached input {format_usd(p.cached_input_usd_per_mtok)}"
        value = f"input {format_usd(p.input_usd_per_mtok)}{cached}, output {format_usd(p.output_usd_per_mtok)}"
        rows.append([f"API: {p.provider}, per 1M tokens", value, p.date, p.source])
    else:
        rows.append(["API", f"no price for {d.model.name} in data/api_prices.csv", "", ""])
    return rows


def engine_rows(e: Estimate) -> list[list[str]]:
    d = e.deployment
    g = d.engine
    fraction = d.memory_fraction if d.memory_fraction is not None else g.memory_fraction
    same = "engine defaults (first row)"
    rows = [
        ["engine", g.name, g.source],
        ["share of each device's memory the engine uses",
         "all of it" if fraction is None
         else f"{fraction:.0%}" + (" (your value)" if d.memory_fraction is not None else ""),
         "activations inside that share" if g.fraction_covers_activations
         else "static pool of weights + KV; activations in the rest"],
        ["runtime overhead per device (CUDA context, buffers)",
         f"{format_device_bytes(g.runtime_bytes_single)} alone, "
         f"{format_device_bytes(g.runtime_bytes_multi)} with several devices",
         same],
        ["prefill chunk (activation peak)", f"{g.chunk_tokens_large:,} tokens on >= 70 GiB devices, "
                                            f"{g.chunk_tokens_small:,} on smaller ones", same],
        ["activation bytes per hidden unit and token", f"{_engines.ACTIVATION_BYTES_PER_HIDDEN_PER_TOKEN} B",
         "estimate reproducing vLLM's Kimi K2 Thinking TP8 start-up log (engines.py)"],
        ["KV cache page", f"{g.kv_block_tokens} tokens", same],
        ["MLA latent replicated on every tensor-parallel GPU", "yes" if g.mla_replicated_under_tp else "no", same],
    ]
    if d.topology == "unified" and d.device is not None:
        if d.device.vendor.lower() == "apple":
            limit = (f"{format_device_bytes(d.wired_limit_bytes)} (your value)" if d.wired_limit_bytes else
                     f"{_engines.MAC_WIRED_FRACTION_LARGE:.0%} of memory (>= 64 GiB Macs), "
                     f"{_engines.MAC_WIRED_FRACTION_SMALL:.0%} on smaller ones")
            rows.append(["macOS GPU wired-memory limit", limit,
                         "macOS default; raise with sysctl iogpu.wired_limit_mb"])
        else:
            rows.append(["share kept by the OS", f"{_engines.UNIFIED_OS_RESERVE_FRACTION:.0%}",
                         "assumption (engines.py)"])
    if d.topology in ("hybrid", "cpu"):
        rows.append(["system RAM kept by the OS",
                     f"{_engines.RAM_OS_RESERVE_FRACTION:.0%}, at least "
                     f"{format_device_bytes(_engines.RAM_OS_RESERVE_MIN_BYTES, 0)}",
                     "assumption (engines.py)"])
    return rows


def calibration_rows(e: Estimate) -> list[list[str]]:
    from .validate import (
        rows as validation_rows,  # the validation runs every measurement; only on demand
    )

    p = e.performance
    if p is None:
        return [["speed calibration", "not applicable: the deployment does not fit, so no speed is estimated"]]
    ids = sorted({r.measurement.id for r in validation_rows() if r.klass == p.calibration_class})
    return [
        ["calibration class (engine family / platform)", p.calibration_class],
        ["decode band", f"x{p.decode_band_factor:.2f}"],
        ["prefill / TTFT band", f"x{p.prefill_band_factor:.2f}"],
        ["supporting measurements", f"{p.supporting_rows} from {p.supporting_sources} source(s)"],
        ["measurement ids", ", ".join(ids) if ids else "none: the band is widened"],
        ["sources", "the 'source' column of data/measurements.csv for each id; python -m k2calc validate"],
    ]


