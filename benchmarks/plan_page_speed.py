"""Plan page speed (issue 14), printed as figures: the rerun after changing the users or the speed each
user needs (the per-configuration invariants already cached by the first run), median and worst over 10
reruns, in wall and CPU seconds of this process (target: under 1 s).

Run from the repository root: ``python benchmarks/plan_page_speed.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from app_speed import _app  # noqa: E402  (the app as the server runs it)


def main(reruns: int = 10) -> None:
    at = _app()
    at.switch_page("pages/plan.py").run()
    wall, cpu = [], []
    for i in range(reruns):
        if i % 2:
            at.number_input(key="plan_slo").set_value(15.0 + i)
        else:
            at.number_input(key="plan_users").set_value(40 + i)
        start, start_cpu = time.perf_counter(), time.process_time()
        at.button[0].click().run()  # the form's Plan button
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if at.exception:
            raise SystemExit(f"the page raised: {at.exception}")
    print(f"Plan page rerun after a change of users or speed: median {statistics.median(wall):.2f} s wall "
          f"({statistics.median(cpu):.2f} s CPU), worst {max(wall):.2f} s wall ({max(cpu):.2f} s CPU), "
          f"{reruns} reruns; target under 1 s")


if __name__ == "__main__":
    main()
