"""Measured against predicted: every published measurement run through the model.

``python -m k2calc validate`` prints, per row of ``data/measurements.csv`` that maps onto a catalog
scenario: the scenario, the measured value, the prediction, their ratio, whether the measurement lies
inside the prediction's uncertainty band, and the roofline; then the summary the targets are stated in
(share of decode rows within 1.5x, share of prefill/TTFT rows within 2x, median |log2 ratio|).

Calibration method (how the parameters in ``performance.py`` were set): each platform's bandwidth
efficiency and per-layer latency come from batch-1 decode rows (bandwidth-bound plus fixed latency),
the decode compute efficiency per kernel and platform from the rows at 16-100 users (where the step
time grows with the batch), the prefill efficiency from long-prompt rows; one value per class, never
per row. The band of a class is its rows' spread (see :func:`band_factor`).
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from functools import lru_cache

from .errors import K2CalcError
from .measurements import Measurement, load_measurements
from .memory import estimate_memory
from .performance import (
    DEFAULT_BAND,
    FAR_BAND,
    UNCERTAINTY_PATH,
    PerformanceEstimate,
    calibration_class,
    estimate_performance,
    prefill_time,
)
from .scenario import Scenario, resolve

SPEED_METRICS = {
    "decode_tokens_per_s_per_user": ("decode_tokens_per_s_per_user", "roofline_decode_tokens_per_s_per_user"),
    "decode_tokens_per_s_total": ("decode_tokens_per_s_total", "roofline_decode_tokens_per_s_total"),
    "output_tokens_per_s_total": ("output_tokens_per_s_total", "roofline_decode_tokens_per_s_total"),
    "prefill_tokens_per_s": ("prefill_tokens_per_s", "roofline_prefill_tokens_per_s"),
    "ttft_s": ("ttft_s", None),
}
DECODE = {"decode_tokens_per_s_per_user", "decode_tokens_per_s_total", "output_tokens_per_s_total"}
MIN_BAND = 1.3


@dataclass(frozen=True)
class Row:
    """One measurement and its prediction."""

    measurement: Measurement
    scenario: Scenario
    predicted: float
    roofline: float | None
    klass: str

    @property
    def ratio(self) -> float:
        """measured / predicted [1]."""
        return self.measurement.value / self.predicted

    @property
    def kind(self) -> str:
        return "decode" if self.measurement.metric in DECODE else "prefill/ttft"


def scenario_of(m: Measurement) -> Scenario:
    """The catalog scenario a measurement was taken in (raises K2CalcError when it maps to none)."""
    if not m.model_id:
        raise K2CalcError(f"{m.id}: model not in the catalog")
    if not (m.hardware_id or m.cpu_id):
        raise K2CalcError(f"{m.id}: hardware not stated by the source")
    if "pd-" in m.id:
        raise K2CalcError(f"{m.id}: prefill-decode disaggregation with large-scale EP is not modelled")
    if m.metric in ("output_tokens_per_s_total", "ttft_s") and not m.input_tokens:
        raise K2CalcError(f"{m.id}: prompt length not published; TTFT-dependent metric not comparable")
    inp = m.input_tokens or 1024
    out = m.output_tokens or 256
    values = dict(
        model=m.model_id, hardware=m.hardware_id, count=m.count or 1, nodes=m.nodes or 1,
        cpu=m.cpu_id if m.hardware_id else None, sockets=m.sockets or (2 if m.cpu_id else 2),
        ram_gb=m.ram_gb or (1024 if m.cpu_id else None), engine=m.engine, dp_attention=bool(m.dp_attention),
        gpu_experts=m.gpu_experts or 0, kt_prefill=m.kt_prefill or "auto", input_tokens=inp, output_tokens=out,
        concurrency=m.concurrency or 1, context=max(inp + out, 2048),
    )
    if m.quant.startswith("bpw:"):
        values["bits_per_weight"] = float(m.quant[4:])
    else:
        values["quant"] = m.quant
    if not m.hardware_id:
        values["hardware"] = m.cpu_id
    if m.tp and m.hardware_id and not m.cpu_id:
        values["tp"] = m.tp
    if m.ep and m.ep > 1 and not m.cpu_id:
        values["ep"] = min(m.ep, m.count or 1)
    return Scenario.build(**values)


def predict(m: Measurement, s: Scenario) -> tuple[float, float | None]:
    """(prediction, roofline) for a measurement's metric in its scenario."""
    d = resolve(s)
    mem = estimate_memory(d)
    if m.metric == "prefill_tokens_per_s" and s.concurrency > 1:
        # aggregate prefill of `concurrency` prompts arriving together
        t = prefill_time(d, mem, s.input_tokens * s.concurrency)[0]
        return s.input_tokens * s.concurrency / t, None
    perf: PerformanceEstimate = estimate_performance(d, mem, s.input_tokens, s.output_tokens, s.concurrency)
    attr, roof_attr = SPEED_METRICS[m.metric]
    if m.metric == "ttft_s" and m.arrival == "burst":
        attr = "ttft_burst_s"
    return getattr(perf, attr), (getattr(perf, roof_attr) if roof_attr else None)


@lru_cache(maxsize=1)
def rows() -> tuple[Row, ...]:
    """Every measurement that maps onto a scenario, with its prediction."""
    out = []
    for m in load_measurements():
        if m.metric not in SPEED_METRICS:
            continue
        try:
            s = scenario_of(m)
            value, roof = predict(m, s)
            out.append(Row(m, s, value, roof, calibration_class(resolve(s))))
        except K2CalcError:
            continue
    return tuple(out)


@lru_cache(maxsize=64)
def band_factor(klass: str, kind: str) -> tuple[float, int]:
    """(band factor, rows) for an engine family / platform class: exp of the root mean square of the
    log ratios of its rows of that kind, at least 1.3 (the spread on the rows the parameters were set
    on understates the error on runs never seen); 1.5 with fewer than three rows; 2.0 with none."""
    logs = [math.log(r.ratio) for r in rows() if r.klass == klass and r.kind == kind]
    if not logs:
        return FAR_BAND, 0
    if len(logs) < 3:
        return DEFAULT_BAND, len(logs)
    return max(MIN_BAND, math.exp(math.sqrt(sum(x * x for x in logs) / len(logs)))), len(logs)


def write_bands(path=UNCERTAINTY_PATH) -> None:
    """Regenerate data/uncertainty.csv: one band per class and kind that has published rows."""
    keys = sorted({(r.klass, r.kind) for r in rows()})
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["class", "kind", "rows", "band_factor"])
        for klass, kind in keys:
            factor, n = band_factor(klass, kind)
            w.writerow([klass, kind, n, f"{factor:.3f}"])


def summary(rs: tuple[Row, ...] | None = None) -> dict[str, float]:
    """The targets' figures: share of decode rows within 1.5x, of prefill/TTFT rows within 2x, median
    |log2 ratio| over all rows."""
    rs = rows() if rs is None else rs
    decode = [r for r in rs if r.kind == "decode"]
    prefill = [r for r in rs if r.kind != "decode"]
    within = lambda group, f: sum(1 for r in group if 1 / f <= r.ratio <= f) / max(1, len(group))  # noqa: E731
    return {
        "decode_rows": len(decode), "decode_within_1_5x": within(decode, 1.5),
        "prefill_ttft_rows": len(prefill), "prefill_ttft_within_2x": within(prefill, 2.0),
        "median_abs_log2_ratio": statistics.median(abs(math.log2(r.ratio)) for r in rs) if rs else float("nan"),
    }


def describe(s: Scenario) -> str:
    """A short readable scenario: 'kimi-k2-thinking native, 8x h200-sxm, sglang, 16 users, 1000/1000 tok'."""
    quant = f"bpw {s.bits_per_weight:g}" if s.bits_per_weight else s.quant
    where = f"{s.count}x {s.hardware}" + (f" + {s.sockets}x {s.cpu}" if s.cpu else "")
    return (f"{s.model} {quant}, {where}, {s.engine}, {s.concurrency} user(s), "
            f"{s.input_tokens}/{s.output_tokens} tok")


def skipped() -> list[tuple[str, str]]:
    """(measurement id, reason) for the speed rows that are not compared."""
    out = []
    for m in load_measurements():
        if m.metric not in SPEED_METRICS:
            continue
        try:
            scenario_of(m)
        except K2CalcError as exc:
            out.append((m.id, str(exc).split(": ", 1)[-1]))
    return out


def report() -> str:
    """The validate table and summary, for a buyer: scenario, units, band, roofline, sources."""
    header = (f"{'measurement (data/measurements.csv id)':40s} {'metric':28s} {'unit':5s} {'measured':>10s} "
              f"{'predicted':>10s} {'ratio':>6s} {'band':>6s} {'in band':>7s} {'roofline':>10s}")
    lines = [header, f"{'':40s} scenario; calibration class", "-" * len(header)]
    for r in rows():
        m = r.measurement
        f, _ = band_factor(r.klass, r.kind)
        inside = "yes" if 1 / f <= r.ratio <= f else "no"
        roof = f"{r.roofline:10.1f}" if r.roofline else "         -"
        unit = "s" if m.metric == "ttft_s" else "tok/s"
        lines.append(f"{m.id[:40]:40s} {m.metric[:28]:28s} {unit:5s} {m.value:10.2f} {r.predicted:10.2f} "
                     f"{r.ratio:6.2f} {'x' + format(f, '.2f'):>6s} {inside:>7s} {roof}")
        lines.append(f"{'':40s} {describe(r.scenario)}; {r.klass}")
    s = summary()
    lines += [
        "",
        "ratio = measured / predicted; band = the class's spread (a prediction v covers v/band .. v x band);",
        "roofline = the same bytes and FLOPs at 100% of peak bandwidth and compute (no prediction exceeds it).",
        "Not compared: " + "; ".join(f"{i} ({why})" for i, why in skipped()),
        "",
        f"decode rows within 1.5x: {s['decode_within_1_5x']:.0%} of {s['decode_rows']}; "
        f"prefill/TTFT rows within 2x: {s['prefill_ttft_within_2x']:.0%} of {s['prefill_ttft_rows']}; "
        f"median |log2(measured/predicted)|: {s['median_abs_log2_ratio']:.2f}",
        "sources: the 'source' column of data/measurements.csv (published benchmarks, see facts.md F)",
    ]
    return "\n".join(lines)
