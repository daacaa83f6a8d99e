"""Method and accuracy: the formulas in plain words, and measured against predicted for every published run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.charts import measured_vs_predicted
from k2calc.validate import band_factor, describe, rows, skipped, summary
from ui import leave_legacy_pages_mode

leave_legacy_pages_mode()

st.title("Method and accuracy")
st.markdown("""
**Memory.** Weights are counted per tensor group (routed experts, shared experts, attention, dense MLP,
embeddings, lm_head) in the quantization's own format, scales included: Kimi K2 Thinking keeps INT4
experts (4.5 bits with their BF16 scales) and BF16 for the rest, 594 GB. The KV cache follows the
attention: MLA stores one 576-wide latent per token and layer (70,272 bytes per token for Kimi K2),
copied on every tensor-parallel GPU; GQA stores keys and values for its KV heads, split across GPUs.
The engine's memory policy decides what is usable (vLLM 90% of each GPU, the macOS wired limit, RAM kept
for the OS); activations of a prefill chunk and runtime buffers come off the top.

**Speed.** A decode step reads the weights it touches once for all users (a mixture-of-experts layer
touches E x (1 - (1 - k/E)^B) experts for B users) and every user's KV cache, does the arithmetic, and
pays a fixed latency per layer and the GPUs' communication. Efficiencies (share of bandwidth and of
compute actually reached) are one value per engine family, platform and kernel, set on the published
runs below. Prefill is arithmetic-bound; the time to first token includes queueing behind other users'
prompts. The roofline is the same work at 100% of the hardware: no prediction exceeds it.

**Cost.** Purchase, power under load, hosting, maintenance and amortisation give an annual cost; divided
by the output tokens served it is the $ per 1M output tokens, compared with the model's own API for the
same prompts and answers.
""")
s = summary()
c1, c2, c3 = st.columns(3)
c1.metric("Decode rows within 1.5x", f"{s['decode_within_1_5x']:.0%}", help=f"{s['decode_rows']} rows")
c2.metric("Prefill/TTFT rows within 2x", f"{s['prefill_ttft_within_2x']:.0%}", help=f"{s['prefill_ttft_rows']} rows")
c3.metric("Median |log2(measured/predicted)|", f"{s['median_abs_log2_ratio']:.2f}")
st.plotly_chart(measured_vs_predicted(list(rows())), key="accuracy_chart", width="stretch")
table = pd.DataFrame([{
    "measurement": r.measurement.id, "scenario": describe(r.scenario), "metric": r.measurement.metric,
    "measured": r.measurement.value, "predicted": r.predicted, "ratio": r.ratio,
    "band": band_factor(r.klass, r.kind)[0], "roofline": r.roofline, "source": r.measurement.source,
} for r in rows()])
st.dataframe(table, hide_index=True, key="accuracy_table",
             column_config={c: st.column_config.NumberColumn(format="%.2f")
                            for c in ("measured", "predicted", "ratio", "band", "roofline")})
with st.expander("Published rows not compared, and why"):
    for mid, why in skipped():
        st.markdown(f"- `{mid}`: {why}")
st.caption("The same table: `python -m k2calc validate`. Sources: data/measurements.csv.")
