"""Speculative decoding in the Calculator: the sidebar switch, its effect, the widened band and the link."""

from pathlib import Path

from apptest import open_app
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


_app = open_app


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _link(at: AppTest) -> dict:
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


def _caption(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_switching_speculative_decoding_on_changes_speed_band_and_link():
    at = _app()
    plain = _metric(at, "Decode per user")
    assert "speculative" not in _caption(at)
    assert not [w for w in at.selectbox if w.key == "spec_method"]  # the Advanced section starts closed
    at.session_state["advanced_open"] = True
    at.run()
    at.selectbox(key="spec_method").set_value("eagle3").run()
    assert not at.exception, at.exception
    assert _metric(at, "Decode per user") != plain
    caption = _caption(at)
    assert "speculative decoding (eagle3, 3 draft tokens, acceptance 0.74 [0.62-0.85]" in caption
    assert "band is widened" in caption
    assert _link(at)["spec_method"] == "eagle3"
    at.number_input(key="spec_acceptance").set_value(0.9).run()
    assert not at.exception
    assert _link(at)["spec_acceptance"] == "0.9"
    # closing the section keeps the choices (Streamlit forgets undrawn widgets' values unless kept)
    # and names them under it, with each later run
    at.session_state["advanced_open"] = False
    at.run()
    at.run()
    assert not [w for w in at.selectbox if w.key == "spec_method"]
    assert (at.session_state["scenario"].spec_method, at.session_state["scenario"].spec_acceptance) == ("eagle3", 0.9)
    assert "Set in the closed sections: speculative decoding eagle3; acceptance 0.9." in _caption(at)


def test_a_link_restores_speculative_decoding():
    at = _app({"model": "deepseek-v3", "spec_method": "mtp", "spec_draft_tokens": "2"})
    s = at.session_state["scenario"]
    assert (s.spec_method, s.spec_draft_tokens) == ("mtp", 2)
    assert "speculative decoding (mtp, 2 draft tokens" in _caption(at)


def test_mtp_on_a_model_without_an_mtp_layer_says_so():
    at = _app({"spec_method": "mtp"})
    assert not at.exception
    assert any("no multi-token-prediction layer" in e.value for e in at.error)


def test_a_draft_that_tips_memory_over_is_shown_as_not_fitting():
    at = _app({"context": "262144", "concurrency": "2", "spec_method": "eagle3"})
    assert not at.exception, at.exception
    text = " ".join(e.value for e in at.error) + " ".join(m.value for m in at.markdown)
    assert "draft" in text
