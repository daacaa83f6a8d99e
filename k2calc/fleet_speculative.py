"""Speculative decoding: a draft (DeepSeek's / GLM's multi-token-prediction layer, or an EAGLE-3 head)
proposes `n` tokens per sequence, the target model verifies all of them in one step, and on average
(1 - a^(n+1)) / (1 - a) tokens are kept per step for a per-token acceptance rate a (Leviathan, Kalman
and Matias, "Fast Inference from Transformers via Speculative Decoding", ICML 2023, eq. 1).

The verify step is the pipeline's decode step with (n + 1) tokens per sequence, each sequence's KV cache
still read once; the n draft steps each cost the main step's time in proportion to the bytes the draft
reads (it is as memory-bound as the step it rides on) plus one layer's kernel latency. At small batch
the verify step costs little more than a plain step (weights are read once for n + 1 tokens): the
speed-up approaches the tokens kept per step (less the drafts' time). At large batch compute dominates,
the verify step costs ~(n + 1) plain steps and the speed-up shrinks towards (or below) 1. A mixture of
experts adds a middle regime: at a few sequences each verified token routes to other experts, so the
verify step reads several times the expert bytes and the speed-up dips, recovering once every expert is
read anyway (a few tens of sequences per replica for 256-384 experts).

Defaults by model (draft length, acceptance, the range of acceptance over tasks) are sourced in
:data:`SPEC_DEFAULTS`; the band of a speculative decode speed is widened by that range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import K2CalcError
from .memory import Deployment, MemoryEstimate, estimate_memory
from .models import ModelArch
from .performance.decode import StepCost, decode_step, experts_touched
from .quant import Scheme
from .units import GB
from .weights import kv_element_bytes, layer_bytes, mtp_bytes

METHODS = ("none", "mtp", "eagle3")


@dataclass(frozen=True)
class SpecDefaults:
    """Published draft settings for a model [tokens, 1]: draft tokens n, per-token acceptance a (its
    central value and the range over tasks), and where they come from."""

    method: str
    draft_tokens: int
    acceptance: float
    acceptance_low: float
    acceptance_high: float
    source: str


def acceptance_from_length(length: float, draft_tokens: int) -> float:
    """The per-token acceptance a whose expected kept tokens per step (1 - a^(n+1)) / (1 - a) equal a
    published mean acceptance length [1] (bisection).

    >>> round(acceptance_from_length(2.18, 3), 2), round(acceptance_from_length(2.687, 3), 2)
    (0.6, 0.74)
    """
    lo, hi = 0.0, 0.999
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if kept_tokens(mid, draft_tokens) < length else (lo, mid)
    return (lo + hi) / 2


def kept_tokens(acceptance: float, draft_tokens: int) -> float:
    """Expected tokens kept per verify step [tokens]: (1 - a^(n+1)) / (1 - a) (n + 1 when a = 1).

    >>> kept_tokens(0.0, 3), round(kept_tokens(0.6, 3), 3), kept_tokens(1.0, 3)
    (1.0, 2.176, 4.0)
    """
    if acceptance >= 1.0:
        return draft_tokens + 1.0
    return (1 - acceptance ** (draft_tokens + 1)) / (1 - acceptance)


# Kimi K2 family: EAGLE-3 draft lightseekorg/kimi-k2.5-eagle3 (Hugging Face model card, phase 2, SpecForge
# bench_eagle3.py, topk 1, num_steps 3): mean acceptance length 2.687 on MT-Bench (a = 0.74), 2.295 on
# C-Eval (0.62), 3.20-3.29 on GSM8K / HumanEval (0.85). Kimi K2.5 shares K2's architecture.
_KIMI = SpecDefaults("eagle3", 3, 0.74, 0.62, 0.85,
                     "lightseekorg/kimi-k2.5-eagle3 model card: acceptance length 2.69 (MT-Bench), 2.30-3.29 over tasks")
# DeepSeek V3 MTP in SGLang (LMSYS blog 2025-07-17-mtp.md): acceptance length 2.18 with 3 draft tokens
# (a = 0.60) and 2.44 with 4 (a = 0.64); the range over tasks is taken as Kimi's spread around its
# centre (+-0.1, an assumption). DeepSeek's paper reports 85-90% for the first draft token alone
# (arXiv 2412.19437, section 5.4.3).
_DEEPSEEK = SpecDefaults("mtp", 3, 0.62, 0.52, 0.72,
                         "LMSYS 2025-07-17 (SGLang MTP on DeepSeek V3): acceptance length 2.18 at 3 draft tokens, 2.44 at 4")
SPEC_DEFAULTS: dict[str, SpecDefaults] = {
    "kimi-k2-thinking": _KIMI, "kimi-k2-instruct": _KIMI, "deepseek-v3": _DEEPSEEK,
    # GLM-4.6 ships one MTP layer; no published acceptance found: DeepSeek's MTP figures stand in.
    "glm-4.6": SpecDefaults("mtp", 3, 0.62, 0.52, 0.72, "no published GLM-4.6 MTP acceptance: DeepSeek V3's (LMSYS 2025-07-17) stands in"),
}
# Any other model: an EAGLE-3 head with Kimi K2.5's acceptance, flagged as a stand-in.
GENERIC = SpecDefaults("eagle3", 3, 0.74, 0.62, 0.85,
                       "no published draft for this model: Kimi K2.5's EAGLE-3 acceptance stands in")
# EAGLE-3 draft of the Kimi K2 family: one MLA decoder layer at hidden 7168 with its own embedding and
# lm_head, 3B parameters in BF16 (k-l-lambda/kimi-k2.6-eagle3-mla and lightseekorg/kimi-k2.6-eagle3-mla
# model cards: "Model size 3B params, BF16").
KIMI_EAGLE3_BYTES = 3e9 * 2
EAGLE3_DRAFT_VOCAB = 32_000  # EAGLE-3's truncated draft vocabulary (its paper's and SpecForge's default)


def defaults_for(model_id: str) -> SpecDefaults:
    return SPEC_DEFAULTS.get(model_id, GENERIC)


@dataclass(frozen=True)
class Speculation(SpecDefaults):
    """A speculative-decoding setting [tokens, 1] with the acceptance range its band uses (the fields of
    :class:`SpecDefaults`, as chosen for one scenario)."""

    @classmethod
    def of(cls, m: ModelArch, method: str, draft_tokens: int | None = None,
           acceptance: float | None = None) -> "Speculation | None":
        """The setting for model `m` (None for "none"); missing values take the model's sourced defaults.
        A given acceptance keeps the default's spread around it."""
        if method == "none":
            return None
        if method not in METHODS:
            raise K2CalcError(f"unknown speculative method '{method}'; choose one of {', '.join(METHODS)}")
        if method == "mtp" and m.mtp_layers == 0:
            raise K2CalcError(f"{m.name} ships no multi-token-prediction layer; use --spec-method eagle3")
        base = defaults_for(m.id)
        a = base.acceptance if acceptance is None else acceptance
        low, high = (base.acceptance_low, base.acceptance_high) if acceptance is None else (
            max(0.0, a - (base.acceptance - base.acceptance_low)), min(0.99, a + (base.acceptance_high - base.acceptance)))
        source = base.source if acceptance is None else f"acceptance {a:g} as given (spread as {base.source})"
        return cls(method, draft_tokens or base.draft_tokens, a, low, high, source)

    def kept(self, acceptance: float | None = None) -> float:
        return kept_tokens(self.acceptance if acceptance is None else acceptance, self.draft_tokens)


def draft_weight_bytes(m: ModelArch, scheme: Scheme, method: str) -> int:
    """Weights of the draft [B]: the checkpoint's MTP layers (:func:`k2calc.weights.mtp_bytes`: one decoder
    layer shaped like the model's last with its 2h x h projection, and for DeepSeek its own copies of the
    embedding and output head), or an EAGLE-3 head (the Kimi family's published 3B BF16 drafts; for other
    models one decoder layer, the 3h x h fusion layer and a 32K-token lm_head in BF16)."""
    if method == "mtp":
        return mtp_bytes(m, scheme)
    if m.id.startswith("kimi-k2"):
        return int(KIMI_EAGLE3_BYTES)
    layer = layer_bytes(m, scheme, 0).total
    return int(layer + (3 * m.hidden_size * m.hidden_size + EAGLE3_DRAFT_VOCAB * m.hidden_size) * 2)


def draft_read_bytes(m: ModelArch, scheme: Scheme, method: str, batch: float) -> float:
    """Weight bytes one draft step reads for `batch` sequences [B]: an MTP layer's touched experts
    (E(1-(1-k/E)^B), as a decode step) with its projection, and the lm_head it shares with the model (read
    again for the draft's logits); an EAGLE-3 head without its embedding table (a lookup, not a read)."""
    lm_head = scheme.format_of("lm_head").bytes_per_weight * m.vocab_size * m.hidden_size
    if method == "mtp":
        layer = layer_bytes(m, scheme, m.num_layers - 1)
        touched = experts_touched(m.n_routed_experts, m.experts_per_tok, batch)
        return m.mtp_layers * (layer.with_experts(touched) + 2 * m.hidden_size * m.hidden_size * 2) + lm_head
    embedding = m.vocab_size * m.hidden_size * 2
    return max(draft_weight_bytes(m, scheme, method) - embedding, 0.0)


def draft_kv_bytes_per_token(m: ModelArch, kv_dtype: str = "bf16") -> float:
    """KV cache the draft's one attention layer adds per token of a sequence [B] (one layer of the
    model's own kind: MLA 576 x 2 B for Kimi K2 / DeepSeek V3)."""
    b = kv_element_bytes(kv_dtype)
    if m.attention == "mla":
        return (m.kv_lora_rank + m.qk_rope_head_dim) * b
    return 2 * m.num_kv_heads * m.head_dim * b


def with_draft(d: Deployment, mem: MemoryEstimate, spec: Speculation) -> tuple[Deployment, MemoryEstimate]:
    """The deployment and memory with the draft loaded: the MTP layers placed by the memory model itself
    (``ModelArch.load_mtp``), an EAGLE-3 head's weights split over the tensor-parallel ranks of every
    device (taken from the KV pool); either way the draft's one attention layer of KV per token beside
    the model's. Capacities shrink in proportion; it no longer fits when the sequences asked for exceed
    what remains. Hybrid and CPU deployments are left as they are (no speculative path modelled)."""
    if d.topology not in ("gpu", "unified") or not mem.devices:
        return d, mem
    extra = 0
    if spec.method == "mtp":
        d = replace(d, model=d.model.model_copy(update={"load_mtp": True}))
        mem = estimate_memory(d)
    else:
        extra = math.ceil(draft_weight_bytes(d.model, d.scheme, spec.method) / max(1, d.tp))
    first = mem.devices[0]
    pool = max(first.kv_pool_bytes, 1)
    kv_share = mem.kv_bytes_per_token / (mem.kv_bytes_per_token + draft_kv_bytes_per_token(d.model, d.kv_dtype))
    shrink = max(0.0, (pool - extra) / pool) * kv_share
    devices = [replace(dev, weights_bytes=dev.weights_bytes + extra, kv_pool_bytes=max(0, dev.kv_pool_bytes - extra))
               for dev in mem.devices]
    sequences = int(mem.max_concurrency * shrink)
    reasons = list(mem.reasons)
    if not reasons and sequences < d.concurrency:
        reasons.append(f"with the {spec.method} draft ({draft_weight_bytes(d.model, d.scheme, spec.method) / GB:.1f} GB "
                       f"and its KV cache) only {sequences:,} sequence(s) of {d.context_tokens:,} tokens fit, "
                       f"not {d.concurrency:,}")
    return d, replace(mem, devices=devices, fits=not reasons, reasons=reasons,
                      kv_capacity_tokens=int(mem.kv_capacity_tokens * shrink), max_concurrency=sequences,
                      max_context_tokens=int(mem.max_context_tokens * shrink))


@dataclass(frozen=True)
class SpecStep:
    """One speculative step for `batch` sequences and what it yields [s, tokens]."""

    verify_s: float
    draft_s: float
    kept_tokens: float
    plain_s: float
    roofline_s: float   # per kept token: the verify step's roofline over the kept tokens

    @property
    def per_token_s(self) -> float:
        return (self.verify_s + self.draft_s) / self.kept_tokens

    @property
    def speedup(self) -> float:
        return self.plain_s / self.per_token_s


def verify_s(plain: StepCost, big: StepCost) -> float:
    """The verify step [s]: the decode step of every sequence's n + 1 tokens (`big`), each sequence's KV
    cache still read once (the KV time of the plain step, `plain`)."""
    return big.total_s - (big.kv_s - plain.kv_s) - (big.attention_s - plain.attention_s)


def draft_s(d: Deployment, batch: float, plain: StepCost, spec: Speculation) -> float:
    """The n draft steps [s]: each the plain step's time scaled by the bytes the draft reads against the
    bytes the step reads (both memory-bound at decode batch), plus one layer's kernel latency."""
    per_rank = draft_read_bytes(d.model, d.scheme, spec.method, batch) / max(1, d.tp)
    per_draft = plain.total_s * min(1.0, per_rank / max(plain.bytes_read, 1.0)) + plain.fixed_s / d.model.num_layers
    return spec.draft_tokens * per_draft


def speculative_step(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float, plain: StepCost,
                     spec: Speculation, acceptance: float | None = None) -> SpecStep:
    """The verify + draft time of one speculative step and the tokens it keeps (see the module docstring)."""
    big = decode_step(d, mem, batch * (spec.draft_tokens + 1), seq_len)
    kept = spec.kept(acceptance)
    return SpecStep(verify_s(plain, big), draft_s(d, batch, plain, spec), kept, plain.total_s, big.roofline_s / kept)


def band_widening(d: Deployment, mem: MemoryEstimate, batch: int, seq_len: float, plain: StepCost,
                  spec: Speculation) -> float:
    """Factor by which the acceptance range widens a decode band [1]: the speed at the range's ends
    against the speed at its centre."""
    mid = speculative_step(d, mem, batch, seq_len, plain, spec).per_token_s
    low = speculative_step(d, mem, batch, seq_len, plain, spec, spec.acceptance_low).per_token_s
    high = speculative_step(d, mem, batch, seq_len, plain, spec, spec.acceptance_high).per_token_s
    return max(low / mid, mid / high)


__all__ = ["Speculation", "SpecDefaults", "SpecStep", "SPEC_DEFAULTS", "METHODS", "kept_tokens",
           "acceptance_from_length", "draft_weight_bytes", "draft_read_bytes", "draft_kv_bytes_per_token", "speculative_step",
           "band_widening", "defaults_for", "verify_s", "draft_s", "with_draft"]
