"""Measured against predicted: every published measurement run through the model, cross-validated.

``python -m k2calc validate`` prints, per row of ``data/measurements.csv`` that maps onto a catalog
scenario: the scenario, the measured value, the prediction, their ratio, whether the measurement lies
inside the prediction's uncertainty band, and the roofline; then the summary the targets are stated in
(share of decode rows within 1.5x, share of prefill/TTFT rows within 2x, median |log2 ratio|), first
**leave-one-source-out** (every source's rows predicted with class corrections fitted without that
source), then in-sample, and per class.

Calibration, in two layers:

1. The physics' parameters (``data/platforms.csv``, ``data/kernel_efficiency.csv``; bandwidths from
   microbenchmarks in ``data/bandwidth.csv``), each with the rows or benchmark behind it.
2. One correction per class and kind (:func:`fit_corrections`): the geometric mean of measured/physics
   over the class's sources, each source one vote, shrunk towards 1 by one pseudo-source; its band from
   the leave-one-source-out residuals (:func:`fit_bands`). Stored in ``data/class_corrections.csv``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .errors import K2CalcError
from .fleet_runs import predict_run, run_class, run_of, run_scenario
from .loader import DATA_DIR
from .measurements import Measurement, load_measurements
from .memory import estimate_memory
from .performance import (
    ENGINE_FAMILY,
    FAR_BAND,
    FEW_SOURCES_BAND,
    ClassCalibration,
    Corrections,
    PerformanceEstimate,
    calibration_class,
    class_calibration,
    corrected_prefill,
    estimate_performance,
    load_corrections,
    write_corrections,
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
TOLERANCE = {"decode": 1.5, "prefill/ttft": 2.0}  # the targets' "within" factors
MIN_BAND = 1.2         # least band factor, however well a class's sources agree
BAND_COVERAGE = 2 / 3  # share of a class's cross-validated rows its band covers
MAX_CORRECTION = 2.0   # a class correction beyond x2 either way means the physics is missing something


@dataclass(frozen=True)
class Row:
    """One measurement and its prediction."""

    measurement: Measurement
    scenario: Scenario
    predicted: float
    roofline: float | None
    klass: str
    physics: float = 0.0   # the prediction before the class correction

    @property
    def ratio(self) -> float:
        """measured / predicted [1]."""
        return self.measurement.value / self.predicted

    @property
    def kind(self) -> str:
        return "decode" if self.measurement.metric in DECODE else "prefill/ttft"

    @property
    def source(self) -> str:
        return source_key(self.measurement.source)

    @property
    def physics_log_ratio(self) -> float:
        """log(measured / physics), signed so that a correction c > 1 means "faster than physics"."""
        r = self.measurement.value / self.physics
        return -math.log(r) if self.measurement.metric == "ttft_s" else math.log(r)


def source_key(source: str) -> str:
    """The publication a row comes from: its source text without commits, dates or comments in
    parentheses (several commits of one cookbook file are one source)."""
    return re.sub(r"\s*[(;].*", "", source.strip().strip('"')).strip() or source


def scenario_of(m: Measurement) -> Scenario:
    """The catalog scenario a measurement was taken in (raises K2CalcError when it maps to none)."""
    if not m.model_id:
        raise K2CalcError(f"{m.id}: model not in the catalog")
    if not (m.hardware_id or m.cpu_id):
        raise K2CalcError(f"{m.id}: hardware not stated by the source")
    if m.serving == "disaggregated":
        raise K2CalcError(f"{m.id}: prefill-decode disaggregation: compared apart (disaggregated class)")
    if m.metric in ("output_tokens_per_s_total", "ttft_s") and not m.input_tokens:
        raise K2CalcError(f"{m.id}: prompt length not published; TTFT-dependent metric not comparable")
    inp = m.input_tokens or 1024
    out = m.output_tokens or 256
    values = dict(
        model=m.model_id, hardware=m.hardware_id, count=m.count or 1, nodes=m.nodes,
        cpu=m.cpu_id if m.hardware_id else None, sockets=m.sockets or 2,
        ram_gb=m.ram_gb or (1024 if m.cpu_id else None), engine=m.engine, dp_attention=m.dp_attention,
        gpu_experts=m.gpu_experts or 0, kt_prefill=m.kt_prefill or "auto", input_tokens=inp, output_tokens=out,
        concurrency=m.concurrency or 1, context=max(inp + out, 2048),
    )
    if not m.quant:
        raise K2CalcError(f"{m.id}: quantization not stated by the source")
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


def comparable_scenario(m: Measurement) -> Scenario:
    """The scenario of a measurement that can be compared (raises K2CalcError saying why not): it maps
    onto the catalog and its weights fit in the devices' memory (a published run whose weights k2calc
    cannot place was set up in a way k2calc does not model, e.g. with a CPU the source does not name).
    Runs that k2calc finds short of KV cache or above a default memory limit are compared: engines
    and users change those limits."""
    s = scenario_of(m)
    mem = estimate_memory(resolve(s))
    if any(dev.weights_bytes > dev.capacity_bytes for dev in mem.devices):
        raise K2CalcError(f"{m.id}: the weights do not fit the stated devices (placement not stated by the source)")
    return s


# Engines whose burst benchmarks prefill every prompt before the first decode step (llama.cpp's
# llama-batched-bench). A serving engine (vLLM, SGLang, KTransformers on SGLang) schedules prompts that
# arrive together in chunks between the decode steps of the requests already running, so their decode
# still carries the other prompts' prefill.
PREFILL_FIRST_FAMILIES = {"llama.cpp"}


def predict(m: Measurement, s: Scenario, corrections: Corrections | None = None) -> tuple[float, float | None]:
    """(prediction, roofline) for a measurement's metric in its scenario, with the class corrections
    `corrections` (default: data/class_corrections.csv; ``{}``: physics alone)."""
    d = resolve(s)
    mem = estimate_memory(d)
    if m.metric == "prefill_tokens_per_s" and s.concurrency > 1:
        # aggregate prefill of `concurrency` prompts arriving together, each its own sequence (its
        # attention spans its own prompt, not all of them: not one prompt `concurrency` times as long)
        pre = class_calibration(calibration_class(d), "prefill/ttft", corrections)
        tokens = s.input_tokens * s.concurrency
        t, roof = corrected_prefill(d, mem, tokens, s.concurrency, pre)
        return tokens / t, tokens / roof
    perf: PerformanceEstimate = estimate_performance(d, mem, s.input_tokens, s.output_tokens, s.concurrency,
                                                     corrections)
    attr, roof_attr = SPEED_METRICS[m.metric]
    if m.metric == "ttft_s" and m.arrival == "burst":
        attr = "ttft_burst_s"
    value = getattr(perf, attr)
    if (m.arrival == "burst" and m.metric in ("decode_tokens_per_s_per_user", "decode_tokens_per_s_total")
            and ENGINE_FAMILY[d.engine.id] in PREFILL_FIRST_FAMILIES):
        # every prompt was prefilled before decoding began: no prompt interrupts the steps measured
        value /= 1 - perf.prefill_interference_s * perf.decode_tokens_per_s_per_user
    return value, (getattr(perf, roof_attr) if roof_attr else None)


@lru_cache(maxsize=1)
def disaggregated_rows() -> tuple[Row, ...]:
    """The disaggregated runs (prefill and decode pools with large-scale EP) predicted by the fleet
    model (:mod:`k2calc.fleet_runs`): their own class, physics alone (no class correction is fitted on
    them, so cross-validated = in-sample), reported apart from the summary above."""
    out = []
    for m in load_measurements():
        run = run_of(m) if m.serving == "disaggregated" else None
        if run is None or run.role == "not-compared":
            continue
        value = predict_run(m, run)
        out.append(Row(m, run_scenario(m, run), value, None, run_class(m), physics=value))
    return tuple(out)


def disaggregated_summary_line() -> str:
    """The disaggregated class's figures, in the summary's words."""
    rs = disaggregated_rows()
    n_sources = len({r.source for r in rs})
    return (f"disaggregated (prefill/decode pools with large-scale EP, {n_sources} sources; physics alone, no class "
            f"correction, so cross-validated = in-sample): {_summary_text(summary(rs))}")


@lru_cache(maxsize=1)
def physics_rows() -> tuple[Row, ...]:
    """Every measurement that maps onto a scenario, with the physics' prediction (no correction)."""
    return _physics_rows(None)


def _physics_rows(model_id: str | None, measurements: list[Measurement] | None = None) -> tuple[Row, ...]:
    """physics_rows() of one model's measurements (None: every model), from `measurements` (default:
    data/measurements.csv)."""
    out = []
    for m in load_measurements() if measurements is None else measurements:
        if m.metric not in SPEED_METRICS or model_id is not None and m.model_id != model_id:
            continue
        try:
            s = comparable_scenario(m)
            value, roof = predict(m, s, {})
            out.append(Row(m, s, value, roof, calibration_class(resolve(s)), physics=value))
        except K2CalcError:
            continue
    return tuple(out)


def _repredict(rs: tuple[Row, ...], table: Corrections) -> tuple[Row, ...]:
    """The rows predicted again with the class corrections `table`."""
    return tuple(replace(r, predicted=predict(r.measurement, r.scenario, table)[0]) for r in rs)


@lru_cache(maxsize=1)
def rows() -> tuple[Row, ...]:
    """Every comparable measurement with the prediction the calculator shows (stored corrections)."""
    return _repredict(physics_rows(), load_corrections())


@lru_cache(maxsize=64)
def model_rows(model_id: str) -> tuple[Row, ...]:
    """rows() of one model's measurements, predicting only those (about a tenth of the work of rows():
    the calculator's first answer for a model waits on it)."""
    return _repredict(_physics_rows(model_id), load_corrections())


def fit_corrections(rs: tuple[Row, ...]) -> dict[tuple[str, str], tuple[float, int, int]]:
    """(class, kind) -> (correction, sources, rows): exp of the mean over sources of each source's mean
    log(measured/physics), shrunk towards 0 by one pseudo-source, clamped to x2 either way."""
    by_source: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rs:
        by_source[(r.klass, r.kind)][r.source].append(r.physics_log_ratio)
    out = {}
    for key, sources in by_source.items():
        means = [statistics.fmean(v) for v in sources.values()]
        log_c = sum(means) / (len(means) + 1)
        log_c = max(-math.log(MAX_CORRECTION), min(math.log(MAX_CORRECTION), log_c))
        out[key] = (math.exp(log_c), len(sources), sum(len(v) for v in sources.values()))
    return out


def _table(fitted, bands=None) -> Corrections:
    bands = bands or {}
    return {k: ClassCalibration(c, bands.get(k, FAR_BAND), n_src, n) for k, (c, n_src, n) in fitted.items()}


@lru_cache(maxsize=1)
def cross_validated_rows() -> tuple[Row, ...]:
    """Every row predicted with class corrections fitted without the rows of its own source
    (leave-one-source-out)."""
    base = physics_rows()
    out = []
    for source in sorted({r.source for r in base}):
        held_out = tuple(r for r in base if r.source == source)
        table = _table(fit_corrections(tuple(r for r in base if r.source != source)))
        out.extend(_repredict(held_out, table))
    return tuple(out)


def fit_bands(cv: tuple[Row, ...], fitted) -> dict[tuple[str, str], float]:
    """(class, kind) -> band factor: the smallest factor that covers two thirds of the class's
    cross-validated rows, at least 1.2; at least 1.5 when the class rests on fewer than three sources."""
    logs: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in cv:
        logs[(r.klass, r.kind)].append(abs(math.log(r.ratio)))
    out = {}
    for key, values in logs.items():
        values.sort()
        factor = max(MIN_BAND, math.ceil(math.exp(values[math.ceil(BAND_COVERAGE * len(values)) - 1]) * 1000) / 1000)
        if fitted.get(key, (1, 0, 0))[1] < 3:
            factor = max(factor, FEW_SOURCES_BAND)
        out[key] = factor
    return out


def calibration_table() -> Corrections:
    """The corrections and bands the published measurements give now (what --write-calibration stores)."""
    fitted = fit_corrections(physics_rows())
    return _table(fitted, fit_bands(cross_validated_rows(), fitted))


def write_calibration(path=None) -> None:
    """Regenerate data/class_corrections.csv from data/measurements.csv."""
    if path is None:
        write_corrections(calibration_table())
    else:
        write_corrections(calibration_table(), path)
    load_corrections.cache_clear()
    rows.cache_clear()


def band_factor(klass: str, kind: str) -> tuple[float, int]:
    """(band factor, rows) of a class and kind, as stored in data/class_corrections.csv."""
    c = class_calibration(klass, kind)
    return c.band_factor, c.rows


def within(group, factor: float) -> float:
    """Share of rows whose measured/predicted ratio lies within `factor` either way [1]."""
    return sum(1 for r in group if 1 / factor <= r.ratio <= factor) / max(1, len(group))


def summary(rs: tuple[Row, ...] | None = None) -> dict[str, float]:
    """The targets' figures: share of decode rows within 1.5x, of prefill/TTFT rows within 2x, median
    |log2 ratio| over all rows."""
    rs = rows() if rs is None else rs
    decode = [r for r in rs if r.kind == "decode"]
    prefill = [r for r in rs if r.kind != "decode"]
    return {
        "decode_rows": len(decode), "decode_within_1_5x": within(decode, TOLERANCE["decode"]),
        "prefill_ttft_rows": len(prefill), "prefill_ttft_within_2x": within(prefill, TOLERANCE["prefill/ttft"]),
        "median_abs_log2_ratio": statistics.median(abs(math.log2(r.ratio)) for r in rs) if rs else float("nan"),
    }


def describe(s: Scenario) -> str:
    """A short readable scenario: 'kimi-k2-thinking native, 8x h200-sxm, sglang, 16 users, 1000/1000 tok'."""
    quant = f"bpw {s.bits_per_weight:g}" if s.bits_per_weight else s.quant
    where = f"{s.count}x {s.hardware}" + (f" + {s.sockets}x {s.cpu}" if s.cpu else "")
    return (f"{s.model} {quant}, {where}, {s.engine}, {s.concurrency} user(s), "
            f"{s.input_tokens}/{s.output_tokens} tok")


def skipped(measurements: list[Measurement] | None = None) -> list[tuple[str, str]]:
    """(measurement id, reason) for the speed rows that are not compared (default file:
    data/measurements.csv)."""
    out = []
    for m in load_measurements() if measurements is None else measurements:
        if m.metric not in SPEED_METRICS:
            continue
        if m.serving == "disaggregated":
            run = run_of(m)
            if run is None or run.role == "not-compared":
                out.append((m.id, run.reason if run else "disaggregated run without a set-up in data/fleet_runs.csv"))
            continue
        try:
            comparable_scenario(m)
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
    lines += [
        "",
        "ratio = measured / predicted; band = the class's cross-validated spread (a prediction v covers v/band .. v x band);",
        "roofline = the same bytes and FLOPs at 100% of peak bandwidth and compute (no prediction exceeds it).",
        "Not compared: " + "; ".join(f"{i} ({why})" for i, why in skipped()),
        "",
        *_disaggregated_table(),
        "",
        *class_table(),
        "",
        *summary_lines(),
        disaggregated_summary_line(),
        "sources: the 'source' column of data/measurements.csv (repository files with commits, threads, posts)",
    ]
    return "\n".join(lines)


def _disaggregated_table() -> list[str]:
    """The disaggregated rows: measured per node against the pool model's prediction."""
    out = ["disaggregated runs (per 8-GPU node of the measured pool; data/fleet_runs.csv gives each set-up):"]
    for r in disaggregated_rows():
        m, tol = r.measurement, TOLERANCE[r.kind]
        inside = "yes" if 1 / tol <= r.ratio <= tol else "no"
        out.append(f"{m.id[:40]:40s} {m.metric[:28]:28s} tok/s {m.value:10.0f} {r.predicted:10.0f} {r.ratio:6.2f} "
                   f"within x{tol:g}: {inside}")
        out.append(f"{'':40s} {describe(r.scenario)} per pool; {r.klass}")
    return out


def _summary_text(s: dict[str, float]) -> str:
    return (f"decode rows within 1.5x: {s['decode_within_1_5x']:.0%} of {s['decode_rows']}; "
            f"prefill/TTFT rows within 2x: {s['prefill_ttft_within_2x']:.0%} of {s['prefill_ttft_rows']}; "
            f"median |log2(measured/predicted)|: {s['median_abs_log2_ratio']:.2f}")


def summary_lines() -> list[str]:
    """The headline (leave-one-source-out), then in-sample and physics alone: the lines the README quotes."""
    n_sources = len({r.source for r in physics_rows()})
    return [
        f"cross-validated (leave-one-source-out, {n_sources} sources): {_summary_text(summary(cross_validated_rows()))}",
        f"in-sample (corrections fitted on every row): {_summary_text(summary(rows()))}",
        f"physics alone (no class correction): {_summary_text(summary(physics_rows()))}",
    ]


def class_summary() -> list[dict]:
    """One record per class and kind: rows, sources, correction, band, share within tolerance
    cross-validated and in-sample, median |log2| cross-validated (the Method page's table)."""
    cv, ins = defaultdict(list), defaultdict(list)
    for r in cross_validated_rows():
        cv[(r.klass, r.kind)].append(r)
    for r in rows():
        ins[(r.klass, r.kind)].append(r)
    out = []
    for key in sorted(cv):
        c, tol = class_calibration(*key), TOLERANCE[key[1]]
        out.append({"class": key[0], "kind": key[1], "rows": len(cv[key]), "sources": c.sources,
                    "correction [x]": round(c.correction, 3), "band factor [x]": round(c.band_factor, 3),
                    "within, cross-validated": within(cv[key], tol), "within, in-sample": within(ins[key], tol),
                    "median |log2|, cross-validated": round(statistics.median(abs(math.log2(r.ratio)) for r in cv[key]), 3)})
    return out


def class_table() -> list[str]:
    """:func:`class_summary` as text lines for the command line."""
    header = (f"{'class (engine family / platform)':34s} {'kind':13s} {'rows':>4s} {'src':>4s} {'corr':>6s} "
              f"{'band':>6s} {'within (cv)':>11s} {'within (in)':>11s} {'med|log2| cv':>12s}")
    out = [header, "-" * len(header)]
    for c in class_summary():
        few = "  (fewer than 3 sources)" if c["sources"] < 3 else ""
        out.append(f"{c['class']:34s} {c['kind']:13s} {c['rows']:4d} {c['sources']:4d} {'x' + format(c['correction [x]'], '.2f'):>6s} "
                   f"{'x' + format(c['band factor [x]'], '.2f'):>6s} {c['within, cross-validated']:11.0%} "
                   f"{c['within, in-sample']:11.0%} {c['median |log2|, cross-validated']:12.2f}{few}")
    return out


# The published runs collected after the calibration was fitted (python -m k2calc validate --holdout).
HOLDOUT_PATH = DATA_DIR / "holdout" / "2026-12-02.csv"


def holdout_rows(path: str | Path = HOLDOUT_PATH) -> tuple[Row, ...]:
    """The runs of another file (same columns as data/measurements.csv) predicted with the stored
    calibration, which never saw them."""
    return tuple(_repredict(_physics_rows(None, load_measurements(path)), load_corrections()))


def holdout_report(path: str | Path) -> str:
    """Published runs in another file (same columns as data/measurements.csv), predicted with the
    stored calibration that never saw them: each row, then by class and overall. Use it to check the
    model on new runs before adding them to the calibration."""
    measurements = load_measurements(path)
    rs = holdout_rows(path)
    width = max([len(r.measurement.id) for r in rs] + [len("measurement")])
    lines = [f"{'measurement':{width}s} {'metric':28s} {'measured':>10s} {'predicted':>10s} {'ratio':>6s}  class"]
    for r in rs:
        lines.append(f"{r.measurement.id:{width}s} {r.measurement.metric[:28]:28s} {r.measurement.value:10.2f} "
                     f"{r.predicted:10.2f} {r.ratio:6.2f}  {r.klass}")
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rs:
        groups[(r.klass, r.kind)].append(r)
    lines += ["", f"{'class':34s} {'kind':13s} {'rows':>4s} {'within':>7s} {'med|log2|':>9s} {'mean log2':>9s}"]
    for (klass, kind), group in sorted(groups.items()):
        logs = [math.log2(r.ratio) for r in group]
        lines.append(f"{klass:34s} {kind:13s} {len(group):4d} {within(group, TOLERANCE[kind]):7.0%} "
                     f"{statistics.median(abs(x) for x in logs):9.2f} {statistics.fmean(logs):+9.2f}")
    lines += ["", "Not compared: " + "; ".join(f"{i} ({why})" for i, why in skipped(measurements)), "",
              f"holdout ({path}, {len(rs)} rows, calibration not refitted): " + _summary_text(summary(rs))]
    return "\n".join(lines)
