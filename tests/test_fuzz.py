"""Fuzz tests (hypothesis) of every input path: malformed config.json files, links, CLI numbers.

Each asserts the house rule: a result, or one :class:`K2CalcError` line; nothing else escapes, every
accepted model estimates in bounded time, every number printed is finite. The example counts are small so
CI stays fast; ``FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py`` runs a longer campaign, and
``python benchmarks/fuzz_config.py 10000`` prints the counts of a seeded config.json campaign.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2calc.errors import K2CalcError
from k2calc.estimate import estimate
from k2calc.models import ModelArch, parse_config_json
from k2calc.scenario import Catalogs, Scenario

ROOT = Path(__file__).resolve().parent.parent
BASES = [json.loads(p.read_text())["config"] for p in sorted((ROOT / "data" / "models").glob("*.json"))]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ESTIMATE_SECONDS = 10.0  # an estimate takes milliseconds; this only catches one that never returns

odd_numbers = st.one_of(
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 1, 10**30, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, 5e-324, 0.5, 7168.0]))
json_scalars = st.one_of(st.none(), st.booleans(), odd_numbers, st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
used_keys = sorted({k for base in BASES for k in base} | {"head_dim", "num_experts", "num_local_experts",
                                                          "sliding_window", "layer_types", "mlp_only_layers"})


@st.composite
def mutated_configs(draw) -> str:
    """A catalog config.json with one to four fields replaced by odd JSON values or removed."""
    config = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(used_keys))
        if draw(st.integers(0, 9)) == 0:
            config.pop(key, None)
        else:
            config[key] = draw(json_values)
    return json.dumps(config)  # NaN and Infinity go out as JSON's common extension


class _Timeout(Exception):
    pass


def _raise_timeout(signum, frame):
    raise _Timeout()


def _assert_model_or_error(text: str | bytes) -> None:
    try:
        model = parse_config_json(text, "fuzzed")
    except K2CalcError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(model, ModelArch)
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, ESTIMATE_SECONDS)
    try:
        result = estimate(Scenario(model=model.id), Catalogs(models={model.id: model})).as_dict()
    except K2CalcError:
        return
    except _Timeout:
        pytest.fail(f"estimate did not return within {ESTIMATE_SECONDS} s for {text[:300]!r}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    json.dumps(result, allow_nan=False)  # every number finite
    assert result["memory"]["weights_bytes"] > 0
    assert all(d[k] >= 0 for d in result["memory"]["devices"]
               for k in ("capacity_bytes", "weights_bytes", "kv_bytes", "activation_bytes"))


@FUZZ
@given(mutated_configs())
def test_mutated_catalog_configs_give_a_model_or_one_error(text):
    _assert_model_or_error(text)


@FUZZ
@given(json_values)
def test_random_json_gives_a_model_or_one_error(value):
    _assert_model_or_error(json.dumps(value))


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_random_bytes_and_text_give_a_model_or_one_error(data):
    _assert_model_or_error(data)


@pytest.mark.parametrize("text, field", [
    ('{"architectures": 5}', "architectures"),
    ('{"a": 1}', "architecture"),
    ("[" * 100000, "nested"),
    ('{"architectures": ["LlamaForCausalLM"], "hidden_size": 1e308}', "hidden_size"),
    ('{"architectures": ["LlamaForCausalLM"], "hidden_size": true}', "hidden_size"),
    ('{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 1000000000000000000000000000000}', "from 1 to 1000"),
    ('{"architectures": ["LlamaForCausalLM"], "hidden_size": Infinity}', "hidden_size"),
    ('{"architectures": ["LlamaForCausalLM"], "quantization_config": "fp8"}', "quantization_config"),
    ('{"architectures": ["LlamaForCausalLM"], "sliding_window": "big"}', "sliding_window"),
])
def test_known_bad_configs_name_the_field(text, field):
    with pytest.raises(K2CalcError, match=field):
        parse_config_json(text)


@pytest.mark.parametrize("field, value", [("n_shared_experts", -1), ("moe_intermediate_size", -5),
                                          ("intermediate_size", -1), ("num_attention_heads", 0),
                                          ("n_routed_experts", 10**30)])
def test_negative_or_huge_sizes_are_rejected_not_computed(field, value):
    config = json.loads((ROOT / "data" / "models" / "kimi-k2-thinking.json").read_text())["config"]
    with pytest.raises(K2CalcError, match=f"'{field}'.*(got {value})"):
        parse_config_json(json.dumps({**config, field: value}))


def test_every_catalog_config_still_imports():
    for base in BASES:
        assert parse_config_json(json.dumps(base), "again").num_layers > 0


def test_cli_config_json_bad_file_is_one_line(tmp_path, capsys):
    from k2calc.cli import main
    path = tmp_path / "config.json"
    path.write_text('{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 1e30}')
    assert main(["estimate", "--config-json", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "num_hidden_layers" in err
    path.write_bytes(b"\xff\xfe\x00\x01binary")
    assert main(["estimate", "--config-json", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
