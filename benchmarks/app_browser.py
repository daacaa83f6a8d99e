"""App speed as a person sees it, in a real browser (issue 11): Chromium (Debian's, driven by Playwright)
against ``streamlit run app.py``, printing

* first load: from opening the page to the first key figure (a metric) on screen, in fresh browser
  sessions (the first one also warms the server's caches: reported on its own line);
* rerun: from typing a new number of users (and Enter) to the Calculator showing that number's figures.

Targets: first metric under 2 s, rerun under 300 ms. Run from the repository root:
``python benchmarks/app_browser.py [--loads 5] [--reruns 10]``. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("K2CALC_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
METRIC = "[data-testid='stMetric']"


def _serve() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false", "--logger.level", "error"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("streamlit did not start within 60 s")


# Records, in the page itself, when the first key figure enters the document (ms since navigation
# start): Playwright's own polling runs on the page's main thread, which a chart's script may keep busy
# after the figure is already on screen.
_RECORD_FIRST_METRIC = """
new MutationObserver((_, observer) => {
  if (document.querySelector("[data-testid='stMetric']")) {
    window.__firstMetricMs = performance.now();
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


def first_metric_seconds(browser, url: str) -> tuple[float, float]:
    """(seconds from navigation start to the first key figure in the document, seconds until Playwright
    sees it visible) in a fresh session."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_init_script(_RECORD_FIRST_METRIC)
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    page.locator(METRIC).first.wait_for(state="visible", timeout=60_000)
    seen = time.perf_counter() - start
    in_document = page.evaluate("window.__firstMetricMs") / 1e3
    context.close()
    return in_document, seen


# Waits, in the page, for a text to appear and records when (ms since the page's time origin).
_RECORD_TEXT = """
(text) => {
  window.__textAt = null;
  window.__enterAt = performance.now();
  new MutationObserver((_, observer) => {
    if (document.body.innerText.includes(text)) { window.__textAt = performance.now(); observer.disconnect(); }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""


def rerun_seconds(browser, url: str, reruns: int) -> list[tuple[float, float]]:
    """(seconds in the page, seconds until the driver saw it) from pressing Enter on a new users count to
    the 'Decode total, N user(s)' figure for it."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(url)
    page.locator(METRIC).first.wait_for(state="visible", timeout=60_000)
    box = page.get_by_label("Concurrent users [sequences]", exact=True)
    times = []
    for i in range(reruns):
        users = 2 + i % 12
        text = f"Decode total, {users:,} user(s)"
        box.fill(str(users))
        page.evaluate(_RECORD_TEXT, text)
        start = time.perf_counter()
        box.press("Enter")
        page.get_by_text(text, exact=True).wait_for(state="visible", timeout=60_000)
        seen = time.perf_counter() - start
        in_page = page.evaluate("window.__textAt === null ? null : (window.__textAt - window.__enterAt) / 1000")
        times.append((in_page if in_page is not None else seen, seen))
    page.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=5, help="fresh browser sessions timed after the first")
    parser.add_argument("--reruns", type=int, default=10, help="users changes timed")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    proc, url = _serve()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            cold = first_metric_seconds(browser, url)
            warm = [first_metric_seconds(browser, url) for _ in range(args.loads)]
            reruns = rerun_seconds(browser, url, args.reruns)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"first load to the first key figure, first session after server start: {cold[0]:.2f} s in the page "
          f"({cold[1]:.2f} s until the driver saw it)")
    docs, seen = [w[0] for w in warm], [w[1] for w in warm]
    print(f"first load to the first key figure, new sessions: median {statistics.median(docs):.2f} s, max "
          f"{max(docs):.2f} s over {len(warm)} (target: under 2 s); the driver saw it after a median "
          f"{statistics.median(seen):.2f} s")
    in_page, seen = [r[0] for r in reruns], [r[1] for r in reruns]
    print(f"rerun after typing a users count, to its figures in the page: median {statistics.median(in_page) * 1e3:.0f} "
          f"ms, max {max(in_page) * 1e3:.0f} ms over {len(reruns)} (target: under 300 ms); the driver saw them after "
          f"a median {statistics.median(seen) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
