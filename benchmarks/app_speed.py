"""App speed targets (issue 5), printed as figures:

* a rerun after moving a slider on the calculator page: median server time over 20 reruns (< 300 ms);
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


def rerun_times(reruns: int = 20) -> list[float]:
    """Server time [ms] of each rerun after changing the concurrency slider (AppTest, in-process)."""
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
    times = []
    for i in range(reruns):
        at.sidebar.number_input(key="concurrency").set_value(1 + (i % 16))
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1e3)
        if at.exception:
            raise SystemExit(f"the app raised: {at.exception}")
    return times


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
    print(f"calculator rerun after moving a slider: median {statistics.median(times):.0f} ms, "
          f"max {max(times):.0f} ms over {len(times)} reruns (target: median under 300 ms)")
    print(f"streamlit run to healthy server: {startup_seconds():.1f} s (target: under 5 s)")
