"""The command line: ``python -m k2calc models | hardware | quants | estimate ...``.

The command-line contract is stable: scripts depend on the ``--json`` keys. Every user
error prints one line to stderr and exits with status 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import finetune
from .engines import ENGINES
from .errors import FlagNames, K2CalcError, finite_json
from .estimate import Estimate, estimate
from .hardware import get_hardware, load_hardware
from .memory import KV_DTYPES
from .models import (
    MAX_CONFIG_BYTES,
    ModelArch,
    get_model,
    load_models,
    param_counts,
    parse_config_json,
)
from .quant import QUANT_IDS, SCHEMES, resolve_scheme
from .report_content import (
    api_formula_text,
    api_prices_text,
    api_verdict_text,
    bottleneck_text,
    context_fill_text,
    headline,
    longest_context_text,
)
from .scenario import Catalogs, Scenario
from .units import format_bytes, format_device_bytes, format_gb, format_usd

FLAGS = FlagNames(concurrency="--concurrency")  # a field named in an error -> the flag the user typed
MAX_TOP = 1000  # plan options listed
COMMANDS = ("models", "hardware", "quants", "estimate", "plan", "fleet", "sensitivity", "finetune", "validate",
            "benchmark")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (with a close match for a mistyped command) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "invalid choice" in message:
            given = message.split("'")[1] if "'" in message else ""
            close = difflib.get_close_matches(given, COMMANDS, n=1)
            if close:
                message += f"; did you mean '{close[0]}'?"
        sys.stderr.write(f"k2calc: error: {message}\n")
        sys.exit(2)


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (a default of None means 'chosen for you', said in the
    option's own help text)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is not None and action.default is not False and action.default != argparse.SUPPRESS \
                and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _assumption_default(key: str) -> str:
    """' (default 0.13 USD/kWh, 2025-12)': a cost flag's default from data/cost_assumptions.csv."""
    from .cost import assumption_sources
    a = assumption_sources()[key]
    return f" (default {a.value:g} {a.unit}, {a.date})".replace("%", "%%")


def _add_scenario_options(e: argparse.ArgumentParser) -> None:
    """The scenario options shared by estimate and sensitivity."""
    d = Scenario()
    e.add_argument("--model", default=d.model, help="model id (see 'models')")
    e.add_argument("--config-json", metavar="PATH",
                   help="a Hugging Face config.json to estimate instead of a catalog model")
    e.add_argument("--quant", default=d.quant, help="quantization id (see 'quants'); 'native' = as shipped")
    e.add_argument("--bits-per-weight", type=float, help="custom average bits per weight (overrides --quant)")
    e.add_argument("--hardware", default=d.hardware, help="GPU, unified-memory system or CPU id (see 'hardware')")
    e.add_argument("--count", type=int, default=d.count, help="devices (GPUs or systems) in total")
    e.add_argument("--nodes", type=int, default=d.nodes, help="servers the devices are spread over")
    e.add_argument("--cpu", help="host CPU id: with a GPU in --hardware this is hybrid CPU+GPU")
    e.add_argument("--sockets", type=int, default=d.sockets, help="CPU sockets")
    e.add_argument("--ram-gb", type=float, help="system RAM in GB as sold (64 GB DIMM = 64 GiB; default: "
                                                "2048 with --cpu)")
    e.add_argument("--engine", choices=sorted(ENGINES), help="inference engine (default: by hardware)")
    e.add_argument("--tp", type=int, help="tensor-parallel degree (default: the engine's choice; then PP "
                                          "defaults to count / TP)")
    e.add_argument("--pp", type=int, help="pipeline-parallel degree (default: count / TP)")
    e.add_argument("--ep", type=int, help="expert-parallel degree (default: the engine's choice)")
    e.add_argument("--dp-attention", action="store_true", help="SGLang data-parallel attention")
    e.add_argument("--dcp", type=int, default=d.dcp, help="vLLM decode context parallel degree")
    e.add_argument("--gpu-experts", type=int, default=d.gpu_experts, help="hybrid: experts per MoE layer on GPU")
    e.add_argument("--kt-prefill", default="auto", choices=["auto", "cpu", "gpu"],
                   help="hybrid: prefill routed experts on the CPU (AMX) or on the GPU (streamed over PCIe)")
    e.add_argument("--kv-dtype", default=d.kv_dtype, choices=list(KV_DTYPES), help="KV cache dtype")
    e.add_argument("--context", type=int, default=d.context, help="tokens per sequence (prompt + output)")
    e.add_argument("--input-tokens", type=int, default=d.input_tokens, help="prompt tokens per request")
    e.add_argument("--output-tokens", type=int, default=d.output_tokens, help="generated tokens per request")
    e.add_argument("--concurrency", type=int, default=d.concurrency, help="sequences served at once")
    e.add_argument("--memory-fraction", type=float,
                   help="engine share of device memory (vLLM gpu_memory_utilization, SGLang mem_fraction_static; default: the engine's own)")
    e.add_argument("--wired-limit-gb", type=float, help="Mac: GPU wired-memory limit per Mac in GB (GiB) (default: macOS's)")
    e.add_argument("--spec-method", default=d.spec_method, choices=["none", "mtp", "eagle3"],
                   help="speculative decoding: the model's MTP layer or an EAGLE-3 draft head")
    e.add_argument("--spec-draft-tokens", type=int, help="speculative draft tokens per step (default: by model)")
    e.add_argument("--spec-acceptance", type=float, help="per-token acceptance rate 0-1 (default: published, by model)")
    c = e.add_argument_group("cost (defaults: data/cost_assumptions.csv, dated and sourced)")
    for flag, key, text in (
            ("--electricity-usd-per-kwh", "electricity_usd_per_kwh", "electricity tariff [USD/kWh]"),
            ("--pue", "pue", "power usage effectiveness of the room [ratio >= 1]"),
            ("--hosting-usd-per-kw-month", "hosting_usd_per_kw_month", "colocation per kW of peak power [USD]"),
            ("--maintenance-pct-per-year", "maintenance_pct_per_year", "support and spares [% of capex per year]"),
            ("--amortisation-years", "amortisation_years", "years the purchase is written off over"),
            ("--residual-value-pct", "residual_value_pct", "resale value at the end [% of capex]"),
            ("--utilisation", "utilisation", "share of the year serving at this concurrency (0-1]"),
            ("--cache-hit-rate", "cache_hit_rate", "share of prompt tokens billed at the cached price")):
        c.add_argument(flag, type=float, help=text.replace("%", "%%") + _assumption_default(key))
    c.add_argument("--hardware-price-usd", type=float, help="price per device instead of the catalog's [USD]")
    c.add_argument("--cloud-usd-per-hour", type=float, help="rental per device-hour instead of the catalog's")
    c.add_argument("--monthly-output-tokens", type=float,
                   help="output volume for break-even [tokens/month] (default: capacity x utilisation)")
    c.add_argument("--api-provider", help="API provider to compare with (default: the first listed for the "
                                          "model in data/api_prices.csv, usually its maker)")
    c.add_argument("--api-input-usd-per-mtok", type=float, help="your API input price instead of the list price [USD/1M]")
    c.add_argument("--api-output-usd-per-mtok", type=float, help="your API output price instead of the list price [USD/1M]")
    e.add_argument("--json", action="store_true", help="print one JSON object")


def _add_request_options(p: argparse.ArgumentParser) -> None:
    """The speed each user needs and the request sizes (plan and fleet)."""
    p.add_argument("--tokens-per-s-per-user", type=float, help="decode speed each user must get [tok/s]")
    p.add_argument("--input-tokens", type=int, help="prompt tokens per request")
    p.add_argument("--output-tokens", type=int, help="generated tokens per request")


def _add_fleet_options(f: argparse.ArgumentParser) -> None:
    f.add_argument("--model", help="model id (see 'models')")
    f.add_argument("--quant", help="quantization id; 'native' = as shipped")
    f.add_argument("--users", type=int, help="users served at once")
    f.add_argument("--arrival-rate-per-s", type=float, help="requests per second (instead of --users)")
    _add_request_options(f)
    f.add_argument("--ttft-s", type=float, help="mean time to first token at most [s]")
    f.add_argument("--ttft-p95-s", type=float, help="95th-percentile time to first token at most [s] (optional)")
    f.add_argument("--hardware", help="comma list of GPU ids (default h200-sxm,b200,mi355x)")
    f.add_argument("--spec-method", choices=["none", "mtp", "eagle3"], help="speculative decoding (defaults by model)")
    f.add_argument("--json", action="store_true", help="print one JSON object")


def _fleet(a: argparse.Namespace) -> str:
    from .fleet import FleetWorkload, run_fleet
    w = FleetWorkload.build(names=FLAGS, model=a.model, quant=a.quant, users=a.users,
                            arrival_rate_per_s=a.arrival_rate_per_s, tokens_per_s_per_user=a.tokens_per_s_per_user,
                            ttft_s=a.ttft_s, ttft_p95_s=a.ttft_p95_s, input_tokens=a.input_tokens,
                            output_tokens=a.output_tokens,
                            spec_method=a.spec_method)
    hardware = [h.strip() for h in a.hardware.split(",") if h.strip()] if a.hardware else None
    return run_fleet(w, hardware, as_json=a.json)


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m k2calc", description="Will this LLM fit, how fast, at what cost.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("models", help="model catalog: ids, parameters, native quantization")
    sub.add_parser("hardware", help="hardware catalog: ids, kind, memory, bandwidth, price")
    sub.add_parser("quants", help="quantization schemes and their bits per weight")
    finetune.add_parser(sub)
    v = sub.add_parser("validate", help="every published measurement against the model's prediction")
    v.add_argument("--write-calibration", action="store_true",
                   help="regenerate data/class_corrections.csv (class corrections and cross-validated bands) "
                        "from data/measurements.csv")
    v.add_argument("--holdout", metavar="CSV",
                   help="predict the published runs in another file (the columns of data/measurements.csv) with "
                        "the stored calibration, which never saw them, instead of the repository's runs")
    b = sub.add_parser("benchmark", help="time estimate() in-process and print the figures")
    b.add_argument("--repeat", type=int, default=200, help="calls per scenario")
    pl = sub.add_parser("plan", help="cheapest deployments that serve a workload, and why others do not")
    pl.add_argument("--model", action="append", help="model id (repeat to compare several)")
    pl.add_argument("--users", type=int, help="concurrent users")
    _add_request_options(pl)
    pl.add_argument("--context", type=int, help="tokens kept per sequence (default input + output)")
    pl.add_argument("--monthly-output-tokens", type=float, help="output volume for break-even [tokens/month]")
    pl.add_argument("--budget-usd", type=float, help="maximum capex [USD]")
    pl.add_argument("--power-limit-watts", type=float, help="maximum power under load, all replicas [W]")
    pl.add_argument("--monthly-budget-usd", type=float, help="maximum running cost or rental a month, all replicas [USD]")
    pl.add_argument("--rack-kw", type=float, help="maximum peak power of one server or box (a rack's feed) [kW]")
    pl.add_argument("--rack-units", type=float, help="rack space available, all replicas [U]")
    pl.add_argument("--noise", choices=["office", "lab", "datacentre"], help="loudest noise class the room takes")
    pl.add_argument("--cooling", choices=["air", "liquid"], help="the cooling the site has")
    pl.add_argument("--include-unverified", action="store_true",
                    help="rank devices whose catalog row is unverified or rarely shipped with the others")
    pl.add_argument("--current-hardware", help="your hardware (id), ranked among the options")
    pl.add_argument("--current-count", type=int, default=1, help="devices of --current-hardware")
    pl.add_argument("--current-cpu", help="your host CPU (a hybrid box)")
    pl.add_argument("--current-ram-gb", type=float, help="your system RAM [GiB] (hybrid or CPU-only)")
    pl.add_argument("--finetune", choices=["lora", "qlora", "full"],
                    help="plan a fine-tuning job instead of serving (with --train-tokens and --deadline-hours)")
    pl.add_argument("--train-tokens", type=int, help="fine-tuning dataset size [tokens] (one epoch)")
    pl.add_argument("--deadline-hours", type=float, help="the job must finish within [h]")
    pl.add_argument("--lora-rank", type=int, help="LoRA rank (default 8)")
    pl.add_argument("--seq-len", type=int, help="training sequence length [tokens] (default 2048)")
    pl.add_argument("--explain", action="store_true",
                    help="what would change the winner: the top two as price, electricity and utilisation move")
    pl.add_argument("--where", choices=["any", "on-prem", "cloud"], help="buy, rent, or both")
    pl.add_argument("--engines", help="comma list of engines allowed")
    pl.add_argument("--quants", help="comma list of quantizations allowed")
    pl.add_argument("--hardware", help="comma list of hardware ids allowed")
    pl.add_argument("--rank-by", choices=["tco", "usd_per_mtok"], help="ranking (default $ per 1M output tokens)")
    pl.add_argument("--top", type=int, default=10, help="options to list")
    pl.add_argument("--json", action="store_true", help="print one JSON object")
    _add_fleet_options(sub.add_parser("fleet", help="smallest fleet meeting SLA targets: aggregated vs disaggregated"))
    _add_scenario_options(sub.add_parser("estimate", help="does it fit, how fast, what it costs",
                                         formatter_class=_DefaultsFormatter))
    _add_scenario_options(sub.add_parser("sensitivity", help="how $/1M tokens and break-even move with each assumption",
                                         formatter_class=_DefaultsFormatter))
    return p


def _scenario_from_args(a: argparse.Namespace) -> Scenario:
    fields = set(Scenario.model_fields)
    values = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    return Scenario.build(names=FLAGS, **values)


def _models_table() -> str:
    """Every catalog model: parameters in billions (never 'B', which means bytes elsewhere), native
    quantization, maximum context and name."""
    rows = ["id                    total [billion params]  active [billion params]  native quant     max context  name"]
    for m in load_models().values():
        c = param_counts(m)
        rows.append(f"{m.id:21s} {c.total / 1e9:>22,.1f}  {c.active / 1e9:>23,.1f}  "
                    f"{m.native_quant:15s} {m.max_context_tokens:>11,}  {m.name}")
    return "\n".join(rows)


def _hardware_table() -> str:
    rows = ["id                          kind    memory      bandwidth   price (date)          status        name"]
    for h in load_hardware().values():
        memory = format_device_bytes(h.memory_bytes) if h.memory_bytes else "(RAM)"
        bw = f"{h.memory_bandwidth_gb_per_s:,.0f} GB/s" + ("/socket" if h.is_cpu else "")
        price = f"${h.price_usd:,.0f} ({h.price_date})" if h.price_usd else "-"
        rows.append(f"{h.id:27s} {h.kind:7s} {memory:>10s}  {bw:>15s}  {price:21s} {h.status:13s} {h.name}")
    return "\n".join(rows)


def _quants_table() -> str:
    rows = ["id              routed experts  attention  embeddings  note"]
    for s in SCHEMES.values():
        f = s.formats
        rows.append(f"{s.id:15s} {f['routed_experts'].bits_per_weight:>9.3f} bit  {f['attention'].bits_per_weight:>6.3f} bit"
                    f"  {f['embeddings'].bits_per_weight:>7.3f} bit  {s.note}")
    rows.append("native          the model's shipped scheme (see 'models'); bpw:X or --bits-per-weight X for a custom average")
    return "\n".join(rows)


def _group_devices(devices: list[dict], keys: tuple[str, ...]) -> list[tuple[str, list[int]]]:
    """Consecutive devices with identical figures become one row: 'GPU 0-7 (...) x8'."""
    rows: list[tuple[str, list[int], int]] = []
    for dev in devices:
        cells = [dev[k] for k in keys]
        if rows and rows[-1][1] == cells and dev["kind"] != "ram":
            first, _, n = rows[-1]
            rows[-1] = (first, cells, n + 1)
        else:
            rows.append((dev["name"], cells, 1))
    out = []
    for name, cells, n in rows:
        if n > 1:
            word, rest = name.split(" ", 1)
            index, label = rest.split(" ", 1)
            name = f"{word} {index}-{int(index) + n - 1} {label} x{n}"
        out.append((name, cells))
    return out


def _estimate_text(e: Estimate) -> str:
    result = e.as_dict()
    s, mem, dep = result["scenario"], result["memory"], result["deployment"]
    verdict = "FITS" if result["fits"] else "DOES NOT FIT"
    lines = [
        f"{headline(e)}, TP {dep['tp']} PP {dep['pp']}, {s['concurrency']:,} user(s) x {s['context']:,} tokens: "
        f"{verdict}",
        *(f"  why: {r}" for r in result["reasons"]),
        *(f"  warning: {w}" for w in result["warnings"]),
        *([f"  warning: cost not computed: {result['cost_error']}"] if result["cost_error"] else []),
        f"  weights (one replica): {format_gb(mem['weights_bytes'])}; "
        f"KV cache per token: {mem['kv_bytes_per_token']:,} bytes ({dep['kv_dtype']})"
        + (f"; linear-attention state per sequence: {format_bytes(mem['linear_state_bytes_per_sequence'])}"
           if mem.get("linear_state_bytes_per_sequence") else ""),
        f"  KV capacity: {mem['kv_capacity_tokens']:,} tokens per replica; max concurrency at "
        f"{s['context']:,} tokens: {mem['max_concurrency']:,}",
        f"  longest context at {s['concurrency']:,} user(s): {longest_context_text(e)}",
        "",
    ]
    keys = ("capacity_bytes", "usable_bytes", "weights_bytes", "kv_bytes", "activation_bytes",
            "overhead_bytes", "free_bytes")
    rows = _group_devices(mem["devices"], keys)
    width = max(len(name) for name, _ in rows)  # device names are never cut
    lines.append(f"  {'device':{width}s} " + " ".join(f"{h:>10s}" for h in (
        "capacity", "usable", "weights", "KV", "activ.", "runtime")) + f" {'free':>16s}")
    for name, cells in rows:
        free = cells[-1]  # a device over its memory says how much it is short of, never a negative 'free'
        lines.append(f"  {name:{width}s} " + " ".join(f"{format_device_bytes(c):>10s}" for c in cells[:-1])
                     + f" {format_device_bytes(free) if free >= 0 else 'short ' + format_device_bytes(-free):>16s}")
    lines += _speed_lines(e, result) + _cost_lines(e, result) + _fit_lines(e, result)
    return "\n".join(lines)


def _speed_lines(e: Estimate, result: dict) -> list[str]:
    """Decode, prefill and band lines of the estimate's text (none when it does not fit)."""
    s, lines = result["scenario"], []
    perf = result.get("performance")
    if perf:
        lines += [
            "",
            f"  decode: {perf['decode_tokens_per_s_per_user']:,.1f} tok/s per user "
            f"({perf['decode_tokens_per_s_per_user_low']:,.1f}-{perf['decode_tokens_per_s_per_user_high']:,.1f}), "
            f"{perf['decode_tokens_per_s_total']:,.1f} tok/s total at {s['concurrency']} user(s); "
            f"roofline {perf['roofline_decode_tokens_per_s_per_user']:,.1f} tok/s per user; "
            f"limited by {bottleneck_text(perf['bottleneck'])}",
            f"  prefill: {perf['prefill_tokens_per_s']:,.0f} tok/s for a {s['input_tokens']:,}-token prompt; "
            f"time to first token {perf['ttft_s']:,.2f} s ({perf['ttft_s_low']:,.2f}-{perf['ttft_s_high']:,.2f})",
            f"  band: x{perf['decode_band_factor']:.2f} (covers two thirds of {perf['calibration_class']}'s runs "
            f"predicted without their own source; {perf['supporting_rows']} published measurement(s) from "
            f"{perf['supporting_sources']} source(s); python -m k2calc validate)",
            *(f"  note: {n}" for n in perf["notes"]),
            f"  context: {context_fill_text(e)}",
        ]
    return lines


def _cost_lines(e: Estimate, result: dict) -> list[str]:
    """Money lines of the estimate's text (none when it does not fit)."""
    lines = []
    cost = result.get("cost")
    if cost:
        api = (f"API ({cost['api_provider']}) ${cost['api_usd_per_million_output_tokens']:,.2f}"
               if cost["api_usd_per_million_output_tokens"] is not None else "no API price")
        formula = api_formula_text(e)
        lines += [
            "",
            f"  cost: capex ${cost['capex_usd']:,.0f}; {cost['power_watts']:,.0f} W under load; "
            f"opex ${cost['annual_opex_usd']:,.0f}/year; TCO over {cost['years']:g} years ${cost['tco_usd']:,.0f}",
            f"  per 1M output tokens: ${cost['usd_per_million_output_tokens']:,.2f} at "
            f"{cost['assumptions']['utilisation']:.0%} utilisation (${cost['usd_per_million_output_tokens_at_saturation']:,.2f} "
            f"busy all year) vs {api}"
            + (f" vs cloud ${cost['cloud_usd_per_million_output_tokens']:,.2f}" if cost["cloud_usd_per_million_output_tokens"] else ""),
            f"  API: {api_prices_text(e)}",
            *([f"  API for this workload: {formula}"] if formula else []),
            f"  verdict: {api_verdict_text(e)}",
            *(f"  note: {n}" for n in cost["notes"]),
        ]
    return lines


def _fit_lines(e: Estimate, result: dict) -> list[str]:
    """The smallest that fits and the ways to make it fit, when it does not."""
    dep, lines = result["deployment"], []
    small = result["smallest_fitting"]
    if not result["fits"]:
        if small.get("count"):
            nodes = f" ({small['nodes']} node(s))" if dep["topology"] == "gpu" else ""  # systems are machines
            lines.append(f"\n  smallest that fits: {small['count']} x {e.deployment.device.name}{nodes}")
        elif small.get("ram_gb"):
            lines.append(f"\n  RAM needed: {small['ram_gb']:,} GiB")
        else:
            lines.append(f"\n  {small['reason']}")
        lines += ["  ways to make it fit (cheapest first; speed and cost are shown only for a setup that fits):",
                  *(f"    - {f['label']}: capex {_fmt(f['capex_usd'], ',.0f', 'n/a')} USD, "
                    f"{_fmt(f['usd_per_million_output_tokens'], ',.2f', 'n/a')} USD per 1M output tokens"
                    for f in result["fixes"])] if result["fixes"] else []
    return lines


def _fmt(v: float | None, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def _sensitivity_text(rows, base: Estimate) -> str:
    s, c = base.scenario, base.cost
    lines = [f"base: {headline(base)}, {s.concurrency:,} user(s) x {s.context:,} tokens, "
             f"{s.input_tokens:,} prompt / {s.output_tokens:,} answer tokens"]
    if c is not None:
        lines.append(f"base figures: {format_usd(c.usd_per_million_output_tokens)} per 1M output tokens self-hosted, "
                     f"API {format_usd(c.api_usd_per_million_output_tokens)}, break-even "
                     + (f"{c.breakeven_months:,.1f} months" if c.breakeven_months else "never") + "\n")
    else:
        lines.append(f"base figures: none ({base.no_cost_reason})\n")
    lines += [f"{'assumption':16s} {'low':>24s} {'high':>24s} {'$/1M out (low..high)':>24s} {'break-even months':>20s}"]
    for r in rows:
        lines.append(f"{r.assumption:16s} {r.low_label:>24s} {r.high_label:>24s} "
                     f"{_fmt(r.usd_per_mtok_low, ',.2f'):>11s} .. {_fmt(r.usd_per_mtok_high, ',.2f'):<9s} "
                     f"{_fmt(r.breakeven_low, ',.1f', 'never'):>9s} .. {_fmt(r.breakeven_high, ',.1f', 'never')}")
    lines.append("each row moves one assumption, all else as in the scenario; sorted by effect on $/1M")
    return "\n".join(lines)


def _plan(a: argparse.Namespace) -> str:
    from .planner import build_constraints, build_workload, plan
    split = lambda v: tuple(x.strip() for x in v.split(",") if x.strip()) if v else None  # noqa: E731
    w = build_workload(names=FLAGS, users=a.users, tokens_per_s_per_user=a.tokens_per_s_per_user, input_tokens=a.input_tokens,
                       output_tokens=a.output_tokens, context=a.context, monthly_output_tokens=a.monthly_output_tokens)
    c = build_constraints(names=FlagNames(models="--model"), models=tuple(a.model) if a.model else None, budget_usd=a.budget_usd,
                          power_limit_watts=a.power_limit_watts, where=a.where, engines=split(a.engines),
                          quants=split(a.quants), hardware=split(a.hardware), rank_by=a.rank_by,
                          monthly_budget_usd=a.monthly_budget_usd, rack_kw=a.rack_kw, rack_units=a.rack_units,
                          noise=a.noise, cooling=a.cooling, include_unverified=a.include_unverified or None)
    for model in c.models:
        get_model(model)
    for hw in c.hardware or ():
        get_hardware(hw)
    if not 1 <= a.top <= MAX_TOP:
        raise K2CalcError(f"--top: must be from 1 to {MAX_TOP} (got {a.top})")
    if a.finetune:
        return _plan_finetune(a, c)
    current = None
    if a.current_hardware:
        current = Scenario.build(names=FlagNames(hardware="--current-hardware", count="--current-count",
                                                 cpu="--current-cpu", ram_gb="--current-ram-gb"),
                                 model=c.models[0], hardware=a.current_hardware, count=a.current_count,
                                 cpu=a.current_cpu, ram_gb=a.current_ram_gb)
    result = plan(w, c, top=a.top, current=current)
    if a.json:
        return finite_json(result.as_dict(), indent=2)
    lines = [f"{w.users} users x {w.tokens_per_s_per_user:g} tok/s each, {w.input_tokens:,} in / {w.output_tokens:,} out "
             f"per request; {result.configurations:,} configurations, {result.candidates:,} candidate deployments "
             f"(users per replica x buy or rent) evaluated in {result.seconds:.2f} s"]
    for model, api in result.api_usd_per_million_output_tokens.items():
        lines.append(f"API for {model}: " + (f"${api:,.2f} per 1M output tokens (this workload)" if api else "no price"))
    if not result.options:
        lines.append("nothing qualifies; closest attempts below")
    lines.append(f"\n{'#':>2s} {'buy/rent':8s} {'deployment':52s} {'quant':12s} {'tok/s/user':>10s} "
                 f"{'capex $':>12s} {'$/month':>10s} {'$/1M out':>9s} {'break-even':>10s}  pareto")
    for i, o in enumerate(result.options, 1):
        be = "-" if o.mode == "rent" else _fmt(o.breakeven_months, ",.0f", "never") + (" mo" if o.breakeven_months else "")
        lines.append(f"{i:2d} {o.mode:8s} {o.label[:52]:52s} {o.quant[:12]:12s} {o.tokens_per_s_per_user:10.1f} "
                     f"{o.capex_usd:12,.0f} {o.monthly_usd:10,.0f} {o.usd_per_million_output_tokens:9.2f} {be:>10s}  "
                     f"{'*' if o.pareto else ''}")
    if result.apart:
        lines.append("\napart (catalog row unverified or rarely shipped; --include-unverified ranks them):")
        lines += [f"  {o.mode:4s} {o.label}, {o.quant}: {o.tokens_per_s_per_user:.1f} tok/s per user, "
                  f"${o.usd_per_million_output_tokens:,.2f} per 1M out ({o.apart})" for o in result.apart[:5]]
    if result.current:
        cur = result.current
        lines.append(f"\nyour hardware ({cur.label}): " + (
            f"{cur.option.label}, {cur.option.mode}, ${cur.option.usd_per_million_output_tokens:,.2f} per 1M out, "
            f"would rank #{cur.rank}" if cur.option else f"does not qualify: {cur.reason}"))
    if result.rejected:
        lines.append("\nrejected: the first constraint the closest attempt of each class failed")
        lines += [f"  {k}: {v}" for k, v in result.rejected.items()]
    if a.explain:
        lines += _explain_lines(result, w)
    lines.append("\n$/month = running costs (buy) or rental (rent); cost assumptions: data/cost_assumptions.csv")
    return "\n".join(lines)


def _plan_finetune(a: argparse.Namespace, c) -> str:
    """`plan --finetune`: the cheapest hardware that finishes the job before the deadline."""
    from .finetune import FinetuneSpec
    from .planner.finetune import plan_finetune
    if not a.deadline_hours or a.deadline_hours <= 0 or a.deadline_hours > 1e6:
        raise K2CalcError(f"--deadline-hours: give the hours the job may take, above 0 and at most 1e6 "
                          f"(got {a.deadline_hours})")
    job = FinetuneSpec.build(names=FlagNames(tokens="--train-tokens", rank="--lora-rank", seq_len="--seq-len"),
                             **{k: v for k, v in dict(model=c.models[0], method=a.finetune, tokens=a.train_tokens,
                                                      rank=a.lora_rank, seq_len=a.seq_len).items() if v is not None})
    result = plan_finetune(job, a.deadline_hours, c, top=a.top)
    if a.json:
        return finite_json(result.as_dict(), indent=2)
    lines = [f"{job.method} of {job.model} on {job.tokens:,} tokens x {job.epochs:g} epoch(s), {job.seq_len:,}-token "
             f"sequences, within {a.deadline_hours:g} h; {result.candidates} placements evaluated in {result.seconds:.2f} s"]
    if not result.options:
        lines.append("nothing finishes in time within the constraints; closest attempts below")
    lines.append(f"\n{'#':>2s} {'buy/rent':8s} {'hardware':56s} {'hours':>8s} {'tok/s':>9s} {'cost $':>12s}")
    for i, o in enumerate(result.options, 1):
        lines.append(f"{i:2d} {o.mode:8s} {o.label[:56]:56s} {o.hours:8.1f} {o.tokens_per_s:9,.0f} {o.cost_usd:12,.0f}")
    if result.apart:
        lines.append("\napart (catalog row unverified or rarely shipped):")
        lines += [f"  {o.mode:4s} {o.label}: {o.hours:,.1f} h, ${o.cost_usd:,.0f} ({o.apart})" for o in result.apart[:5]]
    if result.rejected:
        lines.append("\nrejected: the first constraint the closest attempt of each class failed")
        lines += [f"  {k}: {v}" for k, v in result.rejected.items()]
    lines.append("\ncost: buy = capex + the run's electricity; rent = the catalog's $/device-hour x hours")
    return "\n".join(lines)


def _explain_lines(result, w) -> list[str]:
    """The Pareto front and what would change the winner (`plan --explain`)."""
    from .planner.explain import what_changes_the_winner
    front = [o for o in result.options if o.pareto]
    lines = ["\nPareto front (no other option is both cheaper per 1M output tokens and faster per user):"]
    lines += [f"  {o.mode:4s} {o.label}: ${o.usd_per_million_output_tokens:,.2f} per 1M out, "
              f"{o.tokens_per_s_per_user:.1f} tok/s per user" for o in front]
    moves = what_changes_the_winner(result, w)
    if moves:
        first, second = result.options[:2]
        lines.append(f"\nwhat would change the winner (#1 {first.label} {first.mode} vs #2 {second.label} "
                     f"{second.mode}; $ per 1M output tokens):")
        for m in moves:
            cells = ", ".join(f"{label} {_fmt(x, ',.2f')}/{_fmt(y, ',.2f')}"
                              for label, x, y in zip(m.labels, m.first_usd, m.second_usd))
            lines.append(f"  {m.assumption}: " + (f"#2 wins from {m.flips_at}" if m.flips_at else "#1 stays first")
                         + f" ({cells})")
    return lines


def _import_config(path: str) -> ModelArch:
    """Read a config.json file into a model whose id is the file's parent folder or stem."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise K2CalcError(f"{path}: {p.stat().st_size:,} bytes is too large for a config.json "
                              f"(at most {MAX_CONFIG_BYTES:,})")
        text = p.read_bytes()  # parse_config_json decodes, and says so in one line when it cannot
    except OSError as exc:
        raise K2CalcError(f"cannot read {path}: {exc.strerror}") from None
    model_id = (p.parent.name if p.name == "config.json" and p.parent.name else p.stem).lower() or "custom"
    return parse_config_json(text, model_id, model_id)


def _imported_catalogs(args: argparse.Namespace) -> Catalogs | None:
    """The catalogs with the model of ``--config-json`` (whose id then replaces ``--model``), or None."""
    if not args.config_json:
        return None
    model = _import_config(args.config_json)
    args.model = model.id
    return Catalogs(models={model.id: model})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error)."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "models":
            print(_models_table())
        elif args.command == "hardware":
            print(_hardware_table())
        elif args.command == "quants":
            print(_quants_table())
        elif args.command == "finetune":
            print(finetune.run(args, _imported_catalogs(args)))
        elif args.command == "plan":
            print(_plan(args))
        elif args.command == "fleet":
            print(_fleet(args))
        elif args.command == "validate":
            from .validate import holdout_report, report, write_calibration
            if args.holdout:
                print(holdout_report(args.holdout))
                return 0
            if args.write_calibration:
                write_calibration()
            print(report())
        elif args.command == "benchmark":
            from .benchmark import run
            print(run(args.repeat))
        else:
            catalogs = _imported_catalogs(args)
            scenario = _scenario_from_args(args)
            if args.command == "sensitivity":
                from .sensitivity import sensitivity
                rows = sensitivity(scenario, catalogs)
                print(finite_json([r.as_dict() for r in rows], indent=2) if args.json
                      else _sensitivity_text(rows, estimate(scenario, catalogs)))
            else:
                result = estimate(scenario, catalogs)
                print(finite_json(result.as_dict(), indent=2) if args.json else _estimate_text(result))
    except K2CalcError as exc:
        sys.stderr.write(f"k2calc: error: {exc}\n")
        return 2
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


__all__ = ["main", "QUANT_IDS", "resolve_scheme"]
