"""Fleet scale: disaggregated prefill and decode pools against aggregated serving, and the smallest fleet
that meets a service-level target.

* **Disaggregated** (SGLang PD disaggregation, NVIDIA Dynamo, vLLM with llm-d): prompts are prefilled in
  a prefill pool, their KV cache crosses the cluster network to a decode pool, and the decode pool
  generates. Each pool is a large-EP replica (:mod:`k2calc.fleet_ep`) with its own size; a workload's
  arrival rate x prompt length sets the prefill GPUs, its concurrent users / batch per GPU the decode
  GPUs, and so the prefill:decode ratio that balances it.
* **Aggregated**: the pipeline's own deployment (:func:`k2calc.estimate.estimate`'s physics and class
  corrections: one replica per node or per smallest fitting count, prompts prefilled between decode
  steps), as many replicas as the users need.

Targets: TPOT from tokens per second per user, and TTFT as a mean and, optionally, a 95th percentile
(the prompts' M/D/1 queue: its mean by Pollaczek-Khinchine, its tail by Cramer-Lundberg). Times in seconds, throughputs in tokens per second, money in USD.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .cost import estimate_cost
from .deployment import resolve, smallest_fitting, with_count
from .errors import K2CalcError, validation_message
from .estimate import finite_json
from .fleet_ep import DecodeStep, Pool, decode_step_pool, make_pool, prefill_batch_pool
from .fleet_speculative import Speculation
from .hardware import get_hardware
from .memory import Deployment, estimate_memory
from .models import get_model
from .performance import estimate_performance
from .performance.calibration import platform_of
from .performance.decode import (
    INTERNODE_BYTES_PER_S,
    INTERNODE_LATENCY_S,
    ROW_BOUND_MOE_KERNELS,
)
from .performance.estimate import MAX_PREFILL_UTILISATION, decode_batch_cap
from .performance.prefill import REQUEST_OVERHEAD_S
from .scenario import Scenario
from .units import GPUS_PER_NODE, nodes_for_gpus

# Pool sizes the search tries [GPUs]: whole 8-GPU nodes, EP 8-128 (the LMSYS deployments use EP32 for
# prefill and EP72 / EP96 for decode).
POOL_SIZES = (8, 16, 32, 64, 72, 96, 128)
# Prompt tokens per GPU in one prefill forward; LMSYS ran 16,384 per GPU at 4K prompts (2025-05-05).
PREFILL_TOKENS_PER_GPU = (1024, 2048, 4096, 8192, 16384)


class FleetWorkload(BaseModel):
    """What the fleet must serve: `users` at once (or `arrival_rate_per_s` requests a second), each
    request `input_tokens` in and `output_tokens` out, at `tokens_per_s_per_user` each and a mean
    time to first token under `ttft_s`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = "kimi-k2-thinking"
    quant: str = "native"
    users: int | None = Field(None, ge=1, le=10_000_000)
    arrival_rate_per_s: float | None = Field(None, gt=0, le=1e7)
    input_tokens: int = Field(2000, ge=1, le=1_000_000)
    output_tokens: int = Field(1000, ge=1, le=1_000_000)
    tokens_per_s_per_user: float = Field(30.0, gt=0, le=10_000)
    ttft_s: float = Field(2.0, gt=0, le=3600)
    ttft_p95_s: float | None = Field(None, gt=0, le=3600)  # optional: the 95th percentile's target
    spec_method: Literal["none", "mtp", "eagle3"] = "none"  # speculative decoding, the model's sourced defaults

    @model_validator(mode="after")
    def _users_or_rate(self) -> "FleetWorkload":
        if self.users is None and self.arrival_rate_per_s is None:
            raise ValueError("give the users served at once or the arrival rate of requests")
        return self

    @property
    def context_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def build(cls, names=None, **values) -> "FleetWorkload":
        """Validate user values (None = default); a bad one raises :class:`K2CalcError` in one line,
        naming the field as `names` maps it (e.g. to the command-line flag)."""
        if values.get("users") is None and values.get("arrival_rate_per_s") is None:
            raise K2CalcError("give the users served at once (--users) or the requests per second (--arrival-rate-per-s)")
        try:
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            raise K2CalcError(validation_message(exc, names=names, model=cls)) from None

    @property
    def seq_len(self) -> float:
        """Cached tokens a decode step sees on average: the prompt and half the answer [tokens]."""
        return self.input_tokens + self.output_tokens / 2

    def speculation(self):
        """The speculative-decoding setting (k2calc.fleet_speculative.Speculation) or None."""
        return Speculation.of(get_model(self.model), self.spec_method)

    @property
    def tpot_s(self) -> float:
        """The time per output token the speed target allows [s]."""
        return 1.0 / self.tokens_per_s_per_user

    def concurrent_users(self) -> int:
        """Users generating at once [count]: the given users, or Little's law on the arrival rate with
        each answer taking output_tokens x TPOT at the target."""
        if self.users is not None:
            return self.users
        return max(1, math.ceil(self.arrival_rate_per_s * (self.ttft_s + self.output_tokens * self.tpot_s)))

    def arrival_rate(self, ttft_s: float, tpot_s: float) -> float:
        """Requests per second [1/s]: the given rate, or a closed loop of the users, each sending its
        next request when its answer ends (TTFT + output x TPOT later)."""
        if self.arrival_rate_per_s is not None:
            return self.arrival_rate_per_s
        return self.users / (ttft_s + self.output_tokens * tpot_s)


@dataclass
class FleetOption:
    """One fleet on one hardware, aggregated or disaggregated; figures for the whole fleet unless named
    per node or per GPU."""

    mode: str                      # "aggregated" (pipeline replicas) | "aggregated-ep" | "disaggregated"
    hardware: str
    meets: bool
    reason: str = ""
    prefill_nodes: int = 0
    decode_nodes: int = 0          # aggregated: every node serves both
    gpus: int = 0
    prefill_pool_gpus: int = 0     # one prefill instance (EP size); aggregated: 0
    decode_pool_gpus: int = 0      # one decode instance (EP size); aggregated: one replica's GPUs
    prefill_instances: int = 0
    decode_instances: int = 0
    batch_per_gpu: float = 0.0     # sequences decoding per GPU
    tokens_per_s_per_user: float = 0.0
    tpot_s: float = 0.0
    ttft_s: float = 0.0            # mean
    ttft_p95_s: float = 0.0
    arrival_rate_per_s: float = 0.0
    input_tokens_per_s_per_prefill_node: float = 0.0
    output_tokens_per_s_per_decode_node: float = 0.0
    output_tokens_per_s_total: float = 0.0
    kv_transfer_bytes_per_token: float = 0.0
    kv_transfer_s: float = 0.0
    capex_usd: float | None = None
    power_watts: float | None = None
    usd_per_million_output_tokens: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        return self.prefill_nodes + self.decode_nodes

    def as_dict(self) -> dict:
        return finite_json({**asdict(self), "nodes": self.nodes})


@dataclass(frozen=True)
class _Throughput:
    """What :func:`k2calc.cost.estimate_cost` reads of a performance estimate, for a whole fleet."""

    output_tokens_per_s_total: float
    prefill_tokens_per_s: float
    decode_tokens_per_s_per_user: float


def kv_transfer_bytes_per_token(pool: Pool) -> int:
    """KV cache bytes one prompt token sends from the prefill pool to the decode pool [B]: the
    whole model's cache of one token (with DP attention one rank holds a request's whole cache).
    Kimi K2 / DeepSeek V3 in BF16: 61 layers x 576 x 2 B = 70,272 B."""
    return pool.memory.kv_bytes_per_token


def kv_transfer_s(input_tokens: int, bytes_per_token: float, nic_bytes_per_s: float = INTERNODE_BYTES_PER_S) -> float:
    """Time to move one prompt's KV cache over one GPU's NIC (RDMA, Mooncake / NIXL) [s].

    >>> round(kv_transfer_s(2000, 70272) * 1e3, 2)
    2.83
    """
    return INTERNODE_LATENCY_S + input_tokens * bytes_per_token / nic_bytes_per_s


def md1_ttft_s(batch_s: float, utilisation: float) -> float:
    """Mean time a prompt spends in a prefill instance that runs forwards of `batch_s` at `utilisation`
    [s]: half a forward in progress, the queue of an M/D/1 server (rho / (2 (1 - rho)) services:
    Pollaczek-Khinchine), then its own forward.

    >>> md1_ttft_s(1.0, 0.0), md1_ttft_s(1.0, 0.5)
    (1.5, 2.0)
    """
    rho = min(utilisation, MAX_PREFILL_UTILISATION)
    return batch_s * (1.5 + rho / (2 * (1 - rho)))


def max_utilisation(budget_s: float, batch_s: float) -> float:
    """The highest utilisation at which :func:`md1_ttft_s` stays within `budget_s` [1] (0 when even an
    idle instance misses it).

    >>> max_utilisation(2.0, 1.0), max_utilisation(1.0, 1.0)
    (0.5, 0.0)
    """
    x = budget_s / batch_s - 1.5
    if x <= 0:
        return 0.0
    return min(MAX_PREFILL_UTILISATION, 2 * x / (1 + 2 * x))


def md1_wait_quantile_s(service_s: float, utilisation: float, q: float = 0.95) -> float:
    """The q-quantile of an M/D/1 queue's wait [s]: its tail is P(W > t) ~ rho exp(-theta t)
    (Cramer-Lundberg), theta D the positive root x of rho (e^x - 1) = x for service time D; so
    t_q = D ln(rho / (1 - q)) / x, and 0 while rho <= 1 - q.

    >>> round(md1_wait_quantile_s(1.0, 0.5), 3), md1_wait_quantile_s(1.0, 0.04)
    (1.833, 0.0)
    """
    rho = min(utilisation, MAX_PREFILL_UTILISATION)
    if rho <= 1 - q:
        return 0.0
    lo, hi = 1e-9, 1.0
    while rho * math.expm1(hi) < hi:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if rho * math.expm1(mid) >= mid else (mid, hi)
    return service_s * math.log(rho / (1 - q)) / hi


def md1_ttft_p95_s(batch_s: float, utilisation: float) -> float:
    """The p95 of :func:`md1_ttft_s`: half a forward in progress, the queue's 95th percentile, the own
    forward [s] (the two forwards' share taken at their mean).

    >>> round(md1_ttft_p95_s(1.0, 0.5), 3)
    3.333
    """
    return batch_s * 1.5 + md1_wait_quantile_s(batch_s, utilisation)


def max_utilisation_p95(budget_s: float, batch_s: float) -> float:
    """The highest utilisation at which :func:`md1_ttft_p95_s` stays within `budget_s` [1] (bisection;
    0 when even an idle instance misses it)."""
    if md1_ttft_p95_s(batch_s, 0.0) > budget_s:
        return 0.0
    lo, hi = 0.0, MAX_PREFILL_UTILISATION
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if md1_ttft_p95_s(batch_s, mid) <= budget_s else (lo, mid)
    return lo


def redundant_experts(n_experts: int, gpus: int) -> int:
    """EPLB's redundant expert copies per MoE layer in a decode pool of `gpus` GPUs [count]: every GPU
    holds one expert more than the even share, gpus x (E // gpus + 1) - E. It gives both published
    setups: DeepSeek's 256 experts on 72 H100 + 32 = 288 (LMSYS 2025-05-05: "32 additional experts
    ... a pool of 288"), Kimi K2's 384 on 96 H200 + 96 (LMSYS 2025-07-17).

    >>> redundant_experts(256, 72), redundant_experts(384, 96), redundant_experts(0, 8)
    (32, 96, 0)
    """
    return gpus * (n_experts // gpus + 1) - n_experts if n_experts else 0


def _pools(w: FleetWorkload, hardware: str, sizes=POOL_SIZES, eplb: bool = False) -> list[Pool]:
    """The large-EP pools of `sizes` GPUs whose weights and one request fit, with EPLB's redundant
    experts when `eplb` [Pool]."""
    n_experts = get_model(w.model).n_routed_experts
    out = []
    for n in sizes:
        try:
            pool = make_pool(w.model, hardware, n, w.quant, context=w.context_tokens,
                             redundant_experts=redundant_experts(n_experts, n) if eplb and n > 1 else 0)
        except K2CalcError:
            continue
        if pool.memory.fits and pool.kv_tokens_per_gpu >= w.context_tokens:
            out.append(pool)
    return out


def _decode(pool: Pool, w: FleetWorkload, batch_per_gpu: int) -> DecodeStep:
    """The pool's decode step for the workload (speculative when it asks) at `batch_per_gpu` sequences."""
    spec = w.speculation()
    return decode_step_pool(pool, batch_per_gpu, w.seq_len, *((spec,) if spec else ()))


def max_batch_per_gpu(pool: Pool, w: FleetWorkload, tpot_s: float) -> tuple[int, float]:
    """(largest sequences per GPU whose decode step meets `tpot_s` and whose KV fits, its step [s]);
    (0, step at one sequence) when even one misses it."""
    hi = min(pool.kv_tokens_per_gpu // w.context_tokens, decode_batch_cap(pool.deployment))
    step = lambda b: _decode(pool, w, b).per_token_s  # noqa: E731
    if hi < 1 or step(1) > tpot_s:
        return 0, step(1)
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if step(mid) <= tpot_s:
            lo = mid
        else:
            hi = mid - 1
    return lo, step(lo)


def _decode_plan(w: FleetWorkload, hardware: str) -> tuple[Pool, int, int, float] | str:
    """(pool, instances, batch per GPU, TPOT) with the fewest decode GPUs, or why none meets the target."""
    users = w.concurrent_users()
    best = None
    for pool in _pools(w, hardware, eplb=True):
        b, _ = max_batch_per_gpu(pool, w, w.tpot_s)
        if b == 0:
            continue
        instances = math.ceil(users / (b * pool.gpus))
        gpus = instances * pool.gpus
        if best is None or gpus < best[0]:
            per_gpu = users / gpus
            tpot = _decode(pool, w, max(1, math.ceil(per_gpu))).per_token_s
            best = (gpus, pool, instances, per_gpu, tpot)
    if best is None:
        return f"no decode pool of {', '.join(map(str, POOL_SIZES))} GPUs reaches {w.tokens_per_s_per_user:g} tok/s per user"
    return best[1], best[2], best[3], best[4]


def _prefill_plan(w: FleetWorkload, hardware: str, rate: float, budget_s: float,
                  budget_p95_s: float | None) -> tuple[Pool, int, float, float, float] | str:
    """(pool, instances, forward time [s], mean and p95 TTFT inside the pool [s]) with the fewest
    prefill GPUs serving `rate` requests a second within the mean and p95 budgets, or why none does."""
    best = None
    for pool in _pools(w, hardware, sizes=POOL_SIZES[:3]):
        for target in PREFILL_TOKENS_PER_GPU:
            tokens = max(w.input_tokens, target // w.input_tokens * w.input_tokens)
            batch = prefill_batch_pool(pool, tokens, w.input_tokens)
            rho = max_utilisation(budget_s, batch.total_s)
            if budget_p95_s is not None:
                rho = min(rho, max_utilisation_p95(budget_p95_s, batch.total_s))
            if rho <= 0:
                continue
            instances = max(1, math.ceil(rate * w.input_tokens / (rho * batch.tokens_per_s_per_gpu * pool.gpus)))
            gpus = instances * pool.gpus
            if best is None or gpus < best[0]:
                load = rate * w.input_tokens / (batch.tokens_per_s_per_gpu * gpus)
                best = (gpus, pool, instances, batch.total_s, md1_ttft_s(batch.total_s, load),
                        md1_ttft_p95_s(batch.total_s, load))
    if best is None:
        return f"no prefill pool prefills a {w.input_tokens:,}-token prompt within {budget_s:.2f} s"
    return best[1:]


def disaggregated(w: FleetWorkload, hardware: str) -> FleetOption:
    """The smallest disaggregated fleet of `hardware` meeting the workload's targets (see the module
    docstring); ``meets`` False with the reason when none does."""
    dec = _decode_plan(w, hardware)
    if isinstance(dec, str):
        return FleetOption("disaggregated", hardware, False, dec)
    dpool, d_inst, per_gpu, tpot = dec
    kv_bytes = kv_transfer_bytes_per_token(dpool)
    transfer = kv_transfer_s(w.input_tokens, kv_bytes)
    overhead = REQUEST_OVERHEAD_S["server"]
    fixed = overhead + transfer + tpot
    rate = w.arrival_rate(w.ttft_s, tpot)
    pre = _prefill_plan(w, hardware, rate, w.ttft_s - fixed, w.ttft_p95_s - fixed if w.ttft_p95_s else None)
    if isinstance(pre, str):
        return FleetOption("disaggregated", hardware, False, pre)
    ppool, p_inst, _, in_pool, in_pool_p95 = pre
    ttft = fixed + in_pool
    opt = FleetOption(
        "disaggregated", hardware, True, prefill_nodes=p_inst * ppool.nodes, decode_nodes=d_inst * dpool.nodes,
        gpus=p_inst * ppool.gpus + d_inst * dpool.gpus, prefill_pool_gpus=ppool.gpus, decode_pool_gpus=dpool.gpus,
        prefill_instances=p_inst, decode_instances=d_inst, batch_per_gpu=per_gpu, tokens_per_s_per_user=1 / tpot,
        tpot_s=tpot, ttft_s=ttft, ttft_p95_s=fixed + in_pool_p95, arrival_rate_per_s=rate,
        input_tokens_per_s_per_prefill_node=rate * w.input_tokens / (p_inst * ppool.nodes),
        output_tokens_per_s_per_decode_node=rate * w.output_tokens / (d_inst * dpool.nodes),
        output_tokens_per_s_total=rate * w.output_tokens, kv_transfer_bytes_per_token=kv_bytes,
        kv_transfer_s=transfer)
    nic_load = rate * w.input_tokens * kv_bytes / (opt.prefill_nodes * GPUS_PER_NODE * INTERNODE_BYTES_PER_S)
    opt.notes.append(f"prefill EP{ppool.gpus} x {p_inst}, decode EP{dpool.gpus} x {d_inst} with "
                     f"{dpool.redundant_experts} redundant experts per layer (EPLB); KV transfer uses "
                     f"{nic_load:.1%} of the prefill nodes' NICs")
    opt.notes += evidence_notes(dpool)
    return _priced(opt, dpool.deployment, w)


def _aggregated_replica(w: FleetWorkload, hardware: str, count: int) -> tuple[Deployment, int, object] | None:
    """(deployment, users per replica, performance) of the largest concurrency a replica of `count`
    devices serves within the targets, or None."""
    nodes = nodes_for_gpus(count)
    s = Scenario(model=w.model, quant=w.quant, hardware=hardware, count=count, nodes=nodes,
                 context=w.context_tokens, input_tokens=w.input_tokens, output_tokens=w.output_tokens)
    d = resolve(s)
    mem = estimate_memory(d)
    if not mem.fits:
        return None
    spec = w.speculation()
    ok = lambda c: _meets(estimate_performance(d, mem, w.input_tokens, w.output_tokens, c, speculation=spec), w, c)  # noqa: E731
    hi = max(1, mem.max_concurrency)
    if not ok(1):
        return None
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return d, lo, estimate_performance(d, mem, w.input_tokens, w.output_tokens, lo, speculation=spec)


def _meets(perf, w: FleetWorkload, users: int) -> bool:
    p95_ok = w.ttft_p95_s is None or pipeline_ttft_p95_s(perf, w, users) <= w.ttft_p95_s
    return perf.decode_tokens_per_s_per_user >= w.tokens_per_s_per_user and perf.ttft_s <= w.ttft_s and p95_ok


def pipeline_ttft_p95_s(perf, w: FleetWorkload, users: int) -> float:
    """The p95 time to first token of a pipeline replica serving `users` [s]: its mean TTFT with the
    M/D/1 wait behind other prompts (the pipeline's own queue: users / request time x prefill time)
    replaced by that queue's 95th percentile."""
    prefill_s = w.input_tokens / perf.prefill_tokens_per_s
    request_s = perf.ttft_s + (w.output_tokens - 1) / perf.decode_tokens_per_s_per_user
    rho = min(MAX_PREFILL_UTILISATION, max(0, users - 1) / request_s * prefill_s)
    mean_wait = rho / (2 * (1 - rho)) * prefill_s
    return perf.ttft_s - mean_wait + md1_wait_quantile_s(prefill_s, rho)


def aggregated(w: FleetWorkload, hardware: str) -> FleetOption:
    """The smallest aggregated fleet: replicas of the pipeline's default deployment (the smallest
    fitting count, or a whole node), each at the most users that still meet the targets."""
    base = Scenario(model=w.model, quant=w.quant, hardware=hardware, context=w.context_tokens,
                    input_tokens=w.input_tokens, output_tokens=w.output_tokens)
    smallest = smallest_fitting(base)
    if smallest.get("count") is None:
        return FleetOption("aggregated", hardware, False, smallest.get("reason", "does not fit"))
    best = None
    for count in sorted({smallest["count"], max(smallest["count"], GPUS_PER_NODE)}):
        found = _aggregated_replica(w, hardware, count)
        if found is None:
            continue
        d, per_replica, perf = found
        replicas = math.ceil(w.concurrent_users() / per_replica)
        if best is None or replicas * count < best[0]:
            best = (replicas * count, d, replicas, per_replica, perf)
    if best is None:
        return FleetOption("aggregated", hardware, False,
                           f"no replica reaches {w.tokens_per_s_per_user:g} tok/s per user with TTFT under {w.ttft_s:g} s")
    gpus, d, replicas, per_replica, perf = best
    users = w.concurrent_users()
    per_user_load = users / replicas
    perf = estimate_performance(d, estimate_memory(d), w.input_tokens, w.output_tokens, max(1, math.ceil(per_user_load)),
                                speculation=w.speculation())
    tpot = 1 / perf.decode_tokens_per_s_per_user
    rate = w.arrival_rate(perf.ttft_s, tpot)
    nodes = replicas * d.nodes if d.count >= GPUS_PER_NODE else nodes_for_gpus(gpus)
    opt = FleetOption(
        "aggregated", hardware, True, decode_nodes=nodes, gpus=gpus, decode_pool_gpus=d.count,
        decode_instances=replicas, batch_per_gpu=per_user_load / d.count,
        tokens_per_s_per_user=perf.decode_tokens_per_s_per_user, tpot_s=tpot, ttft_s=perf.ttft_s,
        ttft_p95_s=pipeline_ttft_p95_s(perf, w, max(1, math.ceil(per_user_load))),
        arrival_rate_per_s=rate, input_tokens_per_s_per_prefill_node=rate * w.input_tokens / nodes,
        output_tokens_per_s_per_decode_node=rate * w.output_tokens / nodes,
        output_tokens_per_s_total=rate * w.output_tokens)
    opt.notes.append(f"{replicas} replica(s) of {d.count}x {hardware} (TP{d.tp}, {d.engine.name}), "
                     f"up to {per_replica} users each; prompts prefilled between decode steps")
    return _priced(opt, d, w)


def _interleaved(pool: Pool, w: FleetWorkload, b: int) -> tuple[float, float, float]:
    """(TPOT, mean TTFT, p95 TTFT) [s] of a large-EP pool that both prefills and decodes, `b` users per GPU: each
    GPU prefills its users' prompts in chunks between decode steps, so a share f of its time goes to
    prefill (prompts per second x prompt tokens / the pool's prefill rate), a decode step stretches to
    step / (1 - f), and a new prompt takes its chunks, each beside a decode step. f depends on the
    request time it sets; a few fixed-point rounds settle it."""
    d = pool.deployment
    chunk = min(w.input_tokens, d.engine.chunk_tokens(d.device.memory_bytes))
    forward = prefill_batch_pool(pool, chunk, w.input_tokens)
    decode = _decode(pool, w, b)
    step = decode.total_s
    chunks = math.ceil(w.input_tokens / chunk)
    ttft = REQUEST_OVERHEAD_S["server"] + (chunks + 0.5) * (step + forward.total_s) + step
    share = 0.0
    for _ in range(8):
        tpot = decode.per_token_s / (1 - share)
        share = min(MAX_PREFILL_UTILISATION, b / (ttft + w.output_tokens * tpot) * w.input_tokens
                    / forward.tokens_per_s_per_gpu)
    queue = forward.total_s * chunks
    return (decode.per_token_s / (1 - share), ttft + md1_ttft_s(queue, share) - 1.5 * queue,
            ttft + md1_ttft_p95_s(queue, share) - 1.5 * queue)


def _within(times: tuple[float, float, float], w: FleetWorkload) -> bool:
    """(TPOT, mean TTFT, p95 TTFT) [s] within the workload's targets."""
    tpot, ttft, p95 = times
    return tpot <= w.tpot_s and ttft <= w.ttft_s and (w.ttft_p95_s is None or p95 <= w.ttft_p95_s)


def aggregated_ep(w: FleetWorkload, hardware: str) -> FleetOption:
    """Aggregated serving on the same large-EP pools as :func:`disaggregated` (same kernels, EPLB and
    DeepEP), every pool prefilling and decoding: the like-for-like comparison of the two layouts."""
    users = w.concurrent_users()
    best = None
    for pool in _pools(w, hardware, eplb=True):
        hi = min(pool.kv_tokens_per_gpu // w.context_tokens, decode_batch_cap(pool.deployment))
        ok = lambda b: _within(_interleaved(pool, w, b), w)  # noqa: E731
        if hi < 1 or not ok(1):
            continue
        lo = 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
        instances = math.ceil(users / (lo * pool.gpus))
        if best is None or instances * pool.gpus < best[0]:
            best = (instances * pool.gpus, pool, instances)
    if best is None:
        return FleetOption("aggregated-ep", hardware, False,
                           f"no large-EP pool both prefills and decodes at {w.tokens_per_s_per_user:g} tok/s per "
                           f"user with TTFT under {w.ttft_s:g} s")
    gpus, pool, instances = best
    per_gpu = users / gpus
    tpot, ttft, ttft_p95 = _interleaved(pool, w, max(1, math.ceil(per_gpu)))
    rate = w.arrival_rate(ttft, tpot)
    nodes = instances * pool.nodes
    opt = FleetOption(
        "aggregated-ep", hardware, True, decode_nodes=nodes, gpus=gpus, decode_pool_gpus=pool.gpus,
        decode_instances=instances, batch_per_gpu=per_gpu, tokens_per_s_per_user=1 / tpot, tpot_s=tpot,
        ttft_s=ttft, ttft_p95_s=ttft_p95, arrival_rate_per_s=rate, input_tokens_per_s_per_prefill_node=rate * w.input_tokens / nodes,
        output_tokens_per_s_per_decode_node=rate * w.output_tokens / nodes, output_tokens_per_s_total=rate * w.output_tokens)
    opt.notes.append(f"EP{pool.gpus} x {instances} with DP attention and EPLB, prompts prefilled in chunks "
                     f"between decode steps (the disaggregated fleet's kernels, one pool for both)")
    opt.notes += evidence_notes(pool)
    return _priced(opt, pool.deployment, w)


def evidence_notes(pool: Pool) -> list[str]:
    """What stands behind a large-EP pool's figures where no published run does [text]."""
    d = pool.deployment
    out = []
    platform = platform_of(d.device).name
    if platform != "nvidia-hopper":
        out.append(f"no published large-EP run on {platform}: DeepEP's H800 microbenchmarks (400 Gb/s per GPU) and "
                   "DeepSeek's Hopper prefill profile stand in")
    if d.scheme.expert_kernel in ROW_BOUND_MOE_KERNELS:
        out.append(f"{d.scheme.expert_kernel} experts: the pool multiplies each expert's tokens as one grouped GEMM "
                   "(published for FP8 DeepGEMM only); this kernel saturates under tensor parallelism (the aggregated row)")
    return out


def _priced(opt: FleetOption, d: Deployment, w: FleetWorkload) -> FleetOption:
    """`opt` with capex, power and $ per 1M output tokens of all its GPUs (the pipeline's cost model,
    default assumptions)."""
    fleet = replace(d, count=opt.gpus, nodes=max(opt.nodes, 1), tp=min(d.tp, opt.gpus))
    served = _Throughput(opt.output_tokens_per_s_total,
                         opt.arrival_rate_per_s * w.input_tokens or 1.0, opt.tokens_per_s_per_user or 1.0)
    try:
        c = estimate_cost(fleet, served, w.input_tokens, w.output_tokens)  # type: ignore[arg-type]
    except K2CalcError as exc:
        opt.notes.append(f"cost not computed: {exc}")
        return opt
    opt.capex_usd, opt.power_watts = c.capex_usd, c.power_watts
    opt.usd_per_million_output_tokens = c.usd_per_million_output_tokens
    return opt


def plan_fleet(w: FleetWorkload, hardware: list[str]) -> list[FleetOption]:
    """For every hardware id: the smallest fleet meeting `w` in each layout: aggregated replicas of the
    pipeline's deployment, aggregated large-EP pools, disaggregated pools [FleetOption]."""
    for h in hardware:
        get_hardware(h)  # an unknown id is one clear error before any search
    get_model(w.model)
    out = []
    for h in hardware:
        out += [aggregated(w, h), aggregated_ep(w, h), disaggregated(w, h)]
    return out


@dataclass(frozen=True)
class ParetoPoint:
    """One operating point: speed each user sees against output throughput per GPU [tok/s]."""

    mode: str
    hardware: str
    tokens_per_s_per_user: float
    output_tokens_per_s_per_gpu: float
    batch_per_gpu: float


def pareto_points(w: FleetWorkload, hardware: str) -> list[ParetoPoint]:
    """Throughput per GPU against tok/s per user, aggregated and disaggregated, over the batch (the
    curve aiconfigurator draws)."""
    return _aggregated_points(w, hardware) + _disaggregated_points(w, hardware)


def _aggregated_points(w: FleetWorkload, hardware: str) -> list[ParetoPoint]:
    """One replica (a node, or the smallest count that fits) from one user to as many as fit."""
    base = Scenario(model=w.model, quant=w.quant, hardware=hardware, context=w.context_tokens,
                    input_tokens=w.input_tokens, output_tokens=w.output_tokens)
    count = smallest_fitting(base).get("count")
    if count is None:
        return []
    d = resolve(with_count(base, max(count, GPUS_PER_NODE), nodes_for_gpus(max(count, GPUS_PER_NODE))))
    mem = estimate_memory(d)
    out = []
    for c in _powers_of_two(max(1, mem.max_concurrency)):
        perf = estimate_performance(d, mem, w.input_tokens, w.output_tokens, c, speculation=w.speculation())
        out.append(ParetoPoint("aggregated", hardware, perf.decode_tokens_per_s_per_user,
                               perf.output_tokens_per_s_total / d.count, c / d.count))
    return out


def _disaggregated_points(w: FleetWorkload, hardware: str) -> list[ParetoPoint]:
    """The largest decode pool up to EP96 over its batch, each decode GPU charged its share of the
    prefill GPUs the same output rate needs (output rate x input / output tokens over a prefill GPU's
    rate in the largest prefill pool)."""
    pools = _pools(w, hardware, eplb=True)
    prefill_pools = _pools(w, hardware, sizes=POOL_SIZES[:3])
    if not pools or not prefill_pools:
        return []
    pool = max(pools, key=lambda p: p.gpus if p.gpus <= 96 else 0)
    tokens = max(w.input_tokens, PREFILL_TOKENS_PER_GPU[-1] // w.input_tokens * w.input_tokens)
    prefill_rate = prefill_batch_pool(prefill_pools[-1], tokens, w.input_tokens).tokens_per_s_per_gpu
    out = []
    for b in _powers_of_two(min(pool.kv_tokens_per_gpu // w.context_tokens, decode_batch_cap(pool.deployment))):
        tpot = _decode(pool, w, b).per_token_s
        decode_rate = b / tpot
        prefill_gpus_per_decode_gpu = decode_rate * w.input_tokens / w.output_tokens / prefill_rate
        out.append(ParetoPoint("disaggregated", hardware, 1 / tpot, decode_rate / (1 + prefill_gpus_per_decode_gpu), b))
    return out


def _powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, ... up to `limit`, and `limit` itself [count]."""
    out = [2 ** i for i in range(0, 20) if 2 ** i < limit]
    return out + [limit] if limit >= 1 else out


DEFAULT_FLEET_HARDWARE = ("h200-sxm", "b200", "mi355x")


def run_fleet(w: FleetWorkload, hardware: list[str] | None = None, as_json: bool = False) -> str:
    """The `fleet` command: the table, or one JSON object (workload, options)."""
    start = time.perf_counter()
    options = plan_fleet(w, list(hardware or DEFAULT_FLEET_HARDWARE))
    seconds = time.perf_counter() - start
    if as_json:
        from .errors import finite_json as dumps
        return dumps({"workload": w.model_dump(), "concurrent_users": w.concurrent_users(),
                      "seconds": seconds, "options": [o.as_dict() for o in options]}, indent=2)
    return fleet_text(w, options) + f"\nsearched in {seconds:.2f} s"


def fleet_text(w: FleetWorkload, options: list[FleetOption]) -> str:
    """The `fleet` command's table: per hardware, aggregated vs disaggregated."""
    spec = w.speculation()
    head = (f"{w.model} ({w.quant}{', ' + spec.method + ' speculative decoding' if spec else ''}): "
            f"{w.concurrent_users():,} users, {w.input_tokens:,} in / {w.output_tokens:,} out "
            f"tokens, targets {w.tokens_per_s_per_user:g} tok/s per user, mean TTFT <= {w.ttft_s:g} s"
            + (f", p95 TTFT <= {w.ttft_p95_s:g} s" if w.ttft_p95_s else ""))
    cols = (f"{'hardware':10s} {'mode':13s} {'nodes P+D':>10s} {'GPUs':>5s} {'tok/s/user':>10s} {'TTFT s':>7s} {'p95 s':>6s} "
            f"{'in tok/s/Pnode':>14s} {'out tok/s/Dnode':>15s} {'capex USD':>12s} {'power kW':>8s} {'$/1M out':>8s}")
    lines = [head, "", cols, "-" * len(cols)]
    for o in options:
        if not o.meets:
            lines.append(f"{o.hardware:10s} {o.mode:13s} cannot meet the targets: {o.reason}")
            continue
        nodes = f"{o.prefill_nodes}+{o.decode_nodes}" if o.mode == "disaggregated" else f"{o.decode_nodes}"
        capex = f"{o.capex_usd:12,.0f}" if o.capex_usd is not None else f"{'-':>12s}"
        power = f"{o.power_watts / 1e3:8.1f}" if o.power_watts is not None else f"{'-':>8s}"
        usd = f"{o.usd_per_million_output_tokens:8.3f}" if o.usd_per_million_output_tokens is not None else f"{'-':>8s}"
        lines.append(f"{o.hardware:10s} {o.mode:13s} {nodes:>10s} {o.gpus:5d} {o.tokens_per_s_per_user:10.1f} "
                     f"{o.ttft_s:7.2f} {o.ttft_p95_s:6.2f} {o.input_tokens_per_s_per_prefill_node:14,.0f} "
                     f"{o.output_tokens_per_s_per_decode_node:15,.0f} {capex} {power} {usd}")
        lines += [f"{'':10s} {n}" for n in o.notes]
    lines += ["", "nodes P+D: prefill + decode nodes of 8 GPUs (aggregated: every node does both); TTFT: the mean and "
              "the 95th percentile of an M/D/1 queue at the prefill path; $/1M at the default cost assumptions (data/cost_assumptions.csv).",
              "aggregated: replicas of the calibrated pipeline's deployment; aggregated-ep and disaggregated: large-EP pools "
              "(DeepEP microbenchmarks, no class correction; python -m k2calc validate compares them with the published runs)."]
    return "\n".join(lines)


__all__ = ["FleetWorkload", "FleetOption", "ParetoPoint", "plan_fleet", "aggregated", "aggregated_ep", "disaggregated",
           "pareto_points", "fleet_text", "kv_transfer_bytes_per_token", "kv_transfer_s", "md1_ttft_s",
           "max_utilisation", "max_batch_per_gpu", "redundant_experts", "run_fleet", "evidence_notes",
           "DEFAULT_FLEET_HARDWARE"]
