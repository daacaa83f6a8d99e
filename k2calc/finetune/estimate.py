"""The fine-tuning estimate: spec -> deployment (:func:`k2calc.scenario.resolve`) -> memory -> speed ->
run time, energy and cost, in one :class:`FinetuneEstimate`.

When the run does not fit, speed, time and cost are None (nothing is reported as if it ran) and
``fixes`` lists changes that would make it fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cost import default_assumptions
from ..errors import K2CalcError
from ..memory import Deployment
from ..models import param_counts
from ..scenario import Catalogs
from ..units import GiB, format_device_bytes
from .adapters import adapter_params
from .assumptions import assumptions
from .fixes import Fix, find_fixes
from .memory import (
    TrainingDeviceMemory,
    TrainingJob,
    fit_reasons,
    place,
    spill_to_swap,
    training_job,
)
from .spec import TARGETS, FinetuneSpec, check_model, training_deployment
from .speed import SWAP_READ_BYTES_PER_S, add_swap_reads, timing, train_flops_per_token


def default_usd_per_kwh() -> float:
    """Electricity tariff [USD/kWh]: the cost model's dated default (data/cost_assumptions.csv)."""
    return default_assumptions().electricity_usd_per_kwh


@dataclass
class FinetuneEstimate:
    """Everything :func:`estimate_finetune` says. Bytes, tokens/s, hours, kWh, USD, W.

    Speed, time, energy and cost fields are None when the run does not fit (``fits`` False); ``fixes``
    then lists changes that would make it fit."""

    spec: FinetuneSpec
    deployment: Deployment
    model_name: str
    route: str                 # "gpu" (GPU servers and unified systems) | "hybrid" | "cpu"
    fits: bool
    reasons: list[str]
    warnings: list[str]
    devices: list[TrainingDeviceMemory]
    trainable_params: int
    adapter_params_by_target: dict[str, int]
    flops_per_token: float
    usd_per_kwh: float
    tokens_per_s: float | None = None
    roofline_tokens_per_s: float | None = None
    time_per_token_s: dict[str, float] | None = None
    bottleneck: str | None = None
    hours: float | None = None
    power_watts: float | None = None
    energy_kwh: float | None = None
    cost_usd: float | None = None
    cloud_cost_usd: float | None = None
    cloud_note: str = ""
    fixes: list[Fix] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def topology(self) -> str:
        """The deployment's topology: "gpu", "unified", "hybrid" or "cpu"."""
        return self.deployment.topology

    @property
    def slow(self) -> bool:
        """True when part of the working set lives in swap."""
        return any(d.slow and d.used_bytes > 0 for d in self.devices)

    def memory_breakdown(self) -> list[dict]:
        return [d.as_dict() for d in self.devices]

    def as_dict(self) -> dict:
        """The ``--json`` object; ``performance`` and ``cost`` are null when it does not fit."""
        return {
            "spec": self.spec.model_dump(mode="json"), "model": self.model_name, "route": self.route,
            "topology": self.topology, "fits": self.fits, "slow": self.slow, "reasons": list(self.reasons),
            "warnings": list(self.warnings), "fixes": [f.as_dict() for f in self.fixes],
            "memory": {
                "devices": self.memory_breakdown(),
                "trainable_params": self.trainable_params,
                "adapter_params_by_target": dict(self.adapter_params_by_target),
                "total_used_bytes": sum(d.used_bytes for d in self.devices),
            },
            "performance": None if not self.fits else {
                "tokens_per_s": self.tokens_per_s, "roofline_tokens_per_s": self.roofline_tokens_per_s,
                "flops_per_token": self.flops_per_token, "time_per_token_s": dict(self.time_per_token_s),
                "bottleneck": self.bottleneck,
            },
            "cost": None if not self.fits else {
                "hours": self.hours, "power_watts": self.power_watts, "energy_kwh": self.energy_kwh,
                "usd_per_kwh": self.usd_per_kwh, "cost_usd": self.cost_usd,
                "cloud_cost_usd": self.cloud_cost_usd, "cloud_note": self.cloud_note,
            },
            "assumptions": list(self.assumptions),
        }


@dataclass
class _Placed:
    """The memory side of an estimate: deployment, job, devices, what went to swap, why it does not fit."""

    d: Deployment
    job: TrainingJob
    devices: list[TrainingDeviceMemory]
    cpu_share: float
    swapped_bytes: int
    reasons: list[str]


def _placed(spec: FinetuneSpec, catalogs: Catalogs | None) -> _Placed:
    """Resolve, check and place `spec`; raises K2CalcError (one line) for bad input."""
    d = training_deployment(spec, catalogs)
    check_model(spec, d.model)
    by_target = {} if spec.full else adapter_params(d.model, spec.rank, tuple(dict.fromkeys(spec.targets)))
    if not spec.full and sum(by_target.values()) == 0:
        raise K2CalcError(f"none of the LoRA targets {', '.join(spec.targets)} exist in {d.model.name}; "
                          f"choose from {', '.join(TARGETS)}")
    job = training_job(spec, d.model, by_target)
    placement = place(job, d)
    swapped = spill_to_swap(placement.devices, int(spec.swap_gb * GiB))
    return _Placed(d, job, placement.devices, placement.cpu_share, swapped, fit_reasons(spec, placement.devices))


def fits(spec: FinetuneSpec, catalogs: Catalogs | None = None) -> bool:
    """Whether `spec` fits its deployment (memory only; False for an impossible combination)."""
    try:
        return not _placed(spec, catalogs).reasons
    except K2CalcError:
        return False


def estimate_finetune(spec: FinetuneSpec, catalogs: Catalogs | None = None) -> FinetuneEstimate:
    """Memory per device, tokens/s, run time, energy and cost of one fine-tuning run.

    Parameters
    ----------
    spec : all inputs
    catalogs : the session's imported models and custom devices (as carried in a share link), looked up
        by :func:`k2calc.scenario.resolve` exactly as for inference

    Raises
    ------
    K2CalcError : bad input (one line); UnknownIdError (a K2CalcError) for unknown ids
    """
    p = _placed(spec, catalogs)
    d, job = p.d, p.job
    flops = train_flops_per_token(d.model, spec, job.by_target)
    est = FinetuneEstimate(
        spec=spec, deployment=d, model_name=d.model.name, route="gpu" if d.topology == "unified" else d.topology,
        fits=not p.reasons, reasons=p.reasons, warnings=[], devices=p.devices,
        trainable_params=param_counts(d.model).total if spec.full else job.n_adapters,
        adapter_params_by_target=job.by_target, flops_per_token=flops.total,
        usd_per_kwh=spec.usd_per_kwh if spec.usd_per_kwh is not None else default_usd_per_kwh(),
        assumptions=assumptions(spec, d))
    if not est.fits:
        est.fixes = find_fixes(spec, p.devices, d, lambda s: fits(s, catalogs))
        return est
    t = timing(job, flops, d, p.cpu_share)
    swap_s = add_swap_reads(t, job, p.swapped_bytes)
    if p.swapped_bytes > 0:
        est.warnings.append(
            f"{format_device_bytes(p.swapped_bytes)} of frozen weights live in swap: SLOW (paged in from disk "
            f"every pass, about {swap_s * 1e3:,.1f} ms per token at {SWAP_READ_BYTES_PER_S / 1e9:g} GB/s); "
            "more RAM removes this")
    est.tokens_per_s, est.time_per_token_s, est.bottleneck = t.tokens_per_s, t.times, t.bottleneck
    est.roofline_tokens_per_s = t.peak_flops_per_s / flops.total
    est.hours = spec.tokens * spec.epochs / est.tokens_per_s / 3600
    est.power_watts = training_power_watts(d)
    est.energy_kwh = est.power_watts * est.hours / 1000
    est.cost_usd = est.energy_kwh * est.usd_per_kwh
    est.cloud_cost_usd, est.cloud_note = cloud_cost(d, est.hours)
    return est


def training_power_watts(d: Deployment) -> float:
    """Power of the whole deployment while training [W]: each GPU or system at its typical draw (or TDP
    where none is measured), each CPU socket at its TDP (hardware catalog)."""
    watts = 0.0
    if d.device is not None:
        watts += d.count * (d.device.typical_watts or d.device.tdp_watts or 0)
    if d.cpu is not None:
        watts += d.sockets * (d.cpu.tdp_watts or 0)
    return watts


def cloud_cost(d: Deployment, hours: float) -> tuple[float | None, str]:
    """Rental cost of the same run on rented devices where the catalog has an hourly price [USD], and a
    note naming the price, its date and source (or why there is none)."""
    device, route = d.device, d.topology
    if route == "cpu" or device is None:
        return None, "no cloud price: the catalog prices GPUs per hour, not CPU-only hosts"
    if device.cloud_usd_per_hour is None:
        extra = " (and the catalog prices no CPU+GPU host by the hour)" if route == "hybrid" else ""
        return None, f"no cloud price for {device.name} in the hardware catalog{extra}"
    note = (f"{d.count} x {device.name} at ${device.cloud_usd_per_hour:,.2f}/GPU-hour "
            f"({device.cloud_date}, {device.cloud_source})")
    if route == "hybrid":
        note += "; GPU rental only: a host with this CPU and RAM costs extra"
    return device.cloud_usd_per_hour * d.count * hours, note


__all__ = ["FinetuneEstimate", "estimate_finetune", "fits", "training_power_watts", "cloud_cost",
           "default_usd_per_kwh"]
