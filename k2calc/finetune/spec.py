"""Inputs of a fine-tuning estimate (:class:`FinetuneSpec`), their checks, and the deployment a run
trains on (:func:`training_deployment`, resolved by :func:`k2calc.scenario.resolve` like every other
workload, so custom devices and imported models work here as in the Calculator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..deployment import resolve
from ..errors import K2CalcError, validation_message
from ..memory import Deployment
from ..models import ModelArch
from ..scenario import MAX_COUNT, Catalogs, Scenario

METHODS = ("lora", "qlora", "full")
TARGETS = ("attention", "experts", "shared_experts", "dense_mlp")
# LLaMA-Factory's ``lora_target: all`` (used by every published KTransformers SFT recipe) puts LoRA on
# every nn.Linear; under KTransformers the routed experts are one opaque CPU operator, so "all" reaches
# attention, shared experts and dense MLPs. For a dense model these three are "all linear layers".
DEFAULT_TARGETS: tuple[str, ...] = ("attention", "shared_experts", "dense_mlp")


class FinetuneSpec(BaseModel):
    """All inputs of a fine-tuning estimate.

    Ranges are checked by :func:`check_spec` (one clear :class:`K2CalcError` each), not here, so a spec
    can be built from any user input and the error still reads as one line.

    Attributes
    ----------
    model, hardware : catalog ids (or ids of the session's :class:`~k2calc.scenario.Catalogs`); hardware
        is a GPU, a unified-memory system or a CPU
    count : GPUs or systems [count]
    cpu, sockets : host CPU id (with a GPU in ``hardware``: the hybrid route) and its sockets [count]
    ram_gb, swap_gb : system RAM as sold and swap space, binary gigabytes [GiB]
    wired_limit_gb : a raised macOS GPU wired-memory limit per Mac [GiB]; None = the macOS default
    method : "lora", "qlora" (NF4 base weights) or "full"
    rank, alpha : LoRA rank [1] and scaling alpha [1] (alpha changes the update scale, not memory or speed)
    targets : tensor groups that get adapters
    seq_len, micro_batch : tokens per sequence [tokens] and sequences per device per forward [count]
    gradient_checkpointing : recompute each layer in the backward instead of storing its activations
    tokens, epochs : dataset size [tokens] and passes over it [1]
    usd_per_kwh : electricity tariff [USD/kWh]; None = data/cost_assumptions.csv
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = "kimi-k2-instruct"
    hardware: str = "rtx-4090"
    # Upper bounds keep the work and every figure finite; lower bounds are checked by check_spec.
    count: int = Field(1, le=MAX_COUNT)
    cpu: str | None = None
    sockets: int = Field(2, le=8)
    ram_gb: float | None = Field(None, le=65536)
    swap_gb: float = Field(0.0, le=65536)
    wired_limit_gb: float | None = Field(None, ge=1, le=65536)
    method: str = "lora"
    rank: int = Field(8, le=65536)
    alpha: float = Field(32.0, le=1e6)
    targets: tuple[str, ...] = Field(DEFAULT_TARGETS, max_length=16)
    seq_len: int = Field(2048, le=10_000_000)
    micro_batch: int = Field(1, le=4096)
    gradient_checkpointing: bool = True
    tokens: int = Field(10_000_000, le=10**15)
    epochs: float = Field(1.0, le=1000)
    usd_per_kwh: float | None = Field(None, le=10)

    @classmethod
    def build(cls, names: Mapping[str, str] | None = None, **values: Any) -> "FinetuneSpec":
        """Construct from loose input; a wrong type or a value out of range becomes one K2CalcError line
        naming the field as `names` maps it (e.g. ``--swap-gb``)."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise K2CalcError(f"finetune: {validation_message(exc, names=names, model=cls)}") from None

    @classmethod
    def from_scenario(cls, s: Scenario, **training: Any) -> "FinetuneSpec":
        """A run on the deployment of scenario `s` (model, devices, CPU, RAM, tariff) with the training
        settings in `training` (method, rank, seq_len, ...)."""
        hardware = {"hardware": s.hardware, "cpu": s.cpu} if s.hardware else {"hardware": s.cpu, "cpu": None}
        return cls.build(model=s.model, count=s.count, sockets=s.sockets, ram_gb=s.ram_gb,
                         wired_limit_gb=s.wired_limit_gb, usd_per_kwh=s.electricity_usd_per_kwh,
                         **hardware, **training)

    def to_scenario(self) -> Scenario:
        """The deployment part of this spec as a :class:`Scenario` (what a share link carries)."""
        return Scenario.build(model=self.model, hardware=self.hardware, count=self.count, cpu=self.cpu,
                              sockets=self.sockets, ram_gb=self.ram_gb, wired_limit_gb=self.wired_limit_gb)

    @property
    def full(self) -> bool:
        """True for full fine-tuning (every weight trained), False for LoRA and QLoRA."""
        return self.method == "full"

    @property
    def micro_batch_tokens(self) -> int:
        """Tokens one device processes per forward: micro_batch x seq_len [tokens]."""
        return self.micro_batch * self.seq_len


def training_deployment(spec: FinetuneSpec, catalogs: Catalogs | None = None) -> Deployment:
    """The deployment `spec` trains on: model, topology, devices, CPU, RAM and engine.

    :func:`k2calc.scenario.resolve` looks everything up and rejects impossible combinations, for one
    device; the deployment then gets the spec's device count. Training splits a model its own way
    (ZeRO-3 / FSDP data parallel on GPU servers and unified systems, layer by layer on a hybrid box), so
    the inference engine's tensor/pipeline split (and its head-count rules) does not apply: the resolved
    deployment keeps TP = PP = 1, i.e. one data-parallel replica per device.
    """
    check_spec(spec)
    d = resolve(spec.to_scenario().model_copy(update={"count": 1}), catalogs)
    return replace(d, count=spec.count if d.topology != "cpu" else 1)


def check_spec(spec: FinetuneSpec) -> None:
    """Ranges and combinations that need no catalog; each failure is one K2CalcError line."""
    if spec.method not in METHODS:
        raise K2CalcError(f"unknown fine-tuning method '{spec.method}'; choose from {', '.join(METHODS)}")
    if not spec.full:
        if spec.rank <= 0:
            raise K2CalcError(f"LoRA rank must be a positive integer, got {spec.rank}")
        if not spec.targets:
            raise K2CalcError(f"choose at least one LoRA target from {', '.join(TARGETS)}")
        for t in spec.targets:
            if t not in TARGETS:
                raise K2CalcError(f"unknown LoRA target '{t}'; choose from {', '.join(TARGETS)}")
    for text, value in (("LoRA alpha must be positive", spec.alpha),
                        ("sequence length must be at least 1 token", spec.seq_len),
                        ("micro-batch must be at least 1 sequence", spec.micro_batch),
                        ("dataset must have at least 1 token", spec.tokens), ("epochs must be positive", spec.epochs),
                        ("device count must be at least 1", spec.count), ("sockets must be at least 1", spec.sockets)):
        if value <= 0:
            raise K2CalcError(f"{text}, got {value:g}" if isinstance(value, float) else f"{text}, got {value}")
    if spec.ram_gb is not None and spec.ram_gb < 1:
        raise K2CalcError(f"RAM must be at least 1 GB, got {spec.ram_gb:g} GB")
    if spec.swap_gb < 0:
        raise K2CalcError(f"swap must be zero or positive, got {spec.swap_gb:g} GB")
    if spec.usd_per_kwh is not None and spec.usd_per_kwh < 0:
        raise K2CalcError(f"electricity price must be zero or positive, got {spec.usd_per_kwh:g} USD/kWh")


def check_model(spec: FinetuneSpec, m: ModelArch) -> None:
    """Checks that need the model: the sequence fits its context window."""
    if spec.seq_len > m.max_context_tokens:
        raise K2CalcError(f"sequence length {spec.seq_len:,} exceeds {m.name}'s maximum context of "
                          f"{m.max_context_tokens:,} tokens")


__all__ = ["FinetuneSpec", "METHODS", "TARGETS", "DEFAULT_TARGETS", "training_deployment", "check_spec",
           "check_model"]
