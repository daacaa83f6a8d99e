"""Uncertainty bands: how far a speed may be from the truth, by calibration class.

A calibration class is an engine family and a device platform (``server/nvidia-hopper``,
``ktransformers/nvidia-gddr+cpu``); its band is the spread of the published measurements of that class
around the predictions (``python -m k2calc validate --write-bands`` regenerates ``data/uncertainty.csv``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from ..memory import Deployment
from .calibration import DATA, ENGINE_FAMILY, platform_of

UNCERTAINTY_PATH = DATA / "uncertainty.csv"
DEFAULT_BAND = 1.5   # band factor of a class with fewer than three published rows
FAR_BAND = 2.0       # band factor where no published row shares the engine family and platform


def calibration_class(d: Deployment) -> str:
    """Engine family / platform class of a deployment, e.g. 'server/nvidia-hopper' or
    'ktransformers/nvidia-gddr+cpu': the unit the uncertainty bands are computed for."""
    platform = platform_of(d.device).name if d.device else "cpu"
    return f"{ENGINE_FAMILY[d.engine.id]}/{platform}{'+cpu' if d.topology == 'hybrid' else ''}"


@lru_cache(maxsize=1)
def load_bands() -> dict[tuple[str, str], tuple[float, int]]:
    """(class, 'decode' | 'prefill/ttft') -> (band factor, rows), from data/uncertainty.csv."""
    if not UNCERTAINTY_PATH.exists():
        return {}
    with UNCERTAINTY_PATH.open(newline="") as f:
        return {(r["class"], r["kind"]): (float(r["band_factor"]), int(r["rows"])) for r in csv.DictReader(f)}


def band(klass: str, kind: str) -> tuple[float, int]:
    """(factor, rows): a speed v has the band [v / factor, v x factor]."""
    return load_bands().get((klass, kind), (FAR_BAND, 0))


@dataclass
class Band:
    """A speed and its uncertainty band (same unit as the speed)."""

    value: float
    low: float
    high: float
