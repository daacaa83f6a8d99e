"""Quantization schemes: a storage format per tensor group, scales and zero points included.

A *format* is how one tensor is stored (bits per weight including its scales); a *scheme* assigns a
format to each tensor group of :data:`k2calc.models.GROUPS`. Weights are never ``params x bits``:
Kimi K2 Thinking keeps its routed experts in INT4 g32 (4.5 bits with the BF16 scales) and everything
else in BF16, which is what makes its checkpoint 594 GB.

References
----------
* compressed-tensors ``pack-quantized`` (Kimi K2 Thinking): INT4, symmetric, BF16 scale per 32 weights.
* DeepSeek-V3 ``README_WEIGHTS.md``: FP8 e4m3 weights with one FP32 scale per 128x128 block.
* OCP Microscaling Formats (MX) v1.0: MXFP4 = E2M1 elements with an E8M0 scale per 32.
* NVIDIA NVFP4 (Blackwell): E2M1 elements with an FP8 E4M3 scale per 16 (+ one FP32 per tensor).
* GPTQ (AutoGPTQ / GPTQModel packing): INT4 weights, FP16 scale and packed INT4 zero per 128.
* llama.cpp ``ggml/src/ggml-common.h`` block sizes (bytes per 256 or 32 weights) and
  ``src/llama-quant.cpp`` (``llama_tensor_get_type``) for which tensors a ``*_M`` mix raises.
* mlx-lm ``convert --quantize``: affine quantization, group size 64, FP16 scale and bias per group.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import K2CalcError, UnknownIdError
from .models import GROUPS, ModelArch

Kernel = str  # "bf16" | "fp8" | "w4a16" | "fp4" | "gguf" | "mlx": which compute path reads the weights


@dataclass(frozen=True)
class WeightFormat:
    """How one tensor is stored. ``bits_per_weight`` includes scales and zero points [bit]."""

    id: str
    bits_per_weight: float
    kernel: Kernel
    source: str

    @property
    def bytes_per_weight(self) -> float:
        return self.bits_per_weight / 8


def _gguf(block_bytes: int, block_weights: int) -> float:
    """Bits per weight of a GGUF block type: block bytes x 8 / weights per block."""
    return block_bytes * 8 / block_weights


F = WeightFormat
FORMATS: dict[str, WeightFormat] = {f.id: f for f in (
    F("f32", 32.0, "bf16", "IEEE float32 (GGUF keeps norms and the MoE router in F32)"),
    F("bf16", 16.0, "bf16", "bfloat16"),
    F("fp8-block", 8 + 32 / (128 * 128), "fp8", "DeepSeek-V3 README_WEIGHTS.md: e4m3 + FP32 scale per 128x128 block"),
    F("int4-g32", 4 + 16 / 32, "w4a16", "compressed-tensors pack-quantized: INT4 + BF16 scale per 32 (Kimi K2 Thinking)"),
    F("int4-g128", 4 + (16 + 4) / 128, "w4a16", "GPTQ: INT4 + FP16 scale + INT4 zero per 128"),
    F("mxfp4", 4 + 8 / 32, "fp4", "OCP MX v1.0: E2M1 + E8M0 scale per 32"),
    F("nvfp4", 4 + 8 / 16, "fp4", "NVIDIA NVFP4: E2M1 + E4M3 scale per 16"),
    F("q8_0", _gguf(34, 32), "gguf", "ggml-common.h block_q8_0: 34 B / 32 weights"),
    F("q6_k", _gguf(210, 256), "gguf", "ggml-common.h block_q6_K: 210 B / 256 weights"),
    F("q5_k", _gguf(176, 256), "gguf", "ggml-common.h block_q5_K: 176 B / 256 weights"),
    F("q4_k", _gguf(144, 256), "gguf", "ggml-common.h block_q4_K: 144 B / 256 weights"),
    F("q3_k", _gguf(110, 256), "gguf", "ggml-common.h block_q3_K: 110 B / 256 weights"),
    F("q2_k", _gguf(84, 256), "gguf", "ggml-common.h block_q2_K: 84 B / 256 weights"),
    F("iq2_xxs", _gguf(66, 256), "gguf", "ggml-common.h block_iq2_xxs: 66 B / 256 weights"),
    F("iq1_s", _gguf(50, 256), "gguf", "ggml-common.h block_iq1_s: 50 B / 256 weights"),
    F("mlx-8", 8 + 32 / 64, "mlx", "mlx-lm affine 8-bit, FP16 scale + bias per 64"),
    F("mlx-6", 6 + 32 / 64, "mlx", "mlx-lm affine 6-bit, FP16 scale + bias per 64"),
    F("mlx-4", 4 + 32 / 64, "mlx", "mlx-lm affine 4-bit, FP16 scale + bias per 64"),
    F("mlx-3", 3 + 32 / 64, "mlx", "mlx-lm affine 3-bit, FP16 scale + bias per 64"),
)}


def _mix(name: str, base: str, bumped: str, kernel: Kernel = "gguf") -> WeightFormat:
    """A GGUF ``*_M`` FFN mix: gate and up in `base`; down in `bumped` in half the layers.

    llama-quant.cpp ``use_more_bits(i, n)`` raises ffn_down for the first and last eighth of the
    layers and every third layer between: about half of them. Bits = (2 base + (base+bumped)/2) / 3.
    """
    b, u = FORMATS[base].bits_per_weight, FORMATS[bumped].bits_per_weight
    return WeightFormat(name, (2 * b + (b + u) / 2) / 3, kernel,
                        f"llama-quant.cpp {name}: gate/up {base}, ffn_down {bumped} in ~half the layers")


FORMATS.update({f.id: f for f in (
    _mix("q5_k_m-ffn", "q5_k", "q6_k"),
    _mix("q4_k_m-ffn", "q4_k", "q6_k"),
    _mix("q3_k_m-ffn", "q3_k", "q4_k"),
)})
# Q2_K raises every ffn_down to Q3_K (llama-quant.cpp): (2 x 2.625 + 3.4375) / 3.
FORMATS["q2_k-ffn"] = WeightFormat("q2_k-ffn", (2 * FORMATS["q2_k"].bits_per_weight + FORMATS["q3_k"].bits_per_weight) / 3,
                                   "gguf", "llama-quant.cpp Q2_K: gate/up Q2_K, ffn_down Q3_K")


@dataclass(frozen=True, eq=False)
class Scheme:
    """A quantization scheme: one :class:`WeightFormat` per tensor group. Identified by its id."""

    id: str
    label: str
    formats: dict[str, WeightFormat]
    note: str = ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scheme) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def format_of(self, group: str) -> WeightFormat:
        return self.formats[group]

    @property
    def expert_kernel(self) -> Kernel:
        """The compute path of the routed experts (decides MoE kernel efficiency)."""
        return self.formats["routed_experts"].kernel


def _scheme(id: str, label: str, linear: str, *, routed: str | None = None, ffn: str | None = None,
            attention: str | None = None, embeddings: str = "bf16", lm_head: str = "bf16",
            router: str = "bf16", norms: str = "bf16", note: str = "") -> Scheme:
    """Build a scheme: `linear` for every linear layer, unless `ffn` (all MLP/expert weights),
    `routed` (routed experts only) or `attention` override it."""
    f = FORMATS
    groups = {
        "routed_experts": f[routed or ffn or linear], "shared_experts": f[ffn or linear],
        "attention": f[attention or linear], "dense_mlp": f[ffn or linear],
        "embeddings": f[embeddings], "lm_head": f[lm_head], "router": f[router], "norms": f[norms],
    }
    return Scheme(id, label, groups, note)


GGUF = dict(router="f32", norms="f32")
SCHEMES: dict[str, Scheme] = {s.id: s for s in (
    _scheme("bf16", "BF16 (16-bit)", "bf16"),
    _scheme("fp8", "FP8 block 128x128", "fp8-block",
            note="all linear weights FP8 e4m3 with FP32 block scales; embeddings, lm_head, router, norms BF16"),
    _scheme("int4", "INT4 W4A16 g32", "int4-g32", note="all linear weights INT4 g32; embeddings and lm_head BF16"),
    _scheme("int4-experts", "INT4 g32 experts + BF16", "bf16", routed="int4-g32",
            note="routed experts INT4 g32, everything else BF16 (Kimi K2 Thinking's native QAT format)"),
    _scheme("gptq-int4", "GPTQ INT4 g128", "int4-g128", note="all linear weights; embeddings and lm_head BF16"),
    _scheme("mxfp4", "MXFP4", "mxfp4", note="all linear weights MXFP4; embeddings, lm_head, router BF16"),
    _scheme("mxfp4-experts", "MXFP4 experts + BF16", "bf16", routed="mxfp4",
            note="routed experts MXFP4, everything else BF16 (gpt-oss's native format)"),
    _scheme("nvfp4", "NVFP4", "nvfp4", note="all linear weights NVFP4; embeddings, lm_head, router BF16"),
    _scheme("q8_0", "GGUF Q8_0", "q8_0", embeddings="q8_0", lm_head="q8_0", **GGUF),
    _scheme("q6_k", "GGUF Q6_K", "q6_k", embeddings="q6_k", lm_head="q6_k", **GGUF),
    _scheme("q5_k_m", "GGUF Q5_K_M", "q5_k", ffn="q5_k_m-ffn", embeddings="q5_k", lm_head="q6_k", **GGUF),
    _scheme("q4_k_m", "GGUF Q4_K_M", "q4_k", ffn="q4_k_m-ffn", embeddings="q4_k", lm_head="q6_k", **GGUF),
    _scheme("q3_k_m", "GGUF Q3_K_M", "q3_k", ffn="q3_k_m-ffn", embeddings="q3_k", lm_head="q6_k", **GGUF),
    _scheme("q2_k", "GGUF Q2_K", "q2_k", ffn="q2_k-ffn", embeddings="q2_k", lm_head="q6_k", **GGUF),
    _scheme("iq2_xxs", "GGUF IQ2_XXS", "iq2_xxs", attention="q4_k", embeddings="q2_k", lm_head="q6_k", **GGUF,
            note="approximate mix: llama-quant.cpp keeps attention of MoE models at higher bits"),
    _scheme("iq1_s", "GGUF IQ1_S", "iq1_s", attention="q4_k", embeddings="q2_k", lm_head="q6_k", **GGUF,
            note="approximate mix: llama-quant.cpp keeps attention of MoE models at higher bits"),
    _scheme("mlx-8bit", "MLX 8-bit", "mlx-8", embeddings="mlx-8", lm_head="mlx-8"),
    _scheme("mlx-6bit", "MLX 6-bit", "mlx-6", embeddings="mlx-6", lm_head="mlx-6"),
    _scheme("mlx-4bit", "MLX 4-bit", "mlx-4", embeddings="mlx-4", lm_head="mlx-4"),
    _scheme("mlx-3bit", "MLX 3-bit", "mlx-3", embeddings="mlx-3", lm_head="mlx-3"),
)}

QUANT_IDS = ("native", *SCHEMES)

# How GGUF converters store a checkpoint shipped in another format (llama.cpp convert_hf_to_gguf.py).
# gpt-oss: the MXFP4 experts stay MXFP4, every other linear weight and the embeddings become Q8_0, norms
# and the router F32: ggml-org/gpt-oss-20b-GGUF is 12.1 GB against the 13.8 GB safetensors checkpoint.
GGUF_CONVERSIONS: dict[str, Scheme] = {
    "mxfp4-experts": _scheme("gguf-mxfp4", "GGUF MXFP4 experts + Q8_0", "q8_0", routed="mxfp4",
                             embeddings="q8_0", lm_head="q8_0", **GGUF,
                             note="llama.cpp's gpt-oss GGUF: MXFP4 experts, Q8_0 elsewhere, F32 norms and router"),
}
GGUF_ENGINES = frozenset({"llama.cpp", "ollama"})
MLX_ENGINES = frozenset({"mlx-lm", "exo"})


def engine_scheme(scheme: Scheme, engine_id: str) -> Scheme:
    """The scheme as the engine stores the weights: GGUF engines convert a native non-GGUF checkpoint
    (:data:`GGUF_CONVERSIONS`) and run a custom bits-per-weight average through their GGUF kernels; MLX
    engines run such an average through MLX's affine kernels. Other combinations are unchanged."""
    custom = scheme.id.startswith("bpw:")
    if engine_id in GGUF_ENGINES:
        if scheme.id in GGUF_CONVERSIONS:
            return GGUF_CONVERSIONS[scheme.id]
        if custom:
            return _with_kernel(scheme, "gguf")
    if engine_id in MLX_ENGINES and custom:
        return _with_kernel(scheme, "mlx")
    return scheme


def _with_kernel(scheme: Scheme, kernel: Kernel) -> Scheme:
    """The same bytes computed by another kernel family. The id stays: a scheme's id names its bytes, and
    the byte caches keyed on it (weights.all_layer_bytes) hold for either kernel."""
    formats = {g: WeightFormat(f.id, f.bits_per_weight, kernel, f.source) for g, f in scheme.formats.items()}
    return Scheme(f"{scheme.id}", scheme.label, formats, scheme.note)


def custom_scheme(bits_per_weight: float) -> Scheme:
    """Every tensor group at an average of `bits_per_weight` [bit] (e.g. a mixed MLX 3.3-bit build)."""
    if not 1.0 <= bits_per_weight <= 32.0:
        raise K2CalcError(f"--bits-per-weight must be between 1 and 32, got {bits_per_weight:g}")
    kernel = "bf16" if bits_per_weight >= 16 else "fp8" if bits_per_weight >= 8 else "w4a16"
    fmt = WeightFormat(f"custom-{bits_per_weight:g}", bits_per_weight, kernel, "user-supplied average")
    return Scheme(f"bpw:{bits_per_weight:g}", f"custom {bits_per_weight:g} bits/weight",
                  {g: fmt for g in GROUPS}, "every tensor at the user's average bits per weight")


@lru_cache(maxsize=64)
def resolve_scheme(quant: str, model: ModelArch) -> Scheme:
    """``native`` -> the model's shipped scheme; ``bpw:X`` -> :func:`custom_scheme`; else a preset."""
    if quant == "native":
        quant = model.native_quant
    if quant.startswith("bpw:"):
        try:
            return custom_scheme(float(quant[4:]))
        except ValueError as exc:
            if isinstance(exc, K2CalcError):
                raise
            raise K2CalcError(f"bits per weight must be a number, got '{quant[4:]}'") from None
    if quant not in SCHEMES:
        raise UnknownIdError("quantization", quant, QUANT_IDS)
    return SCHEMES[quant]
