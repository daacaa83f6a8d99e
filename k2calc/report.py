"""The shareable report of one estimate, written as Markdown, self-contained HTML (with the charts),
PDF (:mod:`k2calc.report_pdf`), JSON and CSV. What the report says lives in
:mod:`k2calc.report_content`; this module only writes it.

The HTML embeds plotly.js once (inline), so the file opens offline, reads on a phone and prints on A4.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from dataclasses import asdict
from typing import Any

import plotly.graph_objects as go

from .cost import api_price, assumption_sources
from .estimate import Estimate, finite_json
from .performance import PerformanceEstimate
from .report_content import (
    Block,
    assumption_rows,
    blocks,
    calibration_rows,
    engine_rows,
    price_rows,
)
from .report_pdf import report_pdf
from .whatif import compare

# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------


_MD_INLINE = str.maketrans({"\\": "\\\\", "$": "\\$", "|": "\\|", "*": "\\*", "`": "\\`", "[": "\\[",
                            "]": "\\]", "~": "\\~", "&": "&amp;", "<": "&lt;", ">": "&gt;",
                            "\n": " ", "\r": " "})
# an underscore opens or closes emphasis only at a word's edge (CommonMark), so ids like
# electricity_usd_per_kwh stay readable
_MD_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# what turns the start of a line into a heading, quote, list, rule or setext underline
_MD_LINE_START = re.compile(r"^(\s*\d*)((?<=\d)[.)]|(?<!\d)[#+-])(?=\s|$)")


def _md_escape(text: str) -> str:
    """Text as literal Markdown, whoever wrote it (a custom device's or model's name, an id, a source):
    HTML-significant characters become entities (no tag or script survives into the .md file), Markdown
    control characters are backslash-escaped, dollar signs stay literal (Streamlit reads $...$ as LaTeX)
    and table cells stay in one piece."""
    out = _MD_EDGE_UNDERSCORE.sub(r"\\_", str(text).translate(_MD_INLINE))
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), out, count=1)


def _md(blocks: list[Block]) -> str:
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


def report_markdown(e: Estimate, share_url: str | None = None, baseline: Estimate | None = None) -> str:
    """A printable Markdown summary: verdict, key figures with units, every assumption with its source;
    with a pinned `baseline`, both scenarios' key figures and the differences."""
    return _md(blocks(e, share_url, baseline))


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
.figure .modebar-container { display: none; }
@media (max-width: 640px) {
  body { margin: 1em auto; padding: 0 0.7em; font-size: 13px; }
  table { display: block; overflow-x: auto; }
  td.nowrap { white-space: normal; }
}
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10px; padding: 0; }
  h2 { page-break-after: avoid; break-after: avoid; }
  table, tr { page-break-inside: avoid; break-inside: avoid; }
  .figure { width: 100%; }
  .figure .js-plotly-plot, .figure .plot-container { width: 100% !important; }
  .verdict { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: #000; text-decoration: none; }
}
"""


_NOWRAP = {"date", "unit", "value used", "default", "status", "installed", "usable", "weights", "KV cache",
           "activations", "runtime", "free", "estimate", "band (low - high)", "roofline"}


def _html_blocks(blocks: list[Block], figures: dict[str, str]) -> str:
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


def _default_figures(e: Estimate, baseline: Estimate | None = None) -> dict[str, go.Figure]:
    """Memory per device, speed against users (with the baseline's curve as a faint trace) and (when
    priced) the cost breakdown of the estimate."""
    from .charts import cost_breakdown, memory_per_device, speed_vs_concurrency
    from .sweeps import published_points, speed_curve

    figs: dict[str, go.Figure] = {"memory_per_device": memory_per_device(e.memory)}
    if e.performance is None:  # does not fit: no speed chart as if it ran
        return figs
    # the sweeps reuse the estimate's deployment (imported models and custom devices need no catalog)
    base = speed_curve(baseline) if baseline is not None and baseline.fits else None
    figs["speed_vs_concurrency"] = speed_vs_concurrency(speed_curve(e), published_points(e), baseline=base)
    if e.cost is not None:
        figs["cost_breakdown"] = cost_breakdown(e)
    return figs


def report_html(e: Estimate, figures: dict[str, go.Figure] | None = None, share_url: str | None = None,
                baseline: Estimate | None = None) -> str:
    """A self-contained HTML page (inline CSS, plotly.js embedded once) with the same content as
    :func:`report_markdown` and the figures; opens offline and prints cleanly.

    ``figures``: {name: figure}; a name containing 'memory', 'speed'/'concurrency'/'context' or 'cost'
    is placed in that section, others under 'Charts'. None: memory per device, speed against users
    and the cost breakdown of `e`. ``baseline``: a pinned scenario compared with `e` (its own section, and
    its speed curve as a faint trace on the default speed chart).
    """
    figs = _default_figures(e, baseline) if figures is None else figures
    rendered: dict[str, str] = {}
    for i, (key, fig) in enumerate(figs.items()):
        rendered[key] = fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_width="100%",
                                    config={"displaylogo": False, "responsive": True})
    content = blocks(e, share_url, baseline)
    title = html.escape(content[0].text)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{title}</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n{_html_blocks(content, rendered)}\n</body>\n</html>\n")


# ------------------------------------------------------------------------------------------------
# JSON and CSV
# ------------------------------------------------------------------------------------------------


def report_json(e: Estimate, share_url: str | None = None, baseline: Estimate | None = None) -> str:
    """``e.as_dict()`` plus ``assumptions_sources`` (data/cost_assumptions.csv rows by key),
    ``other_sources`` (prices, engine policy, calibration) and ``share_url``; with a pinned `baseline`,
    ``baseline`` (its own object) and ``against_baseline`` (per key figure: unit, baseline, current,
    change, better: 'higher'/'lower', improved: true/false/null)."""
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
        "calibration": dict(calibration_rows(e)),
    }
    body = {**e.as_dict(), "assumptions_sources": {k: asdict(a) for k, a in assumption_sources().items()},
            "other_sources": other, "share_url": share_url}
    if baseline is not None:
        body["baseline"] = baseline.as_dict()
        body["against_baseline"] = {x.figure.key: {
            "unit": x.figure.unit, "baseline": x.baseline, "current": x.current, "change": x.change,
            "better": x.figure.better, "improved": x.improved} for x in compare(e, baseline)}
    return json.dumps(finite_json(body), indent=2, allow_nan=False, default=str)


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _speeds_csv(p: PerformanceEstimate) -> str:
    """speeds.csv: every speed with its band and roofline."""
    roof = {"decode_tokens_per_s_per_user": p.roofline_decode_tokens_per_s_per_user,
            "decode_tokens_per_s_total": p.roofline_decode_tokens_per_s_total,
            "prefill_tokens_per_s": p.roofline_prefill_tokens_per_s}
    speed_rows = [[name, b.value, b.low, b.high, roof.get(name, ""), "s" if name == "ttft_s" else "tok/s"]
                  for name, b in p.bands().items()]
    return _csv(["metric", "value", "low", "high", "roofline", "unit"], speed_rows)


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
    if p is None:  # does not fit: no speeds as if it ran
        speeds = _csv(["metric", "value", "low", "high", "roofline", "unit"], [])
    else:
        speeds = _speeds_csv(p)
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

    rows = [["cost", *row] for row in assumption_rows(e)]
    rows += [["price", r[0], r[1], "", "", r[2], "", r[3]] for r in price_rows(e)]
    rows += [["engine", r[0], r[1], "", "", "", "", r[2]] for r in engine_rows(e)]
    rows += [["calibration", r[0], r[1], "", "", "", "", ""] for r in calibration_rows(e)]
    assumptions = _csv(["group", "key", "value", "unit", "default", "date", "status", "source"], rows)
    return {"memory_per_device.csv": memory, "speeds.csv": speeds, "cost.csv": cost, "assumptions.csv": assumptions}


__all__ = ["report_markdown", "report_html", "report_pdf", "report_json", "tables_csv"]
