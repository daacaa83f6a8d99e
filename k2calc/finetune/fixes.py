"""What would make a fine-tuning run fit: free changes first (QLoRA, checkpointing, smaller micro-batches,
shorter sequences), then more hardware (devices, RAM). Each suggestion is checked by placing the changed
run again, one change at a time."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..deployment import candidate_counts
from ..memory import Deployment, ram_needed_bytes
from ..units import GiB
from .memory import TrainingDeviceMemory
from .spec import FinetuneSpec

MIN_SEQ_LEN = 256        # shortest sequence suggested [tokens]
MAX_FIXES = 4


@dataclass(frozen=True)
class Fix:
    """One change that makes the run fit: in words, and as the :class:`FinetuneSpec` fields it sets."""

    change: str
    update: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"change": self.change, "update": dict(self.update)}


def find_fixes(spec: FinetuneSpec, devices: list[TrainingDeviceMemory], d: Deployment,
               fits: Callable[[FinetuneSpec], bool]) -> list[Fix]:
    """Up to :data:`MAX_FIXES` single changes to `spec` that `fits` accepts, free changes first; of each
    kind of change (e.g. shorter sequences) the smallest step that fits.

    `devices` is the placement that did not fit (it sizes the RAM suggestion) and `d` its deployment."""
    found: list[Fix] = []
    for alternatives in (*_free_changes(spec), *_hardware_changes(devices, d)):
        fix = next((Fix(change, update) for change, update in alternatives
                    if fits(spec.model_copy(update=update))), None)
        if fix is not None:
            found.append(fix)
        if len(found) == MAX_FIXES:
            break
    return found


Alternatives = list[tuple[str, dict[str, Any]]]


def _free_changes(spec: FinetuneSpec) -> list[Alternatives]:
    """Changes that keep the hardware, each kind a list of steps (smallest first)."""
    out: list[Alternatives] = []
    if spec.method == "full":
        out.append([("LoRA instead of full fine-tuning", {"method": "lora"})])
    if spec.method != "qlora":
        out.append([("QLoRA (base weights in 4-bit NF4)", {"method": "qlora"})])
    if not spec.gradient_checkpointing:
        out.append([("gradient checkpointing on", {"gradient_checkpointing": True})])
    if spec.micro_batch > 1:
        out.append([("a micro-batch of 1 sequence", {"micro_batch": 1})])
    shorter, n = [], spec.seq_len // 2
    while n >= MIN_SEQ_LEN:
        shorter.append((f"sequences of {n:,} tokens", {"seq_len": n}))
        n //= 2
    out.append(shorter)
    return out


def _hardware_changes(devices: list[TrainingDeviceMemory], d: Deployment) -> list[Alternatives]:
    """More system RAM (sized to hold RAM's and swap's share without swap) or more devices."""
    out: list[Alternatives] = []
    ram = next((x for x in devices if x.kind == "ram"), None)
    if ram is not None and ram.free_bytes < 0:
        swapped = sum(x.weights_bytes for x in devices if x.kind == "swap")
        ram_gb = math.ceil(ram_needed_bytes(ram.used_bytes + swapped) / GiB)
        out.append([(f"{ram_gb:,} GiB of system RAM (no swap needed)", {"ram_gb": float(ram_gb)})])
    if d.device is not None and any(x.free_bytes < 0 for x in devices if x.kind in ("gpu", "unified")):
        out.append([(f"{n} x {d.device.name}", {"count": n}) for n in candidate_counts(d.topology) if n > d.count])
    return out


__all__ = ["Fix", "find_fixes", "MIN_SEQ_LEN", "MAX_FIXES"]
