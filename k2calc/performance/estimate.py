"""Putting the speed model together: decode speed per user and in total, prefill speed, time to first
token, bottleneck, roofline and uncertainty band for one deployment and workload.

* **TTFT** at concurrency C: in steady serving a new prompt is prefilled in chunks between the other
  users' decode steps (``ttft_s``); when all C prompts arrive together they queue, on average behind
  (C + 1) / 2 of them (``ttft_burst_s``).
* **Roofline**: the same bytes and FLOPs at 100% of peak bandwidth and compute, no fixed latency, no
  communication: an upper bound no prediction may exceed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..arrays import ceil, is_array, maximum, minimum, where
from ..memory import Deployment, MemoryEstimate
from ..units import GiB
from .bands import (
    FAR_BAND,
    Band,
    ClassCalibration,
    Corrections,
    calibration_class,
    class_calibration,
)
from .calibration import ENGINE_FAMILY, decode_kernel_evidence, platform_of
from .decode import StepCost, decode_step
from .prefill import REQUEST_OVERHEAD_S, prefill_time


@dataclass
class PerformanceEstimate:
    """Speeds for a scenario; every speed in tokens/s, times in seconds."""

    decode_tokens_per_s_per_user: float
    decode_tokens_per_s_total: float
    prefill_tokens_per_s: float
    ttft_s: float          # steady serving: users come and go, a new prompt joins the running batch
    ttft_burst_s: float    # all `concurrency` prompts arrive together and queue
    bottleneck: str
    roofline_decode_tokens_per_s_per_user: float
    roofline_decode_tokens_per_s_total: float
    roofline_prefill_tokens_per_s: float
    output_tokens_per_s_total: float
    step: StepCost
    batch_per_replica: int
    sequence_tokens: int
    calibration_class: str = ""
    decode_band_factor: float = FAR_BAND
    prefill_band_factor: float = FAR_BAND
    prefill_interference_s: float = 0.0  # per decode step, the other users' prompts prefilled between steps [s]
    decode_correction: float = 1.0    # class correction applied to the decode physics [1]
    prefill_correction: float = 1.0   # class correction applied to the prefill physics [1]
    supporting_rows: int = 0
    supporting_sources: int = 0
    notes: list[str] = field(default_factory=list)

    def bands(self) -> dict[str, Band]:
        """low/high of every speed: the calibration spread of its class (TTFT: time, so inverted)."""
        fd, fp = self.decode_band_factor, self.prefill_band_factor
        out = {}
        for name, f in (("decode_tokens_per_s_per_user", fd), ("decode_tokens_per_s_total", fd),
                        ("output_tokens_per_s_total", fd), ("prefill_tokens_per_s", fp)):
            v = getattr(self, name)
            out[name] = Band(v, v / f, v * f)
        out["ttft_s"] = Band(self.ttft_s, self.ttft_s / fp, self.ttft_s * fp)
        return out

    def as_dict(self) -> dict:
        d = asdict(self)
        d["step"] = {**asdict(self.step), "total_s": self.step.total_s}
        for name, b in self.bands().items():
            d[f"{name}_low"], d[f"{name}_high"] = b.low, b.high
        return d




def decode_batch_cap(d: Deployment) -> int:
    """Requests an engine decodes at once per replica by default [count]: vLLM's max_num_seqs (1,024 on
    GPUs of 70 GiB or more other than A100, else 256: vllm/engine/arg_utils.py @99d7eb5d), SGLang's
    request pool (at most 4,096: server_args.py / model_runner), KTransformers' SGLang front end as
    SGLang's; the others are not capped here (llama.cpp's -np and mlx-lm's batching are user settings)."""
    dev_bytes = d.device.memory_bytes if d.device else 0
    if d.engine.id == "vllm":
        a100 = d.device is not None and d.device.id.startswith("a100")
        return 1024 if dev_bytes >= 70 * GiB and not a100 else 256
    if d.engine.id in ("sglang", "ktransformers"):
        return 4096
    return 10**9


def prefill_interference_s(users: int, prefill_s: float, output_tokens: int) -> float:
    """Time added to each decode step by the other users' prompts [s].

    In steady serving the engine prefills the prompts of the users whose answers end (chunked prefill
    shares the steps): each of the other users' prompts costs `prefill_s` of GPU time spread over the
    `output_tokens` steps of an answer, so a step that would take t takes t + (users - 1) x prefill_s /
    output_tokens. One user alone sees no other prompts; a benchmark's TPOT includes this time.

    >>> round(prefill_interference_s(1, 0.5, 1000), 6), round(prefill_interference_s(17, 0.5, 1000), 4)
    (0.0, 0.008)
    """
    return maximum(0, users - 1) * prefill_s / max(1, output_tokens)


# Utilisation of the prefill path beyond which the steady-state queue is taken as saturated; an
# assumption (an M/D/1 queue's wait grows without bound as it approaches 1).
MAX_PREFILL_UTILISATION = 0.95


def prefill_queue_s(users: int, prefill_s: float, request_s: float, burst_wait_s: float) -> float:
    """Mean wait of a new prompt behind the prompts ahead of it in steady serving [s].

    `users` closed-loop users each send a new prompt when their answer ends, so prompts arrive at
    users / request_s per second and keep the prefill path busy rho = rate x prefill_s of the time; an
    M/D/1 queue waits rho / (2 (1 - rho)) x prefill_s (rho capped at 0.95), never longer than a burst
    of all users at once (`burst_wait_s`).

    >>> round(prefill_queue_s(1, 0.5, 10.0, 0.0), 3), round(prefill_queue_s(64, 0.5, 40.0, 9.0), 3)
    (0.0, 1.0)
    """
    if prefill_s <= 0 or not is_array(users) and users <= 1:
        return 0.0
    rho = minimum(MAX_PREFILL_UTILISATION, users / maximum(request_s, 1e-9) * prefill_s)
    return where(users <= 1, 0.0, minimum(rho / (2 * (1 - rho)) * prefill_s, burst_wait_s))


def _evidence_band(d: Deployment, klass: str, dec: ClassCalibration, pre: ClassCalibration,
                   notes: list[str]) -> float:
    """The decode band factor, widened to x2 (with a note) where no published run speaks for the class
    or for the MoE kernel on this platform."""
    if dec.sources + pre.sources == 0:
        notes.append(f"no published measurement for {klass}: physics alone, the band is widened to x{FAR_BAND:g}")
        return dec.band_factor
    if d.model.is_moe and d.device and ENGINE_FAMILY[d.engine.id] == "server":
        kernel, platform = d.scheme.expert_kernel, platform_of(d.device).name
        _, evidence = decode_kernel_evidence(kernel, platform)
        if evidence != "measured":
            band = max(dec.band_factor, FAR_BAND)
            notes.append(f"no published run of {kernel} MoE kernels on {platform}: their efficiency is "
                         f"{evidence}; the decode band is widened to x{band:g}")
            return band
    return dec.band_factor


def _speculative(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float, step: StepCost,
                 speculation, notes: list[str]) -> tuple[float, float, float]:
    """(time per generated token [s], its roofline [s], band widening [1]) of a decode step, with
    speculative decoding when `speculation` is given (k2calc.fleet_speculative), else the plain step."""
    if speculation is None:
        return step.total_s, step.roofline_s, 1.0
    from ..fleet_speculative import (
        band_widening,
        draft_kv_bytes_per_token,
        draft_weight_bytes,
        speculative_step,
    )
    spec = speculative_step(d, mem, batch, seq_len, step, speculation)
    widen = band_widening(d, mem, batch, seq_len, step, speculation)
    notes.append(f"speculative decoding ({speculation.method}, {speculation.draft_tokens} draft tokens, acceptance "
                 f"{speculation.acceptance:g} [{speculation.acceptance_low:g}-{speculation.acceptance_high:g}]: "
                 f"{speculation.source}): {spec.kept_tokens:.2f} tokens kept per step, x{spec.speedup:.2f} at "
                 f"{batch} sequence(s) per replica; the band is widened x{widen:.2f} for the acceptance range; "
                 f"the draft adds {draft_weight_bytes(d.model, d.scheme, speculation.method) / 1e9:.1f} GB of weights "
                 f"and {draft_kv_bytes_per_token(d.model, d.kv_dtype):,.0f} B of KV per token to the memory")
    return spec.per_token_s, spec.roofline_s, widen


@dataclass
class Serving:
    """What `concurrency` users see of one deployment: numbers, or arrays of one entry per concurrency
    (the planner's vectorized evaluator) [s, tok/s, count]."""

    batch: object              # sequences decoded together per replica [count]
    served: object             # users with a running request, all replicas [count]
    step: StepCost
    step_s: object             # one decode step as a user sees it, other prompts' prefill included [s]
    prefill_s: float           # one prompt alone [s]
    prefill_roofline_s: float
    interference_s: object
    ttft_s: object
    ttft_burst_s: object
    output_tokens_per_s_total: object
    roofline_s: object = 0.0   # a generated token's time at the roofline (speculation included) [s]
    band_widening: float = 1.0  # speculative decoding's acceptance-rate uncertainty [1]
    notes: list = None

    @property
    def decode_tokens_per_s_per_user(self):
        return 1.0 / self.step_s


def corrected_prefill(d: Deployment, mem: MemoryEstimate, tokens, prompts, pre: ClassCalibration,
                      known: tuple[float, float] | None = None) -> tuple[float, float]:
    """(seconds, roofline seconds) to prefill `prompts` prompts of `tokens` tokens in all, each its own
    sequence (:func:`prefill_time`, or `known`), scaled by the prefill class correction `pre` and never
    faster than the roofline [s]."""
    t, roof = known or prefill_time(d, mem, tokens, prompts)
    return maximum(t / pre.correction, roof), roof


def serve(d: Deployment, mem: MemoryEstimate, input_tokens: int, output_tokens: int, concurrency,
          dec: ClassCalibration, pre: ClassCalibration, prompt: tuple[float, float] | None = None,
          speculation=None) -> Serving:
    """Decode step, TTFT and throughput for `concurrency` users (a number, or a numpy array of them with
    the same deployment `d` and placement `mem`), the physics scaled by the class corrections `dec` and
    `pre` and never past the roofline. `prompt`: :func:`prefill_time` of one `input_tokens` prompt when
    already known (the planner computes it once per configuration). `speculation`: speculative decoding
    (k2calc.fleet_speculative; one concurrency, not arrays). See :func:`estimate_performance`."""
    cap = decode_batch_cap(d)
    batch = minimum(maximum(1, ceil(concurrency / d.replicas)), cap)
    served = batch * d.replicas
    seq_len = input_tokens + output_tokens / 2
    step = decode_step(d, mem, batch, seq_len)

    t_prefill, roof_prefill = corrected_prefill(d, mem, input_tokens, 1, pre, known=prompt)
    interference_s = prefill_interference_s(batch, t_prefill, output_tokens)
    notes: list[str] = []
    token_s, roof_s, widen = _speculative(d, mem, batch, seq_len, step, speculation, notes)
    step_s = maximum(token_s / dec.correction, roof_s) + interference_s
    overhead = REQUEST_OVERHEAD_S[ENGINE_FAMILY[d.engine.id]]
    # Steady serving: a new prompt is prefilled in chunks between the other users' decode steps; it
    # waits on average half a step to join, then each chunk shares a step with them, and behind the
    # prompts that arrived before it (prefill_queue_s).
    chunks = math.ceil(input_tokens / max(1, d.engine.chunk_tokens(d.device.memory_bytes if d.device else 0)))
    ttft = overhead + t_prefill + (chunks + 0.5) * where(batch > 1, step_s, 0.0) + step_s
    # All users at once (a burst): prompts queue, on average behind (C + 1) / 2 of them, prefilled together.
    queue = ceil((batch + 1) / 2)
    t_queue = where(queue > 1, corrected_prefill(d, mem, input_tokens * queue, queue, pre)[0], t_prefill)
    ttft_burst = overhead + t_queue + step_s
    ttft = ttft + prefill_queue_s(batch, t_prefill, ttft + (output_tokens - 1) * step_s, t_queue - t_prefill)
    # Users beyond the engine's running-request cap wait for a slot: each slot serves one request per
    # request time, so a closed loop of C users around `served` slots waits (C / served - 1) requests.
    ttft = ttft + maximum(0.0, concurrency / served - 1) * (ttft + (output_tokens - 1) * step_s)
    return Serving(batch=batch, served=served, step=step, step_s=step_s, prefill_s=t_prefill,
                   prefill_roofline_s=roof_prefill, interference_s=interference_s, ttft_s=ttft,
                   ttft_burst_s=ttft_burst,
                   output_tokens_per_s_total=concurrency * output_tokens / (ttft + (output_tokens - 1) * step_s),
                   roofline_s=roof_s, band_widening=widen, notes=notes)


def estimate_performance(d: Deployment, mem: MemoryEstimate, input_tokens: int, output_tokens: int,
                         concurrency: int, corrections: Corrections | None = None,
                         speculation=None) -> PerformanceEstimate:
    """Decode speed per user and in total, prefill speed and TTFT for `concurrency` users sending
    `input_tokens` prompts and reading `output_tokens` answers. Sequence length during decode is the
    prompt plus half the answer (the average a step sees).

    The physics (decode step, prefill time) is scaled by its class's correction (`corrections`, default
    data/class_corrections.csv; ``{}`` = physics alone), never past the roofline. `speculation` (a
    :class:`k2calc.fleet_speculative.Speculation`): each step verifies its draft tokens and keeps some."""
    klass = calibration_class(d)
    dec = class_calibration(klass, "decode", corrections)
    pre = class_calibration(klass, "prefill/ttft", corrections)
    v = serve(d, mem, input_tokens, output_tokens, concurrency, dec, pre, speculation=speculation)
    batch, served, step = v.batch, v.served, v.step
    per_user = 1.0 / v.step_s
    notes = list(v.notes)
    if concurrency > served:
        notes.append(f"{d.engine.name} runs at most {decode_batch_cap(d):,} requests at once per replica: "
                     f"{concurrency - served:,} user(s) wait for a slot, which lengthens their time to first token")
    if d.topology == "hybrid":
        notes.append("hybrid: routed experts decoded on the CPU; long prompts prefilled on the GPU "
                     "with the CPU-resident experts streamed over PCIe")
    return PerformanceEstimate(
        decode_tokens_per_s_per_user=per_user, decode_tokens_per_s_total=per_user * min(concurrency, served),
        prefill_tokens_per_s=input_tokens / v.prefill_s, ttft_s=v.ttft_s, ttft_burst_s=v.ttft_burst_s,
        bottleneck=step.bottleneck(),
        roofline_decode_tokens_per_s_per_user=1.0 / v.roofline_s,
        roofline_decode_tokens_per_s_total=min(concurrency, served) / v.roofline_s,
        roofline_prefill_tokens_per_s=input_tokens / v.prefill_roofline_s,
        output_tokens_per_s_total=v.output_tokens_per_s_total,
        step=step, batch_per_replica=batch, sequence_tokens=int(input_tokens + output_tokens / 2),
        calibration_class=klass,
        decode_band_factor=_evidence_band(d, klass, dec, pre, notes) * v.band_widening,
        prefill_band_factor=pre.band_factor,
        prefill_interference_s=v.interference_s, decode_correction=dec.correction,
        prefill_correction=pre.correction,
        supporting_rows=dec.rows + pre.rows, supporting_sources=dec.sources + pre.sources, notes=notes,
    )
