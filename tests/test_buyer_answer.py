"""The buyer's answer (issue 11): API prices with their formula and the self-host verdict, the longest
context within the model's maximum, human names in the CLI, readable log ticks, and the PDF report
(its first page rendered to PNG and read back for the verdict)."""

from __future__ import annotations

import io
import math
from contextlib import contextmanager

import pypdfium2 as pdfium
import pytest

from k2calc.charts import log_ticks
from k2calc.cli import main
from k2calc.cost import load_api_prices
from k2calc.estimate import estimate
from k2calc.models import load_models
from k2calc.report_content import (
    api_formula_text,
    api_verdict_text,
    longest_context,
    longest_context_text,
)
from k2calc.report_pdf import report_pdf
from k2calc.scenario import Scenario

# ------------------------------------------------------------------------------------------------
# API prices
# ------------------------------------------------------------------------------------------------

# Every catalog model with a public per-token price (issue 11 point 3); the rows carry a date and a source.
PRICED = {"kimi-k2-thinking", "kimi-k2-instruct", "minimax-m2", "deepseek-v3", "gpt-oss-120b", "gpt-oss-20b",
          "glm-4.6", "qwen3-235b-a22b", "llama-3.1-70b", "llama-3.1-8b"}


def test_every_catalog_model_with_a_public_price_has_a_dated_sourced_row():
    rows = load_api_prices()
    assert PRICED <= {r.model_id for r in rows} and PRICED <= set(load_models())
    for r in rows:
        assert r.date[:4].isdigit() and len(r.source) > 20 and r.output_usd_per_mtok > 0


def test_blended_api_price_formula_for_k2_thinking():
    # Moonshot (facts.md E): $2.50 output + 8,192 / 1,024 = 8 prompt tokens per answer token x $0.60 = $7.30
    e = estimate(Scenario())
    assert e.cost.api_usd_per_million_output_tokens == pytest.approx(7.30)
    text = api_formula_text(e)
    assert "output $2.50 + 8.0 x input $0.60" in text and "= $7.30 per 1M output tokens" in text
    # half the prompt tokens cached at $0.15: 2.50 + 8 x (0.5 x 0.60 + 0.5 x 0.15) = $5.50
    cached = estimate(Scenario(cache_hit_rate=0.5))
    assert cached.cost.api_usd_per_million_output_tokens == pytest.approx(5.50)
    assert "(50% x $0.60 + 50% cached x $0.15)" in api_formula_text(cached)


def test_self_host_verdict_names_the_break_even_month_or_never():
    e = estimate(Scenario())  # $7.30 API against far more self-hosted at one user
    assert e.cost.breakeven_months is None and "never pays back" in api_verdict_text(e)
    # at $100 per 1M output tokens, 8 x $0.60 + $100 = $104.80 per 1M from the API: buying pays back
    dear = estimate(Scenario(concurrency=16, api_output_usd_per_mtok=100.0))
    months = dear.cost.breakeven_months
    assert months is not None and f"{months:,.1f} months" in api_verdict_text(dear)


def test_cli_prints_the_list_prices_formula_and_verdict(capsys):
    assert main(["estimate"]) == 0
    out = capsys.readouterr().out
    assert "Moonshot prices (2025-11): input $0.60, cached input $0.15, output $2.50 per 1M tokens" in out
    assert "= $7.30 per 1M output tokens" in out and "verdict: The API is cheaper" in out


# ------------------------------------------------------------------------------------------------
# Context and names
# ------------------------------------------------------------------------------------------------


def test_longest_context_never_exceeds_the_models_maximum(capsys):
    e = estimate(Scenario(context=262_144))  # the KV cache holds 723,840 tokens at one user
    tokens, capped = longest_context(e)
    assert e.memory.max_context_tokens > 262_144 and (tokens, capped) == (262_144, True)
    assert "room for more users: 2 at 262,144 tokens" in longest_context_text(e)
    assert main(["estimate", "--context", "262144"]) == 0
    out = capsys.readouterr().out
    assert "longest context at 1 user(s): 262,144 tokens" in out and "723,852" not in out


def test_cli_names_model_hardware_and_hybrid_box_in_full(capsys):
    assert main(["estimate", "--hardware", "rtx-4090", "--count", "2", "--cpu", "xeon-platinum-8488c",
                 "--ram-gb", "2048"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("Kimi K2 Thinking (INT4 g32 experts + BF16) on 2 x NVIDIA GeForce RTX 4090 24GB + "
                            "2 x Intel Xeon Platinum 8488C (Sapphire Rapids, 48C) with 2 TiB RAM")
    assert "rtx-4090" not in out and "xeon-platinum-8488c" not in out
    assert "System RAM (2x Intel Xeon Platinum 8488C (Sapphire Rapids, 48C))" in out  # never cut


def test_estimate_help_shows_defaults_and_sensitivity_names_its_base(capsys):
    with pytest.raises(SystemExit):
        main(["estimate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("(default: kimi-k2-thinking)", "(default: h200-sxm)", "(default: 32768)", "(default: 8192)",
                   "(default 0.13 USD/kWh, 2025-12)", "(default 0.5 share of hours"):
        assert needle in text, needle
    assert main(["sensitivity", "--concurrency", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("base: Kimi K2 Thinking (INT4 g32 experts + BF16) on 8 x NVIDIA H200 SXM 141GB")
    assert out[1].startswith("base figures: $") and "API $7.30" in out[1]


# ------------------------------------------------------------------------------------------------
# Charts
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[3, 70], [1, 1], [0.3, 1500], [0.05, 0.9], [7, 7_000_000], [113.6, 2_000]])
def test_log_ticks_are_1_2_5_steps_that_cover_every_value(values):
    ticks, labels = log_ticks(values)
    assert ticks[0] <= min(values) and ticks[-1] >= max(values)
    for t, label in zip(ticks, labels):
        mantissa = t / 10 ** math.floor(math.log10(t) + 1e-9)
        assert round(mantissa, 6) in (1, 2, 5)
        assert float(label.replace(",", "")) == pytest.approx(t)
    assert ticks == sorted(set(ticks))


# ------------------------------------------------------------------------------------------------
# The PDF report
# ------------------------------------------------------------------------------------------------


@contextmanager
def _document(pdf: bytes):
    """The PDF opened with pypdfium2, closed afterwards."""
    doc = pdfium.PdfDocument(pdf)
    try:
        yield doc
    finally:
        doc.close()


def _pages(pdf: bytes) -> list[str]:
    with _document(pdf) as doc:
        return [" ".join(doc[i].get_textpage().get_text_range().split()) for i in range(len(doc))]


def _images(pdf: bytes) -> int:
    """Raster images (the charts) in the whole PDF [count]."""
    with _document(pdf) as doc:
        return sum(len(list(doc[i].get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE]))) for i in range(len(doc)))


def test_pdf_first_page_renders_with_the_verdict_key_numbers_and_share_link():
    e = estimate(Scenario(concurrency=8))
    pdf = report_pdf(e, share_url="http://localhost:8501/?concurrency=8")
    with _document(pdf) as doc:
        width, height = doc[0].get_size()
        image = doc[0].render(scale=1).to_pil().convert("L")
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    out = io.BytesIO()
    image.save(out, format="PNG")
    assert out.getvalue().startswith(b"\x89PNG") and image.getextrema()[0] < 100  # text was drawn
    first = _pages(pdf)[0]
    assert "FITS: Kimi K2 Thinking fits on 8 x NVIDIA H200 SXM 141GB with 8 sequence(s)" in first
    assert "http://localhost:8501/?concurrency=8" in first
    p = e.performance
    assert f"{p.decode_tokens_per_s_per_user:,.1f} tok/s per user" in first
    assert "Self-host or API" in first


def test_pdf_has_charts_and_every_assumption_with_its_date_and_source():
    pdf = report_pdf(estimate(Scenario(concurrency=8)))
    assert _images(pdf) == 3  # memory, speed, cost
    text = " ".join(_pages(pdf))
    assert "Assumptions and sources" in text and "electricity" in text and "2025-12" in text and "EIA" in text
    assert "Moonshot AI platform pricing for kimi-k2-thinking" in text


def test_pdf_of_a_setup_that_does_not_fit_says_so_first_and_has_no_speed_chart():
    pdf = report_pdf(estimate(Scenario(model="minimax-m2", hardware="dgx-spark", count=1)))
    first = _pages(pdf)[0]
    assert "Does not fit" in first and "tok/s per user" not in first
    assert _images(pdf) == 1  # memory only
