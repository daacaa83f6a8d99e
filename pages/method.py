"""Method and accuracy: the formulas in plain words, and measured against predicted for every published run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from k2calc.charts import measured_vs_predicted
from k2calc.report_content import scenario_words
from k2calc.validate import (
    band_factor,
    class_summary,
    cross_validated_rows,
    holdout_rows,
    rows,
    skipped,
    summary,
)
from ui import leave_legacy_pages_mode, plotly_chart

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
pays a fixed latency per layer and the GPUs' communication. Each kernel takes the larger of its memory
time and its arithmetic time (they overlap). Achievable memory bandwidth comes from published
microbenchmarks (STREAM, BabelStream), not from LLM runs; the remaining efficiencies are one value per
kernel and platform, and one correction per engine family and platform, set on the published runs below.
Prefill is arithmetic-bound; the time to first token includes queueing behind other users' prompts. The
roofline is the same work at 100% of the hardware: no prediction exceeds it.

**Accuracy, honestly.** The figures below are *cross-validated*: every source's runs are predicted with
the corrections fitted without that source, as a run you have not seen would be. In-sample figures (every
run used to fit) are shown beside them and are always better.

**Cost.** Purchase, power under load, hosting, maintenance and amortisation give an annual cost; divided
by the output tokens served it is the $ per 1M output tokens, compared with the model's own API for the
same prompts and answers.
""")
s, ins = summary(cross_validated_rows()), summary()
c1, c2, c3 = st.columns(3)
c1.metric("Decode rows within 1.5x (cross-validated)", f"{s['decode_within_1_5x']:.0%}",
          help=f"{s['decode_rows']} rows; in-sample {ins['decode_within_1_5x']:.0%}")
c2.metric("Prefill/TTFT rows within 2x (cross-validated)", f"{s['prefill_ttft_within_2x']:.0%}",
          help=f"{s['prefill_ttft_rows']} rows; in-sample {ins['prefill_ttft_within_2x']:.0%}")
c3.metric("Median |log2(measured/predicted)| (cross-validated)", f"{s['median_abs_log2_ratio']:.2f}",
          help=f"in-sample {ins['median_abs_log2_ratio']:.2f}")
h = summary(holdout_rows())
st.markdown(f"""**On runs collected after the calibration** ({h['decode_rows'] + h['prefill_ttft_rows']} published
runs of 2026-12-02, never used to fit it; `python -m k2calc validate --holdout data/holdout/2026-12-02.csv`):
decode within 1.5x for **{h['decode_within_1_5x']:.0%}** of {h['decode_rows']}, prefill/TTFT within 2x for
**{h['prefill_ttft_within_2x']:.0%}** of {h['prefill_ttft_rows']}, median |log2| {h['median_abs_log2_ratio']:.2f}. This is
the figure to expect on a setup nobody has published yet; it is lower than the cross-validated one because
these runs include engine versions, benchmarks and devices the calibration has few rows for. Two model bugs
were found and fixed by looking at these runs, so they are no longer a fully clean test.""")
st.markdown("**By class** (engine family and platform): how many sources stand behind each band.")
st.dataframe(pd.DataFrame(class_summary()), hide_index=True, key="class_table",
             column_config={"within, cross-validated": st.column_config.NumberColumn(format="percent"),
                            "within, in-sample": st.column_config.NumberColumn(format="percent")})
plotly_chart(measured_vs_predicted(list(rows())), key="accuracy_chart")
table = pd.DataFrame([{
    "measurement": r.measurement.id, "scenario": scenario_words(r.scenario), "metric": r.measurement.metric,
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
