"""The shareable report of one estimate: Markdown, self-contained HTML (with the charts), JSON and CSV.

The report is what a buyer attaches to a purchase request: the verdict, the key figures with their
units and uncertainty, and every assumption behind them with its value, unit, date and source (cost
assumptions from ``data/cost_assumptions.csv``, device and API prices from ``data/hardware.csv`` and
``data/api_prices.csv``, the engine's memory policy from ``k2calc/engines.py``, the calibration class
of the speed model and the published measurements it rests on).

Markdown and HTML are rendered from one list of blocks, so they always say the same thing. The HTML
embeds plotly.js once (inline), so the file opens offline and prints on paper.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import plotly.graph_objects as go

from . import engines as _engines
from .cost import api_price, assumption_sources, default_assumptions
from .errors import K2CalcError
from .scenario import Catalogs, Estimate
from .units import format_device_bytes, format_gb

# ------------------------------------------------------------------------------------------------
# Blocks: the content, independent of the output format
# ------------------------------------------------------------------------------------------------


@dataclass
class _Block:
    kind: str  # "h1" | "h2" | "h3" | "p" | "list" | "table" | "verdict" | "figure"
    text: str = ""
    items: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    ok: bool = True  # verdict colour
    anchor: str = ""  # where figures of that topic go (HTML)


def _usd(x: float | None, digits: int | None = None) -> str:
    """'$388,900' or '$93.60' (two decimals below $1,000 unless told)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if digits is None:
        digits = 2 if abs(x) < 1000 else 0
    return f"${x:,.{digits}f}"


def _num(x: float | None, digits: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}"


def _speed(x: float) -> str:
    return _num(x, 1 if x < 1000 else 0)


def _where(e: Estimate) -> str:
    d = e.deployment
    parts = []
    if d.device is not None:
        parts.append(f"{d.count} x {d.device.name}" + (f" ({d.nodes} nodes)" if d.nodes > 1 else ""))
    if d.cpu is not None:
        parts.append(f"{d.sockets} x {d.cpu.name} with {format_device_bytes(d.ram_bytes, 0)} RAM")
    return " + ".join(parts)


def _blocks(e: Estimate, share_url: str | None) -> list[_Block]:
    s, d, mem, perf, cost = e.scenario, e.deployment, e.memory, e.performance, e.cost
    m = d.model
    out: list[_Block] = [
        _Block("h1", f"k2calc report: {m.name} on {_where(e)}"),
        _Block("p", f"Generated {_dt.date.today().isoformat()} by k2calc. Every figure below comes with its unit; "
                    "every assumption with its value, date and source (section 'Assumptions and sources')."),
    ]
    if share_url:
        out.append(_Block("p", f"Share link (opens exactly this scenario): {share_url}"))

    # Scenario ------------------------------------------------------------------------------------
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
    out += [_Block("h2", "Scenario"), _Block("table", header=["setting", "value"], rows=rows)]

    # Verdict -------------------------------------------------------------------------------------
    out.append(_Block("h2", "Verdict"))
    if mem.fits:
        text = (f"FITS: {m.name} fits on {_where(e)} with {s.concurrency:,} sequence(s) of {s.context:,} tokens "
                f"({mem.max_concurrency:,} would fit).")
    else:
        text = f"Does not fit: {mem.reasons[0] if mem.reasons else 'not enough memory'}."
    out.append(_Block("verdict", text, ok=mem.fits))
    small = e.smallest or {}
    if not mem.fits:
        if small.get("count"):
            name = d.device.name if d.device else ""
            out.append(_Block("p", f"Smallest that fits: {small['count']} x {name}"
                                   + (f" in {small['nodes']} node(s)" if small.get("nodes") else "")
                                   + " (engine default parallelism)."))
        elif small.get("ram_gb"):
            out.append(_Block("p", f"Needs about {small['ram_gb']:,} GiB of system RAM."))
        elif small.get("reason"):
            out.append(_Block("p", small["reason"]))
    if mem.warnings:
        out.append(_Block("list", items=[f"Warning: {w}" for w in mem.warnings]))

    # Memory --------------------------------------------------------------------------------------
    out.append(_Block("h2", "Memory", anchor="memory"))
    out.append(_Block("list", items=[
        f"Weights of one replica: {format_gb(mem.weights_bytes)} (as stored, scales included)",
        f"KV cache: {mem.kv_bytes_per_token:,} bytes per token of one sequence ({d.kv_dtype})",
        f"KV capacity of one replica: {mem.kv_capacity_tokens:,} tokens",
        f"Most sequences of {s.context:,} tokens at once: {mem.max_concurrency:,}",
        f"Longest context at {s.concurrency:,} user(s): {mem.max_context_tokens:,} tokens",
    ]))
    out.append(_Block("p", "Memory per device, in GiB (2^30 bytes) as engines report it; "
                           "weights above in GB (10^9 bytes)."))
    out.append(_Block("table", header=["device", "installed", "usable", "weights", "KV cache", "activations",
                                       "runtime", "free"], rows=[
        [name, *(format_device_bytes(v) for v in values)] for name, values in _device_rows(e)]))

    # Speed ---------------------------------------------------------------------------------------
    b = perf.bands()
    out.append(_Block("h2", "Speed", anchor="speed"))
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
    if not mem.fits:
        out.append(_Block("p", "This deployment does not fit: the speeds and costs below are what it would reach "
                               "if memory allowed, for comparison only."))
    out.append(_Block("table", header=["figure", "estimate", "band (low - high)", "roofline", "unit"], rows=speed_rows))
    out.append(_Block("list", items=[
        f"Decode is limited by: {perf.bottleneck}",
        f"Band: the calibration class {perf.calibration_class} spreads x{perf.decode_band_factor:.2f} (decode) and "
        f"x{perf.prefill_band_factor:.2f} (prefill/TTFT) around published measurements; "
        f"{perf.supporting_rows} measurement(s) support it",
        "Roofline: the same bytes and FLOPs at 100% of peak bandwidth and compute; no estimate exceeds it",
        *perf.notes,
    ]))

    # Cost ----------------------------------------------------------------------------------------
    out.append(_Block("h2", "Cost", anchor="cost"))
    if cost is None:
        why = "; ".join(w for w in mem.warnings if w.startswith("cost")) or "no price for this hardware"
        out.append(_Block("p", f"Not computed: {why}."))
    else:
        a = cost.assumptions
        rows = [["purchase (capex)", _usd(cost.capex_usd), "USD"]]
        rows += [[f"of which {item}", _usd(v), "USD"] for item, v in cost.capex_breakdown_usd.items()]
        rows += [
            ["power under load", _num(cost.power_watts, 0), "W"],
            ["peak power (for hosting)", _num(cost.peak_power_watts, 0), "W"],
            [f"average power at {a['utilisation']:.0%} utilisation", _num(cost.average_power_watts, 0), "W"],
            ["energy per year", _usd(cost.annual_energy_usd), "USD/year"],
            ["hosting per year", _usd(cost.annual_hosting_usd), "USD/year"],
            ["maintenance per year", _usd(cost.annual_maintenance_usd), "USD/year"],
            ["running cost (opex) per year", _usd(cost.annual_opex_usd), "USD/year"],
            [f"capital per year (over {cost.years:g} years, {a['residual_value_pct']:g}% residual)",
             _usd(cost.annual_capital_usd), "USD/year"],
            [f"total cost of ownership over {cost.years:g} years", _usd(cost.tco_usd), "USD"],
            ["output tokens served per year", _num(cost.output_tokens_per_year / 1e9, 2), "billion tokens"],
            ["own cost per 1M output tokens", _usd(cost.usd_per_million_output_tokens), "USD"],
            ["own cost per 1M input tokens (prefill share)", _usd(cost.usd_per_million_input_tokens), "USD"],
            ["own cost per 1M output tokens, busy all year", _usd(cost.usd_per_million_output_tokens_at_saturation),
             "USD"],
        ]
        if cost.cloud_usd_per_hour is not None:
            rows += [["cloud rental of the same GPUs", _usd(cost.cloud_usd_per_hour), "USD/hour"],
                     ["cloud rental per 1M output tokens", _usd(cost.cloud_usd_per_million_output_tokens), "USD"]]
        if cost.api_usd_per_million_output_tokens is not None:
            rows.append([f"API ({cost.api_provider}) per 1M output tokens, same prompts and answers",
                         _usd(cost.api_usd_per_million_output_tokens), "USD"])
        rows += [
            ["monthly output volume compared", _num(cost.monthly_output_tokens / 1e6, 1), "million tokens/month"],
            ["own running cost for that volume", _usd(cost.monthly_own_usd), "USD/month"],
        ]
        if cost.monthly_api_usd is not None:
            rows.append(["API bill for that volume", _usd(cost.monthly_api_usd), "USD/month"])
        if cost.monthly_cloud_usd is not None:
            rows.append(["cloud rental for that volume", _usd(cost.monthly_cloud_usd), "USD/month"])
        rows.append(["break-even against the API", _num(cost.breakeven_months, 1) if cost.breakeven_months else
                     "never (the API costs less than running the hardware)" if cost.monthly_api_usd is not None
                     else "n/a (no API price)", "months"])
        if cost.monthly_cloud_usd is not None:
            rows.append(["break-even against renting", _num(cost.breakeven_vs_cloud_months, 1)
                         if cost.breakeven_vs_cloud_months else "never", "months"])
        out.append(_Block("table", header=["item", "value", "unit"], rows=rows))
        if cost.notes:
            out.append(_Block("list", items=list(cost.notes)))

    # Assumptions ---------------------------------------------------------------------------------
    out.append(_Block("h2", "Assumptions and sources"))
    out.append(_Block("h3", "Cost assumptions (data/cost_assumptions.csv)"))
    out.append(_Block("table", header=["assumption", "value used", "unit", "default", "date", "status", "source"],
                      rows=_assumption_rows(e)))
    out.append(_Block("h3", "Prices"))
    out.append(_Block("table", header=["price", "value", "date", "source"], rows=_price_rows(e)))
    out.append(_Block("h3", "Hardware data"))
    out.append(_Block("table", header=["device", "status", "source"], rows=[
        [h.name, h.status, h.source] for h in (d.device, d.cpu) if h is not None]))
    out.append(_Block("h3", "Engine memory policy (k2calc/engines.py)"))
    out.append(_Block("table", header=["setting", "value", "source"], rows=_engine_rows(e)))
    out.append(_Block("h3", "Speed calibration (data/measurements.csv, data/class_corrections.csv)"))
    out.append(_Block("table", header=["item", "value"], rows=_calibration_rows(e)))
    return out


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


def _assumption_rows(e: Estimate) -> list[list[str]]:
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


def _price_rows(e: Estimate) -> list[list[str]]:
    s, d = e.scenario, e.deployment
    rows = []
    if d.device is not None:
        h = d.device
        if s.hardware_price_usd is not None:
            rows.append([f"{h.name}, per device", _usd(s.hardware_price_usd), "", "your value"])
        else:
            rows.append([f"{h.name}, per device", _usd(h.price_usd) if h.price_usd else "unknown",
                         h.price_date or "", h.price_source or ""])
        if d.topology == "gpu":
            if s.cloud_usd_per_hour is not None:
                rows.append([f"{h.name}, cloud rental per GPU-hour", _usd(s.cloud_usd_per_hour), "", "your value"])
            elif h.cloud_usd_per_hour is not None:
                rows.append([f"{h.name}, cloud rental per GPU-hour", _usd(h.cloud_usd_per_hour), h.cloud_date or "",
                             h.cloud_source or ""])
    if d.cpu is not None:
        c = d.cpu
        rows.append([f"{c.name}, per socket", _usd(c.price_usd) if c.price_usd else "unknown", c.price_date or "",
                     c.price_source or ""])
    provider = e.cost.api_provider if e.cost is not None else s.api_provider
    p = api_price(d.model.id, provider)
    if p is not None:
        cached = "" if p.cached_input_usd_per_mtok is None else f", cached input {_usd(p.cached_input_usd_per_mtok)}"
        value = f"input {_usd(p.input_usd_per_mtok)}{cached}, output {_usd(p.output_usd_per_mtok)}"
        rows.append([f"API: {p.provider}, per 1M tokens", value, p.date, p.source])
    else:
        rows.append(["API", f"no price for {d.model.name} in data/api_prices.csv", "", ""])
    return rows


def _engine_rows(e: Estimate) -> list[list[str]]:
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


def _calibration_rows(e: Estimate) -> list[list[str]]:
    from .validate import (
        rows as validation_rows,  # the validation runs every measurement; only on demand
    )

    p = e.performance
    ids = sorted({r.measurement.id for r in validation_rows() if r.klass == p.calibration_class})
    return [
        ["calibration class (engine family / platform)", p.calibration_class],
        ["decode band", f"x{p.decode_band_factor:.2f}"],
        ["prefill / TTFT band", f"x{p.prefill_band_factor:.2f}"],
        ["supporting measurements", f"{p.supporting_rows}"],
        ["measurement ids", ", ".join(ids) if ids else "none: the band is widened"],
        ["sources", "the 'source' column of data/measurements.csv for each id; python -m k2calc validate"],
    ]


# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    """Keep dollar signs literal (Streamlit reads $...$ as LaTeX) and table cells in one piece."""
    return str(text).replace("\\", "\\\\").replace("$", "\\$").replace("|", "\\|").replace("\n", " ")


def _md(blocks: list[_Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(b.kind[1]) + " " + _md_escape(b.text), ""]
        elif b.kind == "p":
            lines += [_md_escape(b.text), ""]
        elif b.kind == "verdict":
            lines += [f"**{_md_escape(b.text)}**", ""]
        elif b.kind == "list":
            lines += [f"- {_md_escape(i)}" for i in b.items] + [""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md_escape(h) for h in b.header) + " |")
            lines.append("|" + "|".join("---" for _ in b.header) + "|")
            lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in b.rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def report_markdown(e: Estimate, share_url: str | None = None) -> str:
    """A printable Markdown summary: verdict, key figures with units, every assumption with its source."""
    return _md(_blocks(e, share_url))


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #fff;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; font-size: 14px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.nowrap { white-space: nowrap; }
.verdict { padding: 0.7em 1em; border-radius: 6px; font-weight: 600; font-size: 1.1em; }
.fits { background: #dafbe1; border: 1px solid #2da44e; }
.nofit { background: #ffebe9; border: 1px solid #cf222e; }
.figure { margin: 1em 0; page-break-inside: avoid; break-inside: avoid; }
.share { word-break: break-all; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { page-break-after: avoid; break-after: avoid; }
  table, tr { page-break-inside: avoid; break-inside: avoid; }
  a { color: #000; text-decoration: none; }
}
"""


_NOWRAP = {"date", "unit", "value used", "default", "status", "installed", "usable", "weights", "KV cache",
           "activations", "runtime", "free", "estimate", "band (low - high)", "roofline"}


def _html_blocks(blocks: list[_Block], figures: dict[str, str]) -> str:
    """Render blocks; figures (already HTML) follow the section whose anchor their key names."""
    parts: list[str] = []
    placed: set[str] = set()
    current = ""

    def flush(anchor: str) -> None:
        for key, fig_html in figures.items():
            if key not in placed and _figure_anchor(key) == anchor and anchor:
                parts.append(f'<div class="figure">{fig_html}</div>')
                placed.add(key)

    for b in blocks:
        if b.kind in ("h2", "h1"):
            flush(current)
            current = b.anchor
        esc = html.escape
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{esc(b.text)}</{b.kind}>")
        elif b.kind == "p":
            cls = ' class="share"' if b.text.startswith("Share link") else ""
            parts.append(f"<p{cls}>{esc(b.text)}</p>")
        elif b.kind == "verdict":
            parts.append(f'<div class="verdict {"fits" if b.ok else "nofit"}">{esc(b.text)}</div>')
        elif b.kind == "list":
            parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{esc(h)}</th>" for h in b.header)
            keep = [' class="nowrap"' if h in _NOWRAP else "" for h in b.header]
            body = "".join("<tr>" + "".join(f"<td{keep[i] if i < len(keep) else ''}>{esc(str(c))}</td>"
                                            for i, c in enumerate(row)) + "</tr>" for row in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    flush(current)
    rest = [f'<div class="figure">{h}</div>' for k, h in figures.items() if k not in placed]
    if rest:
        parts += ["<h2>Charts</h2>", *rest]
    return "\n".join(parts)


def _figure_anchor(key: str) -> str:
    k = key.lower()
    if "memory" in k:
        return "memory"
    if "speed" in k or "concurrency" in k or "context" in k:
        return "speed"
    if "cost" in k:
        return "cost"
    return ""


def _default_figures(e: Estimate) -> dict[str, go.Figure]:
    """Memory per device, speed against users and (when priced) the cost breakdown of the estimate."""
    from .charts import cost_breakdown, memory_per_device, speed_vs_concurrency
    from .sweeps import published_points, speed_curve

    figs: dict[str, go.Figure] = {"memory_per_device": memory_per_device(e.memory)}
    catalogs = _catalogs_of(e)
    try:
        figs["speed_vs_concurrency"] = speed_vs_concurrency(speed_curve(e.scenario, catalogs=catalogs),
                                                            published_points(e.scenario, catalogs))
    except K2CalcError:
        pass
    if e.cost is not None:
        figs["cost_breakdown"] = cost_breakdown(e)
    return figs


def _catalogs_of(e: Estimate) -> Catalogs:
    """Catalogs holding the estimate's own model and devices, so imported or custom ones resolve again."""
    d = e.deployment
    hw = {h.id: h for h in (d.device, d.cpu) if h is not None}
    return Catalogs(models={d.model.id: d.model}, hardware=hw)


def report_html(e: Estimate, figures: dict[str, go.Figure] | None = None, share_url: str | None = None) -> str:
    """A self-contained HTML page (inline CSS, plotly.js embedded once) with the same content as
    :func:`report_markdown` and the figures; opens offline and prints cleanly.

    ``figures``: {name: figure}; a name containing 'memory', 'speed'/'concurrency'/'context' or 'cost'
    is placed in that section, others under 'Charts'. None: memory per device, speed against users
    and the cost breakdown of `e`.
    """
    figs = _default_figures(e) if figures is None else figures
    rendered: dict[str, str] = {}
    for i, (key, fig) in enumerate(figs.items()):
        rendered[key] = fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_width="100%",
                                    config={"displaylogo": False, "responsive": True})
    blocks = _blocks(e, share_url)
    title = html.escape(blocks[0].text)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{title}</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n{_html_blocks(blocks, rendered)}\n</body>\n</html>\n")


# ------------------------------------------------------------------------------------------------
# JSON and CSV
# ------------------------------------------------------------------------------------------------


def _finite_json(x: Any) -> Any:
    """Non-finite floats (an infinite $/1M when nothing is served) become null: strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_json(v) for v in x]
    return x


def report_json(e: Estimate, share_url: str | None = None) -> str:
    """``e.as_dict()`` plus ``assumptions_sources`` (data/cost_assumptions.csv rows by key),
    ``other_sources`` (prices, engine policy, calibration) and ``share_url``."""
    d = e.deployment
    provider = e.cost.api_provider if e.cost is not None else e.scenario.api_provider
    p = api_price(d.model.id, provider)
    other = {
        "hardware": [{"id": h.id, "name": h.name, "price_usd": h.price_usd, "price_date": h.price_date,
                      "price_source": h.price_source, "cloud_usd_per_hour": h.cloud_usd_per_hour,
                      "cloud_date": h.cloud_date, "cloud_source": h.cloud_source, "status": h.status,
                      "source": h.source} for h in (d.device, d.cpu) if h is not None],
        "api_price": asdict(p) if p is not None else None,
        "engine": {"id": d.engine.id, "memory_fraction": d.engine.memory_fraction, "source": d.engine.source},
        "calibration": dict(_calibration_rows(e)),
    }
    body = {**e.as_dict(), "assumptions_sources": {k: asdict(a) for k, a in assumption_sources().items()},
            "other_sources": other, "share_url": share_url}
    return json.dumps(_finite_json(body), indent=2, allow_nan=False, default=str)


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def tables_csv(e: Estimate) -> dict[str, str]:
    """CSV texts: memory_per_device.csv (bytes and GiB), speeds.csv, cost.csv, assumptions.csv."""
    from .units import GiB

    mem_rows = []
    for dev in e.memory.devices:
        values = [dev.capacity_bytes, dev.usable_bytes, dev.weights_bytes, dev.kv_bytes, dev.activation_bytes,
                  dev.overhead_bytes, dev.free_bytes]
        mem_rows.append([dev.name, dev.kind, *values, *(round(v / GiB, 3) for v in values)])
    names = ["capacity", "usable", "weights", "kv", "activations", "runtime", "free"]
    memory = _csv(["device", "kind", *(f"{n}_bytes" for n in names), *(f"{n}_gib" for n in names)], mem_rows)

    p = e.performance
    roof = {"decode_tokens_per_s_per_user": p.roofline_decode_tokens_per_s_per_user,
            "decode_tokens_per_s_total": p.roofline_decode_tokens_per_s_total,
            "prefill_tokens_per_s": p.roofline_prefill_tokens_per_s}
    speed_rows = [[name, b.value, b.low, b.high, roof.get(name, ""), "s" if name == "ttft_s" else "tok/s"]
                  for name, b in p.bands().items()]
    speeds = _csv(["metric", "value", "low", "high", "roofline", "unit"], speed_rows)

    cost_rows: list[list[Any]] = []
    c = e.cost
    if c is not None:
        units = {"_usd_per_hour": "USD/hour", "_per_million_output_tokens": "USD per 1M output tokens",
                 "_per_million_input_tokens": "USD per 1M input tokens",
                 "_per_million_output_tokens_at_saturation": "USD per 1M output tokens",
                 "_usd": "USD", "_watts": "W", "_kwh": "kWh", "_months": "months", "years": "years",
                 "tokens_per_year": "tokens/year", "monthly_output_tokens": "tokens/month"}
        for key, value in c.as_dict().items():
            if isinstance(value, (dict, list, str)) or value is None:
                continue
            unit = next((u for suffix, u in units.items() if key.endswith(suffix) or key == suffix), "")
            if key.startswith("monthly_") and key.endswith("_usd"):
                unit = "USD/month"
            elif key.startswith("annual_") and key.endswith("_usd"):
                unit = "USD/year"
            cost_rows.append([key, value if math.isfinite(value) else "", unit])
        cost_rows += [[f"capex: {item}", v, "USD"] for item, v in c.capex_breakdown_usd.items()]
    cost = _csv(["item", "value", "unit"], cost_rows)

    assumption_rows = [["cost", *row] for row in _assumption_rows(e)]
    assumption_rows += [["price", r[0], r[1], "", "", r[2], "", r[3]] for r in _price_rows(e)]
    assumption_rows += [["engine", r[0], r[1], "", "", "", "", r[2]] for r in _engine_rows(e)]
    assumption_rows += [["calibration", r[0], r[1], "", "", "", "", ""] for r in _calibration_rows(e)]
    assumptions = _csv(["group", "key", "value", "unit", "default", "date", "status", "source"], assumption_rows)
    return {"memory_per_device.csv": memory, "speeds.csv": speeds, "cost.csv": cost, "assumptions.csv": assumptions}


__all__ = ["report_markdown", "report_html", "report_json", "tables_csv"]
