"""The one pydantic-error-to-one-line conversion (k2calc.errors) and where it is used."""

from __future__ import annotations

import pytest

from k2calc.cost import default_assumptions
from k2calc.errors import (
    NO_VALUE,
    CatalogError,
    K2CalcError,
    first_error,
    validated,
    validation_message,
)
from k2calc.models import from_hf_config
from k2calc.planner import build_workload
from k2calc.scenario import Scenario


def test_first_error_names_the_field_the_message_and_the_value():
    with pytest.raises(ValueError) as info:
        Scenario(concurrency=0)
    assert first_error(info.value) == ("concurrency", "Input should be greater than or equal to 1", 0)
    assert validation_message(info.value) == "concurrency: Input should be greater than or equal to 1 (got 0)"


def test_a_missing_field_or_a_plain_exception_shows_no_value():
    from k2calc.cost import CostAssumptions
    with pytest.raises(ValueError) as info:
        CostAssumptions()
    field, message, value = first_error(info.value)
    assert message == "Field required" and value is NO_VALUE and field in CostAssumptions.model_fields
    assert first_error(KeyError("x")) == (None, "'x'", NO_VALUE)
    assert validation_message(RuntimeError("boom")) == "boom"


@pytest.mark.parametrize("call, expected", [  # a bound error states the field's whole range
    (lambda: validated(Scenario, count=0), "count: must be from 1 to 1024 (got 0)"),
    (lambda: default_assumptions().with_overrides(pue=0.5), "pue: must be from 1 to 5 (got 0.5)"),
    (lambda: build_workload(users=0), "users: must be from 1 to 1000000 (got 0)"),
    (lambda: validated(Scenario, names={"count": "--count"}, count=0), "--count: must be from 1 to 1024 (got 0)"),
])
def test_every_builder_gives_the_same_one_line(call, expected):
    with pytest.raises(K2CalcError) as info:
        call()
    assert str(info.value) == expected


def test_validated_lets_other_errors_through():
    def broken(**_):
        raise ValueError("not a validation error")
    with pytest.raises(ValueError, match="not a validation error") as info:
        validated(broken)
    assert not isinstance(info.value, K2CalcError)


def test_a_bad_config_field_is_one_catalog_line():
    hf = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
          "num_hidden_layers": 0, "num_attention_heads": 32, "num_key_value_heads": 8,
          "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192}
    with pytest.raises(CatalogError) as info:
        from_hf_config(hf, "bad", "bad")
    assert str(info.value) == "config.json field 'num_hidden_layers': must be from 1 to 1000 (got 0)"
