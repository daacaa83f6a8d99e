"""Class corrections and uncertainty bands: how far a speed may be from the truth, by calibration class.

A calibration class is an engine family and a device platform (``server/nvidia-hopper``,
``ktransformers/nvidia-gddr+cpu``). For each class and kind of speed (decode; prefill/TTFT),
``data/class_corrections.csv`` holds

* ``correction``: the factor that takes the physics prediction to the published measurements of the
  class (a shrunk geometric mean over sources, see :func:`k2calc.validate.fit_corrections`); 1 where no
  source exists, so a class without evidence is pure physics;
* ``band_factor``: the spread of the class's rows when each source is predicted with corrections fitted
  without it (leave-one-source-out), covering at least two thirds of them;
* ``sources``, ``rows``: the evidence behind both.

``python -m k2calc validate --write-calibration`` regenerates the file from ``data/measurements.csv``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from ..loader import DATA_DIR, load_csv
from ..memory import Deployment
from .calibration import ENGINE_FAMILY, platform_of

CORRECTIONS_PATH = DATA_DIR / "class_corrections.csv"
FEW_SOURCES_BAND = 1.5   # least band factor of a class resting on fewer than three sources
FAR_BAND = 2.0           # band factor where no published row shares the engine family and platform
KINDS = ("decode", "prefill/ttft")


@dataclass(frozen=True)
class ClassCalibration:
    """What the published measurements say about one class and kind of speed."""

    correction: float = 1.0   # measured / physics, applied to the prediction [1]
    band_factor: float = FAR_BAND
    sources: int = 0
    rows: int = 0


Corrections = dict[tuple[str, str], ClassCalibration]
NO_EVIDENCE = ClassCalibration()


def calibration_class(d: Deployment) -> str:
    """Engine family / platform class of a deployment, e.g. 'server/nvidia-hopper' or
    'ktransformers/nvidia-gddr+cpu': the unit the corrections and bands are computed for. GPU servers
    spread over several nodes are a class of their own ('+multinode'): the cluster network and the
    engines' multi-node paths behave unlike one NVLink domain."""
    platform = platform_of(d.device).name if d.device else "cpu"
    suffix = "+cpu" if d.topology == "hybrid" else "+multinode" if d.topology == "gpu" and d.nodes > 1 else ""
    return f"{ENGINE_FAMILY[d.engine.id]}/{platform}{suffix}"


class CorrectionRow(BaseModel):
    """A row of data/class_corrections.csv (``class`` is a Python keyword: the field has an alias)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True)
    klass: str = Field(alias="class")
    kind: str
    sources: int = Field(ge=0)
    rows: int = Field(ge=0)
    correction: float = Field(gt=0)
    band_factor: float = Field(ge=1)


@lru_cache(maxsize=1)
def load_corrections() -> Corrections:
    """(class, kind) -> :class:`ClassCalibration`, from data/class_corrections.csv."""
    if not CORRECTIONS_PATH.exists():
        return {}
    return {(r.klass, r.kind): ClassCalibration(r.correction, r.band_factor, r.sources, r.rows)
            for r in load_csv(CORRECTIONS_PATH, CorrectionRow, key=("class", "kind"))}


def write_corrections(table: Corrections, path=CORRECTIONS_PATH) -> None:
    """Store a corrections table (sorted, three decimals)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["class", "kind", "sources", "rows", "correction", "band_factor"])
        for (klass, kind), c in sorted(table.items()):
            w.writerow([klass, kind, c.sources, c.rows, f"{c.correction:.3f}", f"{c.band_factor:.3f}"])


def class_calibration(klass: str, kind: str, table: Corrections | None = None) -> ClassCalibration:
    """The correction and band of a class and kind ('decode' | 'prefill/ttft')."""
    return (load_corrections() if table is None else table).get((klass, kind), NO_EVIDENCE)


@dataclass
class Band:
    """A speed and its uncertainty band (same unit as the speed)."""

    value: float
    low: float
    high: float
