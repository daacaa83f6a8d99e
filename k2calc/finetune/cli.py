"""``python -m k2calc finetune``: the subcommand's arguments and its text report."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..scenario import Catalogs
from ..units import format_count, format_device_bytes
from .estimate import FinetuneEstimate, default_usd_per_kwh, estimate_finetune
from .spec import METHODS, TARGETS, FinetuneSpec


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``finetune`` subcommand to an argparse subparsers object and return its parser."""
    d = FinetuneSpec()
    p = subparsers.add_parser("finetune", help="LoRA / QLoRA / full SFT: memory per device, tokens/s, hours, cost")
    p.add_argument("--model", default=d.model, help="model id (see 'models')")
    p.add_argument("--config-json", metavar="PATH",
                   help="a Hugging Face config.json to fine-tune instead of a catalog model")
    p.add_argument("--hardware", default=d.hardware, help="GPU, unified-memory system or CPU id (see 'hardware')")
    p.add_argument("--count", type=int, default=d.count, help="GPUs or systems")
    p.add_argument("--cpu", help="host CPU id: with a GPU in --hardware this is the hybrid KTransformers route")
    p.add_argument("--sockets", type=int, default=d.sockets, help="CPU sockets")
    p.add_argument("--ram-gb", type=float, help="system RAM in GB as sold (GiB)")
    p.add_argument("--swap-gb", type=float, default=d.swap_gb,
                   help="swap space in GB (GiB); used, slowly, when RAM is short")
    p.add_argument("--wired-limit-gb", type=float, help="raised macOS GPU wired-memory limit per Mac (GiB)")
    p.add_argument("--method", choices=METHODS, default=d.method, help="lora, qlora (NF4 base) or full fine-tuning")
    p.add_argument("--rank", type=int, default=d.rank, help="LoRA rank r")
    p.add_argument("--alpha", type=float, default=d.alpha, help="LoRA alpha (scaling only)")
    p.add_argument("--targets", default=",".join(d.targets),
                   help=f"comma list of LoRA targets from {','.join(TARGETS)}")
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="tokens per training sequence")
    p.add_argument("--micro-batch", type=int, default=d.micro_batch, help="sequences per device per forward")
    p.add_argument("--no-checkpointing", action="store_true", help="disable gradient checkpointing")
    p.add_argument("--tokens", type=int, default=d.tokens, help="dataset size in tokens")
    p.add_argument("--epochs", type=float, default=d.epochs, help="passes over the dataset")
    p.add_argument("--usd-per-kwh", type=float,
                   help=f"electricity tariff (default {default_usd_per_kwh():g} from data/cost_assumptions.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def spec_from_args(args: argparse.Namespace) -> FinetuneSpec:
    """A :class:`FinetuneSpec` from parsed ``finetune`` arguments."""
    targets = tuple(t.strip() for t in (args.targets or "").split(",") if t.strip())
    return FinetuneSpec.build(
        model=args.model, hardware=args.hardware, count=args.count, cpu=args.cpu, sockets=args.sockets,
        ram_gb=args.ram_gb, swap_gb=args.swap_gb, wired_limit_gb=args.wired_limit_gb, method=args.method,
        rank=args.rank, alpha=args.alpha, targets=targets, seq_len=args.seq_len, micro_batch=args.micro_batch,
        gradient_checkpointing=not args.no_checkpointing, tokens=args.tokens, epochs=args.epochs,
        usd_per_kwh=args.usd_per_kwh,
    )


def run(args: argparse.Namespace, catalogs: Catalogs | None = None) -> str:
    """The text (or, with --json, the JSON object) ``python -m k2calc finetune`` prints; `catalogs` holds
    imported models and custom devices (``--config-json``)."""
    est = estimate_finetune(spec_from_args(args), catalogs)
    if getattr(args, "json", False):
        return json.dumps(est.as_dict(), indent=2)
    return format_text(est)


def format_text(est: FinetuneEstimate) -> str:
    """A plain-text report of one estimate: verdict, memory per device, then speed, time and cost (or,
    when it does not fit, what would make it fit), then the assumptions."""
    lines = [_headline(est), *(f"  why: {r}" for r in est.reasons), *(f"  warning: {w}" for w in est.warnings),
             f"  trainable parameters: {format_count(est.trainable_params)}", "", *_device_table(est), ""]
    lines += _run_lines(est) if est.fits else _fix_lines(est)
    lines += ["", *(f"  assumption: {a}" for a in est.assumptions)]
    return "\n".join(lines)


def _headline(est: FinetuneEstimate) -> str:
    s = est.spec
    verdict = "FITS" if est.fits else "DOES NOT FIT"
    if est.fits and est.slow:
        verdict = "FITS (SLOW: uses swap)"
    swap = f" + {s.swap_gb:g} GiB swap" if s.swap_gb else ""
    if est.route == "gpu":
        where = f"{s.count} x {s.hardware}"
    elif est.route == "hybrid":
        where = f"{s.count} x {s.hardware} + {s.sockets} x {s.cpu} with {s.ram_gb:g} GiB RAM{swap}"
    else:
        where = f"{s.sockets} x {s.hardware} with {s.ram_gb:g} GiB RAM{swap}"
    what = s.method.upper() if s.method != "full" else "full fine-tuning"
    if s.method != "full":
        what += f" r={s.rank} on {', '.join(s.targets)}"
    return (f"{est.model_name} {what} on {where}, {s.micro_batch} x {s.seq_len:,} tokens per micro-batch, "
            f"checkpointing {'on' if s.gradient_checkpointing else 'off'}: {verdict}")


def _device_table(est: FinetuneEstimate) -> list[str]:
    """One row per device; identical consecutive accelerators share a row ('GPU 0-7 x8 (...)')."""
    lines = [f"  {'device':44s} {'capacity':>10s} {'weights':>10s} {'adapters':>10s} {'optimizer':>10s} "
             f"{'grads':>10s} {'activ.':>10s} {'free':>10s}"]
    rows: list[list] = []  # [name, cells, slow, how many identical consecutive devices]
    for d in est.devices:
        cells = (d.capacity_bytes, d.weights_bytes, d.adapter_bytes, d.optimizer_bytes, d.gradient_bytes,
                 d.activation_bytes, d.free_bytes)
        if (rows and d.kind in ("gpu", "unified") and rows[-1][1] == cells
                and rows[-1][0].split(" ")[0] == d.name.split(" ")[0]):
            rows[-1][3] += 1
        else:
            rows.append([d.name, cells, d.slow, 1])
    for name, cells, slow, count in rows:
        if count > 1:
            word, rest = name.split(" ", 1)
            index, label = rest.split(" ", 1)
            name = f"{word} {index}-{int(index) + count - 1} x{count} {label}"
        lines.append(f"  {name[:44]:44s} " + " ".join(f"{format_device_bytes(c):>10s}" for c in cells)
                     + ("  SLOW" if slow else ""))
    return lines


def _run_lines(est: FinetuneEstimate) -> list[str]:
    s = est.spec
    cloud = (f"${est.cloud_cost_usd:,.0f} rented ({est.cloud_note})" if est.cloud_cost_usd is not None
             else est.cloud_note)
    return [
        f"  speed: {est.tokens_per_s:,.1f} tokens/s (roofline {est.roofline_tokens_per_s:,.0f}); "
        f"{est.flops_per_token / 1e9:,.1f} GFLOP per token; limited by {est.bottleneck}",
        f"  run: {s.tokens:,} tokens x {s.epochs:g} epoch(s) = {est.hours:,.1f} h; "
        f"{est.power_watts:,.0f} W -> {est.energy_kwh:,.1f} kWh",
        f"  cost: ${est.cost_usd:,.2f} electricity on owned hardware at ${est.usd_per_kwh:g}/kWh "
        f"(electricity only); cloud: {cloud}",
    ]


def _fix_lines(est: FinetuneEstimate) -> list[str]:
    lines = ["  speed, run time and cost: not estimated, the run does not fit"]
    if est.fixes:
        lines += [f"  would fit with: {f.change}" for f in est.fixes]
    else:
        lines.append("  no single change tried (QLoRA, checkpointing, micro-batch 1, shorter sequences, more "
                     "devices or RAM) makes it fit")
    return lines


__all__ = ["add_parser", "spec_from_args", "run", "format_text"]
