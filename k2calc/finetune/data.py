"""The fine-tuning tables in ``data/``: efficiencies (each with its source) and the published runs that
set them, loaded by :func:`k2calc.loader.load_csv` into typed rows."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..errors import CatalogError
from ..loader import load_csv
from .spec import FinetuneSpec

DATA = Path(__file__).resolve().parent.parent.parent / "data"
EFFICIENCIES_PATH = DATA / "finetune_efficiencies.csv"
RUNS_PATH = DATA / "finetune_runs.csv"


class Efficiency(BaseModel):
    """One row of data/finetune_efficiencies.csv: a named constant of the speed model."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    value: float = Field(gt=0)
    unit: str = Field(min_length=1)
    source: str = Field(min_length=1)


class PublishedRun(BaseModel):
    """One row of data/finetune_runs.csv: a published fine-tuning throughput and its configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    model: str
    hardware: str
    count: int = Field(ge=1)
    cpu: str | None = None
    sockets: int = Field(2, ge=1)
    ram_gb: float | None = Field(None, gt=0)
    swap_gb: float = Field(0.0, ge=0)
    method: str
    rank: int = Field(ge=1)
    seq_len: int = Field(ge=1)
    micro_batch: int = Field(ge=1)
    gradient_checkpointing: bool
    measured_tokens_per_s: float = Field(gt=0)
    source: str = Field(min_length=1)
    notes: str | None = None

    def spec(self) -> FinetuneSpec:
        """The run as a :class:`FinetuneSpec`."""
        fields = self.model_dump(exclude={"id", "measured_tokens_per_s", "source", "notes"})
        return FinetuneSpec(**fields)


@lru_cache(maxsize=4)
def efficiencies(path: Path = EFFICIENCIES_PATH) -> dict[str, Efficiency]:
    """data/finetune_efficiencies.csv keyed by name (read once)."""
    return {row.name: row for row in load_csv(path, Efficiency)}


def efficiency(name: str) -> float:
    """The value of one efficiency [its row's unit]; a missing row raises CatalogError naming the file."""
    rows = efficiencies()
    if name not in rows:
        raise CatalogError(f"{EFFICIENCIES_PATH.name}: no row named '{name}'")
    return rows[name].value


@lru_cache(maxsize=4)
def published_runs(path: Path = RUNS_PATH) -> tuple[PublishedRun, ...]:
    """data/finetune_runs.csv in file order (read once)."""
    return load_csv(path, PublishedRun)


__all__ = ["Efficiency", "PublishedRun", "efficiencies", "efficiency", "published_runs"]
