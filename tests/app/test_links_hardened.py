"""Links that try to break or forge the app: 'none' where none is not allowed, custom payloads that
reuse a catalog id or carry values beyond physical limits, unreadable payloads. Through
``links.from_query`` / ``catalogs_from_param`` and through the app (AppTest)."""

from __future__ import annotations

import base64
import json
import typing
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from k2calc.errors import K2CalcError
from k2calc.hardware import load_hardware
from k2calc.links import catalogs_from_param, catalogs_param, from_query
from k2calc.models import load_models
from k2calc.scenario import Catalogs, Scenario

ROOT = Path(__file__).resolve().parents[2]


def _encode(payload) -> str:
    return base64.urlsafe_b64encode(zlib.compress(json.dumps(payload).encode())).decode().rstrip("=")


def _device(**changes) -> dict:
    return {**load_hardware()["h200-sxm"].model_dump(mode="json"), **changes}


@pytest.mark.parametrize("name", [n for n, f in Scenario.model_fields.items()
                                  if type(None) not in typing.get_args(f.annotation)])
def test_none_where_none_is_not_allowed_is_one_message_and_the_default(name):
    other = "output_tokens" if name != "output_tokens" else "input_tokens"
    scenario, ignored = from_query({other: "512", name: "none"})
    assert getattr(scenario, name) == getattr(Scenario(), name)
    assert getattr(scenario, other) == 512
    assert len(ignored) == 1 and ignored[0].startswith(f"{name}='none'")


def test_none_where_allowed_still_means_none():
    scenario, ignored = from_query({"hardware": "none", "cpu": "xeon-platinum-8488c", "ram_gb": "1024"})
    assert scenario.hardware is None and not ignored


def test_an_unknown_id_in_a_link_is_cut_and_has_close_matches():
    scenario, ignored = from_query({"model": "kimi-k2-thinkng" + "x" * 5000})
    assert scenario.model == Scenario().model
    assert len(ignored) == 1 and len(ignored[0]) < 400


@pytest.mark.parametrize("kind, payload", [
    ("device", {"hardware": [_device(memory_bytes=1)]}),
    ("device", {"hardware": [_device(name="H200 but cheap", price_usd=1.0)]}),
    ("model", {"models": [load_models()["minimax-m2"].model_dump(mode="json")]}),
])
def test_a_custom_payload_cannot_replace_a_catalog_id(kind, payload):
    with pytest.raises(K2CalcError, match=f"custom {kind} '.*' has the id of a catalog {kind}"):
        catalogs_from_param(_encode(payload))


@pytest.mark.parametrize("payload, field", [
    ({"hardware": [_device(id="mine", memory_bandwidth_gb_per_s=1e308)]}, "'memory_bandwidth_gb_per_s'"),
    ({"hardware": [_device(id="mine", memory_bytes=2**80)]}, "'memory_bytes'"),
    ({"hardware": [_device(id="mine", memory_bandwidth_gb_per_s="fast")]}, "'memory_bandwidth_gb_per_s'"),
    ({"models": [{**load_models()["minimax-m2"].model_dump(mode="json"), "id": "m2", "num_layers": 10**30}]},
     "'num_layers'"),
    ({"models": [{**load_models()["minimax-m2"].model_dump(mode="json"), "id": "m2", "n_shared_experts": -1}]},
     "'n_shared_experts'"),
])
def test_an_unreadable_payload_names_the_field(payload, field):
    with pytest.raises(K2CalcError, match=field) as info:
        catalogs_from_param(_encode(payload))
    assert "\n" not in str(info.value) and ("must be" in str(info.value) or "allowed" in str(info.value))


@pytest.mark.parametrize("text", ["!!", "eJw", _encode([1]), _encode({"hardware": 5}), "A" * 300_000,
                                  _encode({"models": [5]})])
def test_damaged_payloads_are_one_line(text):
    with pytest.raises(K2CalcError) as info:
        catalogs_from_param(text)
    assert "\n" not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*Scenario.model_fields, "custom", "junk"]),
                       st.one_of(st.text(max_size=30), st.sampled_from(["none", "nan", "inf", "-1", "0", "1e308",
                                                                        "5e-324", "1", "h200-sxm"])),
                       max_size=6))
def test_from_query_never_raises(params):
    scenario, ignored = from_query(params)
    assert isinstance(scenario, Scenario) and all(isinstance(i, str) for i in ignored)


def test_a_custom_device_with_its_own_id_round_trips():
    device = load_hardware()["h200-sxm"].model_copy(update={"id": "my-h200", "name": "My H200"})
    back = catalogs_from_param(catalogs_param(Catalogs(hardware={"my-h200": device}))).hardware["my-h200"]
    assert back == device.model_copy(update={"name": "My H200 (custom)"})  # shown as custom, marked once
    assert catalogs_from_param(catalogs_param(Catalogs(hardware={"my-h200": back}))).hardware["my-h200"] == back


def _app(query: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_app_model_none_warns_and_keeps_the_default():
    at = _app({"model": "none", "concurrency": "2"})
    assert at.session_state["scenario"].model == Scenario().model
    assert at.session_state["scenario"].concurrency == 2
    assert any("model='none'" in w.value for w in at.warning)


def test_app_a_forged_catalog_device_is_refused():
    at = _app({"custom": _encode({"hardware": [_device(memory_bytes=1)]}), "hardware": "h200-sxm"})
    assert any("has the id of a catalog device" in w.value for w in at.warning)
    assert "Fits" in at.success[0].value  # the catalog's H200 stands


def test_catalog_page_device_inputs_have_physical_maxima():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/catalog.py").run()
    assert not at.exception
    for key in ("dev_mem", "dev_bw", "dev_bf16", "dev_fp8", "dev_tdp", "dev_link", "dev_price"):
        assert at.number_input(key=key).max is not None, key
    at.number_input(key="dev_mem").set_value(1.7e308).run()
    assert not at.exception


_odd = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.just([]), st.just({}))


@settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "150")), deadline=None)
@given(st.sampled_from(["hardware", "models"]), st.data())
def test_the_custom_decoder_gives_catalogs_or_one_error(kind, data):
    """Mutated custom devices and models: a usable catalog (estimate finite or one error), or one line."""
    base = (_device(id="my-dev") if kind == "hardware"
            else {**load_models()["llama-3.1-8b"].model_dump(mode="json"), "id": "my-model"})
    item = dict(base)
    for _ in range(data.draw(st.integers(1, 3))):
        item[data.draw(st.sampled_from(sorted(base)))] = data.draw(_odd)
    try:
        catalogs = catalogs_from_param(_encode({kind: [item]}))
    except K2CalcError as exc:
        assert "\n" not in str(exc)
        return
    from k2calc.estimate import estimate
    (new_id,) = catalogs.hardware if kind == "hardware" else catalogs.models
    scenario = Scenario(hardware=new_id, count=1) if kind == "hardware" else Scenario(model=new_id)
    try:
        result = estimate(scenario, catalogs).as_dict()
    except K2CalcError:
        return
    json.dumps(result, allow_nan=False)  # every number finite


@pytest.mark.parametrize("field", ["bf16_dense_tflops", "memory_bandwidth_gb_per_s", "link_gb_per_s"])
def test_a_rate_below_the_physical_floor_is_one_error_naming_the_field(field):
    """Found by the fuzz test above: a device with 2.2e-308 TFLOPS was accepted, its prefill rate
    underflowed to 0 and the cost raised ZeroDivisionError. Rates now have a floor (k2calc/hardware.py)."""
    with pytest.raises(K2CalcError, match=field):
        catalogs_from_param(_encode({"hardware": [_device(id="my-dev", **{field: 2.2250738585072014e-308})]}))
