"""The report as an A4 PDF: the same blocks as the Markdown and HTML reports (scenario, verdict, key
numbers, memory, speed, cost, assumptions with dates and sources, the share link) and static charts.

Libraries (why these): fpdf2 writes the PDF in pure Python (no browser, no system library), and
matplotlib draws the charts as PNG without a browser either; plotly's own static export (kaleido) needs
a Chrome install on the server, which the app does not require. Both are long-maintained. The text
font is matplotlib's bundled DejaVu Sans, so any name a user types (accents, CJK aside) prints.
"""

from __future__ import annotations

import io
from pathlib import Path

from .charts import (
    COMPONENT_COLOURS,
    OPTION_COLOURS,
    SPEED_COLOURS,
    log_ticks,
    memory_panels,
)
from .estimate import Estimate
from .report_content import Block, blocks
from .units import GiB

A4_WIDTH_MM, MARGIN_MM = 210.0, 14.0
TEXT_WIDTH_MM = A4_WIDTH_MM - 2 * MARGIN_MM
FIGURE_DPI = 150
FIGURE_WIDTH_MM = 150.0


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


# ------------------------------------------------------------------------------------------------
# Static charts (matplotlib, PNG)
# ------------------------------------------------------------------------------------------------


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figure(rows: int = 1, height_in: float = 3.2):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(7.0, height_in), sharex=True, squeeze=False)
    return fig, [a[0] for a in axes]


def _log_axis(ax, which: str, values) -> None:
    ticks, labels = log_ticks(values)
    getattr(ax, f"set_{which}scale")("log")
    if ticks:
        getattr(ax, f"set_{which}ticks")(ticks, labels)
        getattr(ax, f"set_{which}lim")(ticks[0], ticks[-1])
        (ax.xaxis if which == "x" else ax.yaxis).set_minor_locator(_null_locator())


def _usd_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"${v:,.0f}")


def _max_n_locator(n: int):
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(n)


def _null_locator():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def speed_png(e: Estimate) -> bytes | None:
    """Decode speed per user and in total against concurrent users [tok/s], log axes, with the band,
    the roofline, the scenario's users and the published runs on the same hardware."""
    from .sweeps import published_points, speed_curve

    if e.performance is None:
        return None
    curve, points = speed_curve(e), published_points(e)
    fig, axes = _figure(2, 5.2)
    x = list(curve["concurrency"])
    for ax, key, col, low, high, roof, metrics in (
            (axes[0], "per user", "per_user_tok_s", "per_user_low_tok_s", "per_user_high_tok_s",
             "roofline_per_user_tok_s", {"decode_tokens_per_s_per_user"}),
            (axes[1], "total", "total_tok_s", "total_low_tok_s", "total_high_tok_s", "roofline_total_tok_s",
             {"decode_tokens_per_s_total", "output_tokens_per_s_total"})):
        colour = SPEED_COLOURS[key]
        ax.fill_between(x, curve[low], curve[high], color=colour, alpha=0.2, linewidth=0, label="uncertainty band")
        ax.plot(x, curve[col], color=colour, linewidth=2, marker="o", markersize=3, label=f"decode {key}")
        ax.plot(x, curve[roof], color=colour, linewidth=1, linestyle="--", label="roofline")
        same = points[points["same_hardware"].astype(bool) & points["metric"].isin(metrics)] if len(points) else points
        if len(same):
            ax.scatter(same["concurrency"], same["measured"], marker="D", color=colour, s=18, zorder=3,
                       label="published, same hardware")
        unfit = curve.loc[~curve["fits"].astype(bool), "concurrency"]
        if len(unfit):
            ax.axvspan(unfit.min(), max(x), color="#8C8C8C", alpha=0.15, linewidth=0)
        ax.axvline(e.scenario.concurrency, color="#8C8C8C", linestyle=":")
        values = [v for c in (col, low, high, roof) for v in curve[c]] + (list(same["measured"]) if len(same) else [])
        _log_axis(ax, "y", values)
        ax.set_ylabel(f"{'per user' if key == 'per user' else 'all users'} [tok/s]")
        ax.grid(True, color="#D0D7DE", linewidth=0.5)
        ax.legend(fontsize=6, loc="best")
    xs = x + (list(points["concurrency"]) if len(points) else [])
    _log_axis(axes[1], "x", xs)
    axes[1].set_xlabel(f"concurrent users [count] (dotted: your {e.scenario.concurrency:,}; grey: KV cache does not fit)")
    axes[0].set_title("Decode speed against concurrent users", fontsize=10, loc="left")
    return _png(fig)


def memory_png(e: Estimate) -> bytes:
    """Memory per device [GiB], stacked: weights, KV cache, activations, runtime, free; usable marks.
    A host's system RAM far larger than its GPUs gets its own panel (as on the app's chart)."""
    import matplotlib.pyplot as plt

    panels = memory_panels(e.memory.devices)
    fig, axes = plt.subplots(1, len(panels), figsize=(7.0, 2.8), squeeze=False,
                             gridspec_kw={"width_ratios": [7, 3][:len(panels)]})
    for ax, devices, ylabel in zip(axes[0], panels, ("memory per device [GiB]", "system RAM [GiB]")):
        names = [d.name.split(" (")[0] for d in devices]
        bottom = [0.0] * len(devices)
        for label, values in (("weights", [d.weights_bytes for d in devices]),
                              ("KV cache", [d.kv_bytes for d in devices]),
                              ("activations", [d.activation_bytes for d in devices]),
                              ("runtime", [d.overhead_bytes for d in devices]),
                              ("free", [max(0, d.free_bytes) for d in devices])):
            gib = [v / GiB for v in values]
            ax.bar(names, gib, bottom=bottom, color=COMPONENT_COLOURS[label], label=label)
            bottom = [b + g for b, g in zip(bottom, gib)]
        ax.scatter(names, [d.usable_bytes / GiB for d in devices], marker="_", s=400, color="#444", label="usable")
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", color="#D0D7DE", linewidth=0.5)
        ax.tick_params(axis="x", labelsize=7)
    fig.subplots_adjust(wspace=0.45)
    axes[0][0].set_title("Memory per device", fontsize=10, loc="left")
    axes[0][0].legend(fontsize=6, ncol=6, loc="upper left", bbox_to_anchor=(0, -0.12))
    return _png(fig)


def cost_png(e: Estimate) -> bytes | None:
    """A year of the same output tokens [USD/year]: owning (capital + running costs), renting, the API."""
    c = e.cost
    if c is None:
        return None
    tokens_m = c.output_tokens_per_year / 1e6
    bars = [("buy: own the hardware", c.annual_capital_usd + c.annual_opex_usd, OPTION_COLOURS["buy"])]
    if c.cloud_usd_per_million_output_tokens is not None:
        bars.append(("rent the same GPUs", c.cloud_usd_per_million_output_tokens * tokens_m, OPTION_COLOURS["rent"]))
    if c.api_usd_per_million_output_tokens is not None:
        bars.append((f"API ({c.api_provider})", c.api_usd_per_million_output_tokens * tokens_m, OPTION_COLOURS["API"]))
    fig, (ax,) = _figure(1, 0.5 + 0.45 * len(bars))
    ax.barh([b[0] for b in bars][::-1], [b[1] for b in bars][::-1], color=[b[2] for b in bars][::-1])
    for i, (_, value, _) in enumerate(bars[::-1]):
        ax.text(value, i, f" ${value:,.0f}", va="center", fontsize=7)
    ax.set_xlabel(f"cost of {c.output_tokens_per_year / 1e9:,.2f} billion output tokens a year [USD/year]")
    ax.xaxis.set_major_formatter(_usd_formatter())
    ax.xaxis.set_major_locator(_max_n_locator(5))
    ax.set_title("A year of the same tokens: buy, rent or API", fontsize=10, loc="left")
    ax.margins(x=0.18)
    return _png(fig)


# ------------------------------------------------------------------------------------------------
# The PDF
# ------------------------------------------------------------------------------------------------


def _pdf():
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(True, margin=MARGIN_MM)
    fonts = _font_dir()
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_title("k2calc report")
    pdf.set_creator("k2calc")
    pdf.add_page()
    return pdf


def _table(pdf, b: Block) -> None:
    pdf.set_font("DejaVu", size=7)
    widths = _column_widths(b)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=3.4, padding=0.8,
                   headings_style=_heading_style()) as table:
        table.row([str(h) for h in b.header])
        for r in b.rows:
            table.row([str(c) for c in r])
    pdf.ln(2)


def _heading_style():
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(246, 248, 250))


def _column_widths(b: Block) -> tuple[float, ...]:
    """Column widths [relative] from each column's longest cell (at most 60 characters' worth) and its
    longest word, so a date or a number never breaks inside and a source gets the room it needs."""
    cells = [[str(b.header[i])] + [str(r[i]) for r in b.rows if i < len(r)] for i in range(len(b.header))]
    return tuple(max(min(max(len(c) for c in col), 50),
                     min(2.0 * max(len(w) for c in col for w in (c.split() or [""])), 40), 3) for col in cells)


def _text(pdf, text: str, size: float = 9, bold: bool = False, fill: tuple[int, int, int] | None = None) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", size=size)
    pdf.set_x(MARGIN_MM)
    if fill is not None:
        pdf.set_fill_color(*fill)
    pdf.multi_cell(TEXT_WIDTH_MM, size * 0.5, text, fill=fill is not None, padding=1.5 if fill else 0,
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_fill_color(255, 255, 255)


def _image(pdf, png: bytes | None) -> None:
    if png:
        width = FIGURE_WIDTH_MM
        pdf.image(io.BytesIO(png), x=MARGIN_MM + (TEXT_WIDTH_MM - width) / 2, w=width)
        pdf.ln(2)


def report_pdf(e: Estimate, share_url: str | None = None, baseline: Estimate | None = None) -> bytes:
    """The report as an A4 PDF [bytes]: the verdict and key numbers on the first page, then memory,
    speed and cost each with its chart, and every assumption with its date and source."""
    pdf = _pdf()
    charts = {"memory": lambda: memory_png(e), "speed": lambda: speed_png(e), "cost": lambda: cost_png(e)}
    section = ""
    for b in blocks(e, share_url, baseline):
        if b.kind in ("h1", "h2") and section in charts:
            _image(pdf, charts.pop(section)())
        if b.kind in ("h1", "h2"):
            section = b.anchor
        if b.kind == "h1":
            _text(pdf, b.text, 15, bold=True)
            pdf.ln(1)
        elif b.kind == "h2":
            pdf.ln(2)
            _text(pdf, b.text, 12, bold=True)
            pdf.ln(1)
        elif b.kind == "h3":
            _text(pdf, b.text, 10, bold=True)
        elif b.kind == "p":
            _text(pdf, b.text)
            pdf.ln(1)
        elif b.kind == "verdict":
            _text(pdf, b.text, 11, bold=True, fill=(218, 251, 225) if b.ok else (255, 235, 233))
            pdf.ln(2)
        elif b.kind == "list":
            for item in b.items:
                _text(pdf, f"\u2022 {item}")
            pdf.ln(1)
        elif b.kind == "table":
            _table(pdf, b)
    if section in charts:
        _image(pdf, charts.pop(section)())
    return bytes(pdf.output())


__all__ = ["report_pdf", "speed_png", "memory_png", "cost_png"]
