"""The Calculator's first screen answers a buyer (issue 11): the verdict box says speed and both costs,
the API's list prices and the blended workload price come with their formula beside the self-host
verdict and its break-even, the speeds say how full the context is (and one click fills it), the
longest context stays within the model's maximum, and the Report page offers the PDF."""

from pathlib import Path

from apptest import open_app
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


_app = open_app


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_verdict_box_carries_speed_and_both_costs():
    at = _app()
    box = at.success[0].value
    assert box.startswith("Fits. **Kimi K2 Thinking (INT4 g32 experts + BF16) on 8 x NVIDIA H200 SXM 141GB")
    assert "tok/s** per user" in box and "self-hosted vs **$7.30** via the API (Moonshot)" in box


def test_api_split_formula_and_verdict_on_the_first_screen():
    at = _app()
    text = _markdown(at)
    assert "Moonshot prices (2025-11): input $0.60, cached input $0.15, output $2.50 per 1M tokens" in text
    assert "output $2.50 + 8.0 x input $0.60 (8,192 prompt / 1,024 answer tokens) = $7.30" in text
    assert "**Self-host or API?** The API is cheaper" in text
    labels = {m.label: m.value for m in at.metric}
    assert labels["API per 1M output tokens"] == "$7.30" and labels["Break-even vs API"] == "never"
    # your own output price replaces the list price in the same formula
    at.sidebar.number_input(key="api_output_usd_per_mtok").set_value(100.0).run()
    labels = {m.label: m.value for m in at.metric}
    assert labels["API per 1M output tokens"] == "$104.80"  # 100 + 8 x 0.60


def test_prompt_fills_the_context_and_the_speed_follows():
    at = _app({"context": "65536"})
    assert "9,216 of the 65,536-token context (14% filled)" in _markdown(at)
    before = {m.label: m.value for m in at.metric}["Time to first token"]
    at.button(key="fill_context").click().run()
    assert not at.exception
    assert at.session_state["scenario"].input_tokens == 65_536 - 1_024
    assert {m.label: m.value for m in at.metric}["Time to first token"] != before
    assert at.button(key="fill_context").disabled  # already full


def test_longest_context_stays_within_the_models_maximum():
    at = _app({"context": "262144"})
    text = _markdown(at)
    assert "Longest context at 1 user(s): 262,144 tokens (Kimi K2 Thinking's maximum" in text
    assert "723,8" not in text.split("Longest context")[1].split("\n")[0]


def test_limited_by_says_latency_at_one_user_and_kernel_use_at_two():
    at = _app()
    assert {m.label: m.value for m in at.metric}["Limited by"] == "latency"
    at.sidebar.number_input(key="concurrency").set_value(2).run()
    assert {m.label: m.value for m in at.metric}["Limited by"] == "kernel use"


def test_report_page_offers_the_pdf():
    at = _app()
    at.switch_page("pages/report.py").run()
    assert not at.exception
    assert "PDF (A4)" in {b.label for b in at.get("download_button")}


def test_only_the_open_tab_is_drawn_and_each_tab_draws_its_charts():
    at = _app()
    specs = lambda: [c.proto.spec for c in at.get("plotly_chart")]  # noqa: E731
    assert len(specs()) == 1 and "Decode speed" in specs()[0]
    for tab, title in (("Memory", "Memory per device"), ("Cost", "Cost breakdown")):
        at.session_state["calculator_tab"] = tab
        at.run()
        assert not at.exception and any(title in s for s in specs()), tab


def test_a_device_over_its_memory_shows_what_it_needs_not_what_it_uses():
    at = _app({"model": "minimax-m2", "hardware": "dgx-spark", "count": "1"})
    metrics = {m.label: m for m in at.metric}
    assert "Memory used, device 0" not in metrics and "Decode per user" not in metrics
    needed = metrics["Memory needed, device 0"]
    assert needed.value.endswith("GiB") and "more than usable" in needed.delta
    assert {b.label.split(" (")[0] for b in at.button if b.key and b.key.startswith("fix_")} >= {
        "quantization GGUF Q3_K_M"}
