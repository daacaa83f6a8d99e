"""``python -m k2calc benchmark``: how long one estimate (target: under 2 ms) and one planner sweep
(target: under 1 s on one core) take in-process.

Times :func:`k2calc.estimate.estimate` on representative scenarios after a warm-up call (catalog
loading and caches are one-off costs) and prints the median and 95th percentile per call.
"""

from __future__ import annotations

import statistics
import time

from .estimate import estimate
from .planner import Constraints, Workload, plan
from .scenario import Scenario

SCENARIOS = {
    "K2 Thinking, 8x H200, vLLM, 256K": dict(model="kimi-k2-thinking", hardware="h200-sxm", count=8, context=262144),
    "K2 Thinking, 2x 4090 + 2x 8488C": dict(model="kimi-k2-thinking", hardware="rtx-4090", count=2,
                                            cpu="xeon-platinum-8488c", ram_gb=2048),
    "MiniMax M2, Mac Studio 512 GB, 8-bit": dict(model="minimax-m2", quant="mlx-8bit",
                                                 hardware="mac-studio-m3-ultra-512gb", count=1),
    "DeepSeek V3, 8x B200, SGLang, 64 users": dict(model="deepseek-v3", hardware="b200", count=8, engine="sglang",
                                                   concurrency=64),
}


def run(repeat: int = 200) -> str:
    """Time every scenario `repeat` times; return the printed table [ms per call]."""
    lines = [f"{'scenario':42s} {'median ms':>10s} {'p95 ms':>8s}  calls"]
    for name, values in SCENARIOS.items():
        scenario = Scenario.build(**values)
        estimate(scenario)  # warm-up: catalogs and caches
        times = []
        for _ in range(max(1, repeat)):
            start = time.perf_counter()
            estimate(scenario)
            times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        lines.append(f"{name:42s} {statistics.median(times):10.3f} {p95:8.3f}  {len(times)}")
    lines.append("target: a single estimate under 2 ms of compute (issue 3)")
    w = Workload(users=50, tokens_per_s_per_user=20, input_tokens=8192, output_tokens=1024)
    plan(w, Constraints())  # warm-up
    runs = [plan(w, Constraints()) for _ in range(3)]
    best = min(r.seconds for r in runs)
    lines.append(f"planner: Kimi K2 Thinking, 50 users x 20 tok/s, 8K in / 1K out: {runs[0].candidates} candidate "
                 f"deployments in {best:.2f} s (best of 3; target under 1 s on one core)")
    return "\n".join(lines)
