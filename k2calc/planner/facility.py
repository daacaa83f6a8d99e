"""What a deployment asks of the site: servers or boxes, rack units, the power of one box, noise class,
cooling, and whether its devices are a verified, shipping product. Per-device facts come from
``data/hardware.csv`` (``rack_units``, ``noise_class``, ``cooling``, ``availability``, each sourced in
``facility_source``); an empty cell is unknown, and a constraint on an unknown fact is not met.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hardware import Hardware
from ..units import nodes_for_gpus
from .space import NOISE_CLASSES, Constraints


@dataclass(frozen=True)
class Site:
    """One replica's demands on the site."""

    boxes: int                   # servers, systems or workstations [count]
    rack_units: float | None     # [U]; None = unknown
    noise_class: str | None      # the loudest device's class; None = unknown
    cooling: str | None          # "air", "liquid" or "air-or-liquid"; None = unknown
    apart: str | None            # why the devices are shown apart (unverified, rarely shipped), or None


def site(values: dict, catalog: dict[str, Hardware]) -> Site:
    """The site demands of one replica of a configuration (scenario values): a GPU server holds up to 8
    GPUs per node (its ``rack_units`` are per node); systems count one each; a hybrid or CPU box is one
    machine (its rack units unknown: the chassis is the buyer's choice)."""
    main = catalog[values["hardware"]]
    cpu = catalog[values["cpu"]] if values.get("cpu") else None
    parts = [main] + ([cpu] if cpu else [])
    count = values.get("count", 1)
    if cpu is None and main.is_gpu:
        boxes = nodes_for_gpus(count)
    elif main.is_system:
        boxes = count
    else:
        boxes = 1
    units = main.rack_units * boxes if cpu is None and not main.is_cpu and main.rack_units is not None else None
    noises = [p.noise_class for p in parts]
    noise = None if None in noises else max(noises, key=NOISE_CLASSES.index)
    coolings = {p.cooling for p in parts}
    cooling = None if None in coolings else ("liquid" if "liquid" in coolings else
                                            "air" if "air" in coolings else "air-or-liquid")
    reasons = [f"{p.name}: catalog status unverified" for p in parts if p.status == "unverified"]
    reasons += [f"{p.name}: rarely shipped" for p in parts if p.availability == "rarely-shipped"]
    return Site(boxes, units, noise, cooling, "; ".join(reasons) or None)


def site_rejection(s: Site, c: Constraints) -> str | None:
    """The first site constraint `s` fails (cooling, then noise), or None."""
    if c.cooling is not None:
        if s.cooling is None:
            return f"cooling unknown (the site has {c.cooling} cooling only)"
        if s.cooling not in (c.cooling, "air-or-liquid"):
            return f"needs {s.cooling} cooling; the site has {c.cooling}"
    if c.noise is not None:
        if s.noise_class is None:
            return f"noise class unknown (the limit is {c.noise})"
        if NOISE_CLASSES.index(s.noise_class) > NOISE_CLASSES.index(c.noise):
            return f"noise class {s.noise_class}, louder than {c.noise} allows"
    return None


__all__ = ["Site", "site", "site_rejection"]
