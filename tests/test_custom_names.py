"""Custom devices and imported models say they are custom wherever their names appear (issue 12): the
Catalogs mark them once, so the verdict, the Compare tables, the reports and the CLI all read it."""

from __future__ import annotations

import json

from k2calc.cli import main
from k2calc.estimate import estimate
from k2calc.hardware import Hardware, load_hardware
from k2calc.links import catalogs_from_param, catalogs_param
from k2calc.models import load_models
from k2calc.report import report_html, report_markdown
from k2calc.scenario import Catalogs, Scenario
from k2calc.sweeps import compare_hardware, compare_models
from k2calc.units import GiB

LAB = Hardware(id="lab-gpu", name="Lab GPU", kind="gpu", vendor="NVIDIA", memory_bytes=192 * GiB,
               memory_bandwidth_gb_per_s=4000, bf16_dense_tflops=1000, tdp_watts=800, status="unverified",
               source="test")
MINE = load_models()["llama-3.1-8b"].model_copy(update={"id": "my-llama", "name": "My Llama"})
CATALOGS = Catalogs(hardware={"lab-gpu": LAB}, models={"my-llama": MINE})


def test_custom_names_are_marked_once_and_catalog_names_never():
    assert CATALOGS.hardware["lab-gpu"].name == "Lab GPU (custom)"
    assert CATALOGS.models["my-llama"].name == "My Llama (custom)"
    assert Catalogs(hardware=CATALOGS.hardware).hardware["lab-gpu"].name == "Lab GPU (custom)"  # not twice
    back = catalogs_from_param(catalogs_param(CATALOGS))
    assert back == CATALOGS  # a link carries the name as written and is marked again on reading
    longest = LAB.model_copy(update={"name": "x" * 200})  # the longest name still travels in a link
    assert catalogs_from_param(catalogs_param(Catalogs(hardware={"lab-gpu": longest}))).hardware[
        "lab-gpu"].name == "x" * 200 + " (custom)"
    assert "(custom)" not in CATALOGS.hardware_catalog()["h200-sxm"].name
    assert all("(custom)" not in h.name for h in load_hardware().values())


def test_verdict_reports_and_compare_tables_say_custom():
    e = estimate(Scenario(model="my-llama", hardware="lab-gpu", count=1), CATALOGS)
    md, page = report_markdown(e), report_html(e)
    for text in (md, page):
        assert "My Llama (custom) fits on 1 x Lab GPU (custom)" in text
    assert all(d.name.endswith("(Lab GPU (custom))") for d in e.memory.devices)
    models = compare_models(Scenario(hardware="lab-gpu", count=1), ["my-llama", "llama-3.1-8b"], CATALOGS)
    assert "My Llama (custom)" in models.to_string() and "Llama 3.1 8B (custom)" not in models.to_string()
    hw = compare_hardware(Scenario(model="llama-3.1-8b"), [{"hardware": "lab-gpu", "count": 1}], CATALOGS)
    assert "Lab GPU (custom)" in hw.to_string()


def test_cli_names_an_imported_config_json_as_custom(tmp_path, capsys):
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
              "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072}
    path = tmp_path / "my-llama" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(config))
    assert main(["estimate", "--config-json", str(path), "--hardware", "h200-sxm", "--count", "1"]) == 0
    assert "(custom)" in capsys.readouterr().out
