"""The inputs of one estimate: :class:`Scenario` (every choice, as ids and numbers), :class:`Workload`
(what is served: context, prompt, answer, users and, for the planner, targets) and :class:`Catalogs`
(the session's imported models and custom devices the ids resolve against).

A scenario is plain data so that it round-trips through JSON, the command line and a URL
(:mod:`k2calc.links`); :func:`k2calc.deployment.resolve` turns it into a deployment and
:func:`k2calc.estimate.estimate` runs the pipeline. ``resolve`` stays importable from here for callers
written before the split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .cost import (
    MIN_AMORTISATION_YEARS,
    MIN_UTILISATION,
    CostAssumptions,
    default_assumptions,
)
from .errors import K2CalcError, first_error, validation_message
from .hardware import Hardware, load_hardware
from .models import ModelArch

MAX_COUNT = 1024
# Scenario fields that only change the money, never the deployment, memory or speed: a what-if on one of
# them re-prices an estimate (k2calc.estimate.reprice) instead of running the physics again.
COST_FIELDS = ("electricity_usd_per_kwh", "pue", "hosting_usd_per_kw_month", "maintenance_pct_per_year",
               "amortisation_years", "residual_value_pct", "utilisation", "cache_hit_rate",
               "hardware_price_usd", "cloud_usd_per_hour", "monthly_output_tokens", "api_provider",
               "api_input_usd_per_mtok", "api_output_usd_per_mtok")


class WorkloadError(K2CalcError):
    """The context cannot hold the prompt plus the answer."""


class Workload(BaseModel):
    """What is served: requests of ``input_tokens`` prompt + ``output_tokens`` answer, each kept in a
    context of ``context`` tokens [tokens], ``users`` of them at once [sequences]; optional targets
    for the planner: speed each user must get [tok/s] and the monthly output volume [tokens/month].

    A context shorter than prompt + answer cannot serve the request: :meth:`build` (and
    :attr:`Scenario.workload`) raise :class:`WorkloadError` with one line saying so.

    >>> Workload.build(context=32768).context_tokens
    32768
    >>> Workload.build(context=1024, input_tokens=8192, output_tokens=1024)
    Traceback (most recent call last):
    ...
    k2calc.scenario.WorkloadError: context 1,024 tokens cannot hold the prompt (8,192) + answer (1,024) = 9,216 tokens; raise the context to at least 9,216 or shorten the request
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    users: int = Field(1, ge=1, le=1_000_000)
    input_tokens: int = Field(8192, ge=1, le=10_000_000)
    output_tokens: int = Field(1024, ge=1, le=10_000_000)
    context: int | None = Field(None, ge=1, le=10_000_000)  # None = prompt + answer
    tokens_per_s_per_user: float | None = Field(None, gt=0, le=10_000)
    monthly_output_tokens: float | None = Field(None, gt=0, le=1e15)

    @property
    def request_tokens(self) -> int:
        """Prompt + answer of one request [tokens]."""
        return self.input_tokens + self.output_tokens

    @property
    def context_tokens(self) -> int:
        """Tokens one sequence keeps [tokens]: the context, or prompt + answer when none is set."""
        return self.context or self.request_tokens

    @model_validator(mode="after")
    def _context_holds_the_request(self) -> "Workload":
        if self.context is not None and self.context < self.request_tokens:
            raise ValueError(
                f"context {self.context:,} tokens cannot hold the prompt ({self.input_tokens:,}) + answer "
                f"({self.output_tokens:,}) = {self.request_tokens:,} tokens; raise the context to at least "
                f"{self.request_tokens:,} or shorten the request")
        return self

    @classmethod
    def build(cls, names: Mapping[str, str] | None = None, **values: Any) -> "Workload":
        """Validate user values (None = default); a bad one raises :class:`K2CalcError` in one line,
        naming the field as `names` maps it (e.g. to the command-line flag)."""
        try:
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            raise _workload_error(exc, names) from None


def _workload_error(exc: ValidationError, names: Mapping[str, str] | None = None) -> K2CalcError:
    """One line: the context check's own sentence, or the field's message."""
    field, message, _ = first_error(exc)
    if field is None:  # the model-level check (context vs prompt + answer)
        return WorkloadError(message)
    return K2CalcError(validation_message(exc, names=names, model=Workload))


class Scenario(BaseModel):
    """Every input of one estimate. Token counts in tokens, memory in the unit its name says.

    ``ram_gb`` and ``wired_limit_gb`` are binary gigabytes (GiB): DIMMs and Apple's unified memory are
    built in powers of two, so a "64 GB" DIMM and a "512 GB" Mac Studio hold 64 GiB and 512 GiB.
    The request fields (context, input_tokens, output_tokens, concurrency) are checked together by
    :attr:`workload`, so a link or a half-typed form can hold them in any order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = Field("kimi-k2-thinking", max_length=10_000)
    quant: str = Field("native", max_length=10_000)
    bits_per_weight: float | None = Field(None, ge=1, le=32)
    hardware: str | None = "h200-sxm"
    count: int = Field(8, ge=1, le=MAX_COUNT)
    nodes: int = Field(1, ge=1, le=128)
    cpu: str | None = None
    sockets: int = Field(2, ge=1, le=8)
    ram_gb: float | None = Field(None, ge=1, le=65536)
    engine: str | None = None
    tp: int | None = Field(None, ge=1, le=MAX_COUNT)
    pp: int | None = Field(None, ge=1, le=256)
    ep: int | None = Field(None, ge=1, le=MAX_COUNT)
    dp_attention: bool = False
    dcp: int = Field(1, ge=1, le=64)
    gpu_experts: int = Field(0, ge=0, le=4096)
    kt_prefill: Literal["auto", "cpu", "gpu"] = "auto"
    kv_dtype: str = "bf16"
    context: int = Field(32768, ge=1, le=10_000_000)
    input_tokens: int = Field(8192, ge=1, le=10_000_000)
    output_tokens: int = Field(1024, ge=1, le=10_000_000)
    concurrency: int = Field(1, ge=1, le=1_000_000)
    memory_fraction: float | None = Field(None, ge=0.01, le=1)
    wired_limit_gb: float | None = Field(None, ge=1, le=65536)
    # Speculative decoding (k2calc.fleet_speculative): a multi-token-prediction layer or an EAGLE-3 head;
    # None = the model's sourced default draft length [tokens] and per-token acceptance rate [1].
    spec_method: Literal["none", "mtp", "eagle3"] = "none"
    spec_draft_tokens: int | None = Field(None, ge=1, le=16)
    spec_acceptance: float | None = Field(None, ge=0.01, le=0.99)
    # Cost assumptions: None = the dated default in data/cost_assumptions.csv.
    electricity_usd_per_kwh: float | None = Field(None, ge=0, le=10)
    pue: float | None = Field(None, ge=1, le=5)
    hosting_usd_per_kw_month: float | None = Field(None, ge=0, le=10000)
    maintenance_pct_per_year: float | None = Field(None, ge=0, le=100)
    amortisation_years: float | None = Field(None, ge=MIN_AMORTISATION_YEARS, le=30)
    residual_value_pct: float | None = Field(None, ge=0, le=100)
    utilisation: float | None = Field(None, ge=MIN_UTILISATION, le=1)
    cache_hit_rate: float | None = Field(None, ge=0, le=1)
    hardware_price_usd: float | None = Field(None, ge=0, le=1e8)
    cloud_usd_per_hour: float | None = Field(None, ge=0, le=10000)
    monthly_output_tokens: float | None = Field(None, ge=1, le=1e15)
    api_provider: str | None = Field(None, max_length=100)
    # The API's prices in place of the provider's list prices [USD per 1M tokens]; None = list price.
    api_input_usd_per_mtok: float | None = Field(None, ge=0, le=1000)
    api_output_usd_per_mtok: float | None = Field(None, ge=0, le=1000)

    @property
    def workload(self) -> Workload:
        """The request shape; raises :class:`WorkloadError` when the context cannot hold prompt + answer."""
        return Workload.build(users=self.concurrency, input_tokens=self.input_tokens,
                              output_tokens=self.output_tokens, context=self.context,
                              monthly_output_tokens=self.monthly_output_tokens)

    def cost_overrides(self) -> dict[str, Any]:
        """The cost settings this scenario sets (the rest stay at their dated defaults)."""
        return {k: getattr(self, k) for k in COST_FIELDS if getattr(self, k) is not None}

    def cost_assumptions(self) -> CostAssumptions:
        """The default assumptions with this scenario's overrides."""
        overrides = self.cost_overrides()
        return default_assumptions().with_overrides(
            **{k: v for k, v in overrides.items() if k in CostAssumptions.model_fields})

    @classmethod
    def build(cls, names: Mapping[str, str] | None = None, **values: Any) -> "Scenario":
        """Validate user values; a bad one raises :class:`K2CalcError` naming the field (as `names`
        maps it, e.g. ``--bits-per-weight``), the value and the allowed range."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise K2CalcError(validation_message(exc, names=names, model=cls)) from None


CUSTOM_SUFFIX = " (custom)"


def custom_name(name: str) -> str:
    """How an imported model's or custom device's name is shown: 'Lab GPU (custom)' (never marked twice)."""
    return name if name.endswith(CUSTOM_SUFFIX) else name + CUSTOM_SUFFIX


class Catalogs(BaseModel):
    """Session additions to the catalogs (imported models, custom devices); a link carries them
    (:func:`k2calc.links.catalogs_param`)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    models: dict[str, ModelArch] = {}
    hardware: dict[str, Hardware] = {}

    @field_validator("models", "hardware")
    @classmethod
    def _shown_as_custom(cls, items: dict) -> dict:
        """Every imported model and custom device is named as custom wherever its name appears (the
        Calculator's verdict, the Compare pages, reports, CLI text): the one place names get the mark."""
        return {k: v if v.name.endswith(CUSTOM_SUFFIX) else v.model_copy(update={"name": custom_name(v.name)})
                for k, v in items.items()}

    def hardware_catalog(self) -> dict[str, Hardware]:
        return {**load_hardware(), **self.hardware}


def __getattr__(name: str) -> Any:
    """``resolve`` moved to :mod:`k2calc.deployment` and ``estimate`` to :mod:`k2calc.estimate`; importing
    them from here still works for code written before the split (validate.py, branches in flight)."""
    if name == "resolve":
        from .deployment import resolve
        return resolve
    if name == "estimate":
        from .estimate import estimate
        return estimate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Scenario", "Workload", "WorkloadError", "Catalogs", "custom_name", "CUSTOM_SUFFIX", "MAX_COUNT", "COST_FIELDS"]
