"""A real browser session: `streamlit run app.py` driven by Playwright in Debian's Chromium.

Chromium comes from the system (``apt-get install chromium``, done by ``.ci/run``); Playwright never
downloads a browser. If Chromium cannot start, the test fails loudly rather than skipping.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("K2CALC_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    yield from _serve()


@pytest.fixture
def fresh_server():
    """A server no page has been requested from yet (Streamlit starts in its legacy pages/ mode)."""
    yield from _serve()


def _serve():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with 'apt-get install chromium' "
                    "(.ci/run does) or set K2CALC_CHROMIUM")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_verdict_metric_and_a_changed_input(server, browser):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(server)
    expect(page.get_by_text("Fits.", exact=False).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("594.2 GB").first).to_be_visible(timeout=30_000)
    count = page.get_by_label("Count (GPUs or systems)", exact=True)
    count.fill("4")
    count.press("Enter")
    expect(page.get_by_text("Does not fit.", exact=False).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Smallest that fits", exact=False).first).to_be_visible()
    page.close()


def test_a_closed_sidebar_section_opens_and_keeps_what_was_set_in_it(server, browser):
    """The Advanced section draws its widgets only when switched on; what was set in it holds after it is
    switched off, and no other sidebar setting moves (a stateful st.expander reset them all)."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(server)
    expect(page.get_by_text("Fits.", exact=False).first).to_be_visible(timeout=30_000)
    expect(page.get_by_label("TP", exact=True)).to_have_count(0)
    page.get_by_text("Advanced: engine, parallelism, KV cache").click()
    tp = page.get_by_label("TP", exact=True)
    expect(tp).to_be_visible(timeout=30_000)
    tp.fill("4")
    tp.press("Enter")
    expect(page).to_have_url(re.compile(r"\?tp=4$"), timeout=30_000)  # the link holds TP and nothing else moved
    expect(page.get_by_text("Kimi K2 Thinking (INT4 g32 experts + BF16) on 8 x NVIDIA H200", exact=False).first
           ).to_be_visible()
    page.get_by_text("Advanced: engine, parallelism, KV cache").click()
    expect(page.get_by_text("Set in the closed sections: TP 4", exact=False)).to_be_visible(timeout=30_000)
    expect(page.get_by_label("TP", exact=True)).to_have_count(0)
    expect(page).to_have_url(re.compile(r"\?tp=4$"))
    page.close()


def test_share_link_slider_and_html_report(server, browser, tmp_path):
    """Open a share link, read the verdict and a metric, change an input and see the figure move, then
    download the HTML report and find the scenario in it."""
    link = f"{server}/?model=minimax-m2&quant=mlx-8bit&hardware=mac-studio-m3-ultra-512gb&count=1&concurrency=2"
    page = browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page.goto(link)
    expect(page.get_by_text("Fits.", exact=False).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("MiniMax M2", exact=False).first).to_be_visible()
    expect(page.get_by_text("243.0 GB").first).to_be_visible(timeout=30_000)  # MiniMax M2 at MLX 8-bit
    total = page.get_by_test_id("stMetric").filter(has_text="Decode total")
    before = total.inner_text()
    users = page.get_by_label("Concurrent users [sequences]", exact=True)
    users.fill("16")
    users.press("Enter")
    expect(total.filter(has_text="16 user(s)")).to_be_visible(timeout=30_000)
    assert total.inner_text() != before
    assert "concurrency=16" in page.url
    page.get_by_role("link", name="Report").click()
    button = page.get_by_role("button", name="HTML report")
    expect(button).to_be_visible(timeout=30_000)
    with page.expect_download(timeout=60_000) as download:
        button.click()
    path = tmp_path / "report.html"
    download.value.save_as(path)
    html = path.read_text()
    assert "MiniMax M2" in html and "Mac Studio" in html and "<html" in html.lower()
    page.close()


def test_dragging_the_users_slider_moves_speed_and_chart_and_the_link_restores_it(server, browser):
    """Move the users slider one step (keyboard on the slider's thumb, as a user dragging it by one
    notch): the exact box, the speed metric, the speed chart's marker and the address follow; reloading
    the address shows the same values."""
    link = f"{server}/?model=minimax-m2&quant=mlx-8bit&hardware=mac-studio-m3-ultra-512gb&count=1&concurrency=2"
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(link)
    total = page.get_by_test_id("stMetric").filter(has_text="Decode total")
    expect(total.filter(has_text="2 user(s)")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("your 2 user(s)")).to_be_visible(timeout=30_000)  # the speed chart's marker
    before = total.inner_text()
    slider = page.get_by_role("slider", name="Concurrent users [sequences], slider")
    expect(slider).to_have_attribute("aria-valuetext", "2")
    slider.focus()
    slider.press("ArrowRight")  # the next step on the powers-of-two scale
    expect(total.filter(has_text="4 user(s)")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("your 4 user(s)")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Concurrent users [sequences]", exact=True)).to_have_value("4")
    after = total.inner_text()
    assert after != before
    page.wait_for_url("**concurrency=4**", timeout=30_000)
    page.goto(page.url)  # reload the link
    expect(total.filter(has_text="4 user(s)")).to_be_visible(timeout=30_000)
    assert total.inner_text() == after
    expect(page.get_by_role("slider", name="Concurrent users [sequences], slider")).to_have_attribute(
        "aria-valuetext", "4")
    expect(page.get_by_text("your 4 user(s)")).to_be_visible(timeout=30_000)
    page.close()


def test_a_page_link_as_the_first_request_keeps_the_sidebar(fresh_server, browser):
    """The first request after start is a sub-page link: the app must still run through app.py
    (sidebar scenario, the link's settings), not Streamlit's legacy pages/ mode."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{fresh_server}/compare_models?model=minimax-m2&count=4")
    expect(page.get_by_role("heading", name="Compare models")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Scenario", exact=True)).to_be_visible()
    expect(page.get_by_text("4 x NVIDIA H200 SXM 141GB", exact=False).first).to_be_visible()
    page.close()


def test_fix_button_api_split_and_pdf_report(server, browser, tmp_path):
    """A setup that does not fit offers its fixes as buttons; one click opens the fixed scenario, whose
    first screen shows the API's list prices and the blended price with its formula; the Report page's
    PDF downloads, and its first page renders and carries the verdict (issue 11)."""
    import pypdfium2 as pdfium

    page = browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page.goto(f"{server}/?count=4")
    expect(page.get_by_text("Does not fit.", exact=False).first).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stMetric").filter(has_text="Decode per user")).to_have_count(0)
    page.get_by_role("button", name="8 x NVIDIA H200 SXM 141GB", exact=False).first.click()
    expect(page.get_by_text("Fits.", exact=False).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Moonshot prices (2025-11): input $0.60", exact=False)).to_be_visible(timeout=30_000)
    expect(page.get_by_text("= $7.30 per 1M output tokens", exact=False)).to_be_visible()
    page.get_by_role("link", name="Report").click()
    button = page.get_by_role("button", name="PDF (A4)")
    expect(button).to_be_visible(timeout=30_000)
    with page.expect_download(timeout=120_000) as download:
        button.click()
    path = tmp_path / "report.pdf"
    download.value.save_as(path)
    doc = pdfium.PdfDocument(str(path))
    try:
        doc[0].render(scale=1).to_pil().save(tmp_path / "page1.png")
        first = " ".join(doc[0].get_textpage().get_text_range().split())
    finally:
        doc.close()
    assert "FITS: Kimi K2 Thinking fits on 8 x NVIDIA H200 SXM 141GB" in first
    assert (tmp_path / "page1.png").stat().st_size > 10_000
    page.close()
