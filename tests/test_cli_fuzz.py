"""Property test (hypothesis) over the command line's numeric options: whatever the numbers, the exit
status is 0 (and --json output is valid, finite JSON) or 2 with exactly one line on stderr."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2calc.cli import main
from k2calc.errors import K2CalcError, finite_json

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
numbers = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "3", "8", "5e-324", "1e-308", "1e308", "-1e308", "nan", "inf", "-inf",
                     "0.5", "1e9", "10000000", "999999999999999999999", "abc", "", "1e400"]),
    st.integers(-10, 10**7).map(str), st.floats(allow_nan=False).map(repr))

ESTIMATE_INT = ["--count", "--nodes", "--sockets", "--tp", "--pp", "--ep", "--dcp", "--gpu-experts", "--context",
                "--input-tokens", "--output-tokens", "--concurrency"]
ESTIMATE_FLOAT = ["--bits-per-weight", "--ram-gb", "--memory-fraction", "--wired-limit-gb", "--electricity-usd-per-kwh",
                  "--pue", "--hosting-usd-per-kw-month", "--maintenance-pct-per-year", "--amortisation-years",
                  "--residual-value-pct", "--utilisation", "--cache-hit-rate", "--hardware-price-usd",
                  "--cloud-usd-per-hour", "--monthly-output-tokens"]
FINETUNE = ["--count", "--sockets", "--ram-gb", "--swap-gb", "--wired-limit-gb", "--rank", "--alpha", "--seq-len",
            "--micro-batch", "--tokens", "--epochs", "--usd-per-kwh"]
BASES = {
    "estimate": ["estimate", "--model", "llama-3.1-8b", "--hardware", "rtx-4090", "--count", "1", "--json"],
    "hybrid": ["estimate", "--model", "llama-3.1-8b", "--hardware", "rtx-4090", "--count", "1",
               "--cpu", "xeon-platinum-8488c", "--json"],
    "finetune": ["finetune", "--model", "llama-3.1-8b", "--hardware", "rtx-4090", "--json"],
}


QUANTITIES = ("bytes", "usd", "watts", "tokens_per_s", "hours", "kwh")


def _assert_non_negative(obj, argv, path=""):
    """Bytes, dollars, watts, speeds and hours are never negative (``free_bytes`` is a shortfall when
    it does not fit, by design)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _assert_non_negative(v, argv, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _assert_non_negative(v, argv, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and not path.endswith("free_bytes"):
        last = path.rsplit(".", 1)[-1]
        assert not (obj < 0 and any(q in last for q in QUANTITIES)), (path, obj, argv)


def _check(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: a value that is not a number at all
        status = exc.code
    out, err = capsys.readouterr()
    assert status in (0, 2), (argv, err)
    if status == 0:
        _assert_non_negative(json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON of {argv}")), argv)
    else:
        assert err.count("\n") == 1 and err.startswith("k2calc: error:"), err
        assert len(err) < 600, err


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["estimate", "hybrid"]),
       st.lists(st.tuples(st.sampled_from(ESTIMATE_INT + ESTIMATE_FLOAT), numbers), min_size=1, max_size=3))
def test_estimate_numeric_options(capsys, base, options):
    _check(BASES[base] + [x for pair in options for x in pair], capsys)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(FINETUNE), numbers), min_size=1, max_size=3))
def test_finetune_numeric_options(capsys, options):
    _check(BASES["finetune"] + [x for pair in options for x in pair], capsys)


@pytest.mark.parametrize("argv, flag", [
    (["estimate", "--utilisation", "5e-324"], "--utilisation"),
    (["estimate", "--amortisation-years", "5e-324"], "--amortisation-years"),
    (["sensitivity", "--json", "--amortisation-years", "1e-308"], "--amortisation-years"),
    (["estimate", "--cpu", "xeon-platinum-8488c", "--ram-gb", "5e-324"], "--ram-gb"),
    (["estimate", "--bits-per-weight", "0.5"], "--bits-per-weight"),
    (["finetune", "--swap-gb", "1e308"], "--swap-gb"),
    (["finetune", "--epochs", "1e308"], "--epochs"),
    (["finetune", "--count", "10000000"], "--count"),
    (["plan", "--users", "0"], "--users"),
])
def test_edge_numbers_are_one_line_naming_the_flag_and_range(argv, flag, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err and "must be" in err


def test_an_unknown_id_is_cut_and_offers_at_most_three_matches(capsys):
    assert main(["estimate", "--model", "kimi-k2-thinkng" + "x" * 5000]) == 2
    err = capsys.readouterr().err
    assert len(err) < 300 and err.count("\n") == 1
    assert main(["estimate", "--hardware", "h200"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" in err and err.split("did you mean")[1].count(",") <= 2


def test_json_output_is_finite_or_one_error():
    assert finite_json({"a": 1.5}) == '{"a": 1.5}'
    with pytest.raises(K2CalcError, match=r"x\.1\.y"):
        finite_json({"x": [0, {"y": float("nan")}]})


@pytest.mark.parametrize("argv, expected", [
    (["estimate", "--tp", "3"], "--tp 3 does not divide the 8 devices; use one of 1, 2, 4, 8"),
    (["estimate", "--pp", "3"], "--pp 3 does not divide the 8 devices; use one of 1, 2, 4, 8"),
    (["estimate", "--tp", "3", "--pp", "2"], "TP 3 x PP 2 = 6 does not divide the 8 devices"),
])
def test_a_split_that_does_not_divide_names_only_what_was_given(argv, expected, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == f"k2calc: error: {expected}\n"
