"""App speed targets (issues 5 and 16), printed as figures:

* a rerun after changing the users number box on the calculator page: median server time over 20 reruns
  (< 300 ms);
* a rerun after dragging a what-if slider (users: new physics for each step the first time; electricity:
  a cost slider, which only re-prices): median over 20 reruns (< 300 ms), with a pinned baseline;
* time from ``streamlit run app.py`` to the server answering its health check (< 5 s).

Run from the repository root: ``python benchmarks/app_speed.py``.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _quiet_streamlit() -> None:
    """AppTest runs without a server, and Streamlit warns about that ('missing ScriptRunContext', 'No
    runtime found') on every run: figures only, no framework warnings."""
    import streamlit.logger

    streamlit.logger.set_log_level("error")


def _app():
    """The app under AppTest, behaving as the server does after the first st.navigation call."""
    _quiet_streamlit()
    import streamlit.runtime.pages_manager as pages_manager
    import streamlit.testing.v1.app_test as app_test
    from streamlit.testing.v1 import AppTest

    class ServerLikePagesManager(pages_manager.PagesManager):
        """As the server does after the first st.navigation call (see tests/app/conftest.py)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pages_manager.PagesManager.uses_pages_directory = False

    app_test.PagesManager = ServerLikePagesManager
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    return at


def rerun_times(reruns: int = 20) -> list[float]:
    """Server time [ms] of each rerun after changing the concurrency number box (AppTest, in-process)."""
    at = _app()
    return _timed(at, reruns, lambda i: at.sidebar.number_input(key="concurrency").set_value(1 + (i % 16)))


def _timed(at, reruns: int, change) -> list[float]:
    """Server time [ms] of each rerun after `change(i)` sets the i-th input."""
    times = []
    for i in range(reruns):
        change(i)
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1e3)
        if at.exception:
            raise SystemExit(f"the app raised: {at.exception}")
    return times


def slider_times(field: str, reruns: int = 20, pin: bool = True, cold: bool = False) -> list[float]:
    """Server time [ms] of each rerun after dragging the what-if slider of `field` to its next step (and
    back at the end of its scale), with a pinned baseline when `pin` (deltas and the baseline trace drawn).
    ``cold``: the app's caches are emptied first, so each step is computed once."""
    at = _app()
    if pin:
        at.sidebar.button(key="pin_baseline").click().run()
    from k2calc.whatif import COST_SCALES, workload_scales

    scenario = at.session_state["scenario"]
    steps = list(COST_SCALES.get(field) or workload_scales(scenario)[field])
    i = steps.index(at.sidebar.select_slider(key=f"{field}_slider").value)
    if cold:
        import streamlit as st
        st.cache_data.clear()
        st.cache_resource.clear()
    def drag(k: int) -> None:
        at.sidebar.select_slider(key=f"{field}_slider").set_value(steps[(i + 1 + k) % len(steps)])
    return _timed(at, reruns, drag)


def startup_seconds() -> float:
    """Seconds from launching `streamlit run app.py` to a healthy server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < 60:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise SystemExit("streamlit did not start within 60 s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    times = rerun_times()
    print(f"calculator rerun after typing a number of users: median {statistics.median(times):.0f} ms, "
          f"max {max(times):.0f} ms over {len(times)} reruns (target: median under 300 ms)")
    for field, words in (("concurrency", "users slider"),
                         ("electricity_usd_per_kwh", "electricity slider (cost only: re-priced, no physics)")):
        times = slider_times(field)
        print(f"calculator rerun after dragging the {words}, baseline pinned: median "
              f"{statistics.median(times):.0f} ms, max {max(times):.0f} ms over {len(times)} reruns "
              "(target: median under 300 ms)")
    cold = slider_times("concurrency", reruns=7, cold=True)  # caches emptied: each of 7 steps computed once
    print(f"  the users slider's first visit to each step (caches emptied, physics computed): median "
          f"{statistics.median(cold):.0f} ms, max {max(cold):.0f} ms over {len(cold)} reruns")
    print(f"streamlit run to healthy server: {startup_seconds():.1f} s (target: under 5 s)")
