"""Inference engines: how each one reserves memory and stores the KV cache.

Each figure is the engine's documented default or, where an engine does not log it, an estimate that
is labelled as one. Users can override the memory fraction (``gpu_memory_utilization`` /
``mem_fraction_static``) and the macOS wired limit.

References
----------
* vLLM ``vllm/engine/arg_utils.py`` ``get_batch_defaults``: on GPUs with >= 70 GiB (not A100) the API
  server defaults to ``max_num_batched_tokens`` 8192 and ``max_num_seqs`` 1024; else 2048 and 256.
  ``gpu_memory_utilization`` 0.9 of *total* memory covers weights + activation peak + non-torch + KV.
  Non-torch memory in public vLLM start-up logs: 0.04-0.26 GiB on one GPU, 2.10 GiB per GPU with TP8.
* vLLM recipe ``moonshotai/Kimi-K2-Think.md``: TP8 on 8x H200 logs "Available KV cache memory: 46.80
  GiB" and 715,072 tokens: the MLA latent is replicated on every rank; DCP shards it (8x tokens).
* SGLang ``server_args.py``: ``mem_fraction_static`` of total memory holds weights + KV pool;
  activations and CUDA graphs live in the rest. ``--enable-dp-attention`` gives each DP rank its own
  requests (and a full copy of the attention weights when attention TP = 1).
* llama.cpp: weights + KV (F16 by default; MLA models cache only the latent) + compute buffers sized by
  ``n_ubatch`` (512 by default).
* mlx-lm: ``prefill_step_size`` 2048; macOS lets the GPU wire about 3/4 of unified memory on large
  Macs by default (2/3 on small ones): Metal's ``MTLDevice.recommendedMaxWorkingSetSize``
  (https://developer.apple.com/documentation/metal/mtldevice/recommendedmaxworkingsetsize);
  ``sudo sysctl iogpu.wired_limit_mb=N`` raises it (ml-explore/mlx-lm ``README.md``, "Large Models").
* ktransformers / kt-kernel (SGLang integration): attention, shared experts, dense layers and the KV
  cache on the GPU; routed experts in system RAM computed by the CPU; ``--kt-num-gpu-experts`` keeps N
  experts per MoE layer on the GPU (kvcache-ai/ktransformers ``doc/en/Kimi-K2-Thinking.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownIdError
from .units import GiB

Topology = str  # "gpu" | "unified" | "hybrid" | "cpu"


@dataclass(frozen=True)
class Engine:
    """Memory policy of one inference engine.

    Attributes
    ----------
    memory_fraction : share of each device's total memory the engine may use [1]; None: all of it
    fraction_covers_activations : True (vLLM) if activations must fit inside that share; False
        (SGLang) if the share is the static pool of weights + KV and activations use the rest
    runtime_bytes_single, runtime_bytes_multi : CUDA context, library workspaces and, with several
        devices, communication buffers, per device [B]
    chunk_tokens_large, chunk_tokens_small : tokens in one prefill chunk on devices with >= 70 GiB and
        on smaller ones; sets the activation peak [tokens]
    max_seqs_large, max_seqs_small : sequences the sampler is sized for (logits buffers) [count]
    kv_block_tokens : KV cache page size; capacity rounds down to whole pages [tokens]
    mla_replicated_under_tp : the MLA latent is stored whole on every tensor-parallel rank
    """

    id: str
    name: str
    topologies: frozenset[str]
    memory_fraction: float | None
    fraction_covers_activations: bool
    runtime_bytes_single: int
    runtime_bytes_multi: int
    chunk_tokens_large: int
    chunk_tokens_small: int
    max_seqs_large: int
    max_seqs_small: int
    kv_block_tokens: int
    mla_replicated_under_tp: bool
    source: str

    def chunk_tokens(self, device_bytes: int) -> int:
        """Prefill chunk for a device of `device_bytes` [tokens] (vLLM's 70 GiB threshold)."""
        return self.chunk_tokens_large if device_bytes >= 70 * GiB else self.chunk_tokens_small

    def max_seqs(self, device_bytes: int) -> int:
        return self.max_seqs_large if device_bytes >= 70 * GiB else self.max_seqs_small


ENGINES: dict[str, Engine] = {e.id: e for e in (
    Engine("vllm", "vLLM", frozenset({"gpu", "unified"}), 0.90, True,
           runtime_bytes_single=int(0.3 * GiB), runtime_bytes_multi=int(2.1 * GiB),
           chunk_tokens_large=8192, chunk_tokens_small=2048, max_seqs_large=1024, max_seqs_small=256,
           kv_block_tokens=64, mla_replicated_under_tp=True,
           source="vllm arg_utils.py get_batch_defaults; gpu_memory_utilization 0.9; start-up logs"),
    Engine("sglang", "SGLang", frozenset({"gpu", "unified"}), 0.88, False,
           runtime_bytes_single=int(0.5 * GiB), runtime_bytes_multi=int(2.1 * GiB),
           chunk_tokens_large=8192, chunk_tokens_small=2048, max_seqs_large=1024, max_seqs_small=256,
           kv_block_tokens=1, mla_replicated_under_tp=True,
           source="sglang server_args.py: mem_fraction_static (about 0.88 on large GPUs; set it to override), "
                  "chunked_prefill_size 8192"),
    Engine("ktransformers", "KTransformers (SGLang + kt-kernel)", frozenset({"hybrid"}), 0.88, False,
           runtime_bytes_single=int(0.5 * GiB), runtime_bytes_multi=int(1.5 * GiB),
           chunk_tokens_large=8192, chunk_tokens_small=4096, max_seqs_large=256, max_seqs_small=64,
           kv_block_tokens=1, mla_replicated_under_tp=True,
           source="kvcache-ai/ktransformers doc/en/Kimi-K2-Thinking.md (SGLang integration, --kt-num-gpu-experts)"),
    Engine("llama.cpp", "llama.cpp", frozenset({"gpu", "unified", "hybrid", "cpu"}), None, True,
           runtime_bytes_single=int(0.4 * GiB), runtime_bytes_multi=int(0.6 * GiB),
           chunk_tokens_large=512, chunk_tokens_small=512, max_seqs_large=4, max_seqs_small=4,
           kv_block_tokens=256, mla_replicated_under_tp=False,
           source="llama.cpp defaults: n_ubatch 512, F16 KV cache, MLA caches the latent only"),
    Engine("ollama", "Ollama (llama.cpp)", frozenset({"gpu", "unified", "hybrid", "cpu"}), None, True,
           runtime_bytes_single=int(0.4 * GiB), runtime_bytes_multi=int(0.6 * GiB),
           chunk_tokens_large=512, chunk_tokens_small=512, max_seqs_large=4, max_seqs_small=4,
           kv_block_tokens=256, mla_replicated_under_tp=False,
           source="Ollama runs llama.cpp (ggml) with its defaults"),
    Engine("mlx-lm", "mlx-lm", frozenset({"unified"}), None, True,
           runtime_bytes_single=int(0.5 * GiB), runtime_bytes_multi=int(0.5 * GiB),
           chunk_tokens_large=2048, chunk_tokens_small=2048, max_seqs_large=1, max_seqs_small=1,
           kv_block_tokens=256, mla_replicated_under_tp=False,
           source="ml-explore/mlx-lm: prefill_step_size 2048; KV cache grows in 256-token steps"),
    Engine("exo", "exo (MLX, several Macs)", frozenset({"unified"}), None, True,
           runtime_bytes_single=int(0.5 * GiB), runtime_bytes_multi=int(1.0 * GiB),
           chunk_tokens_large=2048, chunk_tokens_small=2048, max_seqs_large=1, max_seqs_small=1,
           kv_block_tokens=256, mla_replicated_under_tp=False,
           source="exo-explore/exo: MLX backend, pipeline or tensor parallel over Thunderbolt 5 RDMA"),
)}

# Activation peak of one prefill chunk: about 20 hidden-sized BF16 buffers live per token at the peak of
# a layer (residual, norms, QKV, attention output, MLP input/output, MoE dispatch copies). An estimate,
# chosen with the sampler term below so that vLLM's TP8 Kimi K2 Thinking log on H200 (46.80 GiB of KV
# per GPU) is reproduced within 2%.
ACTIVATION_BYTES_PER_HIDDEN_PER_TOKEN = 40
# Sampler buffers per sequence and vocabulary entry: FP32 logits and probabilities plus the int64
# indices of the top-k/top-p sort [B] (vLLM sizes its dummy sampler run at max_num_seqs).
SAMPLER_BYTES_PER_VOCAB_PER_SEQ = 24

# Share of system RAM left to the operating system and page cache on CPU and hybrid machines [1]; an
# assumption shown to users.
RAM_OS_RESERVE_FRACTION = 0.05
RAM_OS_RESERVE_MIN_BYTES = 8 * GiB
# Non-Apple unified-memory systems (DGX Spark): share kept by the OS and CPU side [1]; an assumption.
UNIFIED_OS_RESERVE_FRACTION = 0.10
# macOS default GPU wired-memory limit as a share of unified memory (Metal's recommendedMaxWorkingSetSize;
# see the References above).
MAC_WIRED_FRACTION_LARGE = 0.75
MAC_WIRED_FRACTION_SMALL = 2 / 3
MAC_LARGE_THRESHOLD_BYTES = 64 * GiB


def get_engine(engine_id: str) -> Engine:
    """Engine by id; unknown ids raise with close matches."""
    if engine_id not in ENGINES:
        raise UnknownIdError("engine", engine_id, ENGINES)
    return ENGINES[engine_id]


def default_engine(topology: Topology, apple: bool = False) -> str:
    """The engine people use for a topology: vLLM on GPU servers, mlx-lm on Macs, ktransformers for
    hybrid CPU+GPU, llama.cpp on CPUs and other unified-memory machines."""
    if topology == "gpu":
        return "vllm"
    if topology == "hybrid":
        return "ktransformers"
    if topology == "unified" and apple:
        return "mlx-lm"
    return "llama.cpp"


# Quantizations each engine family runs well: the planner's candidates and the calculator's "smaller
# quantization" fixes. Server engines load the shipped checkpoint or an FP8 one; ktransformers the
# shipped experts or a GGUF Q4_K_M; MLX its own formats; llama.cpp/ollama GGUF.
SERVER_QUANTS = ("native", "fp8")
KTRANSFORMERS_QUANTS = ("native", "q4_k_m")
GGUF_QUANTS = ("q8_0", "q4_k_m", "q3_k_m", "q2_k")
MLX_QUANTS = ("mlx-8bit", "mlx-4bit", "mlx-3bit")


def engine_quants(engine_id: str) -> tuple[str, ...]:
    """Quantization ids an engine runs well (see the constants above).

    >>> engine_quants("llama.cpp")
    ('q8_0', 'q4_k_m', 'q3_k_m', 'q2_k')
    """
    if engine_id in ("vllm", "sglang"):
        return SERVER_QUANTS
    if engine_id == "ktransformers":
        return KTRANSFORMERS_QUANTS
    if engine_id in ("mlx-lm", "exo"):
        return MLX_QUANTS
    return GGUF_QUANTS
