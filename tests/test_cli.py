"""Tests for the command line (k2calc/cli.py): catalogs, ``estimate --json`` contract, one-line errors.

Most tests call :func:`k2calc.cli.main` in-process with capsys (fast); one runs
``python -m k2calc`` in a subprocess to prove the module entry point works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from k2calc.cli import main
from k2calc.models import load_models

REPO_ROOT = Path(__file__).resolve().parent.parent

DEVICE_KEYS = ("capacity_bytes", "weights_bytes", "kv_bytes", "activation_bytes", "overhead_bytes", "free_bytes")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit status, stdout, stderr). argparse errors raise SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse (bad command, bad type, bad choice)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# ------------------------------------------------------------------------------------ catalogs

def test_models_lists_every_catalog_id(capsys):
    code, out, err = run(capsys, "models")
    assert code == 0 and err == ""
    ids = list(load_models())
    assert len(ids) == len(list((Path(__file__).parent.parent / "data" / "models").glob("*.json")))
    listed = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert listed == set(ids)


def test_hardware_lists_gpus_macs_and_cpus(capsys):
    code, out, err = run(capsys, "hardware")
    assert code == 0 and err == ""
    listed = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert {"h200-sxm", "mac-studio-m3-ultra-512gb", "xeon-platinum-8488c"} <= listed


def test_quants_lists_gguf_and_mlx_schemes(capsys):
    code, out, err = run(capsys, "quants")
    assert code == 0 and err == ""
    listed = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert {"q4_k_m", "mlx-4bit", "native"} <= listed


# ------------------------------------------------------------------------------------ estimate --json

@pytest.fixture(scope="module")
def kimi_8x_h200() -> dict:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["estimate", "--model", "kimi-k2-thinking", "--hardware", "h200-sxm", "--count", "8", "--json"])
    assert code == 0
    return json.loads(buf.getvalue())


def test_kimi_thinking_on_8x_h200_fits_with_published_sizes(kimi_8x_h200):
    r = kimi_8x_h200
    mem = r["memory"]
    assert r["fits"] is True
    assert r["reasons"] == []
    assert mem["weights_bytes"] == pytest.approx(594.2e9, rel=0.02)
    assert mem["kv_bytes_per_token"] == 70272  # 61 x (512 + 64) x 2 B
    assert isinstance(mem["kv_capacity_tokens"], int) and mem["kv_capacity_tokens"] > 0
    assert isinstance(mem["max_concurrency"], int) and mem["max_concurrency"] >= 1


def test_kimi_thinking_json_has_eight_device_rows_with_every_field(kimi_8x_h200):
    devices = kimi_8x_h200["memory"]["devices"]
    assert len(devices) == 8
    for dev in devices:
        for key in DEVICE_KEYS:
            assert isinstance(dev[key], int), (key, dev)
        assert dev["capacity_bytes"] == 150754820096  # nvidia-smi 143771 MiB


def test_json_has_the_contract_keys(kimi_8x_h200):
    """The --json contract keys (README.md, "Command line"; scripts depend on them)."""
    assert {"fits", "reasons", "warnings", "scenario", "model", "quant", "deployment", "memory",
            "performance", "cost", "smallest_fitting"} <= set(kimi_8x_h200)
    cost = kimi_8x_h200["cost"]
    for key in ("capex_usd", "power_watts", "annual_opex_usd", "usd_per_million_output_tokens",
                "api_usd_per_million_output_tokens"):
        assert cost[key] > 0
    assert "breakeven_months" in cost
    perf = kimi_8x_h200["performance"]
    for key in ("decode_tokens_per_s_per_user", "decode_tokens_per_s_total", "prefill_tokens_per_s", "ttft_s"):
        assert perf[key] > 0
        assert perf[f"{key}_low"] < perf[key] < perf[f"{key}_high"]
    assert perf["bottleneck"] in {"gpu-memory-bandwidth", "cpu-memory-bandwidth", "compute", "interconnect",
                                  "kernel-latency", "attention-kernel", "kernel-efficiency"}
    assert perf["decode_tokens_per_s_per_user"] <= perf["roofline_decode_tokens_per_s_per_user"]


def test_minimax_m2_kv_and_weights(capsys):
    r = run_json(capsys, "estimate", "--model", "minimax-m2", "--hardware", "h200-sxm", "--count", "8")
    assert r["memory"]["kv_bytes_per_token"] == 253952  # 62 x 2 x 8 x 128 x 2 B
    assert r["memory"]["weights_bytes"] == pytest.approx(230e9, rel=0.02)


def test_kimi_k2_instruct_fp8_weights(capsys):
    r = run_json(capsys, "estimate", "--model", "kimi-k2-instruct", "--hardware", "h200-sxm", "--count", "16",
                 "--nodes", "2")
    assert r["memory"]["weights_bytes"] == pytest.approx(1.029e12, rel=0.01)


def test_context_above_model_maximum_warns_but_estimates(capsys):
    code, out, err = run(capsys, "estimate", "--model", "kimi-k2-thinking", "--hardware", "h200-sxm",
                         "--count", "8", "--context", "400000", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["warnings"], r
    assert any("400,000" in w for w in r["warnings"])
    assert r["memory"]["devices"] and r["memory"]["weights_bytes"] > 0
    assert r["scenario"]["context"] == 400000


def test_text_output_has_verdict_and_device_row(capsys):
    code, out, err = run(capsys, "estimate", "--model", "kimi-k2-thinking", "--hardware", "h200-sxm", "--count", "8")
    assert code == 0 and err == ""
    assert "FITS" in out
    assert any("GPU" in line and "GiB" in line for line in out.splitlines())


def test_text_output_says_does_not_fit(capsys):
    code, out, err = run(capsys, "estimate", "--model", "kimi-k2-thinking", "--hardware", "h200-sxm", "--count", "2")
    assert code == 0 and err == ""
    assert "DOES NOT FIT" in out
    assert any("GiB" in line for line in out.splitlines() if line.strip().startswith("GPU"))


# ------------------------------------------------------------------------------------ user errors

BAD_INPUTS = [
    pytest.param(["estimate", "--model", "kimi-k2-thinkng"], "kimi-k2-thinking", id="unknown-model"),
    pytest.param(["estimate", "--hardware", "h200"], "h200-sxm", id="unknown-hardware"),
    pytest.param(["estimate", "--count", "0"], "count", id="count-0"),
    pytest.param(["estimate", "--count", "-3"], "count", id="count-negative"),
    pytest.param(["estimate", "--count", "abc"], "--count", id="count-not-int"),
    pytest.param(["estimate", "--count", "3"], "64", id="count-3-tp-split"),
    pytest.param(["estimate", "--context", "0"], "context", id="context-0"),
    pytest.param(["estimat"], "did you mean 'estimate'", id="mistyped-command"),
    pytest.param(["estimate", "--engine", "mlx-lm", "--hardware", "h200-sxm"], "mlx-lm", id="mlx-on-h200"),
    pytest.param(["estimate", "--hardware", "rtx-4090", "--cpu", "xeon-platinum-8488c"], "--ram-gb",
                 id="hybrid-without-ram"),
    pytest.param(["estimate", "--cpu", "h200-sxm"], "h200-sxm", id="gpu-as-cpu"),
    pytest.param(["estimate", "--hardware", "rtx-4090", "--count", "2", "--cpu", "xeon-platinum-8488c",
                  "--ram-gb", "2048", "--gpu-experts", "999"], "999", id="gpu-experts-too-many"),
    pytest.param(["estimate", "--kv-dtype", "int3"], "int3", id="kv-dtype-unknown"),
    pytest.param(["estimate", "--bits-per-weight", "0.5"], "--bits-per-weight", id="bpw-too-small"),
    pytest.param(["estimate", "--dp-attention"], "sglang", id="dp-attention-with-vllm"),
    # PP larger than the device count once made tp = count // pp = 0 and divided by zero.
    pytest.param(["estimate", "--count", "1", "--pp", "4"], "PP 4", id="pp-more-than-count"),
    pytest.param(["estimate", "--pp", "100"], "PP 100", id="pp-100-on-8"),
]


@pytest.mark.parametrize("argv, needle", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("k2calc: error:"), err
    assert "Traceback" not in err
    assert needle.lower() in lines[0].lower(), err


def test_bad_input_with_json_flag_is_still_one_line(capsys):
    code, out, err = run(capsys, "estimate", "--model", "nope", "--json")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("k2calc: error:")


# ------------------------------------------------------------------------------------ module entry point

def test_python_dash_m_entry_point_prints_json():
    proc = subprocess.run(
        [sys.executable, "-m", "k2calc", "estimate", "--model", "kimi-k2-thinking", "--hardware", "h200-sxm",
         "--count", "8", "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["fits"] is True
    assert r["memory"]["kv_bytes_per_token"] == 70272
    assert len(r["memory"]["devices"]) == 8


# ------------------------------------------------------------------------------------------------
# The pipeline contract: a context that cannot hold the request; nothing reported as if it ran
# ------------------------------------------------------------------------------------------------

def test_a_context_shorter_than_prompt_plus_answer_exits_2_with_one_line(capsys):
    code, out, err = run(capsys, "estimate", "--context", "1024", "--input-tokens", "8192", "--output-tokens", "1024")
    assert code == 2 and not out
    assert err.strip() == ("k2calc: error: context 1,024 tokens cannot hold the prompt (8,192) + answer (1,024) = "
                           "9,216 tokens; raise the context to at least 9,216 or shorten the request")


def test_the_defaults_hold_the_default_request():
    from k2calc.scenario import Scenario
    s = Scenario()
    assert s.context >= s.input_tokens + s.output_tokens and s.workload.context_tokens == s.context


def test_not_fitting_reports_no_speed_or_cost_and_lists_fixes_that_fit(capsys):
    code, out, _ = run(capsys, "estimate", "--model", "minimax-m2", "--hardware", "dgx-spark", "--count", "1",
                       "--json")
    assert code == 0
    r = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-finite number {c} in the JSON"))
    assert r["fits"] is False and r["performance"] is None and r["cost"] is None
    kinds = {f["kind"]: f for f in r["fixes"]}
    assert {"quant", "devices"} <= set(kinds)
    assert kinds["quant"]["query"]["quant"] == "q3_k_m"  # M2 at Q3_K_M fits one Spark (issue 11)
    # M2 FP8 weights 230 GB; a Spark shows 121.7 GiB of which 90% is usable = 117.6 GB, so two hold
    # 235 GB, short of the weights plus runtime and KV: three machines.
    assert kinds["devices"]["query"]["count"] == "3" and "3 machines" in kinds["devices"]["label"]
    capex = [f["capex_usd"] for f in r["fixes"]]
    assert capex == sorted(capex)  # cheapest first
    for f in r["fixes"]:
        again = run_json(capsys, "estimate", *(a for k, v in f["scenario"].items() if v is not None and v is not False
                                               for a in ((f"--{k.replace('_', '-')}",) if v is True
                                                         else (f"--{k.replace('_', '-')}", str(v)))))
        assert again["fits"] is True and again["performance"] is not None, f["label"]


def test_kv_context_and_user_fixes_are_the_largest_that_fit(capsys):
    r = run_json(capsys, "estimate", "--concurrency", "8", "--context", "131072")  # 8 x 128K: FP8 KV fits
    assert r["fits"] is False
    kinds = {f["kind"]: f["scenario"] for f in r["fixes"]}
    assert {"kv_dtype", "context", "users", "devices"} <= set(kinds)
    assert kinds["kv_dtype"]["kv_dtype"] == "fp8"
    for kind, field, step in (("context", "context", 1024), ("users", "concurrency", 1)):
        s = kinds[kind]
        assert run_json(capsys, "estimate", "--concurrency", str(s["concurrency"]), "--context",
                        str(s["context"]))["fits"] is True
        bigger = {"concurrency": s["concurrency"], "context": s["context"], field: s[field] + step}
        assert run_json(capsys, "estimate", "--concurrency", str(bigger["concurrency"]), "--context",
                        str(bigger["context"]))["fits"] is False
