"""Property-based tests (hypothesis) of the memory model through the public entry points:
``Scenario.build`` -> ``resolve`` -> ``estimate_memory`` / ``estimate``.

The properties are physics a user relies on: more context or concurrency never needs less KV; what
fits at a load fits at any smaller load; more devices, more RAM or a smaller KV dtype never reduce
capacity; bytes per device add up; ``max_context_tokens`` is the real boundary; and the MLA latent is
stored the way vLLM / SGLang store it (vllm-project/recipes moonshotai/Kimi-K2-Think.md; SGLang
server_args.py --enable-dp-attention).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from k2calc.deployment import resolve
from k2calc.errors import K2CalcError
from k2calc.estimate import estimate
from k2calc.memory import MemoryEstimate, estimate_memory, weights_by_group
from k2calc.models import load_models
from k2calc.scenario import Scenario
from k2calc.weights import indexer_bytes_per_token_layer

MODEL_IDS = sorted(load_models())
DENSE_IDS = {m.id for m in load_models().values() if not m.is_moe}

# The four topologies, each on hardware people run them on.
DEPLOYMENTS = {
    "8x h200 vllm": dict(hardware="h200-sxm", count=8, engine="vllm"),
    "2x mac 512gb": dict(hardware="mac-studio-m3-ultra-512gb", count=2),
    "hybrid 2x 4090 + xeon": dict(hardware="rtx-4090", count=2, cpu="xeon-platinum-8488c", ram_gb=2048),
    "cpu epyc-9654": dict(hardware="epyc-9654", ram_gb=1536),
    "8x h200 sglang dp-attn": dict(hardware="h200-sxm", count=8, engine="sglang", dp_attention=True),
    "4x mi300x llama.cpp": dict(hardware="mi300x", count=4, engine="llama.cpp"),
}

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])

models = st.sampled_from(MODEL_IDS)
deployments = st.sampled_from(sorted(DEPLOYMENTS))
contexts = st.integers(1, 300_000)
concurrencies = st.integers(1, 64)


def memory(**values) -> MemoryEstimate | None:
    """The memory estimate of a scenario, or None when the combination is invalid (K2CalcError)."""
    try:
        return estimate_memory(resolve(Scenario.build(**values)))
    except K2CalcError:
        return None


def is_placement_dependent_on_load(model: str, deployment: str) -> bool:
    """Hybrid CPU+GPU with a dense model: llama.cpp-style -ngl fitting moves whole layers (and their KV)
    from the GPUs to RAM as the KV grows, so per-device figures depend on context and concurrency."""
    return "cpu" in DEPLOYMENTS[deployment] and "hardware" in DEPLOYMENTS[deployment] \
        and DEPLOYMENTS[deployment]["hardware"] == "rtx-4090" and model in DENSE_IDS


# ------------------------------------------------------------------------------------------------
# KV grows with load
# ------------------------------------------------------------------------------------------------

@SETTINGS
@given(model=models, deployment=deployments, c1=contexts, c2=contexts, n1=concurrencies, n2=concurrencies)
def test_kv_bytes_never_decrease_with_context_or_concurrency(model, deployment, c1, c2, n1, n2):
    (c1, c2), (n1, n2) = sorted((c1, c2)), sorted((n1, n2))
    base = dict(model=model, **DEPLOYMENTS[deployment])
    small = memory(**base, context=c1, concurrency=n1)
    assume(small is not None)
    more_context = memory(**base, context=c2, concurrency=n1)
    more_seqs = memory(**base, context=c1, concurrency=n2)
    both = memory(**base, context=c2, concurrency=n2)
    for bigger in (more_context, more_seqs, both):
        assert bigger is not None
        assert len(bigger.devices) == len(small.devices)
        # Total KV of one replica always grows.
        assert sum(d.kv_bytes for d in bigger.devices) >= sum(d.kv_bytes for d in small.devices)
        if is_placement_dependent_on_load(model, deployment):
            continue  # layers move GPU -> RAM as KV grows; only the total is monotone (checked above)
        for a, b in zip(small.devices, bigger.devices):
            assert b.kv_bytes >= a.kv_bytes, (a.name, a.kv_bytes, b.kv_bytes)


@SETTINGS
@given(model=st.sampled_from(sorted(DENSE_IDS)), c1=contexts, c2=contexts, n=st.integers(1, 8))
def test_hybrid_dense_total_kv_grows_and_gpu_layers_only_move_to_ram(model, c1, c2, n):
    c1, c2 = sorted((c1, c2))
    base = dict(model=model, **DEPLOYMENTS["hybrid 2x 4090 + xeon"], concurrency=n)
    small, big = memory(**base, context=c1), memory(**base, context=c2)
    assume(small is not None and big is not None)
    ram_small, ram_big = small.devices[-1], big.devices[-1]
    assert ram_small.kind == ram_big.kind == "ram"
    # Growing KV can only push layers off the GPUs, never pull them back.
    assert ram_big.weights_bytes >= ram_small.weights_bytes
    assert sum(d.kv_bytes for d in big.devices) >= sum(d.kv_bytes for d in small.devices)


# ------------------------------------------------------------------------------------------------
# fits is monotone and agrees with the per-device numbers
# ------------------------------------------------------------------------------------------------

@SETTINGS
@given(model=models, deployment=deployments, c1=contexts, c2=contexts, n1=concurrencies, n2=concurrencies)
def test_fits_is_monotone_in_context_and_concurrency(model, deployment, c1, c2, n1, n2):
    (c1, c2), (n1, n2) = sorted((c1, c2)), sorted((n1, n2))
    base = dict(model=model, **DEPLOYMENTS[deployment])
    big = memory(**base, context=c2, concurrency=n2)
    assume(big is not None and big.fits)
    for c, n in ((c1, n1), (c1, n2), (c2, n1)):
        smaller = memory(**base, context=c, concurrency=n)
        assert smaller is not None and smaller.fits, (c, n, smaller and smaller.reasons)


@SETTINGS
@given(model=models, deployment=deployments, context=contexts, n=concurrencies,
       kv_dtype=st.sampled_from(["bf16", "fp8", "q8_0"]))
def test_free_bytes_is_usable_minus_everything_placed(model, deployment, context, n, kv_dtype):
    m = memory(model=model, **DEPLOYMENTS[deployment], context=context, concurrency=n, kv_dtype=kv_dtype)
    assume(m is not None)
    for dev in m.as_dict()["devices"]:
        assert dev["free_bytes"] == (dev["usable_bytes"] - dev["weights_bytes"] - dev["kv_bytes"]
                                     - dev["activation_bytes"] - dev["overhead_bytes"])
        assert dev["usable_bytes"] <= dev["capacity_bytes"]


@SETTINGS
@given(model=models, deployment=deployments, context=st.integers(1, 2_000_000), n=st.integers(1, 512),
       memory_fraction=st.one_of(st.none(), st.floats(0.3, 1.0)))
def test_fits_exactly_when_nothing_is_negative_and_kv_fits_its_pool(model, deployment, context, n,
                                                                   memory_fraction):
    m = memory(model=model, **DEPLOYMENTS[deployment], context=context, concurrency=n,
               memory_fraction=memory_fraction)
    assume(m is not None)
    devices = m.as_dict()["devices"]
    ok = (all(d["free_bytes"] >= 0 for d in devices)
          and all(d["kv_bytes"] <= d["kv_pool_bytes"] for d in devices if d["kv_bytes"]))
    assert m.fits == ok, (m.reasons, devices)
    assert m.fits == (m.reasons == [])


# ------------------------------------------------------------------------------------------------
# More hardware never means less capacity
# ------------------------------------------------------------------------------------------------

def _total_capacity(m: MemoryEstimate) -> tuple[int, int]:
    return m.kv_capacity_tokens * m.replicas, m.max_concurrency


@SETTINGS
@given(model=models, gpu=st.sampled_from(["h200-sxm", "b200", "mi300x"]), step=st.sampled_from([1, 2, 4, 8]),
       context=contexts, n=concurrencies)
def test_doubling_gpus_never_reduces_capacity(model, gpu, step, context, n):
    def at(count):
        return memory(model=model, hardware=gpu, engine="vllm", count=count, nodes=max(1, count // 8),
                      context=context, concurrency=n)

    few, many = at(step), at(2 * step)
    assume(few is not None and many is not None)
    tokens_few, seqs_few = _total_capacity(few)
    tokens_many, seqs_many = _total_capacity(many)
    assert tokens_many >= tokens_few
    assert seqs_many >= seqs_few
    if few.fits:
        assert many.fits, many.reasons


@SETTINGS
@given(model=models, context=contexts, n=st.integers(1, 8), engine=st.sampled_from(["mlx-lm", "llama.cpp"]))
def test_more_macs_never_reduce_capacity(model, context, n, engine):
    ests = [memory(model=model, hardware="mac-studio-m3-ultra-512gb", count=c, engine=engine,
                   context=context, concurrency=n) for c in (1, 2, 4)]
    assume(all(e is not None for e in ests))
    for few, many in zip(ests, ests[1:]):
        assert _total_capacity(many)[0] >= _total_capacity(few)[0]
        assert _total_capacity(many)[1] >= _total_capacity(few)[1]
        assert many.max_context_tokens >= few.max_context_tokens
        if few.fits:
            assert many.fits


@SETTINGS
@given(model=models, cpu=st.sampled_from(["epyc-9654", "xeon-platinum-8488c", "xeon-6980p"]),
       ram1=st.integers(16, 4096), ram2=st.integers(16, 4096), context=contexts, n=concurrencies)
def test_more_ram_never_reduces_cpu_only_capacity(model, cpu, ram1, ram2, context, n):
    ram1, ram2 = sorted((ram1, ram2))
    small = memory(model=model, hardware=cpu, ram_gb=ram1, context=context, concurrency=n)
    big = memory(model=model, hardware=cpu, ram_gb=ram2, context=context, concurrency=n)
    assume(small is not None and big is not None)
    assert big.kv_capacity_tokens >= small.kv_capacity_tokens
    assert big.max_concurrency >= small.max_concurrency
    assert big.max_context_tokens >= small.max_context_tokens
    if small.fits:
        assert big.fits


@SETTINGS
@given(model=models, deployment=deployments, context=contexts, n=concurrencies)
def test_fp8_kv_never_gives_less_capacity_than_bf16(model, deployment, context, n):
    base = dict(model=model, **DEPLOYMENTS[deployment], context=context, concurrency=n)
    bf16, fp8 = memory(**base, kv_dtype="bf16"), memory(**base, kv_dtype="fp8")
    assume(bf16 is not None and fp8 is not None)
    m = load_models()[model]  # a sparse-attention indexer caches FP8 keys whatever the KV dtype
    indexer = (m.num_layers - m.linear_layers) * indexer_bytes_per_token_layer(m)
    assert (fp8.kv_bytes_per_token - indexer) * 2 == pytest.approx(bf16.kv_bytes_per_token - indexer, abs=2)
    assert fp8.kv_capacity_tokens >= bf16.kv_capacity_tokens
    assert fp8.max_concurrency >= bf16.max_concurrency
    assert fp8.max_context_tokens >= bf16.max_context_tokens
    if bf16.fits:
        assert fp8.fits


# ------------------------------------------------------------------------------------------------
# Weights: independent of hardware, placed without loss
# ------------------------------------------------------------------------------------------------

def placed(**values):
    """(deployment, memory estimate) of a scenario, or None when the combination is invalid."""
    try:
        d = resolve(Scenario.build(**values))
    except K2CalcError:
        return None
    return d, estimate_memory(d)


@SETTINGS
@given(model=models, quant=st.sampled_from(["native", "bf16", "fp8", "q4_k_m", "mlx-4bit", "int4"]),
       deployment=deployments)
def test_weights_bytes_depend_only_on_the_model_and_the_scheme_the_engine_stores(model, quant, deployment):
    """Hardware never changes the weights; an engine does only by storing another format (GGUF engines
    convert gpt-oss's MXFP4 checkpoint to MXFP4 experts + Q8_0), and then the bytes are that format's."""
    found = placed(model=model, quant=quant, **DEPLOYMENTS[deployment])
    assume(found is not None)
    d, mem = found
    assert mem.weights_by_group_bytes == weights_by_group(d.model, d.scheme)
    assert sum(mem.weights_by_group_bytes.values()) == mem.weights_bytes


def test_same_scheme_same_weights_on_any_hardware_and_a_converting_engine_differs():
    """The case hypothesis found when weights came to depend on the engine (gpt-oss-120b native: Macs
    with MLX keep the checkpoint's MXFP4 + BF16; llama.cpp stores MXFP4 experts + Q8_0, ggml-org's GGUF)."""
    mac, _ = placed(model="gpt-oss-120b", **DEPLOYMENTS["2x mac 512gb"])
    gguf, _ = placed(model="gpt-oss-120b", **DEPLOYMENTS["4x mi300x llama.cpp"])
    server, _ = placed(model="gpt-oss-120b", hardware="h200-sxm", count=8)
    assert mac.scheme.id == server.scheme.id != gguf.scheme.id
    weights = {k: sum(weights_by_group(d.model, d.scheme).values()) for k, d in
               (("mac", mac), ("gguf", gguf), ("server", server))}
    assert weights["mac"] == weights["server"] > weights["gguf"]


@SETTINGS
@given(model=models, deployment=deployments, quant=st.sampled_from(["native", "bf16", "q4_k_m", "mlx-4bit"]))
def test_devices_of_one_replica_hold_at_least_the_whole_model(model, deployment, quant):
    m = memory(model=model, quant=quant, **DEPLOYMENTS[deployment])
    assume(m is not None)
    placed = sum(d.weights_bytes for d in m.devices)
    # Replicated tensors (MLA down-projections, norms, router under TP) can only add; each device's
    # figure is rounded to a byte, so allow one byte per device.
    assert placed >= m.weights_bytes - len(m.devices)


@SETTINGS
@given(model=models, quant=st.sampled_from(["native", "bf16", "q4_k_m", "mlx-4bit", "q2_k"]),
       setup=st.sampled_from([("mac-studio-m3-ultra-512gb", "mlx-lm", 2), ("mac-studio-m3-ultra-512gb", "mlx-lm", 3),
                              ("mac-studio-m3-ultra-512gb", "mlx-lm", 4), ("mac-studio-m3-ultra-256gb", "mlx-lm", 4),
                              ("h200-sxm", "llama.cpp", 4), ("rtx-pro-6000", "llama.cpp", 8),
                              ("mac-studio-m3-ultra-512gb", "llama.cpp", 2)]))
def test_pure_pipeline_parallel_places_exactly_the_model(model, quant, setup):
    hardware, engine, count = setup
    m = memory(model=model, quant=quant, hardware=hardware, engine=engine, count=count)
    assume(m is not None)
    assert len(m.devices) == count
    placed = sum(d.weights_bytes for d in m.devices)
    assert placed == pytest.approx(m.weights_bytes, rel=1e-3)


# ------------------------------------------------------------------------------------------------
# max_context_tokens is the real boundary
# ------------------------------------------------------------------------------------------------

def _kv_reason(m: MemoryEstimate) -> bool:
    return any("KV cache" in r for r in m.reasons)


@SETTINGS
@given(model=models, deployment=deployments, n=concurrencies, context=contexts,
       kv_dtype=st.sampled_from(["bf16", "fp8"]))
def test_max_context_tokens_is_the_boundary(model, deployment, n, context, kv_dtype):
    assume(not is_placement_dependent_on_load(model, deployment))
    base = dict(model=model, **DEPLOYMENTS[deployment], concurrency=n, kv_dtype=kv_dtype)
    m = memory(**base, context=context)
    assume(m is not None)
    weights_fit = not m.reasons or _kv_reason(m)
    assume(weights_fit)
    limit = m.max_context_tokens
    assume(1 <= limit and math.floor(1.05 * limit) + 1 <= 10_000_000)
    at_limit = memory(**base, context=limit)
    assert at_limit is not None
    assert not _kv_reason(at_limit) and at_limit.fits, at_limit.reasons
    beyond = memory(**base, context=math.floor(1.05 * limit) + 1)
    assert beyond is not None
    assert _kv_reason(beyond) and not beyond.fits


# ------------------------------------------------------------------------------------------------
# How engines store the KV cache (vllm-project/recipes moonshotai/Kimi-K2-Think.md; SGLang server_args.py)
# ------------------------------------------------------------------------------------------------

KIMI_KV_PER_TOKEN = 70_272  # 61 layers x (512 + 64) x 2 B
MINIMAX_KV_PER_TOKEN = 253_952  # 62 layers x 2 x 8 heads x 128 x 2 B


@SETTINGS
@given(context=st.integers(1, 300_000))
def test_vllm_replicates_the_mla_latent_on_every_tp_rank(context):
    m = memory(model="kimi-k2-thinking", hardware="h200-sxm", count=8, engine="vllm", context=context)
    assert m is not None
    assert m.kv_bytes_per_token == KIMI_KV_PER_TOKEN
    assert len(m.devices) == 8
    for dev in m.devices:
        assert dev.kv_bytes == context * KIMI_KV_PER_TOKEN


@SETTINGS
@given(context=st.integers(1, 300_000))
def test_sglang_dp_attention_gives_each_gpu_its_own_sequence(context):
    m = memory(model="kimi-k2-thinking", hardware="h200-sxm", count=8, engine="sglang", dp_attention=True,
               concurrency=8, context=context)
    assert m is not None
    for dev in m.devices:
        assert dev.kv_bytes == context * KIMI_KV_PER_TOKEN  # one of the 8 sequences, whole latent
    # ... whereas plain SGLang TP replicates all 8 sequences on every GPU.
    tp = memory(model="kimi-k2-thinking", hardware="h200-sxm", count=8, engine="sglang", concurrency=8,
                context=context)
    assert all(dev.kv_bytes == 8 * context * KIMI_KV_PER_TOKEN for dev in tp.devices)


@SETTINGS
@given(context=st.integers(1, 300_000), n=st.integers(1, 16))
def test_gqa_kv_heads_split_across_tp_ranks(context, n):
    m = memory(model="minimax-m2", hardware="h200-sxm", count=8, engine="vllm", context=context, concurrency=n)
    assert m is not None
    assert m.kv_bytes_per_token == MINIMAX_KV_PER_TOKEN
    for dev in m.devices:
        assert dev.kv_bytes == n * context * MINIMAX_KV_PER_TOKEN // 8


def test_kimi_tp8_h200_kv_capacity_matches_vllm_log_scale():
    """vLLM recipe log: 46.80 GiB of KV per GPU, 715,072 tokens, the latent replicated
    (vllm-project/recipes: moonshotai/Kimi-K2-Think.md)."""
    m = memory(model="kimi-k2-thinking", hardware="h200-sxm", count=8, engine="vllm")
    assert m.kv_capacity_tokens == pytest.approx(715_072, rel=0.02)


# ------------------------------------------------------------------------------------------------
# Scenario round trip
# ------------------------------------------------------------------------------------------------

scenarios = st.builds(
    dict,
    model=models,
    quant=st.sampled_from(["native", "bf16", "fp8", "q4_k_m", "mlx-4bit"]),
    bits_per_weight=st.one_of(st.none(), st.floats(1, 32, allow_nan=False)),
    setup=deployments,
    kv_dtype=st.sampled_from(["bf16", "fp8", "q8_0", "q4_0"]),
    context=st.integers(1, 10_000_000),
    input_tokens=st.integers(1, 10_000_000),
    output_tokens=st.integers(1, 10_000_000),
    concurrency=st.integers(1, 1_000_000),
    memory_fraction=st.one_of(st.none(), st.floats(0.01, 1.0, allow_nan=False)),
)


@SETTINGS
@given(values=scenarios)
def test_scenario_round_trips_through_json(values):
    values = dict(values)
    values.update(DEPLOYMENTS[values.pop("setup")])
    s = Scenario.build(**values)
    assert Scenario.model_validate_json(s.model_dump_json()) == s
    assert Scenario.model_validate(s.model_dump()) == s


@settings(max_examples=30, deadline=None)
@given(values=scenarios)
def test_round_tripped_scenario_gives_the_same_estimate(values):
    values = dict(values)
    values.update(DEPLOYMENTS[values.pop("setup")])
    s = Scenario.build(**values)
    try:
        first = estimate(s).as_dict()
    except K2CalcError:
        return
    again = estimate(Scenario.model_validate_json(s.model_dump_json())).as_dict()
    assert again == first


# ------------------------------------------------------------------------------------------------
# The "what would fit" answers
# ------------------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(model=models, setup=st.sampled_from([dict(hardware="h200-sxm"), dict(hardware="h100-sxm"),
                                            dict(hardware="mi300x", engine="sglang"),
                                            dict(hardware="mac-studio-m3-ultra-256gb"),
                                            dict(hardware="rtx-4090", engine="llama.cpp")]),
       context=st.sampled_from([4096, 32768, 131072]), n=st.sampled_from([1, 4, 64]))
def test_smallest_fitting_count_really_fits(model, setup, context, n):
    try:
        e = estimate(Scenario.build(model=model, count=1, context=context, concurrency=n, **setup))
    except K2CalcError:
        assume(False)
    small = e.smallest
    if e.fits:
        assert small["count"] == 1
        return
    assume(small.get("count"))
    again = estimate(e.scenario.model_copy(update={"count": small["count"], "nodes": small["nodes"]}))
    assert again.fits, again.memory.reasons


def test_cpu_only_ram_needed_fits_when_small():
    """Below 160 GiB the OS reserve is the fixed 8 GiB, and the answer is exact."""
    e = estimate(Scenario.build(model="llama-3.1-70b", hardware="epyc-9654", ram_gb=64))
    assert not e.fits
    need = e.smallest["ram_gb"]
    assert estimate(Scenario.build(model="llama-3.1-70b", hardware="epyc-9654", ram_gb=need)).fits
    assert not estimate(Scenario.build(model="llama-3.1-70b", hardware="epyc-9654", ram_gb=need - 1)).fits


def test_cpu_only_ram_needed_really_fits():
    e = estimate(Scenario.build(model="kimi-k2-thinking", hardware="epyc-9654", ram_gb=512))
    assert not e.fits
    need = e.smallest["ram_gb"]
    assert estimate(Scenario.build(model="kimi-k2-thinking", hardware="epyc-9654", ram_gb=need)).fits


def test_hybrid_dense_max_concurrency_really_fits():
    base = dict(model="llama-3.1-8b", quant="q2_k", engine="ktransformers", kv_dtype="fp8", context=131072,
                memory_fraction=0.95, hardware="rtx-4090-48gb", count=2, cpu="xeon-6980p", ram_gb=512)
    m = memory(**base, concurrency=64)
    assert m.fits
    at_max = memory(**base, concurrency=m.max_concurrency)
    assert at_max.fits, (m.max_concurrency, at_max.reasons)


def test_hybrid_dense_capacity_is_monotone_in_gpus_and_kv_dtype():
    def at(count, kv_dtype="bf16", context=4096, concurrency=1):
        return memory(model="llama-3.1-70b", hardware="rtx-4090", cpu="epyc-9654", ram_gb=512,
                      engine="llama.cpp", count=count, context=context, concurrency=concurrency,
                      kv_dtype=kv_dtype)

    two, four = at(2), at(4)
    assert four.kv_capacity_tokens >= two.kv_capacity_tokens
    assert four.max_concurrency >= two.max_concurrency
    bf16 = memory(**DEPLOYMENTS["hybrid 2x 4090 + xeon"], model="llama-3.1-70b", context=8235, concurrency=64)
    fp8 = memory(**DEPLOYMENTS["hybrid 2x 4090 + xeon"], model="llama-3.1-70b", context=8235, concurrency=64,
                 kv_dtype="fp8")
    assert fp8.kv_capacity_tokens >= bf16.kv_capacity_tokens
